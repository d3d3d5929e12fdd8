"""A face's Confidence on Rekognition's scale, from YuNet's score and the face mesh's own presence score.

YuNet's score alone does not separate faces from non-faces: clear frontal faces score 0.93–0.95, a fist and a
blurred background patch 0.76, a face blurred past recognition 0.83–0.86. The landmark model that runs on every face
anyway answers a sharper question, "is there a face in this crop?": its presence logit is above +8 on every clear
face of the shared photos and the wheel portraits, and below −3 on every non-face YuNet found at scores down to
0.3. But it also drops on faces behind dark sunglasses, a hand or a microphone (−14 to −2 on 7 of 1,098 development
and age-set faces, docs/face-judgement.md), where YuNet still scores 0.875–0.94.

So either model's belief is enough: Confidence is the noisy-OR of the mesh's presence probability and a logistic of
YuNet's score centred at 0.87 (between the highest non-face, 0.86, and the lowest occluded face, 0.875). A clear
face reads above 99 as Rekognition's do, an occluded or doubtful one in between, a crop with no face in it near 0.
"""

from __future__ import annotations

import math

MIN_FACE_CONFIDENCE = 50.0
"""Faces below this are not returned: the two models together think it likelier than not that there is none."""

_DETECTOR_CENTRE = 0.87
# Per unit of YuNet score: 0.94 (a clear face) alone reads 89 %, 0.76 (the fist) 3.6 %.
_DETECTOR_STEEPNESS = 30.0


def _sigmoid(logit: float) -> float:
    # Clamped so that exp() stays finite; a logit of 30 is certainty already.
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logit))))


def face_confidence(detector_score: float, presence_logit: float) -> float:
    """Rekognition's face Confidence (0–100) from YuNet's score (0–1) and the mesh's presence logit."""
    mesh = _sigmoid(presence_logit)
    detector = _sigmoid(_DETECTOR_STEEPNESS * (detector_score - _DETECTOR_CENTRE))
    return 100.0 * (1.0 - (1.0 - mesh) * (1.0 - detector))
