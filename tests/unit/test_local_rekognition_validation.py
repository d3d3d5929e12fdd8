"""Request validation against botocore's Rekognition model, as AWS's front end does it."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_rekognition.errors import Serialization, UnknownOperation, Validation
from local_rekognition.validation import validate_input

IMAGE = {"Bytes": "aGVsbG8="}


def test_a_valid_request_passes() -> None:
    validate_input(
        "IndexFaces",
        {
            "CollectionId": "photos.2024_v-1",
            "Image": IMAGE,
            "ExternalImageId": "user:42.jpg",
            "DetectionAttributes": ["DEFAULT", "AGE_RANGE"],
            "MaxFaces": 3,
            "QualityFilter": "AUTO",
            "Unknown": "members are ignored, as AWS does",
        },
    )


def test_every_problem_is_reported_in_aws_words() -> None:
    with pytest.raises(Validation) as caught:
        validate_input("SearchFaces", {"CollectionId": "a b", "FaceMatchThreshold": 150})
    message = caught.value.message
    assert message.startswith("3 validation errors detected: ")
    assert "Value 'a b' at 'collectionId' failed to satisfy constraint: Member must satisfy regular expression" in (
        message
    )
    assert "Value null at 'faceId' failed to satisfy constraint: Member must not be null" in message
    assert "at 'faceMatchThreshold' failed to satisfy constraint: Member must have value less than or equal to 100" in (
        message
    )


def test_nested_and_list_members_have_paths() -> None:
    with pytest.raises(Validation) as caught:
        validate_input("DetectFaces", {"Image": {"S3Object": {"Bucket": "ab", "Name": ""}}, "Attributes": ["X"]})
    message = caught.value.message
    assert "'image.s3Object.bucket'" in message and "'image.s3Object.name'" in message
    assert "'attributes.1.member'" in message and "enum value set" in message


@pytest.mark.parametrize(
    "params",
    [
        {"MaxResults": "10"},
        {"MaxResults": 1.5},
        {"MaxResults": True},
        {"NextToken": 5},
        {"NextToken": ["a"]},
    ],
)
def test_wrong_json_types_are_serialization_errors(params: dict[str, object]) -> None:
    with pytest.raises(Serialization):
        validate_input("ListCollections", params)


def test_operations_outside_the_model_are_unknown() -> None:
    with pytest.raises(UnknownOperation):
        validate_input("DetectSpaceships", {})


def test_tag_patterns_use_unicode_classes() -> None:
    validate_input("CreateCollection", {"CollectionId": "c", "Tags": {"équipe 1": "visages/ñ=+@"}})
    with pytest.raises(Validation):
        validate_input("CreateCollection", {"CollectionId": "c", "Tags": {"aws:owner": "x"}})
    with pytest.raises(Validation):
        validate_input("CreateCollection", {"CollectionId": "c", "Tags": {"k": "semi;colon"}})


@given(st.text(min_size=1, max_size=300))
def test_collection_ids_follow_the_model_pattern(collection_id: str) -> None:
    valid = 1 <= len(collection_id) <= 255 and re.fullmatch(r"[a-zA-Z0-9_.\-]+", collection_id) is not None
    try:
        validate_input("DescribeCollection", {"CollectionId": collection_id})
    except Validation:
        assert not valid
    else:
        assert valid


@pytest.mark.parametrize("face_id", [str(uuid.uuid4()).upper(), "x", str(uuid.uuid4()) + "0"])
def test_face_ids_must_be_lowercase_uuids(face_id: str) -> None:
    with pytest.raises(Validation):
        validate_input("SearchFaces", {"CollectionId": "c", "FaceId": face_id})
