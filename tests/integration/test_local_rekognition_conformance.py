"""Every operation's response, raw and as parsed by boto3, checked against botocore's own output shapes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from local_rekognition.operations import OPERATIONS
from testmedia.imaging import big_and_small, plain
from testmedia.photos import grace_hopper
from tests.botocore_shapes import assert_output_conforms
from tests.fixtures.aws import rekognition_client, s3_client, wait_for
from tests.video_jobs import video_clip_in_s3


@pytest.fixture
def recorded(local_rekognition_url: str) -> Iterator[tuple[Any, dict[str, list[tuple[Any, Any]]]]]:
    """A boto3 client plus, per operation, the raw JSON bodies and parsed responses it received."""
    client = rekognition_client(local_rekognition_url, retries={"mode": "standard", "max_attempts": 1})
    seen: dict[str, list[tuple[Any, Any]]] = {}

    def record(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        if http_response.status_code == 200:
            seen.setdefault(model.name, []).append((json.loads(http_response.content), parsed))

    client.meta.events.register("after-call.rekognition", record)
    yield client, seen


def test_every_operation_conforms_to_the_service_model(
    recorded: tuple[Any, dict[str, list[tuple[Any, Any]]]], moto_s3_url: str, s3_bucket: str
) -> None:
    client, seen = recorded
    photo = {"Bytes": grace_hopper().read_bytes()}
    group = {"Bytes": big_and_small(grace_hopper())}
    collection = f"conformance-{uuid.uuid4().hex[:8]}"
    # When every operation runs, with the options that fill its optional members
    client.detect_faces(Image=photo)
    client.detect_faces(Image=group, Attributes=["ALL"])
    client.compare_faces(SourceImage=photo, TargetImage=group, SimilarityThreshold=99.99)
    client.create_collection(CollectionId=collection, Tags={"team": "faces"})
    client.describe_collection(CollectionId=collection)
    client.list_collections(MaxResults=1)
    indexed = client.index_faces(
        CollectionId=collection, Image=group, ExternalImageId="group:1", DetectionAttributes=["ALL"], MaxFaces=1
    )
    client.index_faces(CollectionId=collection, Image=group, QualityFilter="HIGH")
    client.index_faces(CollectionId=collection, Image=photo)
    client.list_faces(CollectionId=collection, MaxResults=1)
    face_id = indexed["FaceRecords"][0]["Face"]["FaceId"]
    client.search_faces(CollectionId=collection, FaceId=face_id, FaceMatchThreshold=0)
    client.search_faces_by_image(CollectionId=collection, Image=photo)
    client.create_user(CollectionId=collection, UserId="grace.hopper")
    client.create_user(CollectionId=collection, UserId="nobody")
    faces = [face["FaceId"] for face in client.list_faces(CollectionId=collection)["Faces"]]
    held = [face for face in faces if face != face_id]
    client.associate_faces(CollectionId=collection, UserId="grace.hopper", FaceIds=[face_id])
    client.associate_faces(
        CollectionId=collection, UserId="grace.hopper", FaceIds=[*held, str(uuid.uuid4())], UserMatchThreshold=100
    )
    client.associate_faces(CollectionId=collection, UserId="nobody", FaceIds=[face_id])
    client.list_users(CollectionId=collection, MaxResults=1)
    client.list_faces(CollectionId=collection, UserId="grace.hopper")
    client.search_faces(CollectionId=collection, FaceId=face_id, FaceMatchThreshold=0)
    client.search_users(CollectionId=collection, FaceId=face_id, UserMatchThreshold=0)
    client.search_users(CollectionId=collection, UserId="grace.hopper", UserMatchThreshold=0)
    client.search_users_by_image(CollectionId=collection, Image=group, UserMatchThreshold=0, MaxUsers=1)
    client.search_users_by_image(CollectionId=collection, Image={"Bytes": plain(300, 300)})
    client.delete_faces(CollectionId=collection, FaceIds=[face_id, str(uuid.uuid4())])
    client.disassociate_faces(CollectionId=collection, UserId="nobody", FaceIds=[face_id, str(uuid.uuid4())])
    client.disassociate_faces(CollectionId=collection, UserId="grace.hopper", FaceIds=[face_id])
    client.delete_user(CollectionId=collection, UserId="nobody")
    video = video_clip_in_s3(s3_client(moto_s3_url), s3_bucket)
    detection = client.start_face_detection(Video=video, FaceAttributes="ALL", JobTag="conformance")["JobId"]
    search = client.start_face_search(Video=video, CollectionId=collection, FaceMatchThreshold=50)["JobId"]
    celebrity = client.recognize_celebrities(Image=group)["CelebrityFaces"][0]
    client.get_celebrity_info(Id=celebrity["Id"])
    celebrities = client.start_celebrity_recognition(Video=video, JobTag="conformance")["JobId"]
    for get, job_id in (
        (client.get_face_detection, detection),
        (client.get_face_search, search),
        (client.get_celebrity_recognition, celebrities),
    ):
        wait_for(lambda: get(JobId=job_id)["JobStatus"] != "IN_PROGRESS", 120, "a video job")  # noqa: B023
        get(JobId=job_id, MaxResults=1)
    client.delete_faces(CollectionId=collection, FaceIds=[face_id, str(uuid.uuid4())])
    client.delete_collection(CollectionId=collection)
    # Then each operation answered, and every answer fits its output shape on the wire and after parsing
    assert set(seen) == set(OPERATIONS)
    for name, responses in seen.items():
        operation = client.meta.service_model.operation_model(name)
        for raw, parsed in responses:
            assert_output_conforms(operation, raw, wire=True)
            assert_output_conforms(operation, parsed)
