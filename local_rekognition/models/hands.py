"""Hands over a face: MediaPipe's palm detector and hand landmarker (mediapipe 0.10.21's wheel) on LiteRT.

The two graphs are the ones MediaPipe's hand tracking runs (``palm_detection_cpu.pbtxt``,
``hand_landmark_cpu.pbtxt``); the steps between them are re-written here: SSD anchors and their decoding, the
palm's rotated square, the 21 landmarks mapped back to the photo. Palms are looked for in a square twice the
face's box, not in the whole photo: at the detector's input a whole photo's hands are too small to find. The
palm detector alone calls some cheeks palms, so a palm counts only when the landmark model, run on it, agrees that
a hand is there.

The palm detector is fully convolutional but for the two upsampling sizes of its feature pyramid (24×24 and
12×12 at its 192-px input): those two constants are rescaled in memory (``palm_graph``) so that it runs at 160 px
in two thirds of the time. A square 2.0 face boxes wide at 160 px keeps a hand at the scale the 2.5-box square gave
it at 192 (80 against 77 px a face box). Measured on Biden's hand pasted over 136 faces at three heights (408
photos, bench/README.md): 197 hands found against 209 at 192 px and 2.5 boxes, the 12 lost all hands pasted low
over 45-px CelebA thumbnails (the palm below the chin, outside the smaller square); none lost on the 640-px photos;
no hand on the 160 bare faces either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import numpy.typing as npt

from local_rekognition.models import wheel_weights
from local_rekognition.models.engine import RGBImage
from local_rekognition.models.litert import TFLiteModel

PALM_INPUT_PX = 160
_PALM_NATIVE_PX = 192
HAND_INPUT_PX = 224
# Where palms are looked for: a square this many times the face box's longer side, centred on it.
SEARCH_SCALE = 2.0
# palm_detection_cpu.pbtxt: scores above 0.5 are palms, overlapping palms merge at IoU 0.3.
_PALM_SCORE = 0.5
_PALM_IOU = 0.3
# palm_detection_detection_to_roi.pbtxt: the hand's square is the palm box's longer side × 2.6, moved half a side
# towards the fingers, turned so that the wrist → middle-finger line points up.
_ROI_SCALE = 2.6
_ROI_SHIFT_Y = -0.5
_WRIST, _MIDDLE_FINGER = 0, 2
# Anchors: strides 8, 16, 16, 16, fixed size; cells of the three 16 px layers share a grid.
_ANCHOR_GRIDS = ((PALM_INPUT_PX // 8, 2), (PALM_INPUT_PX // 16, 6))
# The feature pyramid's two upsampling sizes, constant tensors of the graph (named by the Keras layers).
_UPSAMPLING_SIZES = ("up_sampling2d/mul", "up_sampling2d_1/mul")


@dataclass(frozen=True)
class Hand:
    """A hand the landmark model confirmed, in photo pixels."""

    landmarks: npt.NDArray[np.float64]
    """21×2: wrist, then four points per finger from thumb to little finger."""
    presence: float
    """0–1: the landmark model's belief that its crop holds a hand."""


def palm_graph(data: bytes, size: int) -> bytes:
    """The palm detector's graph with its upsampling sizes rescaled from its 192-px input to ``size``."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    edited = bytearray(data)
    found = 0
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        if not tensor.Name().decode().endswith(_UPSAMPLING_SIZES):
            continue
        buffer = model.Buffers(tensor.Buffer())
        start = buffer._tab.Vector(buffer._tab.Offset(4))  # the buffer's bytes, in place in the flatbuffer
        old = np.frombuffer(bytes(edited[start : start + 8]), dtype="<i4")
        if old.tolist() not in ([_PALM_NATIVE_PX // 8] * 2, [_PALM_NATIVE_PX // 16] * 2):
            raise ValueError(f"unexpected upsampling size {old.tolist()} in the palm detector")
        edited[start : start + 8] = (old * size // _PALM_NATIVE_PX).astype("<i4").tobytes()
        found += 1
    if found != len(_UPSAMPLING_SIZES):
        raise ValueError(f"palm detector: {found} upsampling sizes found, expected {len(_UPSAMPLING_SIZES)}")
    return bytes(edited)


@cache
def _palm_model() -> TFLiteModel:
    path = wheel_weights.path("palm_detection_full.tflite")
    content = palm_graph(path.read_bytes(), PALM_INPUT_PX)
    return TFLiteModel(path, content=content, input_shape=(1, PALM_INPUT_PX, PALM_INPUT_PX, 3))


@cache
def _hand_model() -> TFLiteModel:
    return TFLiteModel(wheel_weights.path("hand_landmark_full.tflite"))


@cache
def _anchors() -> npt.NDArray[np.float32]:
    centres = []
    for cells, per_cell in _ANCHOR_GRIDS:
        for y in range(cells):
            for x in range(cells):
                centres.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell)
    return np.asarray(centres, dtype=np.float32)


def _square(
    image: RGBImage, centre: tuple[float, float], side: float, angle_rad: float, size: int
) -> npt.NDArray[np.float64]:
    """The 2×3 map from the photo to a size×size crop of the square (centre, side) turned by angle_rad."""
    matrix = np.asarray(cv2.getRotationMatrix2D(centre, math.degrees(angle_rad), size / side), dtype=np.float64)
    matrix[:, 2] += size / 2 - np.asarray(centre, dtype=np.float64)
    return matrix


def _palms(image: RGBImage, box: tuple[float, float, float, float]) -> list[npt.NDArray[np.float64]]:
    """Palm detections near the face: each 1×(4 + 14) in photo pixels (box cx, cy, w, h, then 7 keypoints)."""
    x, y, width, height = box
    centre = (x + width / 2, y + height / 2)
    side = SEARCH_SCALE * max(width, height, 1.0)
    matrix = _square(image, centre, side, 0.0, PALM_INPUT_PX)
    crop = cv2.warpAffine(image, matrix, (PALM_INPUT_PX, PALM_INPUT_PX), flags=cv2.INTER_LINEAR)
    raw, logits = _palm_model().run((np.asarray(crop, dtype=np.float32) / np.float32(255.0))[None])
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1), -100.0, 100.0)))
    keep = np.flatnonzero(scores > _PALM_SCORE)
    if keep.size == 0:
        return []
    anchors = _anchors()[keep]
    values = np.asarray(raw.reshape(-1, 18)[keep], dtype=np.float64) / PALM_INPUT_PX
    values[:, 0::2] += anchors[:, :1]
    values[:, 1::2] += anchors[:, 1:]
    values[:, 2:4] -= anchors  # width and height are not offsets from the anchor
    corners = np.column_stack(
        [values[:, 0] - values[:, 2] / 2, values[:, 1] - values[:, 3] / 2, values[:, 2], values[:, 3]]
    )
    chosen = cv2.dnn.NMSBoxes(corners.tolist(), scores[keep].tolist(), _PALM_SCORE, _PALM_IOU)
    inverse = cv2.invertAffineTransform(matrix)
    palms = []
    for index in np.asarray(chosen).reshape(-1):
        crop_px = values[index] * PALM_INPUT_PX
        points = crop_px.reshape(-1, 2)
        photo = points @ inverse[:, :2].T + inverse[:, 2]
        scale = side / PALM_INPUT_PX
        palms.append(np.concatenate([photo[0], [crop_px[2] * scale, crop_px[3] * scale], photo[2:].reshape(-1)]))
    return palms


def _hand(image: RGBImage, palm: npt.NDArray[np.float64]) -> Hand:
    cx, cy, width, height = palm[:4]
    keypoints = palm[4:].reshape(-1, 2)
    wrist, finger = keypoints[_WRIST], keypoints[_MIDDLE_FINGER]
    # Turned so the fingers point up in the crop: 90° minus the wrist → finger direction (y grows downwards).
    rotation = math.pi / 2 - math.atan2(-(finger[1] - wrist[1]), finger[0] - wrist[0])
    rotation = rotation - 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
    shift_x = -height * _ROI_SHIFT_Y * math.sin(rotation)
    shift_y = height * _ROI_SHIFT_Y * math.cos(rotation)
    centre = (float(cx + shift_x), float(cy + shift_y))
    side = _ROI_SCALE * float(max(width, height))
    # Turning the crop by +rotation (getRotationMatrix2D's sense) stands the fingers up: on a photo turned by ±60°
    # the landmark model's presence was 0.997 this way and 0.89–0.99 the other.
    matrix = _square(image, centre, side, rotation, HAND_INPUT_PX)
    crop = cv2.warpAffine(image, matrix, (HAND_INPUT_PX, HAND_INPUT_PX), flags=cv2.INTER_LINEAR)
    outputs = _hand_model().run((np.asarray(crop, dtype=np.float32) / np.float32(255.0))[None])
    points = outputs[0].reshape(21, 3)[:, :2].astype(np.float64)
    inverse = cv2.invertAffineTransform(matrix)
    return Hand(landmarks=points @ inverse[:, :2].T + inverse[:, 2], presence=float(outputs[1].reshape(-1)[0]))


def hands_near(image: RGBImage, box: tuple[float, float, float, float]) -> list[Hand]:
    """Every hand the palm detector finds near the face box and the landmark model confirms, any presence."""
    return [_hand(image, palm) for palm in _palms(image, box)]
