"""Where the tests and the benchmarks find real face photos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


def grace_hopper() -> Path:
    """A public-domain portrait (one face) that ships inside matplotlib's wheel."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def astronaut() -> Path:
    """A public-domain portrait (Eileen Collins, NASA; one smiling face) that ships inside scikit-image's wheel."""
    import skimage

    return Path(skimage.__file__).resolve().parent / "data" / "astronaut.png"


def shared_images() -> Path:
    """The project's shared photo set; skips the test on a user's clone, where it does not exist."""
    if not SHARED_IMAGES.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have the shared photos at {SHARED_IMAGES}")
        pytest.skip(f"shared photos not present at {SHARED_IMAGES}")
    return SHARED_IMAGES
