"""The cosine -> 0-100 similarity map: anchored at SFace's published threshold, monotonic, bounded."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_rekognition.models.calibration import (
    SFACE_LFW_COSINE_THRESHOLD,
    cosine,
    similarity_from_cosine,
)


def test_the_published_threshold_maps_to_rekognitions_default_80() -> None:
    assert similarity_from_cosine(SFACE_LFW_COSINE_THRESHOLD) == pytest.approx(80.0)


@given(st.floats(-1, 1), st.floats(-1, 1))
def test_the_map_is_monotonic_and_within_0_100(a: float, b: float) -> None:
    low, high = sorted((a, b))

    assert 0.0 <= similarity_from_cosine(low) <= similarity_from_cosine(high) <= 100.0


def test_clearly_different_and_clearly_same_land_far_from_the_threshold() -> None:
    assert similarity_from_cosine(0.1) < 5
    assert similarity_from_cosine(0.6) > 99


def test_cosine_ignores_length_and_handles_zero() -> None:
    a = np.array([3.0, 4.0], dtype=np.float32)

    assert cosine(a, 2 * a) == pytest.approx(1.0)
    assert cosine(a, np.zeros(2, dtype=np.float32)) == 0.0
