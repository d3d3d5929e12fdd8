"""The FaceDetail fields beyond DEFAULT on real photos, against labels a person gave by eye.

Labels live in tests/data/face_labels.toml, with the unsure ones said so and left unasserted. The wheel portraits
run on every clone; the shared photos where ../shared is present (and must be under CI).
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from local_rekognition.faces import ATTRIBUTE_MEMBERS
from local_rekognition.models import load_engine
from local_rekognition.models.emotions import CLASSES, NO_CLASS
from local_rekognition.models.engine import DetectedFace
from local_rekognition.validation import service_model
from testmedia.photos import astronaut, grace_hopper, shared_images

ALL = frozenset(ATTRIBUTE_MEMBERS)
LABELS: dict[str, dict[str, dict[str, Any]]] = tomllib.loads(
    (Path(__file__).resolve().parents[1] / "data" / "face_labels.toml").read_text()
)
WHEEL = {"grace_hopper.jpg": grace_hopper, "astronaut.png": astronaut}
PHOTOS = [("wheel", name) for name in LABELS["wheel"]] + [("shared", name) for name in LABELS["shared"]]


def _path(where: str, name: str) -> Path:
    return WHEEL[name]() if where == "wheel" else shared_images() / name


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(image).convert("RGB")))


@cache
def _largest(where: str, name: str) -> DetectedFace:
    return load_engine().analyze(_rgb(_path(where, name)), attributes=ALL)[0]


def _labelled(field: str, value: bool) -> list[tuple[str, str]]:
    return [(where, name) for where, name in PHOTOS if LABELS[where][name][field] is value]


@pytest.mark.parametrize(("where", "name"), _labelled("smiling", True))
def test_smiling_faces_read_happy_first_and_smile_true(where: str, name: str) -> None:
    face = _largest(where, name)

    assert face.attributes["Emotions"][0]["Type"] == "HAPPY"
    assert face.attributes["Smile"]["Value"] is True


@pytest.mark.parametrize(("where", "name"), _labelled("smiling", False))
def test_unsmiling_faces_read_smile_false(where: str, name: str) -> None:
    assert _largest(where, name).attributes["Smile"]["Value"] is False


@pytest.mark.parametrize(("where", "name"), _labelled("mouth_open", True))
def test_open_mouths_read_mouth_open(where: str, name: str) -> None:
    assert _largest(where, name).attributes["MouthOpen"]["Value"] is True


@pytest.mark.parametrize(("where", "name"), _labelled("mouth_open", False))
def test_closed_mouths_read_mouth_closed(where: str, name: str) -> None:
    assert _largest(where, name).attributes["MouthOpen"]["Value"] is False


@pytest.mark.parametrize(("where", "name"), _labelled("eyes_open", True))
def test_open_eyes_read_eyes_open(where: str, name: str) -> None:
    assert _largest(where, name).attributes["EyesOpen"]["Value"] is True


@pytest.mark.parametrize(("where", "name"), PHOTOS)
def test_emotions_are_the_eight_types_sorted_and_landmarks_the_thirty(where: str, name: str) -> None:
    face = _largest(where, name)

    emotions = face.attributes["Emotions"]
    assert (
        {item["Type"] for item in emotions}
        == set(CLASSES) | set(NO_CLASS)
        == set(service_model().shape_for("EmotionName").enum) - {"UNKNOWN"}
    )
    confidences = [item["Confidence"] for item in emotions]
    assert confidences == sorted(confidences, reverse=True)
    assert sum(confidences) == pytest.approx(100.0, abs=0.01)
    assert set(face.landmarks) == set(service_model().shape_for("LandmarkType").enum)
    box = face.box
    for kind, (x, y) in face.landmarks.items():
        # Inside the box or near it: the jaw and chin may reach past YuNet's box by a fifth of it.
        assert box.left - 0.25 * box.width <= x <= box.left + 1.25 * box.width, kind
        assert box.top - 0.25 * box.height <= y <= box.top + 1.25 * box.height, kind


_OPPOSITE = {"Left": "Right", "Right": "Left", "left": "right", "right": "left"}


def _mirrored_name(kind: str) -> str:
    """The landmark type that names a point's mirror image: every left becomes right and back."""
    return re.sub(r"[Ll]eft|[Rr]ight", lambda match: _OPPOSITE[match.group()], kind)


def test_mirror_names_are_an_involution_over_the_thirty_types() -> None:
    types = set(service_model().shape_for("LandmarkType").enum)

    assert {_mirrored_name(kind) for kind in types} == types
    assert _mirrored_name("leftEyeBrowRight") == "rightEyeBrowLeft"
    assert _mirrored_name("upperJawlineLeft") == "upperJawlineRight"


@pytest.mark.parametrize("name", ["obama2.jpg", "obama1.jpg"])
def test_mirroring_flips_yaw_roll_and_gaze_and_swaps_landmark_names(name: str) -> None:
    # Given a photo whose subject turns and looks to one side, and the same photo mirrored
    image = _rgb(shared_images() / name)
    width = image.shape[1]
    face = load_engine().analyze(image, attributes=ALL)[0]
    mirrored = load_engine().analyze(np.ascontiguousarray(image[:, ::-1]), attributes=ALL)[0]

    # Then Yaw, Roll and the gaze's Yaw change sign, Pitch stays
    assert abs(face.pose["Yaw"]) > 10 and mirrored.pose["Yaw"] == pytest.approx(-face.pose["Yaw"], abs=4)
    assert mirrored.pose["Roll"] == pytest.approx(-face.pose["Roll"], abs=3)
    assert mirrored.pose["Pitch"] == pytest.approx(face.pose["Pitch"], abs=3)
    gaze, flipped_gaze = face.attributes["EyeDirection"]["Yaw"], mirrored.attributes["EyeDirection"]["Yaw"]
    assert abs(gaze) > 5 and np.sign(flipped_gaze) == -np.sign(gaze)
    # And each landmark reappears, mirrored, under its opposite name
    tolerance = 0.05 * face.box.width
    for kind, (x, y) in face.landmarks.items():
        mx, my = mirrored.landmarks[_mirrored_name(kind)]
        assert abs((width - 1 - mx) - x) < tolerance and abs(my - y) < tolerance, kind


@pytest.mark.parametrize("degrees", [-30, -15, 15, 30])
def test_rotating_a_photo_shifts_roll_by_the_angle(degrees: int) -> None:
    image = _rgb(grace_hopper())
    height, width = image.shape[:2]
    upright = load_engine().analyze(image)[0].pose["Roll"]
    # cv2 turns the photo counter-clockwise for positive angles: the face then tilts anticlockwise on screen.
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    turned = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)

    roll = load_engine().analyze(np.ascontiguousarray(turned))[0].pose["Roll"]

    assert roll - upright == pytest.approx(-degrees, abs=5)


def test_the_mesh_models_give_the_same_answer_from_several_threads() -> None:
    # LiteRT interpreters keep their tensors between calls: each thread must get its own.
    from concurrent.futures import ThreadPoolExecutor

    images = [_rgb(grace_hopper()), _rgb(astronaut())]
    expected = [load_engine().analyze(image, attributes=ALL) for image in images]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: load_engine().analyze(images[i % 2], attributes=ALL), range(8)))

    for index, faces in enumerate(results):
        reference = expected[index % 2]
        assert [face.attributes for face in faces] == [face.attributes for face in reference]
        assert [face.landmarks for face in faces] == [face.landmarks for face in reference]
