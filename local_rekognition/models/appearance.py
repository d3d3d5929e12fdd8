"""What the mesh lets us measure about eyewear and facial hair: the features behind Eyeglasses, Sunglasses, Beard
and Mustache.

The face is warped by its mesh to one small canonical frame (eyes and mouth at fixed places, 64×88 px), so that a
portrait and a 45-px thumbnail are measured at the same scale. There:

- glasses: gradient histograms (HOG) over the eye band, where rims, bridge and lens edges draw lines a bare face
  does not have;
- sunglasses: the eyes' luminance and contrast against the cheeks (a dark lens hides the iris and the white);
- beard and mustache: HOG over the mouth and chin, and the colour and texture of the upper lip, chin and jaw
  against the cheeks' skin; for mustache also a HOG of the band between the nose and the upper lip alone, between
  the mouth corners (the lower-face HOG is mostly a beard's, and a goatee or chin beard leaves that band bare).

A logistic regression per field turns them into a probability (face_details_model.json, written by
scripts/train_face_details.py, which also records each model's accuracy on the development set).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from local_rekognition.models.engine import RGBImage

MODEL_PATH = Path(__file__).resolve().parent / "face_details_model.json"
"""The fitted coefficients and their development-set accuracy (scripts/train_face_details.py)."""
FIELDS = {"eyeglasses": "Eyeglasses", "sunglasses": "Sunglasses", "beard": "Beard", "mustache": "Mustache"}
"""Model name → FaceDetail member."""
CANVAS_WIDTH, CANVAS_HEIGHT = 64, 88
# Where three mesh landmarks land in the canvas: the two eyes' middles and the mouth's.
_EYE_Y, _MOUTH_Y = 30.0, 60.0
_EYE_X = (20.0, 44.0)
_THUMBNAIL_EYE_SPACING = 18.0
_TARGET = np.asarray([[_EYE_X[0], _EYE_Y], [_EYE_X[1], _EYE_Y], [32.0, _MOUTH_Y]], dtype=np.float32)
# Mesh indices: each eye's corners, the mouth's corners, the nose's base, the lips' middles, the chin.
_EYE_CORNERS = ((33, 133), (362, 263))
_MOUTH_CORNERS = (61, 291)
_SUBNASALE, _UPPER_LIP, _LOWER_LIP, _CHIN = 2, 0, 17, 152
_IRISES = (468, 473)
# MediaPipe's FACEMESH_FACE_OVAL, the 36 points around the face.
FACE_OUTLINE = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149,
    150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
# The windows the HOG descriptors read, (x, y, width, height) in the canvas.
_EYE_BAND = (4, 18, 56, 24)
_LOWER_FACE = (12, 46, 40, 40)
# Where a moustache grows: below the nose's base, through the upper lip (mouth corners at y = 60), between the
# mouth corners; the nasolabial folds, which run outside the corners, read as hair on older faces when the band
# is wider (32 px put clean-shaven biden.jpg at 0.52). Of four bands, this one had the lowest cross-validated log
# loss on the training faces (scripts/train_face_details.py).
_LIP_BAND = (20, 48, 24, 16)


@dataclass(frozen=True)
class Features:
    """One face's measurements, as the classifiers read them."""

    eyes: npt.NDArray[np.float32]
    """For Eyeglasses: eye-band HOG, then the eye-region statistics."""
    lenses: npt.NDArray[np.float32]
    """For Sunglasses: eye-region luminance and contrast against the cheeks."""
    hair: npt.NDArray[np.float32]
    """For Beard and Mustache: lower-face HOG, then colour and texture of lip, chin and jaw against the cheeks."""
    lip: npt.NDArray[np.float32]
    """For Mustache: HOG of the band from the nose's base to the upper lip."""


_CELL_PX = 8
_BINS = 9


def hog(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Dalal and Triggs' HOG: 8-px cells, 9 unsigned orientation bins, 2×2-cell blocks at a one-cell stride,
    each block L2-normalised. OpenCV 5 dropped cv2.HOGDescriptor, and the arithmetic is a few array steps."""
    values = gray.astype(np.float32)
    gx = cv2.Sobel(values, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(values, cv2.CV_32F, 0, 1, ksize=1)
    magnitude = np.hypot(gx, gy)
    # Unsigned orientation in [0, 180), split between its two nearest bins.
    position = (np.degrees(np.arctan2(gy, gx)) % 180.0) / (180.0 / _BINS) - 0.5
    low = np.floor(position)
    share = position - low
    rows, cols = values.shape[0] // _CELL_PX, values.shape[1] // _CELL_PX
    region = (slice(0, rows * _CELL_PX), slice(0, cols * _CELL_PX))
    # Each pixel's flat (cell, bin) index; np.bincount sums the votes (np.add.at did the same, several times slower).
    cell = (np.arange(rows * _CELL_PX) // _CELL_PX)[:, None] * cols + (np.arange(cols * _CELL_PX) // _CELL_PX)[None, :]
    votes = np.zeros(rows * cols * _BINS, dtype=np.float64)
    for offset, weight in ((0, 1.0 - share), (1, share)):
        bins = (low[region].astype(np.int64) + offset) % _BINS
        votes += np.bincount(
            (cell * _BINS + bins).ravel(), weights=(magnitude * weight)[region].ravel(), minlength=votes.size
        )
    cells = votes.astype(np.float32).reshape(rows, cols, _BINS)
    # 2×2-cell blocks at a one-cell stride, each the four cells' histograms in row order.
    quads = (cells[:-1, :-1], cells[:-1, 1:], cells[1:, :-1], cells[1:, 1:])
    blocks = np.concatenate(quads, axis=2).reshape(-1, 4 * _BINS)
    blocks /= np.sqrt((blocks**2).sum(axis=1, keepdims=True) + 1e-6)
    return blocks.reshape(-1).astype(np.float32)


def canonical(
    image: RGBImage, points: npt.NDArray[np.float64], *, thumbnail: bool = False
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
    """The face warped to the canvas (RGB) and the mesh's points mapped there (478×2); ``thumbnail`` first shrinks
    a large face to the training thumbnails' size."""
    source = np.asarray(
        [
            points[list(_EYE_CORNERS[0]), :2].mean(axis=0),
            points[list(_EYE_CORNERS[1]), :2].mean(axis=0),
            points[list(_MOUTH_CORNERS), :2].mean(axis=0),
        ],
        dtype=np.float32,
    )
    # For facial hair, a face larger than the training thumbnails' (eyes about 18 px apart) is first shrunk to
    # their size, so that every face reaches the canvas through the same resampling: a portrait shrunk straight to
    # the canvas keeps crisper edges than any training face had, and its folds and wrinkles read as hair (Biden
    # 0.67 → 0.32). Glasses keep the direct warp: thin rims vanish at thumbnail size (Grace Hopper 0.99 → 0.58).
    spacing = float(np.linalg.norm(source[1] - source[0]))
    if thumbnail and spacing > _THUMBNAIL_EYE_SPACING:
        shrink = _THUMBNAIL_EYE_SPACING / spacing
        low = np.floor(source.min(axis=0) - 2.5 * spacing).clip(0)
        high = np.ceil(source.max(axis=0) + 2.5 * spacing)
        crop = image[int(low[1]) : int(high[1]), int(low[0]) : int(high[0])]
        size = (max(1, round(crop.shape[1] * shrink)), max(1, round(crop.shape[0] * shrink)))
        image = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        factor = np.asarray([size[0] / crop.shape[1], size[1] / crop.shape[0]])
        points = (points[:, :2] - low) * factor
        source = np.asarray((source - low) * factor, dtype=np.float32)
    matrix = cv2.getAffineTransform(source, _TARGET)
    # INTER_AREA when shrinking keeps fine lines (rims) as averages instead of aliasing them away.
    flags = cv2.INTER_AREA if spacing > _EYE_X[1] - _EYE_X[0] and not thumbnail else cv2.INTER_LINEAR
    canvas = cv2.warpAffine(image, matrix, (CANVAS_WIDTH, CANVAS_HEIGHT), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    mapped = np.asarray(points[:, :2] @ matrix[:, :2].T + matrix[:, 2], dtype=np.float64)
    return np.asarray(canvas, dtype=np.uint8), mapped


def _window(channel: npt.NDArray[Any], x: float, y: float, width: float, height: float) -> npt.NDArray[np.float32]:
    # Python's min and max on the rounded ints: np.clip on scalars cost 2 ms a face over the ~50 windows.
    left, top = min(max(round(x), 0), CANVAS_WIDTH - 2), min(max(round(y), 0), CANVAS_HEIGHT - 2)
    right = min(max(round(x + width), left + 2), CANVAS_WIDTH)
    bottom = min(max(round(y + height), top + 2), CANVAS_HEIGHT)
    return np.asarray(channel[top:bottom, left:right], dtype=np.float32)


def _stats(
    lab: npt.NDArray[np.float32],
    laplace: npt.NDArray[np.float32],
    box: tuple[float, float, float, float],
    skin: npt.NDArray[np.float64],
) -> list[float]:
    """A region's L, a, b means against the skin's, its L spread, and its texture (mean |Laplacian|)."""
    region = [_window(lab[:, :, channel], *box) for channel in range(3)]
    means = np.asarray([float(part.mean()) for part in region])
    return [
        *(float(value) for value in means - skin),
        float(region[0].std()),
        float(np.abs(_window(laplace, *box)).mean()),
    ]


@dataclass(frozen=True)
class _Canvas:
    """One canonical canvas and what every feature reads off it."""

    gray: npt.NDArray[np.uint8]
    lab: npt.NDArray[np.float32]
    laplace: npt.NDArray[np.float32]
    mapped: npt.NDArray[np.float64]
    skin: npt.NDArray[np.float64]
    """The cheeks' mean L, a, b."""
    skin_texture: float


# Skin: the upper cheeks, below the eyes and beside the nose (no lens, rarely any beard).
_CHEEKS = ((6.0, 44.0, 10.0, 8.0), (48.0, 44.0, 10.0, 8.0))


def _canvas(image: RGBImage, points: npt.NDArray[np.float64], *, thumbnail: bool) -> _Canvas:
    canvas, mapped = canonical(image, points, thumbnail=thumbnail)
    gray = np.asarray(cv2.cvtColor(canvas, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    lab = np.asarray(cv2.cvtColor(canvas, cv2.COLOR_RGB2LAB), dtype=np.float32)
    laplace = np.asarray(cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F), dtype=np.float32)
    skin = np.mean([[float(_window(lab[:, :, c], *box).mean()) for c in range(3)] for box in _CHEEKS], axis=0)
    skin_texture = float(np.mean([np.abs(_window(laplace, *box)).mean() for box in _CHEEKS]))
    return _Canvas(gray, lab, laplace, mapped, np.asarray(skin, dtype=np.float64), skin_texture)


def _eye_features(c: _Canvas) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    x, y, w, h = _EYE_BAND
    eye_hog = hog(c.gray[y : y + h, x : x + w])
    eyes = [(ex - 7.0, _EYE_Y - 4.0, 14.0, 8.0) for ex in _EYE_X]
    eye_stats = np.asarray([_stats(c.lab, c.laplace, box, c.skin) for box in eyes]).mean(axis=0)
    irises = [_window(c.lab[:, :, 0], c.mapped[i, 0] - 1.5, c.mapped[i, 1] - 1.5, 3.0, 3.0).mean() for i in _IRISES]
    brightest = [float(_window(c.lab[:, :, 0], *box).max()) for box in eyes]
    iris_contrast = float(np.mean([light - iris for light, iris in zip(brightest, irises, strict=True)]))
    bridge = _window(c.gray.astype(np.float32), 28.0, 24.0, 8.0, 10.0)
    bridge_edges = float(np.abs(np.diff(bridge, axis=0)).mean())
    lens_stats = [eye_stats[0], eye_stats[3], iris_contrast, eye_stats[4] - c.skin_texture]
    block = np.concatenate([eye_hog, eye_stats, [iris_contrast, bridge_edges, c.skin_texture]])
    return block.astype(np.float32), np.asarray(lens_stats, dtype=np.float32)


def _hair_features(c: _Canvas) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    # Below the face the canvas shows a collar, a neck or the background, whose edges read as a beard: the
    # lower-face HOG sees only the inside of the mesh's face outline, the rest painted the cheeks' gray.
    inside = np.zeros(c.gray.shape, dtype=np.uint8)
    cv2.fillConvexPoly(inside, cv2.convexHull(c.mapped[list(FACE_OUTLINE)].astype(np.int32)), 1)
    cheek_gray = float(np.mean([_window(c.gray, *box).mean() for box in _CHEEKS]))
    face_only = np.where(inside > 0, c.gray, np.uint8(np.clip(cheek_gray, 0, 255))).astype(np.uint8)
    x, y, w, h = _LOWER_FACE
    lower_hog = hog(face_only[y : y + h, x : x + w])
    x, y, w, h = _LIP_BAND
    lip_hog = hog(face_only[y : y + h, x : x + w])

    upper_lip_y = float(c.mapped[_UPPER_LIP, 1])
    subnasale_y = float(c.mapped[_SUBNASALE, 1])
    mustache_box = (24.0, min(subnasale_y, upper_lip_y), 16.0, max(2.0, abs(upper_lip_y - subnasale_y)))
    chin_top = float(c.mapped[_LOWER_LIP, 1]) + 1.0
    chin_box = (26.0, chin_top, 12.0, max(2.0, float(c.mapped[_CHIN, 1]) - chin_top - 1.0))
    jaws = [(8.0, 58.0, 10.0, 14.0), (46.0, 58.0, 10.0, 14.0)]
    # The same for the hair statistics: outside the outline counts as plain skin.
    lab_face = np.where(inside[:, :, None] > 0, c.lab, c.skin.astype(np.float32))
    laplace_face = np.where(inside > 0, c.laplace, np.float32(0.0))
    hair_stats = [
        *_stats(lab_face, laplace_face, mustache_box, c.skin),
        *_stats(lab_face, laplace_face, chin_box, c.skin),
        *np.asarray([_stats(lab_face, laplace_face, box, c.skin) for box in jaws]).mean(axis=0),
        c.skin_texture,
    ]
    return np.concatenate([lower_hog, hair_stats]).astype(np.float32), lip_hog


def features(image: RGBImage, points: npt.NDArray[np.float64]) -> Features:
    """Measure one face (points: its 478-point mesh in the photo's pixels)."""
    eyes, lenses = _eye_features(_canvas(image, points, thumbnail=False))
    hair, lip = _hair_features(_canvas(image, points, thumbnail=True))
    return Features(eyes=eyes, lenses=lenses, hair=hair, lip=lip)


@dataclass(frozen=True)
class _Linear:
    blocks: tuple[str, ...]
    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    coef: npt.NDArray[np.float64]
    intercept: float

    def probability(self, blocks: Mapping[str, npt.NDArray[np.float32]]) -> float:
        values = np.concatenate([np.asarray(blocks[name], dtype=np.float64) for name in self.blocks])
        score = float(((values - self.mean) / self.scale) @ self.coef)
        return 1.0 / (1.0 + float(np.exp(-np.clip(score + self.intercept, -50.0, 50.0))))


def _linear(spec: Mapping[str, Any]) -> _Linear:
    return _Linear(
        blocks=tuple(str(name) for name in spec["blocks"]),
        mean=np.asarray(spec["mean"], dtype=np.float64),
        scale=np.asarray(spec["scale"], dtype=np.float64),
        coef=np.asarray(spec["coef"], dtype=np.float64),
        intercept=float(spec["intercept"]),
    )


@cache
def _models() -> dict[str, _Linear]:
    specs = json.loads(MODEL_PATH.read_text())["models"]
    return {name: _linear(spec) for name, spec in specs.items()}


def probabilities(
    blocks: Mapping[str, npt.NDArray[np.float32]], models: Mapping[str, Any] | None = None
) -> dict[str, float]:
    """P(eyeglasses), P(sunglasses), P(beard), P(mustache) for one face's feature blocks.

    ``models`` (the model file's "models" table) replaces the installed coefficients, for the training script.
    Sunglasses are glasses too: a face the sunglasses model is surer of than the glasses model (whose training
    faces are mostly clear lenses) reads Eyeglasses at the sunglasses' probability.
    """
    linear = _models() if models is None else {name: _linear(spec) for name, spec in models.items()}
    sunglasses = linear["sunglasses"].probability(blocks)
    return {
        "eyeglasses": max(linear["eyeglasses"].probability(blocks), sunglasses),
        "sunglasses": sunglasses,
        "beard": linear["beard"].probability(blocks),
        "mustache": linear["mustache"].probability(blocks),
    }


def describe(image: RGBImage, points: npt.NDArray[np.float64]) -> dict[str, dict[str, Any]]:
    """Eyeglasses, Sunglasses, Beard and Mustache as FaceDetail members; Confidence is the model's probability
    of the reported Value, so a face near the boundary reads near 50."""
    measured = features(image, points)
    blocks = {"eyes": measured.eyes, "lenses": measured.lenses, "hair": measured.hair, "lip": measured.lip}
    result = {}
    for name, probability in probabilities(blocks).items():
        value = probability > 0.5
        confidence = probability if value else 1.0 - probability
        result[FIELDS[name]] = {"Value": value, "Confidence": round(100.0 * confidence, 4)}
    return result
