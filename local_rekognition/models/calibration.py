"""Calibrated similarity: SFace cosine similarity mapped monotonically onto Rekognition's 0-100 scale.

The anchor is SFace's published operating point, not our photos: OpenCV's model zoo gives cosine 0.363 as
the same-person threshold of SFace on LFW (its accuracy benchmark, 6,000 pairs of 5,749 people). We map
that cosine to 80, Rekognition's default threshold, so "similarity ≥ 80" means what SFace's authors mean
by "same person". A logistic curve keeps the map monotonic and bounded: clearly different people
(cosine ≈ 0.1) land near 2, clearly the same person (cosine ≥ 0.55) above 99.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

SFACE_LFW_COSINE_THRESHOLD = 0.363
REKOGNITION_DEFAULT_THRESHOLD = 80.0
# Steepness of the logistic, per unit of cosine similarity.
_STEEPNESS = 20.0
# The centre c solves 100 / (1 + exp(-k (t - c))) = 80 at the published threshold t.
_CENTRE = (
    SFACE_LFW_COSINE_THRESHOLD
    - math.log(REKOGNITION_DEFAULT_THRESHOLD / (100.0 - REKOGNITION_DEFAULT_THRESHOLD)) / _STEEPNESS
)


def cosine(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """Cosine similarity of two embeddings (unit-norm or not)."""
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b)) / denominator if denominator else 0.0


def similarity_from_cosine(value: float) -> float:
    """Map an SFace cosine similarity to 0-100, with the published LFW threshold at exactly 80."""
    return 100.0 / (1.0 + math.exp(-_STEEPNESS * (value - _CENTRE)))
