"""The contract between the HTTP server and the face models behind it.

The server decodes and validates images and speaks the wire protocol; an engine only sees pixels.
Everything here is in the image's pixel space; the server turns it into Rekognition's ratios.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

RGBImage = npt.NDArray[np.uint8]
"""An H×W×3 uint8 RGB array, EXIF orientation already applied."""

Embedding = npt.NDArray[np.float32]
"""A unit-norm float32 face embedding."""


@dataclass(frozen=True)
class Box:
    """A face box in pixels; it may extend past the image's edges."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class DetectedFace:
    """One face found by an engine, with what was asked of it."""

    box: Box
    confidence: float
    """0–100."""
    landmarks: Mapping[str, tuple[float, float]]
    """Rekognition landmark Type (e.g. "eyeLeft") → (x, y) in pixels. Only types a model really locates."""
    pose: Mapping[str, float]
    """{"Roll", "Yaw", "Pitch"} in degrees, each within −180..180."""
    quality: Mapping[str, float]
    """{"Brightness", "Sharpness"}, each 0–100."""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """FaceDetail members beyond DEFAULT, already in Rekognition's wire shape, e.g.
    {"AgeRange": {"Low": 30, "High": 41}, "Smile": {"Value": True, "Confidence": 93.1}}. Filled only for the
    requested attributes, and only for fields a real model or a validated measurement supports."""
    embedding: Embedding | None = None
    """Filled when the caller asked for embeddings (comparisons, collections)."""


class FaceEngine(Protocol):
    """Detects faces and measures them. Must be safe to call from several threads at once."""

    face_model_version: str

    def analyze(
        self,
        image: RGBImage,
        *,
        attributes: frozenset[str] = frozenset(),
        want_embeddings: bool = False,
        max_faces: int = 100,
    ) -> list[DetectedFace]:
        """Return up to ``max_faces`` faces, largest first.

        ``attributes`` holds Rekognition attribute names (AGE_RANGE, BEARD, EMOTIONS, EYE_DIRECTION, EYEGLASSES,
        EYES_OPEN, GENDER, MOUTH_OPEN, MUSTACHE, FACE_OCCLUDED, SMILE, SUNGLASSES); empty means DEFAULT only.
        """
        ...

    def similarity(self, a: Embedding, b: Embedding) -> float:
        """Return a calibrated similarity 0–100: same person above 80, different people below."""
        ...
