"""appearance.hog is Dalal and Triggs' descriptor: checked against a pixel-by-pixel reference written out here."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from local_rekognition.models.appearance import hog


def reference_hog(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Central differences, 9 unsigned bins with linear votes, 8-px cells, 2x2-cell blocks L2-normalised."""
    values = gray.astype(np.float64)
    height, width = values.shape
    rows, cols = height // 8, width // 8
    cells = np.zeros((rows, cols, 9))
    for y in range(rows * 8):
        for x in range(cols * 8):
            # ksize=1 Sobel: the neighbours' difference, the border reflected as OpenCV does (BORDER_REFLECT_101).
            left, right = values[y, abs(x - 1)], values[y, x + 1 if x + 1 < width else width - 2]
            up, down = values[abs(y - 1), x], values[y + 1 if y + 1 < height else height - 2, x]
            gx, gy = right - left, down - up
            position = (math.degrees(math.atan2(gy, gx)) % 180.0) / 20.0 - 0.5
            low = math.floor(position)
            share = position - low
            magnitude = math.hypot(gx, gy)
            cells[y // 8, x // 8, low % 9] += magnitude * (1.0 - share)
            cells[y // 8, x // 8, (low + 1) % 9] += magnitude * share
    blocks = [cells[y : y + 2, x : x + 2].reshape(-1) for y in range(rows - 1) for x in range(cols - 1)]
    return np.concatenate([block / math.sqrt((block**2).sum() + 1e-6) for block in blocks])


@pytest.mark.parametrize("shape", [(24, 56), (40, 40), (30, 45)])
def test_hog_matches_the_reference(shape: tuple[int, int]) -> None:
    gray = np.random.default_rng(sum(shape)).integers(0, 256, shape).astype(np.uint8)
    np.testing.assert_allclose(hog(gray), reference_hog(gray), atol=1e-5)
