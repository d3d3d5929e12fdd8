"""Image quality of a face (Brightness, Sharpness, 0-100), measured on the face's own pixels."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

# Sharpness is judged on the face resampled to this size, so that it measures detail relative to the
# face rather than the camera's resolution: a face of 40 px and a face of 400 px with equally crisp edges
# score alike, and a face blurred by motion or focus scores low at any size.
_FACE_SIZE = 112
# Variance of the Laplacian at which Sharpness reaches 63 (1 - 1/e). Crisp faces at 112 px measure
# several hundred; a Gaussian blur of sigma = 2 px brings the same faces down to about 10-30.
_SHARPNESS_SCALE = 150.0


def measure_quality(gray: npt.NDArray[np.uint8], box: tuple[float, float, float, float]) -> dict[str, float]:
    """Return {"Brightness", "Sharpness"} of the face in ``box`` (left, top, width, height), gray photo."""
    crop = _face_pixels(gray, box)
    if crop.size == 0:
        return {"Brightness": 0.0, "Sharpness": 0.0}
    brightness = 100.0 * float(crop.mean()) / 255.0
    face = cv2.resize(crop, (_FACE_SIZE, _FACE_SIZE), interpolation=cv2.INTER_AREA)
    variance = float(cv2.Laplacian(face, cv2.CV_64F).var())
    sharpness = 100.0 * (1.0 - math.exp(-variance / _SHARPNESS_SCALE))
    return {"Brightness": round(brightness, 4), "Sharpness": round(sharpness, 4)}


def _face_pixels(gray: npt.NDArray[np.uint8], box: tuple[float, ...]) -> npt.NDArray[np.uint8]:
    left, top, width, height = box
    x0, y0 = max(0, math.floor(left)), max(0, math.floor(top))
    x1 = min(gray.shape[1], math.ceil(left + width))
    y1 = min(gray.shape[0], math.ceil(top + height))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), np.uint8)
    return gray[y0:y1, x0:x1]
