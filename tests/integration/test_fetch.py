"""Taking a message: off the queue and into kombu's unacked hash in one step, and an idle worker woken by Redis.

The take script runs on the tests' real Redis, against messages kombu itself published; the wake-up is checked on
a real worker process whose own periodic look is set far beyond the test's wait.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
import redis
from kombu import Connection, Exchange, Queue

from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from testmedia.photos import grace_hopper
from tests.fixtures.workers import WorkerProcess, worker_environment
from worker.broker.take import TAKE_SCRIPT

pytestmark = pytest.mark.timeout(120)


def _take(client: redis.Redis, unacked: str, index: str, *queues: str, limit: int = 2**20) -> list | None:
    return client.eval(TAKE_SCRIPT, 2 + len(queues), unacked, index, *queues, "1700000000.5", limit)  # type: ignore[return-value]


def test_the_take_script_records_the_entry_kombu_would(redis_url: str, redis_client: redis.Redis) -> None:
    # Given a message kombu itself published to a queue
    name = f"take-{uuid.uuid4().hex[:8]}"
    unacked, index = f"{name}:unacked", f"{name}:unacked_index"
    with Connection(redis_url) as conn:
        queue = Queue(name, Exchange(name), routing_key=name)
        conn.Producer().publish({"é": [], "n": 1.25}, exchange=queue.exchange, routing_key=name, declare=[queue])
    raw = redis_client.lindex(name, 0)
    assert raw is not None
    # When the take script takes it
    reply = _take(redis_client, unacked, index, f"{name}-empty", name)
    # Then it returns the queue and the entry byte for byte, and the unacked entry is kombu's [payload, exchange, key]
    assert reply is not None
    key, item, tag = reply
    assert (key, item) == (name.encode(), raw)
    payload = json.loads(raw)
    assert tag.decode() == payload["properties"]["delivery_tag"]
    assert json.loads(redis_client.hget(unacked, tag)) == [payload, name, name]  # type: ignore[arg-type]
    assert redis_client.zscore(index, tag) == 1700000000.5
    assert redis_client.llen(name) == 0
    # And with every queue empty it takes nothing
    assert _take(redis_client, unacked, index, name) is None
    redis_client.delete(unacked, index)


@pytest.mark.parametrize(
    "entry",
    [b"not json", b'{"properties": 1}', b'{"properties": {"delivery_tag": 7}}', b'{"properties": {}}'],
)
def test_an_entry_that_is_not_a_kombu_message_is_taken_unrecorded(redis_client: redis.Redis, entry: bytes) -> None:
    # Given a hand-made queue entry the transport will refuse as a dead letter
    name = f"take-{uuid.uuid4().hex[:8]}"
    redis_client.lpush(name, entry)
    # When it is taken
    reply = _take(redis_client, f"{name}:unacked", f"{name}:index", name)
    # Then it is handed over as it is, and nothing is recorded that kombu would later redeliver for ever
    assert reply is not None and reply[1] == entry and reply[2] is None
    assert not redis_client.exists(f"{name}:unacked", f"{name}:index")


def test_an_entry_larger_than_a_message_may_be_is_not_decoded(redis_client: redis.Redis) -> None:
    # Given an entry past the size limit (the transport refuses it unread)
    name = f"take-{uuid.uuid4().hex[:8]}"
    redis_client.lpush(name, json.dumps({"properties": {"delivery_tag": "t", "delivery_info": {}}, "pad": "x" * 2000}))
    # When it is taken with a 1,000-byte limit
    reply = _take(redis_client, f"{name}:unacked", f"{name}:index", name, limit=1000)
    # Then Redis did not decode it: nothing recorded
    assert reply is not None and reply[2] is None
    assert not redis_client.exists(f"{name}:unacked")


def test_an_idle_worker_is_woken_by_redis_when_a_job_arrives(
    redis_url: str,
    local_rekognition_url: str,
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given an idle worker that looks at the queues on its own only once an hour
    queue = f"facequeue-wake-{uuid.uuid4().hex[:6]}"
    env = worker_environment(redis_url, local_rekognition_url, moto_s3_url, queue, idle_recheck_s="3600")
    worker = start_worker(env)
    fq = FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue))  # type: ignore[arg-type]
    # When jobs arrive, one at a time, each after the worker found every queue empty
    outcomes = []
    for _ in range(3):
        handle = fq.submit(jobs.detect_faces(grace_hopper().read_bytes()))
        outcomes.append(fq.result(handle.job_id, timeout_s=30))
    # Then Redis woke it for each: all done well within the hour
    assert [r.status for r in outcomes] == [JobStatus.SUCCEEDED] * 3
    assert "CLIENT TRACKING" not in worker.output()
    fq.close()


def test_a_take_redis_refuses_to_record_leaves_the_message_queued(redis_url: str, redis_client: redis.Redis) -> None:
    # Given a queued kombu message, and a Redis user that may pop the queue but not write kombu's unacked keys
    # (an ACL written before the unacked pattern, or a Redis refusing writes)
    name = f"take-{uuid.uuid4().hex[:8]}"
    with Connection(redis_url) as conn:
        queue = Queue(name, Exchange(name), routing_key=name)
        conn.Producer().publish({"job": 1}, exchange=queue.exchange, routing_key=name, declare=[queue])
    user, password = f"take-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    redis_client.execute_command("ACL", "SETUSER", user, "on", f">{password}", f"~{name}", "+@all")
    limited = redis.Redis.from_url(redis_url.replace("redis://", f"redis://{user}:{password}@"))
    try:
        # When it tries to take the message
        with pytest.raises(redis.exceptions.NoPermissionError):
            _take(limited, f"{name}:unacked", f"{name}:unacked_index", name)
        # Then Redis refused the take whole: the message is still queued, not popped and lost
        assert redis_client.llen(name) == 1
    finally:
        limited.close()
        redis_client.acl_deluser(user)
        redis_client.delete(name)
