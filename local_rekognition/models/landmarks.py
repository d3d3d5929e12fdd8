"""Rekognition's landmark types for the points our models really locate.

Rekognition names left and right from the viewer's side: in its own responses ``eyeLeft`` has the smaller
X, so it is the subject's right eye. YuNet orders its points the same way (its "right eye" is the subject's
right, which lies on the image's left).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

YUNET_TYPES = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")
"""Rekognition types of YuNet's five points, in YuNet's order."""


def five_point_landmarks(points: npt.NDArray[np.float32]) -> dict[str, tuple[float, float]]:
    """Name YuNet's five points (5x2, pixels) with Rekognition's landmark types."""
    return {name: (float(x), float(y)) for name, (x, y) in zip(YUNET_TYPES, points, strict=True)}


def as_array(landmarks: Mapping[str, tuple[float, float]], names: tuple[str, ...]) -> npt.NDArray[np.float64]:
    """The named landmarks as an Nx2 float64 array, in the order given."""
    return np.asarray([landmarks[name] for name in names], dtype=np.float64)


# dlib's 5-point model: 0 and 1 are the outer and inner corners of the eye on the image's right, 2 and 3
# the outer and inner corners of the eye on the image's left, 4 the base of the nose (not Rekognition's
# "nose", which is the tip, so it is not reported).
DLIB_EYE_CORNER_TYPES = {0: "rightEyeRight", 1: "rightEyeLeft", 2: "leftEyeLeft", 3: "leftEyeRight"}


def eye_corner_landmarks(points: npt.NDArray[np.float64]) -> dict[str, tuple[float, float]]:
    """Name the eye corners of dlib's 5-point shape (5x2, pixels) with Rekognition's landmark types."""
    return {name: (float(points[i][0]), float(points[i][1])) for i, name in DLIB_EYE_CORNER_TYPES.items()}
