"""Users: CreateUser, AssociateFaces, DisassociateFaces, DeleteUser, ListUsers, SearchUsers, SearchUsersByImage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testmedia.imaging import big_and_small, plain, views
from testmedia.photos import astronaut, grace_hopper
from tests.fixtures.aws import StartLocalRekognition, rekognition_client
from tests.integration.test_local_rekognition_collections import error_code


@pytest.fixture
def collection(rekognition: Any) -> Iterator[str]:
    """A fresh collection on the shared server, deleted afterwards."""
    collection_id = f"users-{uuid.uuid4().hex[:10]}"
    rekognition.create_collection(CollectionId=collection_id)
    yield collection_id
    rekognition.delete_collection(CollectionId=collection_id)


def index(rekognition: Any, collection: str, image: bytes) -> str:
    """Index the largest face of ``image``; its FaceId."""
    indexed = rekognition.index_faces(CollectionId=collection, Image={"Bytes": image}, MaxFaces=1)
    face_id: str = indexed["FaceRecords"][0]["Face"]["FaceId"]
    return face_id


def enrol(rekognition: Any, collection: str, user_id: str, photo: Path) -> list[str]:
    """Create ``user_id`` with the photo and its flipped and darker views; the three FaceIds."""
    extra = views(photo)
    faces = [index(rekognition, collection, image) for image in (photo.read_bytes(), extra["flipped"], extra["darker"])]
    rekognition.create_user(CollectionId=collection, UserId=user_id)
    associated = rekognition.associate_faces(CollectionId=collection, UserId=user_id, FaceIds=faces)
    assert [face["FaceId"] for face in associated["AssociatedFaces"]] == faces
    return faces


def test_user_lifecycle(rekognition: Any, collection: str) -> None:
    # Given a new user, then one face associated with it
    assert rekognition.create_user(CollectionId=collection, UserId="grace.hopper:1906")["ResponseMetadata"]
    listed = rekognition.list_users(CollectionId=collection)["Users"]
    assert listed == [{"UserId": "grace.hopper:1906", "UserStatus": "CREATED"}]
    assert rekognition.describe_collection(CollectionId=collection)["UserCount"] == 1
    face = index(rekognition, collection, grace_hopper().read_bytes())
    associated = rekognition.associate_faces(CollectionId=collection, UserId="grace.hopper:1906", FaceIds=[face])
    assert associated["UserStatus"] == "ACTIVE"
    assert rekognition.list_users(CollectionId=collection)["Users"][0]["UserStatus"] == "ACTIVE"
    # Then the face names its user, and ListFaces filters by user
    faces = rekognition.list_faces(CollectionId=collection, UserId="grace.hopper:1906")["Faces"]
    assert [(f["FaceId"], f["UserId"]) for f in faces] == [(face, "grace.hopper:1906")]
    assert rekognition.list_faces(CollectionId=collection, UserId="someone.else")["Faces"] == []
    # A face a user holds cannot be deleted until it is disassociated, as on AWS
    refused = rekognition.delete_faces(CollectionId=collection, FaceIds=[face])
    assert refused["UnsuccessfulFaceDeletions"] == [
        {"FaceId": face, "UserId": "grace.hopper:1906", "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"]}
    ]
    # When the user is deleted, its face stays, associated with nobody
    rekognition.delete_user(CollectionId=collection, UserId="grace.hopper:1906")
    assert rekognition.list_users(CollectionId=collection)["Users"] == []
    assert rekognition.describe_collection(CollectionId=collection)["UserCount"] == 0
    assert "UserId" not in rekognition.list_faces(CollectionId=collection)["Faces"][0]
    assert rekognition.delete_faces(CollectionId=collection, FaceIds=[face])["DeletedFaces"] == [face]


def test_user_errors(rekognition: Any, collection: str) -> None:
    rekognition.create_user(CollectionId=collection, UserId="taken")
    assert error_code(rekognition.create_user, CollectionId=collection, UserId="taken") == "ConflictException"
    missing = "ResourceNotFoundException"
    assert error_code(rekognition.delete_user, CollectionId=collection, UserId="nobody") == missing
    face_ids = [str(uuid.uuid4())]
    assert (
        error_code(rekognition.associate_faces, CollectionId=collection, UserId="nobody", FaceIds=face_ids) == missing
    )
    assert (
        error_code(rekognition.disassociate_faces, CollectionId=collection, UserId="nobody", FaceIds=face_ids)
        == missing
    )
    assert error_code(rekognition.create_user, CollectionId="never-created", UserId="u") == missing
    assert error_code(rekognition.list_users, CollectionId="never-created") == missing
    assert error_code(rekognition.search_users, CollectionId=collection, UserId="nobody") == missing
    invalid = "InvalidParameterException"
    assert error_code(rekognition.search_users, CollectionId=collection) == invalid
    assert error_code(rekognition.search_users, CollectionId=collection, UserId="taken") == invalid  # no faces
    assert error_code(rekognition.search_users, CollectionId=collection, FaceId=face_ids[0]) == invalid
    # The model's rules: UserId's pattern and length, at most 100 FaceIds a call
    validation = "ValidationException"
    assert error_code(rekognition.create_user, CollectionId=collection, UserId="has space") == validation
    assert error_code(rekognition.create_user, CollectionId=collection, UserId="x" * 129) == validation
    too_many = [str(uuid.uuid4()) for _ in range(101)]
    assert (
        error_code(rekognition.associate_faces, CollectionId=collection, UserId="taken", FaceIds=too_many) == validation
    )
    assert error_code(rekognition.list_users, CollectionId=collection, MaxResults=501) == validation


def test_client_request_tokens_make_retries_harmless(rekognition: Any, collection: str) -> None:
    # Given calls made with a token, as a redelivered job repeats them
    token = uuid.uuid4().hex
    rekognition.create_user(CollectionId=collection, UserId="ada", ClientRequestToken=token)
    # Then the same call again succeeds without a ConflictException; another call with the token is refused
    rekognition.create_user(CollectionId=collection, UserId="ada", ClientRequestToken=token)
    mismatch = "IdempotentParameterMismatchException"
    assert (
        error_code(rekognition.create_user, CollectionId=collection, UserId="bob", ClientRequestToken=token) == mismatch
    )
    face = index(rekognition, collection, grace_hopper().read_bytes())
    first = rekognition.associate_faces(CollectionId=collection, UserId="ada", FaceIds=[face], ClientRequestToken=token)
    again = rekognition.associate_faces(CollectionId=collection, UserId="ada", FaceIds=[face], ClientRequestToken=token)
    # A repeated AssociateFaces answers what the first answered (a fresh call would report nothing associated)
    assert first["AssociatedFaces"] == again["AssociatedFaces"] == [{"FaceId": face}]
    fresh = rekognition.associate_faces(CollectionId=collection, UserId="ada", FaceIds=[face])
    assert fresh["AssociatedFaces"] == []
    rekognition.disassociate_faces(CollectionId=collection, UserId="ada", FaceIds=[face])
    rekognition.delete_user(CollectionId=collection, UserId="ada", ClientRequestToken=token)
    rekognition.delete_user(CollectionId=collection, UserId="ada", ClientRequestToken=token)
    assert error_code(rekognition.delete_user, CollectionId=collection, UserId="ada") == "ResourceNotFoundException"


def test_associate_faces_reasons(rekognition: Any, collection: str) -> None:
    # Given Grace Hopper enrolled from three views, and Eileen Collins (the astronaut) indexed
    grace = enrol(rekognition, collection, "grace", grace_hopper())
    astronaut_face = index(rekognition, collection, astronaut().read_bytes())
    another_grace = index(rekognition, collection, views(grace_hopper())["cropped"])
    rekognition.create_user(CollectionId=collection, UserId="other")
    unknown = str(uuid.uuid4())
    # When faces are associated with grace: one of hers, one of another person, one held by nobody's... and more
    result = rekognition.associate_faces(
        CollectionId=collection, UserId="grace", FaceIds=[grace[0], another_grace, astronaut_face, unknown]
    )
    # Then hers already is ignored, the new view joins, the stranger is too unlike her, the unknown id is missing
    assert result["AssociatedFaces"] == [{"FaceId": another_grace}]
    reasons = {item["FaceId"]: item for item in result["UnsuccessfulFaceAssociations"]}
    assert reasons[astronaut_face]["Reasons"] == ["LOW_MATCH_CONFIDENCE"]
    assert reasons[astronaut_face]["Confidence"] < 75
    assert reasons[unknown]["Reasons"] == ["FACE_NOT_FOUND"]
    assert set(reasons) == {astronaut_face, unknown}
    # A threshold of 0 lets the stranger in; a face of another user never moves
    taken = rekognition.associate_faces(CollectionId=collection, UserId="other", FaceIds=[grace[1]])
    assert taken["UnsuccessfulFaceAssociations"] == [
        {"FaceId": grace[1], "UserId": "grace", "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}
    ]
    assert taken["UserStatus"] == "CREATED"
    forced = rekognition.associate_faces(
        CollectionId=collection, UserId="grace", FaceIds=[astronaut_face], UserMatchThreshold=0
    )
    assert forced["AssociatedFaces"] == [{"FaceId": astronaut_face}]
    # Disassociating reports faces of another user and unknown ids; faces of nobody are ignored
    rekognition.disassociate_faces(CollectionId=collection, UserId="grace", FaceIds=[astronaut_face])
    undone = rekognition.disassociate_faces(
        CollectionId=collection, UserId="other", FaceIds=[grace[2], unknown, astronaut_face]
    )
    assert undone["DisassociatedFaces"] == []
    assert [item["Reasons"] for item in undone["UnsuccessfulFaceDisassociations"]] == [
        ["ASSOCIATED_TO_A_DIFFERENT_USER"],
        ["FACE_NOT_FOUND"],
    ]


def test_a_user_holds_at_most_100_faces(rekognition: Any, collection: str) -> None:
    # Given 51 faces of one person (two per image, the image indexed without a face limit)
    image = {"Bytes": big_and_small(grace_hopper())}
    faces: list[str] = []
    while len(faces) < 102:
        indexed = rekognition.index_faces(CollectionId=collection, Image=image, QualityFilter="NONE")
        faces += [record["Face"]["FaceId"] for record in indexed["FaceRecords"]]
    rekognition.create_user(CollectionId=collection, UserId="grace")
    rekognition.associate_faces(CollectionId=collection, UserId="grace", FaceIds=faces[:99], UserMatchThreshold=0)
    # When two more would make 101, the call is refused whole; one more makes 100
    code = error_code(
        rekognition.associate_faces,
        CollectionId=collection,
        UserId="grace",
        FaceIds=faces[99:101],
        UserMatchThreshold=0,
    )
    assert code == "ServiceQuotaExceededException"
    assert len(rekognition.list_faces(CollectionId=collection, UserId="grace")["Faces"]) == 99
    rekognition.associate_faces(CollectionId=collection, UserId="grace", FaceIds=faces[99:100], UserMatchThreshold=0)
    assert len(rekognition.list_faces(CollectionId=collection, UserId="grace")["Faces"]) == 100


def test_search_users_by_image_finds_the_person(rekognition: Any, collection: str) -> None:
    # Given two people enrolled from three views each
    enrol(rekognition, collection, "grace", grace_hopper())
    astronaut_faces = enrol(rekognition, collection, "eileen", astronaut())
    # When a held-back view of each is searched
    for user_id, photo in (("grace", grace_hopper()), ("eileen", astronaut())):
        held_back = views(photo)["cropped"]
        found = rekognition.search_users_by_image(CollectionId=collection, Image={"Bytes": held_back})
        # Then the right person comes first, the other is below the default threshold of 80
        assert [match["User"]["UserId"] for match in found["UserMatches"]] == [user_id]
        assert found["UserMatches"][0]["Similarity"] >= 80
        assert found["UserMatches"][0]["User"]["UserStatus"] == "ACTIVE"
        assert found["SearchedFace"]["FaceDetail"]["BoundingBox"]["Width"] > 0
        assert found["UnsearchedFaces"] == []
    # Every user is returned at threshold 0, the most similar first
    both = rekognition.search_users_by_image(
        CollectionId=collection, Image={"Bytes": grace_hopper().read_bytes()}, UserMatchThreshold=0
    )
    assert [match["User"]["UserId"] for match in both["UserMatches"]] == ["grace", "eileen"]
    assert both["UserMatches"][0]["Similarity"] > both["UserMatches"][1]["Similarity"]
    one = rekognition.search_users_by_image(
        CollectionId=collection, Image={"Bytes": grace_hopper().read_bytes()}, UserMatchThreshold=0, MaxUsers=1
    )
    assert len(one["UserMatches"]) == 1
    # SearchUsers: from a face, its own user matches; from a user, other users only
    by_face = rekognition.search_users(CollectionId=collection, FaceId=astronaut_faces[0])
    assert [m["User"]["UserId"] for m in by_face["UserMatches"]] == ["eileen"]
    assert by_face["SearchedFace"] == {"FaceId": astronaut_faces[0]}
    by_user = rekognition.search_users(CollectionId=collection, UserId="grace", UserMatchThreshold=0)
    assert [m["User"]["UserId"] for m in by_user["UserMatches"]] == ["eileen"]
    assert by_user["SearchedUser"] == {"UserId": "grace"}


def test_search_users_by_image_reports_unsearched_faces(rekognition: Any, collection: str) -> None:
    enrol(rekognition, collection, "grace", grace_hopper())
    group = {"Bytes": big_and_small(grace_hopper())}
    found = rekognition.search_users_by_image(CollectionId=collection, Image=group)
    assert [m["User"]["UserId"] for m in found["UserMatches"]] == ["grace"]
    assert [face["Reasons"] for face in found["UnsearchedFaces"]] == [["FACE_NOT_LARGEST"]]
    # With HIGH quality the small face is filtered for its size, not for not being the largest
    strict = rekognition.search_users_by_image(CollectionId=collection, Image=group, QualityFilter="HIGH")
    assert [face["Reasons"] for face in strict["UnsearchedFaces"]] == [["SMALL_BOUNDING_BOX"]]
    # No face at all: no match and no SearchedFace, not an error
    empty = rekognition.search_users_by_image(CollectionId=collection, Image={"Bytes": plain(300, 300)})
    assert empty["UserMatches"] == [] and "SearchedFace" not in empty


def test_list_users_pages(rekognition: Any, collection: str) -> None:
    names = [f"user-{n}" for n in range(5)]
    for name in reversed(names):
        rekognition.create_user(CollectionId=collection, UserId=name)
    pages = list(
        rekognition.get_paginator("list_users").paginate(CollectionId=collection, PaginationConfig={"PageSize": 2})
    )
    assert [[user["UserId"] for user in page["Users"]] for page in pages] == [names[:2], names[2:4], names[4:]]
    token = rekognition.list_users(CollectionId=collection, MaxResults=1)["NextToken"]
    assert (
        error_code(rekognition.list_faces, CollectionId=collection, NextToken=token)
        == "InvalidPaginationTokenException"
    )


def test_users_survive_a_restart(start_local_rekognition: StartLocalRekognition, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_local_rekognition(data_dir)
    client = rekognition_client(first.url)
    client.create_collection(CollectionId="kept")
    token = uuid.uuid4().hex
    client.create_user(CollectionId="kept", UserId="grace", ClientRequestToken=token)
    face = index(client, "kept", grace_hopper().read_bytes())
    client.associate_faces(CollectionId="kept", UserId="grace", FaceIds=[face])
    # When it stops and a new process starts on the same data directory
    assert first.stop() == 0
    restarted = start_local_rekognition(data_dir)
    client = rekognition_client(restarted.url)
    # Then users, their faces and the tokens they were made with are all there
    assert client.list_users(CollectionId="kept")["Users"] == [{"UserId": "grace", "UserStatus": "ACTIVE"}]
    assert [f["FaceId"] for f in client.list_faces(CollectionId="kept", UserId="grace")["Faces"]] == [face]
    client.create_user(CollectionId="kept", UserId="grace", ClientRequestToken=token)
    found = client.search_users_by_image(CollectionId="kept", Image={"Bytes": grace_hopper().read_bytes()})
    assert [m["User"]["UserId"] for m in found["UserMatches"]] == ["grace"]
