"""Collections: lifecycle, indexing (QualityFilter, MaxFaces), listing, deleting, searching, paging."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from testmedia.imaging import big_and_small, plain
from testmedia.photos import grace_hopper
from tests.fixtures.aws import rekognition_client

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def error_code(call: Any, **params: Any) -> str:
    """The Rekognition error code ``call(**params)`` fails with."""
    with pytest.raises(ClientError) as caught:
        call(**params)
    code: str = caught.value.response["Error"]["Code"]
    return code


@pytest.fixture
def collection(rekognition: Any) -> Iterator[str]:
    """A fresh collection on the shared server, deleted afterwards."""
    collection_id = f"test-{uuid.uuid4().hex[:10]}"
    rekognition.create_collection(CollectionId=collection_id)
    yield collection_id
    try:
        rekognition.delete_collection(CollectionId=collection_id)
    except rekognition.exceptions.ResourceNotFoundException:
        pass  # the test deleted it itself


def photo() -> dict[str, bytes]:
    return {"Bytes": grace_hopper().read_bytes()}


def test_collection_lifecycle(rekognition: Any) -> None:
    collection_id = f"life-{uuid.uuid4().hex[:8]}"
    created = rekognition.create_collection(CollectionId=collection_id)
    assert created["StatusCode"] == 200
    assert created["CollectionArn"] == f"arn:aws:rekognition:us-east-1:000000000000:collection/{collection_id}"
    assert error_code(rekognition.create_collection, CollectionId=collection_id) == "ResourceAlreadyExistsException"

    described = rekognition.describe_collection(CollectionId=collection_id)
    assert described["FaceCount"] == 0
    assert described["FaceModelVersion"] == created["FaceModelVersion"]
    assert described["CreationTimestamp"].tzinfo is not None

    listed = rekognition.list_collections()
    position = listed["CollectionIds"].index(collection_id)
    assert listed["FaceModelVersions"][position] == created["FaceModelVersion"]

    assert rekognition.delete_collection(CollectionId=collection_id)["StatusCode"] == 200
    assert collection_id not in rekognition.list_collections()["CollectionIds"]
    assert error_code(rekognition.delete_collection, CollectionId=collection_id) == "ResourceNotFoundException"
    assert error_code(rekognition.describe_collection, CollectionId=collection_id) == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("index_faces", {"Image": {"Bytes": b"x"}}),
        ("list_faces", {}),
        ("delete_faces", {"FaceIds": [str(uuid.uuid4())]}),
        ("search_faces", {"FaceId": str(uuid.uuid4())}),
        ("search_faces_by_image", {"Image": {"Bytes": b"x"}}),
    ],
)
def test_operations_on_a_missing_collection(rekognition: Any, operation: str, params: dict[str, Any]) -> None:
    call = getattr(rekognition, operation)
    assert error_code(call, CollectionId="never-created", **params) == "ResourceNotFoundException"


def test_index_faces_stores_faces_with_ids_and_external_image_id(rekognition: Any, collection: str) -> None:
    indexed = rekognition.index_faces(
        CollectionId=collection, Image=photo(), ExternalImageId="user:42_grace-hopper.jpg"
    )
    assert len(indexed["FaceRecords"]) == 1 and indexed["UnindexedFaces"] == []
    face = indexed["FaceRecords"][0]["Face"]
    assert UUID.fullmatch(face["FaceId"]) and UUID.fullmatch(face["ImageId"])
    assert face["ExternalImageId"] == "user:42_grace-hopper.jpg"
    assert indexed["FaceRecords"][0]["FaceDetail"]["BoundingBox"] == face["BoundingBox"]
    assert indexed["FaceModelVersion"]

    listed = rekognition.list_faces(CollectionId=collection)["Faces"]
    assert [listed_face["FaceId"] for listed_face in listed] == [face["FaceId"]]
    assert listed[0]["ExternalImageId"] == "user:42_grace-hopper.jpg"
    assert listed[0]["BoundingBox"] == face["BoundingBox"]
    assert rekognition.describe_collection(CollectionId=collection)["FaceCount"] == 1


def test_max_faces_keeps_the_largest(rekognition: Any, collection: str) -> None:
    image = {"Bytes": big_and_small(grace_hopper())}
    indexed = rekognition.index_faces(CollectionId=collection, Image=image, MaxFaces=1, QualityFilter="NONE")
    assert len(indexed["FaceRecords"]) == 1
    assert [face["Reasons"] for face in indexed["UnindexedFaces"]] == [["EXCEEDS_MAX_FACES"]]
    kept = indexed["FaceRecords"][0]["Face"]["BoundingBox"]
    dropped = indexed["UnindexedFaces"][0]["FaceDetail"]["BoundingBox"]
    assert kept["Width"] > 2 * dropped["Width"]


def test_quality_filter_levels(rekognition: Any, collection: str) -> None:
    image = {"Bytes": big_and_small(grace_hopper())}
    # Given a big and a ~50-pixel face: NONE and AUTO keep both, HIGH (64 pixels at least) the big one
    everything = rekognition.index_faces(CollectionId=collection, Image=image, QualityFilter="NONE")
    automatic = rekognition.index_faces(CollectionId=collection, Image=image)
    strict = rekognition.index_faces(CollectionId=collection, Image=image, QualityFilter="HIGH")
    assert len(everything["FaceRecords"]) == 2
    assert len(automatic["FaceRecords"]) == 2
    assert len(strict["FaceRecords"]) == 1
    assert strict["UnindexedFaces"][0]["Reasons"] == ["SMALL_BOUNDING_BOX"]
    # Faces of one IndexFaces call share its ImageId
    assert len({record["Face"]["ImageId"] for record in everything["FaceRecords"]}) == 1
    assert rekognition.describe_collection(CollectionId=collection)["FaceCount"] == 5


def test_an_image_without_faces_indexes_nothing(rekognition: Any, collection: str) -> None:
    indexed = rekognition.index_faces(CollectionId=collection, Image={"Bytes": plain(300, 300)})
    assert indexed["FaceRecords"] == [] and indexed["UnindexedFaces"] == []


def test_detection_attributes_reach_the_face_details(rekognition: Any, collection: str) -> None:
    indexed = rekognition.index_faces(CollectionId=collection, Image=photo(), DetectionAttributes=["ALL"])
    detected = rekognition.detect_faces(Image=photo(), Attributes=["ALL"])["FaceDetails"][0]
    assert indexed["FaceRecords"][0]["FaceDetail"].keys() == detected.keys()


def test_list_faces_pages_and_filters(rekognition: Any, collection: str) -> None:
    image = {"Bytes": big_and_small(grace_hopper())}
    ids = []
    for _ in range(3):
        indexed = rekognition.index_faces(CollectionId=collection, Image=image, QualityFilter="NONE")
        ids += [record["Face"]["FaceId"] for record in indexed["FaceRecords"]]
    # When listed two at a time with the SDK's own paginator
    pages = list(
        rekognition.get_paginator("list_faces").paginate(CollectionId=collection, PaginationConfig={"PageSize": 2})
    )
    # Then every face comes exactly once, in FaceId order, and only the last page has no NextToken
    listed = [face["FaceId"] for page in pages for face in page["Faces"]]
    assert listed == sorted(ids)
    assert [len(page["Faces"]) for page in pages] == [2, 2, 2]
    assert "NextToken" not in pages[-1] and all("NextToken" in page for page in pages[:-1])

    chosen = rekognition.list_faces(CollectionId=collection, FaceIds=[ids[0], ids[3], str(uuid.uuid4())])
    assert sorted(face["FaceId"] for face in chosen["Faces"]) == sorted([ids[0], ids[3]])
    assert rekognition.list_faces(CollectionId=collection, UserId="nobody")["Faces"] == []


def test_pagination_tokens_are_checked(rekognition: Any, collection: str) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}"
    rekognition.create_collection(CollectionId=other)
    try:
        image = {"Bytes": big_and_small(grace_hopper())}
        rekognition.index_faces(CollectionId=collection, Image=image, QualityFilter="NONE")
        token = rekognition.list_faces(CollectionId=collection, MaxResults=1)["NextToken"]
        # A token from one collection's listing is no good for another's, nor for ListCollections
        invalid = "InvalidPaginationTokenException"
        assert error_code(rekognition.list_faces, CollectionId=other, NextToken=token) == invalid
        assert error_code(rekognition.list_collections, NextToken=token) == invalid
        for garbage in ("garbage", "eyJ4IjogMX0=", "%%%"):
            assert error_code(rekognition.list_faces, CollectionId=collection, NextToken=garbage) == invalid
            assert error_code(rekognition.list_collections, NextToken=garbage) == invalid
        assert len(rekognition.list_faces(CollectionId=collection, NextToken=token)["Faces"]) == 1
    finally:
        rekognition.delete_collection(CollectionId=other)


def test_list_collections_pages(rekognition: Any) -> None:
    prefix = f"page-{uuid.uuid4().hex[:6]}"
    mine = [f"{prefix}-{n}" for n in range(5)]
    for collection_id in mine:
        rekognition.create_collection(CollectionId=collection_id)
    try:
        pages = list(rekognition.get_paginator("list_collections").paginate(PaginationConfig={"PageSize": 2}))
        listed = [cid for page in pages for cid in page["CollectionIds"]]
        assert listed == sorted(listed) and len(listed) == len(set(listed))
        assert [cid for cid in listed if cid.startswith(prefix)] == mine
        assert all(len(page["CollectionIds"]) <= 2 for page in pages)
        assert all(len(page["CollectionIds"]) == len(page["FaceModelVersions"]) for page in pages)
    finally:
        for collection_id in mine:
            rekognition.delete_collection(CollectionId=collection_id)


def test_delete_faces_reports_unknown_ids(rekognition: Any, collection: str) -> None:
    records = rekognition.index_faces(CollectionId=collection, Image={"Bytes": big_and_small(grace_hopper())})
    first, second = (record["Face"]["FaceId"] for record in records["FaceRecords"])
    unknown = str(uuid.uuid4())
    deleted = rekognition.delete_faces(CollectionId=collection, FaceIds=[first, unknown])
    assert deleted["DeletedFaces"] == [first]
    assert deleted["UnsuccessfulFaceDeletions"] == [{"FaceId": unknown, "Reasons": ["FACE_NOT_FOUND"]}]
    assert [face["FaceId"] for face in rekognition.list_faces(CollectionId=collection)["Faces"]] == [second]
    assert rekognition.describe_collection(CollectionId=collection)["FaceCount"] == 1
    again = rekognition.delete_faces(CollectionId=collection, FaceIds=[first])
    assert "DeletedFaces" not in again
    assert again["UnsuccessfulFaceDeletions"][0]["FaceId"] == first


def test_search_faces_finds_others_but_not_itself(rekognition: Any, collection: str) -> None:
    # Given the same face indexed from two images, and a face-free image
    first = rekognition.index_faces(CollectionId=collection, Image=photo(), ExternalImageId="a")
    second = rekognition.index_faces(CollectionId=collection, Image=photo(), ExternalImageId="b")
    query = first["FaceRecords"][0]["Face"]["FaceId"]
    twin = second["FaceRecords"][0]["Face"]["FaceId"]
    result = rekognition.search_faces(CollectionId=collection, FaceId=query)
    assert result["SearchedFaceId"] == query
    assert [match["Face"]["FaceId"] for match in result["FaceMatches"]] == [twin]
    assert result["FaceMatches"][0]["Similarity"] > 99
    assert result["FaceMatches"][0]["Face"]["ExternalImageId"] == "b"
    assert result["FaceModelVersion"] == first["FaceModelVersion"]


def test_search_faces_honours_max_faces_and_ordering(rekognition: Any, collection: str) -> None:
    image = {"Bytes": big_and_small(grace_hopper())}
    records = rekognition.index_faces(CollectionId=collection, Image=image, QualityFilter="NONE")["FaceRecords"]
    rekognition.index_faces(CollectionId=collection, Image=photo())
    query = records[0]["Face"]["FaceId"]
    everything = rekognition.search_faces(CollectionId=collection, FaceId=query, FaceMatchThreshold=0)
    similarities = [match["Similarity"] for match in everything["FaceMatches"]]
    assert len(similarities) == 2 and similarities == sorted(similarities, reverse=True)
    one = rekognition.search_faces(CollectionId=collection, FaceId=query, MaxFaces=1, FaceMatchThreshold=0)
    assert one["FaceMatches"] == everything["FaceMatches"][:1]


def test_search_faces_needs_a_known_face(rekognition: Any, collection: str) -> None:
    code = error_code(rekognition.search_faces, CollectionId=collection, FaceId=str(uuid.uuid4()))
    assert code == "InvalidParameterException"


def test_search_faces_by_image(rekognition: Any, collection: str) -> None:
    indexed = rekognition.index_faces(CollectionId=collection, Image=photo())
    face_id = indexed["FaceRecords"][0]["Face"]["FaceId"]
    result = rekognition.search_faces_by_image(CollectionId=collection, Image=photo())
    assert [match["Face"]["FaceId"] for match in result["FaceMatches"]] == [face_id]
    assert result["SearchedFaceBoundingBox"] == indexed["FaceRecords"][0]["Face"]["BoundingBox"]
    assert result["SearchedFaceConfidence"] > 50
    code = error_code(rekognition.search_faces_by_image, CollectionId=collection, Image={"Bytes": plain(300, 300)})
    assert code == "InvalidParameterException"


def test_search_by_image_in_an_empty_collection_matches_nothing(rekognition: Any, collection: str) -> None:
    assert rekognition.search_faces_by_image(CollectionId=collection, Image=photo())["FaceMatches"] == []


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("create_collection", {"CollectionId": "a/b"}),
        ("create_collection", {"CollectionId": "../../etc"}),
        ("create_collection", {"CollectionId": ""}),
        ("create_collection", {"CollectionId": "x" * 256}),
        ("create_collection", {"CollectionId": "spaces are not allowed"}),
        ("create_collection", {"CollectionId": "ok", "Tags": {"aws:reserved": "x"}}),
        ("index_faces", {"CollectionId": "c", "Image": {"Bytes": b"x"}, "ExternalImageId": "has space"}),
        ("index_faces", {"CollectionId": "c", "Image": {"Bytes": b"x"}, "MaxFaces": 0}),
        ("index_faces", {"CollectionId": "c", "Image": {"Bytes": b"x"}, "QualityFilter": "SUPERB"}),
        ("index_faces", {"CollectionId": "c", "Image": {"Bytes": b"x"}, "DetectionAttributes": ["NOSE"]}),
        ("search_faces", {"CollectionId": "c", "FaceId": "not-a-uuid"}),
        ("search_faces", {"CollectionId": "c", "FaceId": str(uuid.uuid4()).upper()}),
        ("search_faces", {"CollectionId": "c", "FaceId": str(uuid.uuid4()), "MaxFaces": 4097}),
        ("search_faces", {"CollectionId": "c", "FaceId": str(uuid.uuid4()), "FaceMatchThreshold": 101}),
        ("search_faces_by_image", {"CollectionId": "c", "Image": {"Bytes": b"x"}, "MaxFaces": 0}),
        ("list_faces", {"CollectionId": "c", "MaxResults": 4097}),
        ("list_faces", {"CollectionId": "c", "FaceIds": []}),
        ("list_collections", {"MaxResults": -1}),
        ("list_collections", {"NextToken": "x" * 256}),
        ("delete_faces", {"CollectionId": "c", "FaceIds": []}),
        ("delete_faces", {"CollectionId": "c", "FaceIds": ["nope"]}),
    ],
)
def test_parameters_outside_the_model_are_validation_errors(
    local_rekognition_url: str, operation: str, params: dict[str, Any]
) -> None:
    # Botocore checks little on the client side; turn even that off so the server's checks are what answers.
    client = rekognition_client(local_rekognition_url, parameter_validation=False)
    with pytest.raises(ClientError) as caught:
        getattr(client, operation)(**params)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "failed to satisfy constraint" in caught.value.response["Error"]["Message"]


def test_concurrent_indexing_loses_no_face(rekognition: Any, collection: str) -> None:
    image = photo()
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: rekognition.index_faces(CollectionId=collection, Image=image), range(6)))
    ids = {record["Face"]["FaceId"] for result in results for record in result["FaceRecords"]}
    assert len(ids) == 6
    assert rekognition.describe_collection(CollectionId=collection)["FaceCount"] == 6
    assert {face["FaceId"] for face in rekognition.list_faces(CollectionId=collection)["Faces"]} == ids
