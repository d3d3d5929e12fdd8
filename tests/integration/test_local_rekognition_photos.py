"""The shared photo set through the real server: faces found, and CompareFaces' verdicts at threshold 80.

These depend on the face models' calibration as much as on the server: a failure here is a finding to report
to the models' owner, not a threshold to loosen.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from testmedia.photos import shared_images

OBAMA = ["obama.jpg", "obama1.jpg", "obama2.jpg", "obama3.jpg", "obama-240p.jpg", "obama-1080p.jpg"]
BIDEN = ["biden.jpg", "biden2.jpg"]
EVERY_PHOTO = [*OBAMA, *BIDEN, "obama_partial_face.jpg", "two_people.jpg", "obama_and_biden.jpg", "32bit.png"]


def image(name: str) -> dict[str, bytes]:
    path: Path = shared_images() / name
    return {"Bytes": path.read_bytes()}


def best_similarity(rekognition: Any, source: str, target: str) -> float:
    """The highest similarity CompareFaces reports between the two photos' faces (0 when none)."""
    result = rekognition.compare_faces(SourceImage=image(source), TargetImage=image(target), SimilarityThreshold=0)
    return max((match["Similarity"] for match in result["FaceMatches"]), default=0.0)


@pytest.mark.parametrize("name", EVERY_PHOTO)
def test_every_photo_has_a_face(rekognition: Any, name: str) -> None:
    assert len(rekognition.detect_faces(Image=image(name))["FaceDetails"]) >= 1


def test_two_people_has_two_faces(rekognition: Any) -> None:
    assert len(rekognition.detect_faces(Image=image("two_people.jpg"))["FaceDetails"]) == 2


@pytest.mark.parametrize(("source", "target"), [*combinations(OBAMA, 2), tuple(BIDEN)])
def test_the_same_person_reaches_80(rekognition: Any, source: str, target: str) -> None:
    assert best_similarity(rekognition, source, target) >= 80


@pytest.mark.parametrize(("source", "target"), [(o, b) for o in OBAMA for b in BIDEN])
def test_different_people_stay_below_80(rekognition: Any, source: str, target: str) -> None:
    assert best_similarity(rekognition, source, target) < 80


def test_compare_faces_picks_each_person_out_of_a_pair(rekognition: Any) -> None:
    for source in ("obama.jpg", "biden2.jpg"):
        result = rekognition.compare_faces(SourceImage=image(source), TargetImage=image("two_people.jpg"))
        assert len(result["FaceMatches"]) == 1 and len(result["UnmatchedFaces"]) == 1


def test_search_finds_the_person_among_indexed_photos(rekognition: Any) -> None:
    collection = "shared-photos-search"
    rekognition.create_collection(CollectionId=collection)
    try:
        for name in ("obama.jpg", "biden2.jpg"):
            rekognition.index_faces(CollectionId=collection, Image=image(name), ExternalImageId=name)
        for query, expected in (("obama1.jpg", "obama.jpg"), ("biden.jpg", "biden2.jpg")):
            matches = rekognition.search_faces_by_image(CollectionId=collection, Image=image(query))["FaceMatches"]
            assert [match["Face"]["ExternalImageId"] for match in matches] == [expected]
    finally:
        rekognition.delete_collection(CollectionId=collection)
