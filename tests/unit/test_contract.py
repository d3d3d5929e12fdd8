"""The wire contract refuses bad jobs at submit time, with Rekognition's own rules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from kombu.utils.json import loads
from pydantic import ValidationError

from producer import jobs
from producer.contract import (
    TASK_NAMES,
    Attribute,
    DetectFacesJob,
    IndexFacesJob,
    JobStatus,
    ResultEnvelope,
    S3Image,
    SearchFacesByImageJob,
    job_mark,
    parse_job,
    utcnow,
)
from producer.messages import protocol_app, task_message
from producer.video import face_detection
from tests.fixtures.workers import ROOT

S3 = {"kind": "s3", "bucket": "photos", "key": "a.jpg"}


@pytest.mark.parametrize("collection_id", ["", "has space", "slash/no", "x" * 256, "ünïcode"])
def test_collection_ids_follow_rekognitions_pattern(collection_id: str) -> None:
    with pytest.raises(ValidationError, match="collection_id"):
        IndexFacesJob(image=S3Image(bucket="photos", key="a.jpg"), collection_id=collection_id)


def test_external_image_id_allows_colons_but_not_slashes() -> None:
    job = IndexFacesJob(image=S3Image(bucket="photos", key="a"), collection_id="c", external_image_id="a:b.c-d_e")
    assert job.request()["ExternalImageId"] == "a:b.c-d_e"
    with pytest.raises(ValidationError, match="external_image_id"):
        IndexFacesJob(image=S3Image(bucket="photos", key="a"), collection_id="c", external_image_id="a/b")


def test_the_workers_job_mark_prefix_is_reserved() -> None:
    # A job choosing another job's mark as its ExternalImageId could have its faces taken for that job's (reconcile.py)
    with pytest.raises(ValidationError, match="reserved"):
        IndexFacesJob(image=S3, collection_id="c", external_image_id=job_mark("0123abcd"))
    assert IndexFacesJob(image=S3, collection_id="c", external_image_id="facequeue:joe").external_image_id


@pytest.mark.parametrize(("field", "value"), [("face_match_threshold", 101), ("max_faces", 0), ("max_faces", 5000)])
def test_ranges_are_checked(field: str, value: int) -> None:
    with pytest.raises(ValidationError, match=field):
        SearchFacesByImageJob.model_validate({"image": S3, "collection_id": "c", field: value})


def test_unknown_fields_and_operations_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        parse_job({"operation": "DetectFaces", "image": S3, "colour": "blue"})
    with pytest.raises(ValidationError, match="operation"):
        parse_job({"operation": "DetectLabels", "image": S3})
    with pytest.raises(ValidationError, match="schema_version"):
        parse_job({"operation": "DetectFaces", "image": S3, "schema_version": 2})


def test_attributes_accept_default_all_or_names() -> None:
    assert DetectFacesJob(image=S3, attributes="all").attributes == (Attribute.ALL,)  # type: ignore[arg-type]
    job = DetectFacesJob(image=S3, attributes="AGE_RANGE, emotions")  # type: ignore[arg-type]
    assert job.request() == {"Attributes": ["AGE_RANGE", "EMOTIONS"]}
    with pytest.raises(ValidationError):
        DetectFacesJob(image=S3, attributes=["WINGS"])  # type: ignore[list-item]


def test_jobs_round_trip_through_json() -> None:
    prepared = jobs.compare_faces(b"\xff\xd8 source bytes", "s3://bucket-a/b/c.jpg?versionId=v1")
    again = parse_job(json.loads(prepared.job.model_dump_json()))
    assert again == prepared.job
    assert again.target == S3Image(bucket="bucket-a", key="b/c.jpg", version="v1")  # type: ignore[union-attr]
    assert list(prepared.blobs) == [prepared.job.source.sha256]  # type: ignore[union-attr]


def test_producer_refuses_empty_and_oversized_images() -> None:
    with pytest.raises(jobs.ImageInputError, match="empty"):
        jobs.detect_faces(b"")
    with pytest.raises(jobs.ImageInputError, match="limit"):
        jobs.detect_faces(b"x" * 2048, max_bytes=1024)


def test_an_envelope_has_exactly_one_outcome() -> None:
    now = utcnow()
    with pytest.raises(ValidationError, match="failed result carries an error"):
        ResultEnvelope(job_id="j", operation="DetectFaces", status=JobStatus.FAILED, started_at=now, finished_at=now)


def test_task_messages_are_celery_protocol_2_in_kombus_redis_envelope() -> None:
    job = jobs.detect_faces(b"\xff\xd8 jpeg").job
    raw = json.loads(task_message(protocol_app(), [job], "q"))
    assert raw["headers"]["task"] == TASK_NAMES[job.operation]
    assert raw["headers"]["id"] == job.job_id
    assert raw["properties"]["delivery_info"] == {"exchange": "", "routing_key": "q"}
    import base64

    args, kwargs, _embed = loads(base64.b64decode(raw["body"]))
    assert parse_job(args[0]) == job and kwargs == {}
    assert "jpeg" not in raw["headers"]["argsrepr"]


def test_several_jobs_travel_as_one_message_with_a_list_under_a_fresh_task_id() -> None:
    packed = [jobs.detect_faces(b"\xff\xd8 jpeg %d" % i).job for i in range(3)]
    raw = json.loads(task_message(protocol_app(), packed, "q"))
    import base64

    args, _kwargs, _embed = loads(base64.b64decode(raw["body"]))
    assert [parse_job(item) for item in args[0]] == packed
    assert raw["headers"]["task"] == TASK_NAMES[packed[0].operation]
    assert raw["headers"]["id"] not in {job.job_id for job in packed}
    assert "3 jobs" in raw["headers"]["argsrepr"] and "jpeg" not in raw["headers"]["argsrepr"]


def test_the_producer_never_imports_worker_code_nor_aioboto3() -> None:
    code = (
        "import sys, producer, producer.cli, producer.client, producer.jobs;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('worker', 'aioboto3', 'aiobotocore',"
        " 'local_rekognition', 'onnxruntime', 'cv2'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_library_imports_no_rich_pillow_nor_opencv() -> None:
    # Every module of producer/ but the command's (producer/cli/): what a service that only enqueues imports.
    code = (
        "import importlib, pathlib, sys;"
        "root = pathlib.Path('producer');"
        "names = sorted('.'.join(p.with_suffix('').parts).removesuffix('.__init__') for p in root.rglob('*.py')"
        " if 'cli' not in p.parts);"
        "[importlib.import_module(n) for n in names];"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'PIL', 'cv2', 'numpy', 'worker'));"
        "print(names, bad); sys.exit(1 if bad or len(names) < 10 else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_retried_video_job_starts_with_the_token_of_its_first_attempt() -> None:
    # Given a video job (its Start* token is its job id) retried twice from its dead letters
    first = face_detection("s3://clips/a.mp4").job
    again = first.retried().retried()
    # Then each retry has a job id of its own but sends the first attempt's ClientRequestToken (issue 25)
    assert again.job_id != first.job_id
    assert again.request()["ClientRequestToken"] == first.request()["ClientRequestToken"] == first.job_id
    assert "RequestToken" not in again.request()


def test_a_retried_image_job_gets_a_new_id_and_nothing_else() -> None:
    job = jobs.detect_faces(b"\xff\xd8\xff" + b"0" * 100).job
    again = job.retried()
    assert again.job_id != job.job_id and again.request() == job.request()
