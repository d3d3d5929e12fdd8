"""Smile, EyesOpen, MouthOpen and EyeDirection from the face mesh and MediaPipe's blendshape model.

The blendshape model turns 146 mesh points into 52 expression scores (0–1, ARKit's names), trained by MediaPipe
for exactly these movements: ``mouthSmile*`` for a smile, ``eyeBlink*`` for closed eyes. The mouth's opening and
the gaze are plain geometry on the mesh: the inner-lip gap over the mouth's width, and the iris centre's offset
from the middle of its eye.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from local_rekognition.models import wheel_weights
from local_rekognition.models.emotions import emotion_probabilities, emotions, face_chip
from local_rekognition.models.engine import RGBImage
from local_rekognition.models.judgement_fit import MOUTH_OPEN_WEIGHTS
from local_rekognition.models.litert import TFLiteModel
from local_rekognition.models.mesh import FaceMesh

# The 146 mesh points the blendshape model reads, in its order (MediaPipe's face_blendshapes_graph.cc).
BLENDSHAPE_POINTS = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80,
    81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152, 153,
    154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249,
    251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314,
    317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382,
    384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473,
    474, 475, 476, 477,
)  # fmt: skip
SMILE_MODEL = Path(__file__).resolve().parent / "smile_model.json"
"""The Smile classifier's coefficients, written by scripts/train_smile.py."""
# Output positions of the scores used here, among the model's 52 (same source).
_EYE_BLINK = (9, 10)
_MOUTH_SMILE = (44, 45)

# Smile and EyesOpen are decided at a score of 0.5, the model's own midpoint. On the shared photos smiling faces
# score 0.89–0.98 and neutral ones 0.01–0.14; open eyes blink 0.04–0.38.
_DECISION = 0.5
# The inner lips' gap is measured at five pairs of mesh points across the mouth (middle, and two either side).
_INNER_LIP_PAIRS = ((13, 14), (82, 87), (312, 317), (81, 178), (311, 402))
# Gaze from the iris offset: an eyeball of ~12 mm radius behind an eye opening ~30 mm wide, so an iris displaced by
# half the opening's width has turned asin(15/12) — past the limit, i.e. fully to the corner.
_EYE_HALF_WIDTH_OVER_RADIUS = 15.0 / 12.0


@cache
def _blendshapes() -> TFLiteModel:
    return TFLiteModel(wheel_weights.path("face_blendshapes.tflite"))


def blendshape_scores(points: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """The blendshape model's 52 scores (0–1) for a 478-point mesh in image pixels."""
    subset = np.ascontiguousarray(points[list(BLENDSHAPE_POINTS), :2], dtype=np.float32)[None]
    return _blendshapes().run(subset)[0].reshape(-1)


def _verdict(value: bool, score: float) -> dict[str, Any]:
    # Confidence in the reported Value: the score's distance to the side it came out on, as a percentage.
    confidence = score if value else 1.0 - score
    return {"Value": value, "Confidence": round(100.0 * min(1.0, max(0.0, confidence)), 4)}


@cache
def _smile_model() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SMILE_MODEL.read_text())
    return {key: np.asarray(spec[key], dtype=np.float64) for key in ("mean", "scale", "coef")} | {
        "intercept": float(spec["intercept"])
    }


def smile_features(scores: npt.NDArray[np.float32], raw_emotions: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """What the Smile classifier reads: the 52 blendshape scores, then the emotion network's 7 logits."""
    emotion = np.clip(np.asarray(raw_emotions, dtype=np.float64), 1e-6, 1.0 - 1e-6)
    return np.concatenate([np.asarray(scores, dtype=np.float64), np.log(emotion / (1.0 - emotion))])


def smile(scores: npt.NDArray[np.float32], raw_emotions: npt.NDArray[np.float32]) -> dict[str, Any]:
    """Rekognition's Smile: a logistic regression on the blendshapes and the emotion network (train_smile.py).

    The mouthSmile score alone at 0.5 agreed with 86.5 % of the development set; with the other blendshapes
    (cheeks, eyes squinting, lips apart) and the network's HAPPY and CALM it is 91.2 % (docs/face-details.md).
    """
    model = _smile_model()
    value = float(((smile_features(scores, raw_emotions) - model["mean"]) / model["scale"]) @ model["coef"])
    probability = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, value + model["intercept"]))))
    return _verdict(probability > _DECISION, probability)


def eyes_open(scores: npt.NDArray[np.float32]) -> dict[str, Any]:
    """Rekognition's EyesOpen from the mean of eyeBlinkLeft and eyeBlinkRight (closed at 0.5 and above)."""
    openness = 1.0 - float(np.mean(scores[list(_EYE_BLINK)]))
    return _verdict(openness > _DECISION, openness)


def mouth_gap_ratio(points: npt.NDArray[np.float64]) -> float:
    """The inner lips' mean gap (five point pairs across the mouth) over the mouth corners' distance."""
    width = float(np.linalg.norm(points[291, :2] - points[61, :2]))
    if not width:
        return 0.0
    gaps = [float(np.linalg.norm(points[upper, :2] - points[lower, :2])) for upper, lower in _INNER_LIP_PAIRS]
    return float(np.mean(gaps)) / width


def smile_score(scores: npt.NDArray[np.float32]) -> float:
    """The mean of the blendshape model's mouthSmileLeft and mouthSmileRight (0–1)."""
    return float(np.mean(scores[list(_MOUTH_SMILE)]))


def mouth_open_probability(gap_ratio: float, smile: float) -> float:
    """The calibrated probability that the lips are apart (judgement_fit.py's logistic on gap and smile)."""
    intercept, gap_weight, smile_weight = MOUTH_OPEN_WEIGHTS
    logit = intercept + gap_weight * gap_ratio + smile_weight * smile
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logit))))


def mouth_open(points: npt.NDArray[np.float64], scores: npt.NDArray[np.float32]) -> dict[str, Any]:
    """Rekognition's MouthOpen: the lips are apart, speaking, laughing or in a smile that shows the teeth.

    A smile's raised corners stretch the lips thin, so the same gap means more in a smile: both go into a logistic
    fitted on the development set, and Confidence is its probability (docs/face-judgement.md).
    """
    probability = mouth_open_probability(mouth_gap_ratio(points), smile_score(scores))
    return _verdict(probability >= _DECISION, probability)


def _iris_offsets(points: npt.NDArray[np.float64]) -> tuple[float, float]:
    """The irises' mean offset from their eyes' middles, in half eye widths: (towards image right, downwards)."""
    axis = points[263, :2] - points[33, :2]
    across = axis / (float(np.linalg.norm(axis)) or 1.0)
    down = np.asarray([-across[1], across[0]])
    offsets = []
    for outer, inner, upper, lower, iris in ((33, 133, 159, 145, 468), (362, 263, 386, 374, 473)):
        # Across: from the middle of the corners. Up and down: from the middle of the lids, since the corners sit
        # below an eye's centre (against the corners, eyes looking straight ahead read 7–14° up).
        corners = (points[outer, :2] + points[inner, :2]) / 2
        lids = (points[upper, :2] + points[lower, :2]) / 2
        half = float(np.linalg.norm(points[inner, :2] - points[outer, :2])) / 2 or 1.0
        offsets.append(
            (float((points[iris, :2] - corners) @ across) / half, float((points[iris, :2] - lids) @ down) / half)
        )
    horizontal, vertical = np.mean(np.asarray(offsets), axis=0)
    return float(horizontal), float(vertical)


def eye_direction(points: npt.NDArray[np.float64], presence: float) -> dict[str, float]:
    """Rekognition's EyeDirection (the eyes' turn in the head, degrees) from the iris offsets.

    Yaw > 0 when the eyes turn towards the image's left and Pitch > 0 when they look up, as for Pose.
    """
    horizontal, vertical = _iris_offsets(points)

    def degrees(offset: float) -> float:
        return math.degrees(math.asin(max(-1.0, min(1.0, offset * _EYE_HALF_WIDTH_OVER_RADIUS))))

    return {
        "Yaw": round(-degrees(horizontal), 4),
        "Pitch": round(-degrees(vertical), 4),
        "Confidence": round(100.0 * min(1.0, max(0.0, presence)), 4),
    }


SUPPORTED = frozenset({"EMOTIONS", "EYE_DIRECTION", "EYES_OPEN", "MOUTH_OPEN", "SMILE"})
"""Rekognition attribute names this module fills from the mesh."""


def describe(
    image: RGBImage, mesh: FaceMesh, requested: frozenset[str], gray: npt.NDArray[np.uint8] | None = None
) -> dict[str, Any]:
    """The FaceDetail members for the requested attributes that the mesh, blendshapes and emotion net give
    (``gray``: the photo already converted to gray, when the caller has it)."""
    requested = SUPPORTED if "ALL" in requested else requested & SUPPORTED
    result: dict[str, Any] = {}
    if requested & {"EMOTIONS", "SMILE", "EYES_OPEN", "MOUTH_OPEN"}:
        scores = blendshape_scores(mesh.points)
        raw = None
        if requested & {"EMOTIONS", "SMILE"}:
            raw = emotion_probabilities(face_chip(image if gray is None else gray, mesh.points))
        if "EMOTIONS" in requested:
            result["Emotions"] = emotions(image if gray is None else gray, mesh.points, smile_score(scores), raw)
        if "SMILE" in requested and raw is not None:
            result["Smile"] = smile(scores, raw)
        if "EYES_OPEN" in requested:
            result["EyesOpen"] = eyes_open(scores)
        if "MOUTH_OPEN" in requested:
            result["MouthOpen"] = mouth_open(mesh.points, scores)
    if "EYE_DIRECTION" in requested:
        result["EyeDirection"] = eye_direction(mesh.points, mesh.presence)
    return result
