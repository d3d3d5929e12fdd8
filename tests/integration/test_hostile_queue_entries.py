"""Hand-made queue entries (issue 13): what anyone who can LPUSH to a queue can send must not stop a worker, and
must not make Redis keep megabytes for a week."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from celery import Celery

from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from producer.contract import (
    DEAD_LETTERS_KEY,
    MAX_REFUSED_LETTERS,
    REFUSED_LETTERS_KEY,
    Operation,
    dead_letter_key,
    queue_for,
)
from testmedia.photos import grace_hopper
from tests.fixtures.redis import RedisServer, wait_until
from tests.fixtures.workers import WorkerProcess, worker_environment
from tests.integration.test_signing import make_identity

pytestmark = pytest.mark.timeout(180)


def _kombu_entry(body: str, queue: str) -> str:
    """A queue entry shaped like kombu's, whose body is whatever we say (kombu base64-decodes it)."""
    return json.dumps(
        {
            "body": body,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {"task": "facequeue.detect_faces", "id": uuid.uuid4().hex, "lang": "py"},
            "properties": {
                "body_encoding": "base64",
                "delivery_tag": uuid.uuid4().hex,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
            },
        }
    )


def _refused_on(client: redis.Redis, queue: str) -> list[dict[str, object]]:
    """The dead letters of entries refused unread on ``queue``."""
    ids = [i.decode() for i in client.zrange(DEAD_LETTERS_KEY, 0, -1)]
    letters = [json.loads(raw) for raw in client.mget([dead_letter_key(i) for i in ids]) if raw] if ids else []
    return [d for d in letters if isinstance(d["job"], dict) and d["job"].get("queue") == queue]


@pytest.mark.parametrize("signed", [False, True], ids=["plain", "signed"])
def test_malformed_queue_entries_are_kept_as_dead_letters_and_skipped(
    signed: bool,
    tmp_path: Path,
    redis_url: str,
    local_rekognition_url: str,
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a worker (signing or not) and a producer it trusts
    queue = f"hostile-{uuid.uuid4().hex[:8]}"
    signing: dict[str, str] = {}
    if signed:
        key, cert = make_identity(tmp_path, "both")
        signing = {"signing_key": key, "signing_cert": cert, "signing_cert_store": str(tmp_path / "*.pem")}
    worker = start_worker(worker_environment(redis_url, local_rekognition_url, moto_s3_url, queue, **signing))
    settings = ProducerSettings(redis_url=redis_url, queue=queue, **signing)  # type: ignore[arg-type]
    target = queue_for(queue, Operation.DETECT_FACES)
    client = redis.Redis.from_url(redis_url)
    # When three entries no producer makes land ahead of a good job: not JSON, a body that is not base64, no
    # properties at all
    client.lpush(target, "x")
    client.lpush(target, _kombu_entry("%%%x", target))
    client.lpush(target, json.dumps({"no": "properties"}))
    with FaceQueue(settings) as fq:
        envelope = fq.result(fq.submit(jobs.detect_faces(grace_hopper())), timeout_s=60)
    # Then the good job runs, the worker lives on, and each bad entry is a small dead letter saying what it was
    assert envelope.status is JobStatus.SUCCEEDED and envelope.face_count() == 1
    assert worker.alive, worker.output()[-3000:]
    refused = _refused_on(client, target)
    assert sorted(d["envelope"]["error"]["code"] for d in refused) == ["MalformedMessage"] * 3  # type: ignore[index]
    assert {d["job"]["head"] for d in refused} >= {"x", json.dumps({"no": "properties"})}  # type: ignore[index]
    assert worker.output().count("refused (MalformedMessage") == 3
    assert "Unrecoverable error" not in worker.output()


def test_an_oversized_entry_is_refused_unread_and_kept_small(
    redis_url: str, worker_queue: str, worker: WorkerProcess
) -> None:
    # Given a 9 MB queue entry (a message carries references; the largest real one is ~4.5 MB signed)
    target = queue_for(worker_queue, Operation.DETECT_FACES)
    client = redis.Redis.from_url(redis_url)
    huge = _kombu_entry("A" * (9 * 2**20), target)
    client.lpush(target, huge)
    # And a job after it that is 2 MB of fields the contract does not know
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue)) as fq:  # type: ignore[arg-type]
        sender = Celery("sender", broker=redis_url, set_as_current=False)
        junk = {"job_id": uuid.uuid4().hex, "operation": "DetectFaces", "junk": "j" * (2 * 2**20)}
        sender.send_task("facequeue.detect_faces", args=[junk], queue=target)
        # When the worker has taken both
        refused = fq.result(junk["job_id"], timeout_s=60)
    # Then the big entry is a dead letter of a few KB saying how big it was, the bad job's dead letter is as small,
    # and the worker lives on
    assert refused.status is JobStatus.FAILED and refused.error.code == "InvalidJob"  # type: ignore[union-attr]
    # (the session's queue: other tests' refusals may be there too; ours is the only entry this large)
    letters = [d for d in _refused_on(client, target) if d["job"]["bytes"] == len(huge)]  # type: ignore[index]
    assert [d["envelope"]["error"]["code"] for d in letters] == ["MessageTooLarge"]  # type: ignore[index]
    stored = client.get(dead_letter_key(junk["job_id"]))
    assert stored is not None and len(stored) < 8192
    assert all(len(json.dumps(d)) < 8192 for d in letters)
    assert worker.alive


def test_messages_celery_refuses_are_kept_as_dead_letters_too(
    tmp_path: Path,
    redis_url: str,
    local_rekognition_url: str,
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a signing worker, its trusted producer, and a rogue key it does not trust
    trusted, untrusted = tmp_path / "trusted", tmp_path / "untrusted"
    trusted.mkdir()
    untrusted.mkdir()
    key, cert = make_identity(trusted, "both")
    rogue_key, rogue_cert = make_identity(untrusted, "rogue")
    signing = {"signing_key": key, "signing_cert": cert, "signing_cert_store": str(trusted / "*.pem")}
    queue = f"refused-{uuid.uuid4().hex[:8]}"
    worker = start_worker(worker_environment(redis_url, local_rekognition_url, moto_s3_url, queue, **signing))
    target = queue_for(queue, Operation.DETECT_FACES)
    # When an unsigned job, a job signed by the rogue key and a task nobody registered arrive before a good job
    sender = Celery("unsigned", broker=redis_url, set_as_current=False)
    sender.conf.task_serializer = "json"
    sender.send_task("facequeue.detect_faces", args=[{}], queue=target)
    sender.send_task("facequeue.no_such_task", args=[{}], queue=target)
    rogue = {"signing_key": rogue_key, "signing_cert": rogue_cert, "signing_cert_store": str(untrusted / "*.pem")}
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue, **rogue)) as fq:  # type: ignore[arg-type]
        fq.submit(jobs.detect_faces(grace_hopper()))
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue, **signing)) as fq:  # type: ignore[arg-type]
        envelope = fq.result(fq.submit(jobs.detect_faces(grace_hopper())), timeout_s=60)
    # Then the good job runs, and each refused message is a small dead letter saying why
    assert envelope.status is JobStatus.SUCCEEDED
    client = redis.Redis.from_url(redis_url)
    refused = _refused_on(client, target)
    codes = sorted(d["envelope"]["error"]["code"] for d in refused)  # type: ignore[index]
    assert codes == ["RefusedMessage", "UndecodableMessage", "UnknownTask"], refused
    assert all(len(json.dumps(d)) < 8192 for d in refused)
    assert worker.alive


def test_a_flood_of_junk_keeps_a_bounded_number_of_dead_letters(
    tmp_path: Path,
    local_rekognition_url: str,
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a Redis of our own (the flood must not crowd other tests' dead letters) and its worker
    server = RedisServer(tmp_path)
    server.start()
    try:
        queue = f"flood-{uuid.uuid4().hex[:8]}"
        worker = start_worker(worker_environment(server.url, local_rekognition_url, moto_s3_url, queue))
        target = queue_for(queue, Operation.LIST_FACES)
        client = redis.Redis.from_url(server.url)
        # When ten times more junk entries than the dead letters kept for refused entries are pushed at once
        flood = MAX_REFUSED_LETTERS * 10
        client.lpush(target, *(f"junk {i}" for i in range(flood)))
        newest = f"junk {flood - 1}"
        wait_until(lambda: client.llen(target) == 0, 120, "the worker to read the flood")
        wait_until(lambda: newest in {d["job"]["head"] for d in _refused_on(client, target)}, 60, "the last letter")  # type: ignore[index]
        # Then only the newest MAX_REFUSED_LETTERS are kept, in the index and as dead letters, and the worker lives
        heads = {d["job"]["head"] for d in _refused_on(client, target)}  # type: ignore[index]
        assert client.zcard(REFUSED_LETTERS_KEY) == MAX_REFUSED_LETTERS
        assert client.zcard(DEAD_LETTERS_KEY) == MAX_REFUSED_LETTERS
        assert len(heads) == MAX_REFUSED_LETTERS and newest in heads and "junk 0" not in heads
        assert worker.alive
    finally:
        server.stop()
