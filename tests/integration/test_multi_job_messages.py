"""Several jobs in one task message: how bulk submits pack them, how workers run and weigh them, what senders get."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable

import pytest
import redis
from celery import Celery

from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from producer.contract import (
    MAX_JOBS_PER_MESSAGE,
    TASK_NAMES,
    Operation,
    ResultEnvelope,
    dead_letter_key,
    queue_for,
    result_key,
)
from testmedia.photos import grace_hopper
from tests.fixtures.chaos import PHOTO, account
from tests.fixtures.workers import WorkerProcess

pytestmark = pytest.mark.timeout(180)


def _message_args(raw: bytes) -> list[object]:
    envelope = json.loads(raw)
    body = json.loads(base64.b64decode(envelope["body"]))
    return body[0]  # type: ignore[no-any-return]


def test_a_bulk_submit_packs_consecutive_jobs_of_one_operation(redis_url: str) -> None:
    # Given a producer packing up to 4 jobs per message, on a queue no worker reads
    queue = f"packing-{uuid.uuid4().hex[:8]}"
    settings = ProducerSettings(redis_url=redis_url, queue=queue, jobs_per_message=4)  # type: ignore[arg-type]
    with FaceQueue(settings) as fq:
        # When it submits 10 DetectFaces, then 2 ListFaces, then 1 DetectFaces
        prepared = [jobs.detect_faces(f"s3://photos/{i}.jpg") for i in range(10)]
        prepared += [jobs.list_faces("people"), jobs.list_faces("people"), jobs.detect_faces("s3://photos/x.jpg")]
        batch = fq.submit_many(prepared)
        detect = [_message_args(m) for m in reversed(fq.redis.lrange(queue_for(queue, Operation.DETECT_FACES), 0, -1))]
        listing = [_message_args(m) for m in fq.redis.lrange(queue_for(queue, Operation.LIST_FACES), 0, -1)]
    # Then each operation's queue holds messages of at most 4 jobs, in order, one job per message only when alone
    assert [len(a[0]) if isinstance(a[0], list) else 1 for a in detect] == [4, 4, 2, 1]
    assert [len(a[0]) for a in listing] == [2]
    sent = [j["job_id"] for a in detect for j in (a[0] if isinstance(a[0], list) else [a[0]])]  # type: ignore[index]
    assert sent == [*batch.job_ids[:10], batch.job_ids[12]]


def test_every_job_of_a_packed_batch_is_published_once_and_only_by_facequeue(stack: Callable[..., tuple]) -> None:
    # Given a batch of 30 distinct photos, 16 to a message (the default), queued before its worker starts
    fq, standin, start = stack("--delay-ms", "50")
    batch = fq.submit_many(jobs.detect_faces(PHOTO + i.to_bytes(2, "big")) for i in range(30))
    queued = fq.redis.lrange(queue_for(fq.settings.queue, Operation.DETECT_FACES), 0, -1)
    task_ids = [json.loads(raw)["headers"]["id"] for raw in queued]
    # When one worker runs the batch
    start(concurrency=16)
    results = fq.wait(batch.batch_id, timeout_s=120)
    # Then every job has exactly one result of its own, and each called Rekognition once
    assert account(fq.redis, fq, batch) == {"submitted": 30, "succeeded": 30, "failed": 0, "lost": 0, "duplicated": 0}
    assert sorted(r.job_id for r in results) == sorted(batch.job_ids)
    assert standin.stats()["calls"] == 30
    # And Celery's backend holds no second copy under the two messages' task ids, which nobody was given
    assert len(task_ids) == 2
    assert fq.redis.exists(*(f"celery-task-meta-{task_id}" for task_id in task_ids)) == 0


def test_a_worker_weighs_a_message_by_its_jobs(stack: Callable[..., tuple]) -> None:
    # Given a worker running 8 jobs at once, a slow endpoint, and 64 jobs sent 8 to a message
    fq, _standin, start = stack("--delay-ms", "300")
    start(concurrency=8)
    with FaceQueue(fq.settings.model_copy(update={"jobs_per_message": 8})) as packer:
        batch = packer.submit_many(jobs.detect_faces(PHOTO + i.to_bytes(2, "big")) for i in range(64))
    # When we watch kombu's reservations (the unacked hash) for our queue until the batch is done
    queue = queue_for(fq.settings.queue, Operation.DETECT_FACES)
    most = 0
    deadline = time.monotonic() + 120
    while not fq.progress(batch.batch_id).finished and time.monotonic() < deadline:
        reserved = [json.loads(raw) for raw in fq.redis.hvals("unacked")]
        mine = [r for r in reserved if r[0]["properties"]["delivery_info"]["routing_key"] == queue]
        most = max(most, len(mine))
        time.sleep(0.02)  # sampling, not synchronisation: the loop ends on the batch's own progress
    # Then it held one message (8 jobs) at a time, plus one taken before the count caught up, never 8 messages
    assert fq.progress(batch.batch_id).succeeded == 64
    assert 1 <= most <= 2


@pytest.fixture
def sender(redis_url: str) -> Celery:
    """A bare Celery app, as a service that knows only the task names and the JSON contract would have."""
    app = Celery("sender", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_accept_content=["json"])
    return app


def test_a_list_sent_by_task_name_runs_each_job_on_its_own(
    sender: Celery, redis_url: str, worker_queue: str, worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    # Given a list of two jobs, one good and one that breaks the contract, sent by task name
    image, blobs = jobs.image_source(grace_hopper())
    redis_client.set(image.key, next(iter(blobs.values())), ex=600)
    good = {"job_id": uuid.uuid4().hex, "operation": "DetectFaces", "image": image.model_dump()}
    bad = {"job_id": uuid.uuid4().hex, "operation": "DetectFaces", "image": {"kind": "s3", "bucket": "b!", "key": ""}}
    async_result = sender.send_task(TASK_NAMES[Operation.DETECT_FACES], args=[[good, bad]], queue=worker_queue)
    # When the worker has run the message
    envelopes = [ResultEnvelope.model_validate(e) for e in async_result.get(timeout=60)]
    # Then Celery's result is the list of both envelopes, and each job was published under its own id
    assert [e.job_id for e in envelopes] == [good["job_id"], bad["job_id"]]
    assert envelopes[0].status is JobStatus.SUCCEEDED and envelopes[0].face_count() == 1
    assert envelopes[1].status is JobStatus.FAILED and envelopes[1].error.code == "InvalidJob"  # type: ignore[union-attr]
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue)) as fq:  # type: ignore[arg-type]
        assert fq.get_result(good["job_id"]) == envelopes[0]
    assert worker.alive


def test_a_list_over_the_limit_is_refused_whole_once(
    sender: Celery, redis_url: str, worker_queue: str, worker: WorkerProcess
) -> None:
    # Given a message carrying 3,000 jobs (the contract allows 16), each with an id a waiter might hold
    listed = [
        {"job_id": uuid.uuid4().hex, "operation": "DetectFaces", "image": {"kind": "s3", "bucket": "b", "key": "k"}}
        for _ in range(3000)
    ]
    async_result = sender.send_task(TASK_NAMES[Operation.DETECT_FACES], args=[listed], queue=worker_queue)
    envelopes = [ResultEnvelope.model_validate(e) for e in async_result.get(timeout=60)]
    # Then the message gets one failed result, under its task id, saying why; none reached Rekognition
    assert [(e.job_id, e.status, e.error.code, e.attempts) for e in envelopes] == [  # type: ignore[union-attr]
        (async_result.id, JobStatus.FAILED, "InvalidJob", 0)
    ]
    assert f"at most {MAX_JOBS_PER_MESSAGE} jobs; this one carried 3000" in envelopes[0].error.message  # type: ignore[union-attr]
    # And Redis holds one bounded dead letter for it, not 3,000 results and 3,000 dead letters
    client = redis.Redis.from_url(redis_url)
    assert client.exists(*(result_key(j["job_id"]) for j in listed)) == 0
    assert client.exists(*(dead_letter_key(j["job_id"]) for j in listed)) == 0
    letter = client.get(dead_letter_key(async_result.id))
    assert letter is not None and len(letter) < 8192
    assert json.loads(letter)["job"]["bytes"] > 100_000
    assert worker.alive


def test_a_photo_reused_across_submit_chunks_keeps_its_blob_until_its_last_job(stack: Callable[..., tuple]) -> None:
    # Given a producer sending 5 jobs per round trip, and a running worker
    fq, standin, start = stack("--delay-ms", "5")
    start(concurrency=8)
    photo = PHOTO + uuid.uuid4().bytes
    first_chunk: list[str] = []

    def slow_generator():  # type: ignore[no-untyped-def]
        # The same photo 15 times; after the first chunk, the generator waits until the worker has finished it
        # (a slow producer: reading files, rendering pages), so the first chunk's last success comes first.
        for i in range(15):
            if i == 5:
                for job_id in first_chunk:
                    assert fq.result(job_id, timeout_s=60).status is JobStatus.SUCCEEDED
            prepared = jobs.detect_faces(photo)
            if i < 5:
                first_chunk.append(prepared.job.job_id)
            yield prepared

    with FaceQueue(fq.settings.model_copy(update={"submit_chunk": 5})) as chunked:
        # When it submits them as one batch
        batch = chunked.submit_many(slow_generator())
        results = chunked.wait(batch.batch_id, timeout_s=60)
    # Then every job found its photo: the later chunks stored it again after the first released it
    failures = [r.error.code for r in results if r.error is not None]
    assert failures == [] and len(results) == 15
    assert account(fq.redis, fq, batch)["lost"] == 0
    assert standin.stats()["calls"] == 15
