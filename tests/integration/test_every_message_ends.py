"""Every entry a worker takes ends as a result or a dead letter with a code (issue 25, defects 1, 2 and 5): whatever
it holds, however deep, large or oddly encoded, and whatever Celery thinks of it; the worker stays up."""

from __future__ import annotations

import datetime
import json
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from producer.contract import VIDEO_POLL_TASK, Operation, dead_letter_key, queue_for, result_key
from producer.video import face_detection
from testmedia.photos import grace_hopper
from tests.fixtures.aws import s3_client
from tests.fixtures.redis import RedisServer, wait_until
from tests.fixtures.workers import WorkerProcess, worker_environment
from tests.integration.test_hostile_queue_entries import _kombu_entry, _refused_on
from tests.video_jobs import video_clip_in_s3

pytestmark = pytest.mark.timeout(240)

DEEP = 100_000


def _deep_kombu_entry(queue: str) -> str:
    """A kombu-shaped entry with a 100,000-deep array among its headers."""
    entry = json.loads(_kombu_entry("e30=", queue))
    entry["headers"]["nested"] = "@@"
    return json.dumps(entry).replace('"@@"', "[" * DEEP + "]" * DEEP)


HOSTILE: list[object] = [
    pytest.param(
        lambda queue: "[" * 1000 + "]" * 1000,
        id="array-1000-deep",
    ),
    pytest.param(
        _deep_kombu_entry,
        id="kombu-shaped-100000-deep",
    ),
    pytest.param(lambda queue: b"\xff\xfe\x00not utf-8 \xc3\x28", id="not-utf-8"),
    # Found by make chaos (seed 25): "%%%" decodes from base64 to no bytes, which kombu hands Celery undecoded, and
    # Celery's `'args' in message.payload` raises TypeError, an unrecoverable error: the worker exits.
    pytest.param(lambda queue: _kombu_entry("%%%", queue), id="body-decodes-to-nothing"),
    pytest.param(
        lambda queue: json.dumps({"properties": {}, "body": "x" * 70_000}).encode("utf-16"),
        id="utf-16",
    ),
]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own: a worker may die here, and refused letters are counted exactly."""
    server = RedisServer(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("make_entry", HOSTILE)
def test_an_entry_that_does_not_parse_is_a_bounded_dead_letter_and_the_worker_lives(
    make_entry: Callable[[str], str | bytes],
    own_redis: RedisServer,
    local_rekognition_url: str,
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a worker on a Redis of its own
    queue = f"deep-{uuid.uuid4().hex[:8]}"
    worker = start_worker(worker_environment(own_redis.url, local_rekognition_url, moto_s3_url, queue))
    target = queue_for(queue, Operation.DETECT_FACES)
    client = redis.Redis.from_url(own_redis.url)
    # When an entry no producer makes lands ahead of a good job
    client.lpush(target, make_entry(target))
    with FaceQueue(ProducerSettings(redis_url=own_redis.url, queue=queue)) as fq:  # type: ignore[arg-type]
        handle = fq.submit(jobs.detect_faces(grace_hopper()))
        wait_until(lambda: not worker.alive or client.exists(result_key(handle.job_id)), 90, "the job or an exit")
        # Then the worker lives on, the good job runs, and the entry is one dead letter of a few KB with a code
        assert worker.alive, worker.output()[-3000:]
        assert fq.result(handle, timeout_s=5).status is JobStatus.SUCCEEDED
    assert "Unrecoverable error" not in worker.output()
    refused = _refused_on(client, target)
    assert [d["envelope"]["error"]["code"] for d in refused] == ["MalformedMessage"]  # type: ignore[index]
    assert all(len(json.dumps(d)) < 8192 for d in refused)


@pytest.fixture
def sender(redis_url: str) -> Iterator[Celery]:
    """A bare Celery app: what a service that knows only the task names and the JSON contract would send with."""
    app = Celery("sender", broker=redis_url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"])
    yield app
    app.close()


def _list_faces_job() -> dict[str, object]:
    # A job without images: nothing to store in Redis before sending it by hand.
    return jobs.list_faces(f"absent-{uuid.uuid4().hex[:8]}").job.model_dump(mode="json")


def test_a_message_that_expired_on_the_queue_ends_as_a_dead_letter(
    sender: Celery, redis_url: str, worker_queue: str, worker: WorkerProcess
) -> None:
    # Given a job sent with a Celery expiry that has passed by the time a worker takes it
    job = _list_faces_job()
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    sender.send_task(
        "facequeue.list_faces", args=[job], queue=queue_for(worker_queue, Operation.LIST_FACES), expires=past
    )
    # When the worker takes it
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue)) as fq:  # type: ignore[arg-type]
        envelope = fq.result(str(job["job_id"]), timeout_s=60)
        # Then it is a failed result saying it expired, without a call, and a dead letter
        assert (envelope.status, envelope.error.code, envelope.attempts) == (JobStatus.FAILED, "JobExpired", 0)  # type: ignore[union-attr]
        assert "expire" in envelope.error.message  # type: ignore[union-attr]
        assert fq.redis.exists(dead_letter_key(str(job["job_id"]))) == 1
    assert worker.alive


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        pytest.param("extra", {}, id="extra-positional"),
        pytest.param(None, {"priority_boost": 3}, id="unexpected-keyword"),
    ],
)
def test_a_message_with_arguments_the_task_does_not_take_ends_as_a_dead_letter(
    args: str | None,
    kwargs: dict[str, object],
    sender: Celery,
    redis_url: str,
    worker_queue: str,
    worker: WorkerProcess,
) -> None:
    # Given a valid job sent with an argument no facequeue task takes
    job = _list_faces_job()
    sent = [job, args] if args is not None else [job]
    sender.send_task(
        "facequeue.list_faces", args=sent, kwargs=kwargs, queue=queue_for(worker_queue, Operation.LIST_FACES)
    )
    # When the worker takes it
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue)) as fq:  # type: ignore[arg-type]
        envelope = fq.result(str(job["job_id"]), timeout_s=60)
        # Then it is refused as an invalid job naming what was wrong, without a call, and kept as a dead letter
        assert (envelope.status, envelope.error.code, envelope.attempts) == (JobStatus.FAILED, "InvalidJob", 0)  # type: ignore[union-attr]
        assert "argument" in envelope.error.message  # type: ignore[union-attr]
        assert fq.redis.exists(dead_letter_key(str(job["job_id"]))) == 1
    assert worker.alive


def test_a_video_poll_that_does_not_parse_ends_as_a_dead_letter(
    sender: Celery, redis_url: str, worker_queue: str, worker: WorkerProcess
) -> None:
    # Given a poll message no worker sent (what anyone who can reach the queue could push)
    task_id = uuid.uuid4().hex
    queue = queue_for(worker_queue, Operation.START_FACE_DETECTION)
    sender.send_task(VIDEO_POLL_TASK, args=[{"video_job_id": "x"}], queue=queue, task_id=task_id)
    # When a worker takes it, then it is a failed result under its task id and a dead letter
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue)) as fq:  # type: ignore[arg-type]
        envelope = fq.result(task_id, timeout_s=60)
        assert (envelope.status, envelope.error.code) == (JobStatus.FAILED, "InvalidJob")  # type: ignore[union-attr]
        assert fq.redis.exists(dead_letter_key(task_id)) == 1
    assert worker.alive


def _peak_rss_kb(worker: WorkerProcess) -> int:
    """The worker process's peak resident set (VmHWM), in kB."""
    assert worker.process is not None
    status = Path(f"/proc/{worker.process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


OVERSIZED_BYTES = 200 * 2**20


def test_an_oversized_entry_is_refused_from_its_length_without_reading_it_whole(
    own_redis: RedisServer,
    local_rekognition_url: str,
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a worker that has run one job (its clients and buffers are made) on a Redis of its own
    queue = f"huge-{uuid.uuid4().hex[:8]}"
    worker = start_worker(worker_environment(own_redis.url, local_rekognition_url, moto_s3_url, queue), concurrency=2)
    target = queue_for(queue, Operation.DETECT_FACES)
    client = redis.Redis.from_url(own_redis.url)
    with FaceQueue(ProducerSettings(redis_url=own_redis.url, queue=queue)) as fq:  # type: ignore[arg-type]
        assert fq.result(fq.submit(jobs.detect_faces(grace_hopper())), timeout_s=90).status is JobStatus.SUCCEEDED
        before_kb = _peak_rss_kb(worker)
        # When a 200 MB entry is pushed, then a good job
        client.lpush(target, _kombu_entry("A" * OVERSIZED_BYTES, target))
        envelope = fq.result(fq.submit(jobs.detect_faces(grace_hopper())), timeout_s=120)
    # Then the entry is refused as too large, the job after it runs, and the worker's peak memory grew by far less
    # than the entry (it was refused from its length: on a worker reading it whole, the peak grows by 4x its size)
    assert envelope.status is JobStatus.SUCCEEDED
    refused = _refused_on(client, target)
    assert [d["envelope"]["error"]["code"] for d in refused] == ["MessageTooLarge"]  # type: ignore[index]
    assert refused[0]["job"]["bytes"] > OVERSIZED_BYTES  # type: ignore[index]
    assert all(len(json.dumps(d)) < 8192 for d in refused)
    grown_mb = (_peak_rss_kb(worker) - before_kb) / 1024
    assert grown_mb < 32, f"peak RSS grew by {grown_mb:.0f} MB for a {OVERSIZED_BYTES >> 20} MB entry"
    assert worker.alive
    worker.stop(signal.SIGTERM)


def test_video_jobs_submitted_together_each_end_with_their_own_result(
    redis_url: str, worker_queue: str, worker: WorkerProcess, moto_s3_url: str, s3_bucket: str
) -> None:
    # Given two video jobs submitted in one call (a bulk submit packs consecutive jobs of one operation together)
    video_clip_in_s3(s3_client(moto_s3_url), s3_bucket, "clips/together.mp4", seconds=1)
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue)) as fq:  # type: ignore[arg-type]
        batch = fq.submit_many([face_detection(f"s3://{s3_bucket}/clips/together.mp4") for _ in range(2)])
        # When the worker has run them, then each has its own successful result
        results = fq.wait(batch.batch_id, timeout_s=120)
    assert sorted(r.job_id for r in results) == sorted(batch.job_ids)
    assert [r.status for r in results] == [JobStatus.SUCCEEDED] * 2, [r.error for r in results]
