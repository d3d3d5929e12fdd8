"""Video jobs through the queue: a real worker starts a Rekognition Video job on local_rekognition, waits for it
without holding a slot (a poll re-sent with a countdown), pages through the results and publishes them once."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from producer import FaceQueue, JobStatus, ProducerSettings
from producer.contract import DEAD_LETTERS_KEY, rate_key
from producer.video import appearances, face_detection, face_rows, face_search
from testmedia import clips
from testmedia.photos import grace_hopper
from tests.fixtures.aws import LocalRekognitionProcess, rekognition_client, s3_client
from tests.fixtures.redis import wait_until
from tests.fixtures.workers import WorkerProcess, worker_environment
from tests.video_jobs import video_clip_in_s3
from worker.throttle import endpoint_scope

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def fq(redis_url: str, worker_queue: str, worker: WorkerProcess) -> Iterator[FaceQueue]:
    """A producer client on the session's Redis and queue, with the session's worker running."""
    client = FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue))  # type: ignore[arg-type]
    yield client
    client.close()


def test_face_detection_on_a_video_is_one_result(fq: FaceQueue, moto_s3_url: str, s3_bucket: str) -> None:
    video_clip_in_s3(s3_client(moto_s3_url), s3_bucket, "clips/pan.mp4", seconds=2)
    handle = fq.submit(face_detection(f"s3://{s3_bucket}/clips/pan.mp4", face_attributes="ALL"))
    envelope = fq.result(handle, timeout_s=120)
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    assert envelope.operation == "StartFaceDetection"
    response = envelope.response or {}
    assert response["JobStatus"] == "SUCCEEDED"
    assert response["VideoMetadata"]["DurationMillis"] == 2000
    assert [face["Timestamp"] for face in response["Faces"]] == list(range(0, 2000, 200))
    assert "AgeRange" in response["Faces"][0]["Face"]
    assert envelope.face_count() == 10
    assert envelope.attempts >= 2  # one start, at least one poll
    # Published once: one entry in the results stream for this job.
    entries = fq.redis.xrange(fq.settings.results_stream)
    assert sum(1 for _, fields in entries if handle.job_id in str(fields)) == 1


def test_face_search_on_a_video_names_the_person(
    fq: FaceQueue, local_rekognition_url: str, moto_s3_url: str, s3_bucket: str
) -> None:
    rekognition = rekognition_client(local_rekognition_url)
    collection = f"video-queue-{uuid.uuid4().hex[:8]}"
    rekognition.create_collection(CollectionId=collection)
    rekognition.index_faces(
        CollectionId=collection, Image={"Bytes": grace_hopper().read_bytes()}, ExternalImageId="grace"
    )
    video_clip_in_s3(s3_client(moto_s3_url), s3_bucket, "clips/search.mp4", seconds=2)
    envelope = fq.result(fq.submit(face_search(f"s3://{s3_bucket}/clips/search.mp4", collection)), timeout_s=120)
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    rows = list(face_rows(envelope))
    assert len(rows) >= 8
    assert {row.external_image_id for row in rows} == {"grace"}
    [grace] = appearances(rows)
    assert grace.who == "grace" and grace.seconds >= 1.4


def test_a_video_that_cannot_be_read_fails_once_as_a_dead_letter(fq: FaceQueue, s3_bucket: str) -> None:
    envelope = fq.result(fq.submit(face_detection(f"s3://{s3_bucket}/clips/absent.mp4")), timeout_s=60)
    assert envelope.status is JobStatus.FAILED
    assert envelope.error is not None and envelope.error.code == "InvalidS3ObjectException"
    assert fq.redis.zscore(DEAD_LETTERS_KEY, envelope.job_id) is not None


def test_a_video_that_is_not_h264_fails_with_rekognitions_reason(
    fq: FaceQueue, moto_s3_url: str, s3_bucket: str
) -> None:
    s3_client(moto_s3_url).put_object(Bucket=s3_bucket, Key="clips/photo.mp4", Body=grace_hopper().read_bytes())
    envelope = fq.result(fq.submit(face_detection(f"s3://{s3_bucket}/clips/photo.mp4")), timeout_s=60)
    assert envelope.status is JobStatus.FAILED
    assert envelope.error is not None and envelope.error.code == "VideoJobFailed"
    assert "Unsupported codec/format" in envelope.error.message


def test_a_worker_killed_while_a_video_job_waits_loses_nothing(
    redis_url: str,
    local_rekognition_server: LocalRekognitionProcess,
    moto_s3_url: str,
    s3_bucket: str,
    start_worker: Any,
) -> None:
    # Given a worker of its own queue, with a short visibility timeout so a lost poll comes back soon
    queue = f"video-kill-{uuid.uuid4().hex[:8]}"
    env = worker_environment(
        redis_url,
        local_rekognition_server.url,
        moto_s3_url,
        queue,
        cache_ttl_s="0",
        job_timeout_s="5",
        visibility_timeout_s="15",
        restore_interval_s="1",
    )
    first = start_worker(env, concurrency=2)
    fq = FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue))  # type: ignore[arg-type]
    frames = clips.frames(grace_hopper(), clips.pan, seconds=6, fps=5, size=(320, 240))
    s3_client(moto_s3_url).put_object(Bucket=s3_bucket, Key="clips/six.mp4", Body=clips.h264(frames, 5))
    handle = fq.submit(face_detection(f"s3://{s3_bucket}/clips/six.mp4"))
    # When the worker is SIGKILLed once the Rekognition job started and its wait is a message
    meta = redis.Redis.from_url(redis_url)
    wait_until(lambda: b"waiting_for" in (meta.get(f"celery-task-meta-{handle.job_id}") or b""), 60, "the start task")
    first.stop(signal.SIGKILL)
    start_worker(env, concurrency=2)
    # Then the job still ends, published once, with every face of the one Rekognition job it started
    envelope = fq.result(handle, timeout_s=180)
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    assert [face["Timestamp"] for face in (envelope.response or {})["Faces"]] == list(range(0, 6000, 200))
    entries = fq.redis.xrange(fq.settings.results_stream)
    assert sum(1 for _, fields in entries if handle.job_id in str(fields)) == 1
    started = [
        path
        for path in (local_rekognition_server.data_dir / "video_jobs").glob("*.json")
        if handle.job_id in path.read_text()
    ]
    assert len(started) == 1, "the redelivered wait must not start a second Rekognition job"
    fq.close()


def test_start_and_get_calls_each_take_slots_of_their_own_rate_limit(
    redis_url: str, local_rekognition_url: str, moto_s3_url: str, s3_bucket: str, start_worker: Any
) -> None:
    # Given a worker whose account quota is set for the video operations only
    queue = f"video-rate-{uuid.uuid4().hex[:8]}"
    limits = '{"StartFaceDetection": 5, "GetFaceDetection": 5}'
    env = worker_environment(
        redis_url, local_rekognition_url, moto_s3_url, queue, cache_ttl_s="0", rate_limits_tps=limits
    )
    start_worker(env, concurrency=2)
    video_clip_in_s3(s3_client(moto_s3_url), s3_bucket, "clips/rate.mp4")
    endpoint = endpoint_scope(local_rekognition_url)
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue)) as fq:  # type: ignore[arg-type]
        # (the session's Redis and endpoint are shared: another test's face search may have left its schedule)
        search_before = fq.redis.hgetall(rate_key("StartFaceSearch", endpoint))
        envelope = fq.result(fq.submit(face_detection(f"s3://{s3_bucket}/clips/rate.mp4")), timeout_s=120)
        # Then the start and the polls each reserved slots in their own operation's schedule
        assert envelope.status is JobStatus.SUCCEEDED, envelope.error
        # (each schedule belongs to the endpoint it paces: the worker's local_rekognition)
        assert fq.redis.hget(rate_key("StartFaceDetection", endpoint), "tat") is not None
        assert fq.redis.hget(rate_key("GetFaceDetection", endpoint), "tat") is not None
        assert fq.redis.hgetall(rate_key("StartFaceSearch", endpoint)) == search_before
