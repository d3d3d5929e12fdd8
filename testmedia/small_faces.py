"""Scenes of small faces made from real portraits: each face shrunk to 40-60 px wide and pasted into a larger photo,
with the blur, roll and JPEG loss of a snapshot, so that the same people appear small in several photos.

The portraits are the shared photos (when present) and the two that wheels carry; nothing here is a held-out photo.
Used by tests/integration/test_local_rekognition_small_faces.py and bench/local_rekognition_models.py.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFilter, ImageOps

from local_rekognition.models.detector import detect_faces
from testmedia.photos import SHARED_IMAGES, astronaut, grace_hopper

# The head is cut as a square this many face-box heights wide, so hair and neck come along and the detector sees a
# face in its context, not a tight crop.
_HEAD_SPAN = 2.4


@dataclass(frozen=True)
class Portrait:
    """One person's photo and who it shows."""

    name: str
    person: str
    image: np.ndarray
    """H×W×3 uint8 RGB."""


@dataclass(frozen=True)
class Condition:
    """How one scene is made: its size, each face's width, and the camera's losses."""

    size: tuple[int, int]
    """(width, height) of the scene."""
    face_px: Sequence[int]
    """Face box width per portrait, cycled."""
    blur_sigma: float
    """Gaussian blur of the whole scene: focus and the lens."""
    motion_px: int
    """Length of a straight motion-blur streak over the whole scene (0: none): a subject or a camera moving."""
    motion_deg: float
    roll_deg: float
    """Alternating ±roll per face."""
    jpeg_quality: int


@dataclass(frozen=True)
class PlacedFace:
    """Where a portrait's face went in a scene, in scene pixels."""

    person: str
    portrait: str
    centre: tuple[float, float]
    width_px: float


@dataclass(frozen=True)
class Scene:
    """A JPEG photo and the faces placed in it."""

    name: str
    jpeg: bytes
    size: tuple[int, int]
    faces: list[PlacedFace]


# Motion streaks of 4-6 px are a tenth of these faces' width: someone walking past at 1/60 s. Longer streaks (7 px
# and more on a 40 px face) smear the face beyond what the face mesh can fit (bench/README.md, small faces).
CONDITIONS: tuple[Condition, ...] = (
    # 1920×1080 with faces at Rekognition's smallest (40 px) and a little above, light blur, people moving.
    Condition((1920, 1080), (40, 46, 52), blur_sigma=0.6, motion_px=5, motion_deg=20, roll_deg=0, jpeg_quality=80),
    # 1.3 MP, heads tilted, softer focus and stronger compression: a phone snapshot.
    Condition((1400, 933), (48, 56, 44), blur_sigma=0.6, motion_px=4, motion_deg=60, roll_deg=12, jpeg_quality=70),
    # 2 MP, larger faces, crisp but heavily compressed, a longer streak.
    Condition((1600, 1200), (60, 50, 42), blur_sigma=0.3, motion_px=6, motion_deg=100, roll_deg=6, jpeg_quality=60),
)


# Past what the tests ask: streaks of 7-9 px across faces of 36-44 px and heavy compression. The bench reports these
# to show where recognition gives out; no test expects them to match.
HARSH_CONDITIONS: tuple[Condition, ...] = (
    Condition((1920, 1080), (36, 40, 44), blur_sigma=0.6, motion_px=7, motion_deg=30, roll_deg=0, jpeg_quality=55),
    Condition((1400, 933), (40, 44, 36), blur_sigma=0.8, motion_px=8, motion_deg=75, roll_deg=12, jpeg_quality=60),
    Condition((1600, 1200), (44, 40, 36), blur_sigma=0.4, motion_px=9, motion_deg=120, roll_deg=6, jpeg_quality=50),
)


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def wheel_portraits() -> list[Portrait]:
    """Grace Hopper (matplotlib) and Eileen Collins (scikit-image), and each mirrored: a second pose of each."""
    hopper, collins = _rgb(grace_hopper()), _rgb(astronaut())
    return [
        Portrait("grace_hopper.jpg", "hopper", hopper),
        Portrait("astronaut.png", "collins", collins),
        Portrait("grace_hopper.jpg mirrored", "hopper", np.ascontiguousarray(hopper[:, ::-1])),
        Portrait("astronaut.png mirrored", "collins", np.ascontiguousarray(collins[:, ::-1])),
    ]


# Frontal (obama.jpg, biden2.jpg), turned by about 15-20° (obama1.jpg, obama2.jpg) and full-body (biden.jpg).
SHARED_PORTRAITS = {
    "obama.jpg": "obama",
    "obama1.jpg": "obama",
    "obama2.jpg": "obama",
    "biden2.jpg": "biden",
    "biden.jpg": "biden",
}


def shared_portraits(root: Path = SHARED_IMAGES) -> list[Portrait]:
    """The one-person shared photos of Obama and Biden (see ../shared/images/SOURCES.md)."""
    return [Portrait(name, person, _rgb(root / name)) for name, person in SHARED_PORTRAITS.items()]


def _head(image: np.ndarray) -> tuple[np.ndarray, float]:
    """A square around the portrait's largest face, and that face's box width as a fraction of the square."""
    face = detect_faces(np.ascontiguousarray(image[:, :, ::-1]))[0]
    left, top, width, height = face.box
    half = _HEAD_SPAN * height / 2
    pad = int(half) + 2
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    x0, y0 = round(left + width / 2 - half) + pad, round(top + height / 2 - half) + pad
    side = round(2 * half)
    return padded[y0 : y0 + side, x0 : x0 + side], width / side


def _background(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    # Smooth blotches plus grain: something for JPEG to spend bits on, and no face-like structure.
    width, height = size
    coarse = rng.integers(50, 210, size=(height // 48 + 1, width // 48 + 1, 3), dtype=np.uint8)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    return np.asarray((smooth + rng.integers(-10, 11, size=smooth.shape)).clip(0, 255), dtype=np.uint8)


def _streak(image: np.ndarray, length: int, degrees: float) -> np.ndarray:
    line = np.zeros((length, length), np.float32)
    line[length // 2, :] = 1.0
    centre = ((length - 1) / 2, (length - 1) / 2)
    kernel = np.asarray(cv2.warpAffine(line, cv2.getRotationMatrix2D(centre, degrees, 1.0), (length, length)))
    blurred = np.asarray(cv2.filter2D(image.astype(np.float32), -1, kernel / kernel.sum()))
    return np.asarray(blurred.clip(0, 255), dtype=np.uint8)


def make_scene(name: str, portraits: Sequence[Portrait], condition: Condition, seed: int) -> Scene:
    """Paste every portrait's face, at the condition's widths, side by side into one scene."""
    rng = np.random.default_rng(seed)
    canvas = _background(condition.size, rng)
    width, height = condition.size
    placed: list[PlacedFace] = []
    columns = -(-len(portraits) // 2)
    for index, portrait in enumerate(portraits):
        head, fraction = _head(portrait.image)
        face_px = condition.face_px[index % len(condition.face_px)]
        side = round(face_px / fraction)
        small = cv2.resize(head, (side, side), interpolation=cv2.INTER_AREA)
        if condition.roll_deg:
            angle = condition.roll_deg if index % 2 else -condition.roll_deg
            turn = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
            small = cv2.warpAffine(small, turn, (side, side), borderMode=cv2.BORDER_REFLECT)
        # Two rows, the second shifted half a column, so that neighbouring heads never overlap.
        row, column = index % 2, index // 2
        x = min(width - side, max(0, round((column + 0.25 + 0.5 * row) * width / columns - side / 2)))
        y = min(height - side, max(0, round(height * (0.3 + 0.4 * row) - side / 2)))
        canvas[y : y + side, x : x + side] = small
        placed.append(PlacedFace(portrait.person, portrait.name, (x + side / 2, y + side / 2), float(face_px)))
    if condition.motion_px:
        canvas = _streak(canvas, condition.motion_px, condition.motion_deg)
    picture = Image.fromarray(canvas)
    if condition.blur_sigma:
        picture = picture.filter(ImageFilter.GaussianBlur(condition.blur_sigma))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=condition.jpeg_quality)
    return Scene(name, out.getvalue(), condition.size, placed)


def scenes(portraits: Sequence[Portrait], prefix: str, conditions: Sequence[Condition] = CONDITIONS) -> list[Scene]:
    """One scene per condition, the portraits in a different order in each."""
    made = []
    for index, condition in enumerate(conditions):
        order = list(portraits)
        np.random.default_rng(index).shuffle(order)
        made.append(make_scene(f"{prefix}-{index}", order, condition, seed=index))
    return made


def nearest(faces: Sequence[PlacedFace], centre: tuple[float, float], tolerance_px: float = 20.0) -> PlacedFace | None:
    """The placed face whose centre is within ``tolerance_px`` of ``centre``, if any."""
    best = min(faces, key=lambda face: (face.centre[0] - centre[0]) ** 2 + (face.centre[1] - centre[1]) ** 2)
    dx, dy = best.centre[0] - centre[0], best.centre[1] - centre[1]
    return best if abs(dx) <= tolerance_px and abs(dy) <= tolerance_px else None
