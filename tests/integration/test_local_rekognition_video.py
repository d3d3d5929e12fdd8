"""Rekognition Video's stored-video face jobs on local_rekognition, with real H.264 clips made from photos."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_rekognition.validation import service_model
from testmedia import clips
from testmedia.photos import grace_hopper, shared_images
from tests.botocore_shapes import assert_output_conforms
from tests.fixtures.aws import rekognition_client, s3_client, wait_for

FPS = 10
SIZE = (320, 240)


def error_code(call: Any, **params: Any) -> str:
    """The Rekognition error code ``call(**params)`` fails with."""
    with pytest.raises(ClientError) as caught:
        call(**params)
    code: str = caught.value.response["Error"]["Code"]
    return code


def upload(moto_s3_url: str, bucket: str, key: str, data: bytes) -> dict[str, Any]:
    """Put ``data`` in S3 and return the Video member naming it."""
    s3_client(moto_s3_url).put_object(Bucket=bucket, Key=key, Body=data)
    return {"S3Object": {"Bucket": bucket, "Name": key}}


def finished(rekognition: Any, operation: str, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    """The first Get* answer whose JobStatus is no longer IN_PROGRESS."""
    answer: dict[str, Any] = {}

    def done() -> bool:
        answer.update(getattr(rekognition, operation)(JobId=job_id))
        return bool(answer["JobStatus"] != "IN_PROGRESS")

    wait_for(done, timeout_s, f"video job {job_id} to finish")
    return answer


def every_page(rekognition: Any, operation: str, member: str, job_id: str, **params: Any) -> list[dict[str, Any]]:
    """All results of a finished job, page by page."""
    results: list[dict[str, Any]] = []
    token: dict[str, str] = {}
    while True:
        page = getattr(rekognition, operation)(JobId=job_id, **params, **token)
        assert_output_conforms(service_model().operation_model(_camel(operation)), page)
        results.extend(page[member])
        if "NextToken" not in page:
            return results
        token = {"NextToken": page["NextToken"]}


def _camel(snake: str) -> str:
    return "".join(part.title() for part in snake.split("_"))


@pytest.fixture(scope="module")
def zoom_mp4() -> bytes:
    """Two seconds pushing in on Grace Hopper's portrait, H.264 in MP4."""
    return clips.h264(clips.frames(grace_hopper(), clips.zoom, seconds=2, fps=FPS, size=SIZE), FPS)


def test_face_detection_finds_the_face_at_every_sampled_timestamp(
    rekognition: Any, moto_s3_url: str, s3_bucket: str, zoom_mp4: bytes
) -> None:
    video = upload(moto_s3_url, s3_bucket, "clips/zoom.mp4", zoom_mp4)
    job_id = rekognition.start_face_detection(Video=video, FaceAttributes="ALL", JobTag="zoom")["JobId"]
    answer = finished(rekognition, "get_face_detection", job_id)
    assert_output_conforms(service_model().operation_model("GetFaceDetection"), answer)
    assert answer["JobStatus"] == "SUCCEEDED", answer.get("StatusMessage")
    assert answer["JobTag"] == "zoom"
    assert answer["Video"] == video
    metadata = answer["VideoMetadata"]
    assert (metadata["Codec"], metadata["Format"]) == ("h264", "MPEG-4")
    assert (metadata["FrameWidth"], metadata["FrameHeight"], metadata["FrameRate"]) == (320, 240, 10.0)
    assert metadata["DurationMillis"] == 2000
    # One face every 200 ms (the documented sample rate), growing as the camera zooms in.
    assert [face["Timestamp"] for face in answer["Faces"]] == list(range(0, 2000, 200))
    widths = [face["Face"]["BoundingBox"]["Width"] for face in answer["Faces"]]
    assert widths[-1] > widths[0] * 1.3
    assert "AgeRange" in answer["Faces"][0]["Face"]
    # Pages of 3 add up to the same faces.
    assert every_page(rekognition, "get_face_detection", "Faces", job_id, MaxResults=3) == answer["Faces"]


def test_faces_are_reported_only_when_they_are_on_screen(rekognition: Any, moto_s3_url: str, s3_bucket: str) -> None:
    # Given a MOV whose first second is an empty grey wall, then the portrait
    frames = clips.blank(1, FPS, SIZE) + clips.frames(grace_hopper(), clips.still, seconds=1, fps=FPS, size=SIZE)
    video = upload(moto_s3_url, s3_bucket, "clips/late.mov", clips.h264(frames, FPS, "mov"))
    job_id = rekognition.start_face_detection(Video=video)["JobId"]
    answer = finished(rekognition, "get_face_detection", job_id)
    assert answer["VideoMetadata"]["Format"] == "QuickTime / MOV"
    assert [face["Timestamp"] for face in answer["Faces"]] == list(range(1000, 2000, 200))


def test_a_client_request_token_starts_one_job(
    rekognition: Any, moto_s3_url: str, s3_bucket: str, zoom_mp4: bytes
) -> None:
    video = upload(moto_s3_url, s3_bucket, "clips/token.mp4", zoom_mp4)
    token = uuid.uuid4().hex
    first = rekognition.start_face_detection(Video=video, ClientRequestToken=token)["JobId"]
    again = rekognition.start_face_detection(Video=video, ClientRequestToken=token)["JobId"]
    assert again == first
    other = rekognition.start_face_detection(Video=video, ClientRequestToken=uuid.uuid4().hex)["JobId"]
    assert other != first
    mismatch = error_code(rekognition.start_face_detection, Video=video, ClientRequestToken=token, FaceAttributes="ALL")
    assert mismatch == "IdempotentParameterMismatchException"
    finished(rekognition, "get_face_detection", first)
    finished(rekognition, "get_face_detection", other)


def test_video_errors_have_rekognitions_codes(
    rekognition: Any, moto_s3_url: str, s3_bucket: str, zoom_mp4: bytes, tmp_path: Path
) -> None:
    missing = {"S3Object": {"Bucket": s3_bucket, "Name": "absent.mp4"}}
    assert error_code(rekognition.start_face_detection, Video=missing) == "InvalidS3ObjectException"
    assert error_code(rekognition.get_face_detection, JobId="0" * 32) == "ResourceNotFoundException"
    video = upload(moto_s3_url, s3_bucket, "clips/ok.mp4", zoom_mp4)
    assert (
        error_code(rekognition.start_face_search, Video=video, CollectionId="no-such-collection")
        == "ResourceNotFoundException"
    )
    job_id = rekognition.start_face_detection(Video=video)["JobId"]
    finished(rekognition, "get_face_detection", job_id)
    # A detection job is not a search job, and tokens from another listing are refused.
    assert error_code(rekognition.get_face_search, JobId=job_id) == "ResourceNotFoundException"
    assert (
        error_code(rekognition.get_face_detection, JobId=job_id, NextToken="bm90IGEgdG9rZW4=")
        == "InvalidPaginationTokenException"
    )


@pytest.mark.parametrize("kind", ["mpeg4-part2", "jpeg"])
def test_a_video_that_is_not_h264_fails_the_job_clearly(
    rekognition: Any, moto_s3_url: str, s3_bucket: str, tmp_path: Path, kind: str
) -> None:
    # Given what OpenCV's VideoWriter can write here ('mp4v'), or a photo renamed .mp4
    if kind == "jpeg":
        data = grace_hopper().read_bytes()
    else:
        frames = clips.frames(grace_hopper(), clips.still, seconds=1, fps=FPS, size=SIZE)
        data = clips.mpeg4_part2(frames, FPS, tmp_path / "clip.mp4")
    video = upload(moto_s3_url, s3_bucket, f"clips/{kind}.mp4", data)
    job_id = rekognition.start_face_detection(Video=video)["JobId"]
    answer = finished(rekognition, "get_face_detection", job_id)
    assert_output_conforms(service_model().operation_model("GetFaceDetection"), answer)
    assert answer["JobStatus"] == "FAILED"
    assert answer["StatusMessage"].startswith("Unsupported codec/format")
    assert "Faces" not in answer


def test_face_search_names_the_indexed_person_on_one_track(rekognition: Any, moto_s3_url: str, s3_bucket: str) -> None:
    collection = f"video-{uuid.uuid4().hex[:8]}"
    rekognition.create_collection(CollectionId=collection)
    indexed = rekognition.index_faces(
        CollectionId=collection, Image={"Bytes": grace_hopper().read_bytes()}, ExternalImageId="grace"
    )
    face_id = indexed["FaceRecords"][0]["Face"]["FaceId"]
    frames = clips.frames(grace_hopper(), clips.pan, seconds=2, fps=FPS, size=SIZE)
    video = upload(moto_s3_url, s3_bucket, "clips/pan.mp4", clips.h264(frames, FPS))
    job_id = rekognition.start_face_search(Video=video, CollectionId=collection, FaceMatchThreshold=80)["JobId"]
    answer = finished(rekognition, "get_face_search", job_id)
    assert_output_conforms(service_model().operation_model("GetFaceSearch"), answer)
    assert answer["JobStatus"] == "SUCCEEDED", answer.get("StatusMessage")
    persons = answer["Persons"]
    assert len(persons) >= 8  # of 10 sampled frames
    assert {person["Person"]["Index"] for person in persons} == {0}
    assert all(person["FaceMatches"][0]["Face"]["FaceId"] == face_id for person in persons)
    assert all(person["FaceMatches"][0]["Face"]["ExternalImageId"] == "grace" for person in persons)
    by_index = every_page(rekognition, "get_face_search", "Persons", job_id, MaxResults=4, SortBy="INDEX")
    assert by_index == persons


def test_two_people_are_two_tracks(rekognition: Any, moto_s3_url: str, s3_bucket: str) -> None:
    photo = shared_images() / "two_people.jpg"
    frames = clips.frames(photo, clips.drift, seconds=2, fps=FPS, size=SIZE)
    video = upload(moto_s3_url, s3_bucket, "clips/two.mp4", clips.h264(frames, FPS))
    job_id = rekognition.start_face_detection(Video=video)["JobId"]
    detection = finished(rekognition, "get_face_detection", job_id)
    per_timestamp: dict[int, int] = {}
    for face in detection["Faces"]:
        per_timestamp[face["Timestamp"]] = per_timestamp.get(face["Timestamp"], 0) + 1
    assert sorted(set(per_timestamp.values())) == [2], per_timestamp
    # Searching a collection holding the same photo's two faces follows each on its own track.
    collection = f"two-{uuid.uuid4().hex[:8]}"
    rekognition.create_collection(CollectionId=collection)
    rekognition.index_faces(CollectionId=collection, Image={"Bytes": photo.read_bytes()})
    search_id = rekognition.start_face_search(Video=video, CollectionId=collection)["JobId"]
    persons = finished(rekognition, "get_face_search", search_id)["Persons"]
    tracks: dict[int, set[str]] = {}
    for person in persons:
        tracks.setdefault(person["Person"]["Index"], set()).add(person["FaceMatches"][0]["Face"]["FaceId"])
    assert len(tracks) == 2, tracks
    assert all(len(ids) == 1 for ids in tracks.values()), tracks
    assert tracks[0] != tracks[1]


def test_a_job_cut_short_by_a_restart_still_finishes(
    start_local_rekognition: Any, moto_s3_url: str, s3_bucket: str, tmp_path: Path
) -> None:
    # Given a server analysing a clip long enough to be stopped mid-way
    frames = clips.frames(grace_hopper(), clips.pan, seconds=12, fps=5, size=SIZE)
    video = upload(moto_s3_url, s3_bucket, "clips/long.mp4", clips.h264(frames, 5))
    data_dir = tmp_path / "restart"
    first = start_local_rekognition(data_dir, "--inference-threads", "1")
    client = rekognition_client(first.url, retries={"mode": "standard", "max_attempts": 1})
    job_id = client.start_face_detection(Video=video)["JobId"]
    assert client.get_face_detection(JobId=job_id)["JobStatus"] == "IN_PROGRESS"
    # When it stops and another server starts on the same data dir
    first.stop()
    second = start_local_rekognition(data_dir)
    # Then the JobId handed out before the restart ends with every face
    answer = finished(rekognition_client(second.url), "get_face_detection", job_id)
    assert answer["JobStatus"] == "SUCCEEDED", answer.get("StatusMessage")
    assert [face["Timestamp"] for face in answer["Faces"]] == list(range(0, 12000, 200))


def test_other_requests_are_served_while_a_video_job_runs(
    start_local_rekognition: Any, moto_s3_url: str, s3_bucket: str
) -> None:
    # Given a server with a single inference thread, busy with a 12-second clip (60 sampled frames)
    frames = clips.frames(grace_hopper(), clips.pan, seconds=12, fps=5, size=SIZE)
    video = upload(moto_s3_url, s3_bucket, "clips/busy.mp4", clips.h264(frames, 5))
    server = start_local_rekognition(None, "--inference-threads", "1")
    client = rekognition_client(server.url, retries={"mode": "standard", "max_attempts": 1})
    job_id = client.start_face_detection(Video=video)["JobId"]
    # When DetectFaces is called meanwhile, it answers between two frames of the video, not after the whole clip
    detected = client.detect_faces(Image={"Bytes": grace_hopper().read_bytes()})
    assert len(detected["FaceDetails"]) == 1
    assert client.get_face_detection(JobId=job_id)["JobStatus"] == "IN_PROGRESS"
    assert finished(client, "get_face_detection", job_id)["JobStatus"] == "SUCCEEDED"
