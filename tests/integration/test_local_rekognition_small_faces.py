"""Small faces in a group photo through the real server: found, indexed at AUTO, searchable and comparable, and
every ALL response within botocore's output shapes.

Rekognition's own guidance: faces of 40×40 px in a 1920×1080 photo are found, and IndexFaces at QualityFilter
AUTO indexes frontal or moderately turned faces of that size.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps

from local_rekognition.models import load_engine
from testmedia.photos import astronaut, grace_hopper, shared_images
from testmedia.small_faces import Portrait, nearest, scenes, shared_portraits, wheel_portraits
from tests.botocore_shapes import assert_output_conforms

FACE_PX = 40


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def group_photo(portraits: list[np.ndarray], size: tuple[int, int] = (1920, 1080)) -> tuple[bytes, list[tuple]]:
    """JPEG bytes of ``size`` with each portrait's face shrunk to FACE_PX tall, and where each one went."""
    canvas = np.random.default_rng(0).integers(90, 160, size=(size[1], size[0], 3), dtype=np.uint8)
    places = []
    for index, image in enumerate(portraits):
        box = load_engine().analyze(image)[0].box
        cx, cy = box.left + box.width / 2, box.top + box.height / 2
        half = min(box.height, cx, cy, image.shape[1] - cx, image.shape[0] - cy)
        head = Image.fromarray(image[int(cy - half) : int(cy + half), int(cx - half) : int(cx + half)])
        side = round(2 * half * FACE_PX / box.height)
        small = np.asarray(head.resize((side, side), Image.Resampling.LANCZOS))
        x, y = 150 + 280 * index, 250 + 300 * (index % 2)
        canvas[y : y + side, x : x + side] = small
        places.append((x + side / 2, y + side / 2))
    out = io.BytesIO()
    Image.fromarray(canvas).save(out, "JPEG", quality=92)
    return out.getvalue(), places


def _wheel_portraits() -> list[np.ndarray]:
    hopper, collins = _rgb(grace_hopper()), _rgb(astronaut())
    return [hopper, collins, np.ascontiguousarray(hopper[:, ::-1]), np.ascontiguousarray(collins[:, ::-1])]


def _shared_portraits() -> list[np.ndarray]:
    # Frontal (obama.jpg, biden2.jpg) and turned by about 15-20° (obama1.jpg, obama2.jpg, two_people.jpg's Obama).
    names = ["obama.jpg", "obama1.jpg", "obama2.jpg", "biden2.jpg", "two_people.jpg"]
    return [_rgb(shared_images() / name) for name in names]


def _centres(details: list[dict[str, Any]], width: int, height: int) -> list[tuple[float, float]]:
    return [
        (
            (d["BoundingBox"]["Left"] + d["BoundingBox"]["Width"] / 2) * width,
            (d["BoundingBox"]["Top"] + d["BoundingBox"]["Height"] / 2) * height,
        )
        for d in details
    ]


@pytest.mark.parametrize("portraits", [_wheel_portraits, _shared_portraits], ids=["wheel", "shared"])
def test_40_px_faces_in_a_1080p_group_are_indexed_at_auto(
    rekognition: Any, portraits: Callable[[], list[np.ndarray]]
) -> None:
    # Given a 1920x1080 group photo of faces 40 px tall, frontal and turned
    faces = portraits()
    photo, places = group_photo(faces)
    full_size = [load_engine().analyze(face)[0].pose for face in faces]
    collection = f"small-faces-{uuid.uuid4().hex[:8]}"
    rekognition.create_collection(CollectionId=collection)
    try:
        # When it is indexed with the default QualityFilter (AUTO)
        result = rekognition.index_faces(CollectionId=collection, Image={"Bytes": photo}, DetectionAttributes=["ALL"])
        # Then every face is indexed, none left out as SMALL_BOUNDING_BOX or EXTREME_POSE
        reasons = [face["Reasons"] for face in result["UnindexedFaces"]]
        assert len(result["FaceRecords"]) == len(places), reasons
        details = [record["FaceDetail"] for record in result["FaceRecords"]]
        centres = _centres(details, 1920, 1080)
        for (x, y), expected in zip(places, full_size, strict=True):
            near = [d for d, (cx, cy) in zip(details, centres, strict=True) if abs(cx - x) < 20 and abs(cy - y) < 20]
            assert near, f"no face indexed at {x},{y}"
            # And its Pose reads as the full-size portrait's does, not the wild angles a 5-point fit gave such faces
            pose = near[0]["Pose"]
            assert abs(pose["Yaw"] - expected["Yaw"]) < 12, (pose, expected)
            assert abs(pose["Pitch"] - expected["Pitch"]) < 12, (pose, expected)
            assert abs(pose["Roll"] - expected["Roll"]) < 6, (pose, expected)
        # And a search with the group photo uses its largest face that passes AUTO, and finds it
        search = rekognition.search_faces_by_image(
            CollectionId=collection, Image={"Bytes": photo}, QualityFilter="AUTO"
        )
        assert search["FaceMatches"] and search["FaceMatches"][0]["Similarity"] > 80
        compared = rekognition.compare_faces(
            SourceImage={"Bytes": photo}, TargetImage={"Bytes": photo}, QualityFilter="AUTO"
        )
        assert len(compared["FaceMatches"]) + len(compared["UnmatchedFaces"]) == len(places)
        assert compared["FaceMatches"]
        operation = rekognition.meta.service_model.operation_model("IndexFaces")
        assert_output_conforms(operation, result)
    finally:
        rekognition.delete_collection(CollectionId=collection)


@pytest.mark.parametrize("photo", [grace_hopper, astronaut], ids=["hopper", "collins"])
def test_detect_faces_all_fits_the_service_model(rekognition: Any, photo: Callable[[], Path]) -> None:
    result = rekognition.detect_faces(Image={"Bytes": photo().read_bytes()}, Attributes=["ALL"])

    assert_output_conforms(rekognition.meta.service_model.operation_model("DetectFaces"), result)
    detail = result["FaceDetails"][0]
    assert len(detail["Landmarks"]) == 30
    assert {"Emotions", "Smile", "EyesOpen", "MouthOpen", "EyeDirection", "AgeRange", "Gender"} <= set(detail)
    assert {"Eyeglasses", "Sunglasses", "Beard", "Mustache", "FaceOccluded"} <= set(detail)


def _scene_portraits(kind: str) -> list[Portrait]:
    if kind == "wheel":
        return wheel_portraits()
    shared_images()  # skips on a clone without the shared photos (fails under CI=true)
    return wheel_portraits() + shared_portraits()


@pytest.mark.parametrize("kind", ["wheel", "shared"])
def test_small_faces_in_motion_are_indexed_and_match_across_photos(rekognition: Any, kind: str) -> None:
    # Given three photos (1.3-2 MP) in which the same people appear with faces 40-60 px wide, tilted, blurred by
    # focus and motion, and JPEG-compressed
    made = scenes(_scene_portraits(kind), kind)
    collection = f"small-scenes-{uuid.uuid4().hex[:8]}"
    rekognition.create_collection(CollectionId=collection)
    try:
        # When each photo is indexed with the default QualityFilter (AUTO)
        person_of: dict[str, str] = {}
        for scene in made:
            result = rekognition.index_faces(
                CollectionId=collection, Image={"Bytes": scene.jpeg}, ExternalImageId=scene.name
            )
            assert_output_conforms(rekognition.meta.service_model.operation_model("IndexFaces"), result)
            width, height = scene.size
            centres = _centres([record["FaceDetail"] for record in result["FaceRecords"]], width, height)
            placed = [nearest(scene.faces, centre) for centre in centres]
            # Then every face in it is indexed, and nothing that is not a face
            found = {face.portrait for face in placed if face is not None}
            assert found == {face.portrait for face in scene.faces}, (scene.name, result["UnindexedFaces"])
            assert None not in placed, scene.name
            for record, face in zip(result["FaceRecords"], placed, strict=True):
                assert face is not None
                person_of[record["Face"]["FaceId"]] = face.person
        # And each face finds, at Rekognition's default threshold of 80, exactly the same person's other faces
        search = rekognition.meta.service_model.operation_model("SearchFaces")
        for face_id, person in person_of.items():
            answer = rekognition.search_faces(
                CollectionId=collection, FaceId=face_id, FaceMatchThreshold=80, MaxFaces=100
            )
            assert_output_conforms(search, answer)
            matched = {match["Face"]["FaceId"]: match["Similarity"] for match in answer["FaceMatches"]}
            expected = {other for other, who in person_of.items() if who == person and other != face_id}
            others = {person_of[other]: similarity for other, similarity in matched.items() if other not in expected}
            assert not others, f"{person} matched other people at >= 80: {others}"
            missed = expected - matched.keys()
            assert not missed, f"{person}: {len(missed)} of {len(expected)} of their faces scored below 80"
    finally:
        rekognition.delete_collection(CollectionId=collection)
