"""Transient failures are retried with backoff, up to a cap; permanent ones fail once. Against a fault-injecting
protocol-level stand-in (bench/rekognition_standin.py), since real Rekognition cannot be told to misbehave."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from testmedia.photos import grace_hopper
from tests.fixtures.standin import StartStandIn
from tests.fixtures.workers import WorkerProcess, worker_environment

pytestmark = pytest.mark.timeout(180)

PHOTO = grace_hopper().read_bytes()
FAST_RETRIES = {"max_attempts": "4", "backoff_base_s": "0.01", "backoff_cap_s": "0.05", "cache_ttl_s": "0"}


@pytest.fixture
def pipeline(
    redis_url: str, moto_s3_url: str, start_standin: StartStandIn, start_worker: Callable[..., WorkerProcess]
) -> Iterator[Callable[..., tuple[FaceQueue, object]]]:
    """Start a stand-in with the given faults and a worker on a queue of its own; return a client and the stand-in."""
    clients: list[FaceQueue] = []

    def make(*standin_args: str, **settings: str) -> tuple[FaceQueue, object]:
        standin = start_standin("--delay-ms", "5", *standin_args)
        queue = f"faults-{uuid.uuid4().hex[:8]}"
        start_worker(worker_environment(redis_url, standin.url, moto_s3_url, queue, **{**FAST_RETRIES, **settings}))
        client = FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue))  # type: ignore[arg-type]
        clients.append(client)
        return client, standin

    yield make
    for client in clients:
        client.close()


def test_throttling_and_5xx_bursts_are_retried_until_they_pass(
    pipeline: Callable[..., tuple[FaceQueue, object]],
) -> None:
    # Given an endpoint that throttles 30% of calls and answers a burst of two 5xx every 7 calls
    fq, standin = pipeline(
        "--throttle-share", "0.3", "--error-burst-every", "7", "--error-burst-len", "2", max_attempts="10"
    )
    batch = fq.submit_many(jobs.detect_faces(PHOTO, label=str(i)) for i in range(30))
    results = fq.wait(batch.batch_id, timeout_s=120)
    stats = standin.stats()  # type: ignore[attr-defined]
    # Then no job was wrongly failed, and some needed more than one attempt
    assert [r.status for r in results] == [JobStatus.SUCCEEDED] * 30, [r.error for r in results if r.error]
    assert stats["ThrottlingException"] > 0 and stats["InternalServerError"] > 0
    assert sum(r.attempts for r in results) == stats["calls"]
    assert max(r.attempts for r in results) > 1
    assert all(r.attempts <= 10 for r in results)


def test_retries_are_capped_and_the_failure_says_it_was_transient(
    pipeline: Callable[..., tuple[FaceQueue, object]],
) -> None:
    # Without the adaptive rate (FACEQUEUE_ADAPTIVE_RATE=false), a throttle is a transient error like any other
    fq, standin = pipeline("--throttle-share", "1.0", adaptive_rate="false")
    envelope = fq.result(fq.submit(jobs.detect_faces(PHOTO)), timeout_s=60)
    assert envelope.status is JobStatus.FAILED and envelope.error is not None
    assert envelope.error.code == "ThrottlingException"
    assert envelope.error.retryable is True
    assert envelope.attempts == 4
    assert standin.stats()["calls"] == 4  # type: ignore[attr-defined]


def test_throttles_use_no_attempt_and_slow_down_until_the_jobs_deadline(
    pipeline: Callable[..., tuple[FaceQueue, object]],
) -> None:
    # Given an endpoint that throttles every call, and jobs with a 4 s deadline
    fq, standin = pipeline("--throttle-share", "1.0", job_timeout_s="4")
    envelope = fq.result(fq.submit(jobs.detect_faces(PHOTO)), timeout_s=60)
    calls = standin.stats()["calls"]  # type: ignore[attr-defined]
    # Then the job kept trying past its 4 attempts, slower and slower, and its deadline ended it
    assert envelope.error is not None and envelope.error.code == "JobTimeout" and envelope.error.retryable
    # (the deadline may cut the last call on its way, before the endpoint counted it)
    assert 4 < calls < 40 and calls <= envelope.attempts <= calls + 1


def test_a_stalled_call_times_out_and_is_retried(pipeline: Callable[..., tuple[FaceQueue, object]]) -> None:
    # Given an endpoint where every call stalls past the client's 1 s read timeout
    fq, _ = pipeline("--stall-share", "1.0", "--stall-s", "3", rekognition_read_timeout_s="1", max_attempts="2")
    envelope = fq.result(fq.submit(jobs.detect_faces(PHOTO)), timeout_s=60)
    assert envelope.status is JobStatus.FAILED and envelope.error is not None
    assert envelope.error.code == "Timeout" and envelope.error.retryable is True
    assert envelope.attempts == 2


def test_a_200_answer_that_is_not_json_is_retried_and_never_cached(
    pipeline: Callable[..., tuple[FaceQueue, object]],
) -> None:
    # Given an endpoint whose first answer is 200 OK with an HTML body (a proxy's error page, a cut-off body)
    fq, standin = pipeline("--garble-first", "1", cache_ttl_s="600")
    photo = PHOTO + uuid.uuid4().bytes  # the cache is keyed by content: a photo of this test's own
    # When a job runs, and then another on the same photo
    first = fq.result(fq.submit(jobs.detect_faces(photo)), timeout_s=60)
    second = fq.result(fq.submit(jobs.detect_faces(photo)), timeout_s=60)
    # Then the garbled answer was retried, not taken for "no faces", and only the real answer was cached
    assert first.status is JobStatus.SUCCEEDED and first.attempts == 2 and not first.cached
    assert first.face_count() > 0
    assert second.cached and second.response == first.response
    assert standin.stats()["calls"] == 2  # type: ignore[attr-defined]


def test_an_endpoint_that_only_answers_garbage_fails_retryable_and_caches_nothing(
    pipeline: Callable[..., tuple[FaceQueue, object]],
) -> None:
    fq, standin = pipeline("--garble-first", "1000", cache_ttl_s="600")
    photo = PHOTO + uuid.uuid4().bytes
    first = fq.result(fq.submit(jobs.detect_faces(photo)), timeout_s=60)
    assert first.status is JobStatus.FAILED and first.error is not None
    assert first.error.code == "MalformedResponse" and first.error.retryable
    assert "not" in first.error.message and first.response is None
    # Nothing was cached: the next job on the photo asks Rekognition again
    second = fq.result(fq.submit(jobs.detect_faces(photo)), timeout_s=60)
    assert not second.cached and second.attempts == 4
    assert standin.stats()["calls"] == 8  # type: ignore[attr-defined]


class SlowDownS3(ThreadingHTTPServer):
    """An S3 endpoint that answers every request 503 SlowDown, as S3 does under a burst, and counts them."""

    requests = 0

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SlowDown)

    @property
    def url(self) -> str:
        """The endpoint URL (for AWS_ENDPOINT_URL_S3)."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class _SlowDown(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert isinstance(self.server, SlowDownS3)
        self.server.requests += 1
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def slow_down_s3() -> Iterator[SlowDownS3]:
    """A SlowDownS3 serving from a thread for the test."""
    server = SlowDownS3()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_s3_hiccups_while_fetching_an_image_are_retried_up_to_the_cap(
    redis_url: str,
    local_rekognition_url: str,
    slow_down_s3: SlowDownS3,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a worker learning the shared rate (the default) whose S3 answers every read 503 SlowDown
    queue = f"s3-faults-{uuid.uuid4().hex[:8]}"
    env = worker_environment(redis_url, local_rekognition_url, slow_down_s3.url, queue, **FAST_RETRIES)
    start_worker({**env, "FACEQUEUE_JOB_TIMEOUT_S": "5"})
    fq = FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue))  # type: ignore[arg-type]
    try:
        # When a job on an S3 photo runs
        envelope = fq.result(fq.submit(jobs.detect_faces("s3://photos/grace.jpg")), timeout_s=60)
    finally:
        fq.close()
    # Then its reads were retried up to FACEQUEUE_MAX_ATTEMPTS, as Rekognition's calls are, and it failed saying why
    # (S3's code, retryable), not after FACEQUEUE_JOB_TIMEOUT_S of uncounted retries
    assert envelope.status is JobStatus.FAILED and envelope.error is not None
    assert (envelope.error.code, envelope.error.retryable) == ("S3SlowDown", True), envelope.error
    assert slow_down_s3.requests == 4
    assert envelope.attempts == 0  # no Rekognition call was made
