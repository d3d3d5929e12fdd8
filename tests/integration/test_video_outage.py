"""A video job rides out an endpoint outage, and a retried one reuses the Rekognition job it already started (issue 25,
defect 3): through real workers, a real local_rekognition restarted on its data dir, and the HTTP fault proxy."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from producer import FaceQueue, JobStatus, ProducerSettings
from producer.video import face_detection
from tests.fixtures.aws import LocalRekognitionProcess, StartLocalRekognition, s3_client
from tests.fixtures.faultproxy import HttpFaults
from tests.fixtures.redis import free_port, wait_until
from tests.fixtures.workers import WorkerProcess, worker_environment
from tests.video_jobs import video_clip_in_s3

pytestmark = pytest.mark.timeout(300)

OUTAGE_S = 60.0
"""How long the endpoint is away: a minute, what a restart, a redeploy or a network blip may take."""


def _rekognition_jobs(server: LocalRekognitionProcess, key: str) -> int:
    """How many Rekognition video jobs the server holds for the object ``key`` (one file each, kept across
    restarts)."""
    return sum(1 for path in (server.data_dir / "video_jobs").glob("*.json") if key in path.read_text())


def _published(fq: FaceQueue, job_id: str) -> int:
    return sum(1 for _, fields in fq.redis.xrange(fq.settings.results_stream) if fields[b"job_id"].decode() == job_id)


@pytest.fixture
def video_stack(
    redis_url: str,
    moto_s3_url: str,
    start_local_rekognition: StartLocalRekognition,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> Iterator[tuple[FaceQueue, LocalRekognitionProcess, Callable[..., WorkerProcess]]]:
    """local_rekognition on a fixed port (so a restart is the same endpoint), a queue of our own, a worker starter
    for a given endpoint URL."""
    port = free_port()
    server = start_local_rekognition(tmp_path / "rekognition", "--port", str(port))
    queue = f"video-outage-{uuid.uuid4().hex[:8]}"
    fq = FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue))  # type: ignore[arg-type]

    def start(endpoint: str, **settings: str) -> WorkerProcess:
        env = worker_environment(redis_url, endpoint, moto_s3_url, queue, cache_ttl_s="0", **settings)
        return start_worker(env, concurrency=4)

    yield fq, server, start
    fq.close()


def _started(redis_url: str, job_id: str) -> Callable[[], bool]:
    """True once the start task answered that it waits for a Rekognition job (Celery's backend holds that)."""
    meta = redis.Redis.from_url(redis_url)
    return lambda: b"waiting_for" in (meta.get(f"celery-task-meta-{job_id}") or b"")


def test_a_video_job_outlives_a_minute_without_its_endpoint(
    video_stack: tuple[FaceQueue, LocalRekognitionProcess, Callable[..., WorkerProcess]],
    redis_url: str,
    moto_s3_url: str,
    s3_bucket: str,
    start_local_rekognition: StartLocalRekognition,
) -> None:
    # Given a worker with a video job under way at local_rekognition
    fq, server, start = video_stack
    start(server.url)
    video_clip_in_s3(s3_client(moto_s3_url), s3_bucket, "clips/outage.mp4", seconds=2)
    handle = fq.submit(face_detection(f"s3://{s3_bucket}/clips/outage.mp4"))
    wait_until(_started(redis_url, handle.job_id), 60, "the Rekognition job to start")
    # When local_rekognition crashes and comes back a minute later on the same port and data dir
    server.stop(signal.SIGKILL)
    time.sleep(OUTAGE_S)  # the outage itself: the fault's length, not a wait for anything to happen
    back = start_local_rekognition(server.data_dir, "--port", server.url.rpartition(":")[2])
    # Then the job ends with every face of the one Rekognition job it started, published once
    envelope = fq.result(handle, timeout_s=180)
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    assert [face["Timestamp"] for face in (envelope.response or {})["Faces"]] == list(range(0, 2000, 200))
    assert _published(fq, handle.job_id) == 1
    assert _rekognition_jobs(back, "clips/outage.mp4") == 1


def test_a_video_job_outlives_a_spell_of_server_errors(
    video_stack: tuple[FaceQueue, LocalRekognitionProcess, Callable[..., WorkerProcess]],
    redis_url: str,
    moto_s3_url: str,
    s3_bucket: str,
    http_faults: Callable[[str], HttpFaults],
) -> None:
    # Given a worker reaching local_rekognition through a fault proxy, with a video job under way
    fq, server, start = video_stack
    proxy = http_faults(server.url)
    start(proxy.url)
    video_clip_in_s3(s3_client(moto_s3_url), s3_bucket, "clips/errors.mp4", seconds=2)
    handle = fq.submit(face_detection(f"s3://{s3_bucket}/clips/errors.mp4"))
    wait_until(_started(redis_url, handle.job_id), 60, "the Rekognition job to start")
    # When every GetFaceDetection is answered 500 for a while, then the errors stop
    proxy.set("5xx", operations=["GetFaceDetection"])
    wait_until(lambda: proxy.stats().get("5xx:GetFaceDetection", 0) >= 8, 120, "eight polls answered 500")
    proxy.set("pass")
    # Then the job ends, published once, from the one Rekognition job
    envelope = fq.result(handle, timeout_s=180)
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    assert _published(fq, handle.job_id) == 1
    assert proxy.paid("StartFaceDetection") == 1
    assert _rekognition_jobs(server, "clips/errors.mp4") == 1


def test_a_video_job_fails_once_its_checks_failed_for_facequeue_video_outage_s(
    video_stack: tuple[FaceQueue, LocalRekognitionProcess, Callable[..., WorkerProcess]],
    redis_url: str,
    moto_s3_url: str,
    s3_bucket: str,
    http_faults: Callable[[str], HttpFaults],
) -> None:
    # Given a worker told to wait out at most 3 s of failing checks, reaching local_rekognition through a fault
    # proxy that answers every GetFaceDetection 500
    fq, server, start = video_stack
    proxy = http_faults(server.url)
    proxy.set("5xx", operations=["GetFaceDetection"])
    start(proxy.url, video_outage_s="3", max_attempts="1")
    video_clip_in_s3(s3_client(moto_s3_url), s3_bucket, "clips/short-outage.mp4", seconds=2)
    # When its video job's checks keep failing
    envelope = fq.result(fq.submit(face_detection(f"s3://{s3_bucket}/clips/short-outage.mp4")), timeout_s=120)
    # Then the job fails with the checks' error after a few of them, not after the default 15 minutes
    assert envelope.status is JobStatus.FAILED and envelope.error is not None, envelope
    assert envelope.error.code == "InternalServerError" and envelope.error.retryable
    assert 2 <= proxy.stats().get("5xx:GetFaceDetection", 0) < 20


def test_retrying_a_video_job_whose_answers_were_lost_reuses_its_rekognition_job(
    video_stack: tuple[FaceQueue, LocalRekognitionProcess, Callable[..., WorkerProcess]],
    moto_s3_url: str,
    s3_bucket: str,
    http_faults: Callable[[str], HttpFaults],
) -> None:
    # Given a worker reaching local_rekognition through a fault proxy that drops every StartFaceDetection answer
    # (the call reaches Rekognition, which starts the job; the worker never hears of it)
    fq, server, start = video_stack
    proxy = http_faults(server.url)
    proxy.set("cut", operations=["StartFaceDetection"])
    start(proxy.url)
    video_clip_in_s3(s3_client(moto_s3_url), s3_bucket, "clips/lost.mp4", seconds=2)
    # When the job fails for want of an answer, and is retried from the dead letters once the network heals
    failed = fq.result(fq.submit(face_detection(f"s3://{s3_bucket}/clips/lost.mp4")), timeout_s=120)
    assert failed.status is JobStatus.FAILED and failed.error is not None and failed.error.retryable, failed.error
    assert _rekognition_jobs(server, "clips/lost.mp4") == 1
    proxy.set("pass")
    retried = fq.retry_dead([failed.job_id])
    assert retried is not None
    [envelope] = fq.wait(retried.batch_id, timeout_s=180)
    # Then the retry succeeds with the Rekognition job the first attempt started, not a second one
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    assert _rekognition_jobs(server, "clips/lost.mp4") == 1
