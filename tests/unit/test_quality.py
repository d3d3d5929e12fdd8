"""Face quality measurements on a real portrait, degraded in known ways."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from local_rekognition.models.quality import measure_quality
from testmedia.photos import grace_hopper

# Grace Hopper's face in the matplotlib sample portrait (512x600), found by YuNet.
FACE = (183.0, 120.0, 170.0, 213.0)


def _gray() -> np.ndarray:
    with Image.open(grace_hopper()) as image:
        return np.asarray(image.convert("L"))


def test_blur_lowers_sharpness_and_sharp_faces_score_high() -> None:
    gray = _gray()

    sharp = measure_quality(gray, FACE)["Sharpness"]
    blurred = measure_quality(cv2.GaussianBlur(gray, (0, 0), 3), FACE)["Sharpness"]

    assert sharp > 60
    assert blurred < sharp / 2


def test_brightness_follows_the_face_pixels() -> None:
    gray = _gray()

    normal = measure_quality(gray, FACE)["Brightness"]
    dark = measure_quality((gray // 3).astype(np.uint8), FACE)["Brightness"]

    assert 0 < dark < normal < 100


def test_a_box_outside_the_photo_scores_zero() -> None:
    assert measure_quality(_gray(), (-500.0, -500.0, 100.0, 100.0)) == {"Brightness": 0.0, "Sharpness": 0.0}
