"""Single-job messages that start in the same event-loop turn share the load stage's MGET (worker/reads.py), and
each still reads its own keys; callers asking for rate slots together share the round trip (issue 21, fleet cost)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable

import redis
import redis.asyncio as aredis

from producer.contract import JobStatus, Operation, ResultEnvelope, blob_key
from tests.fixtures.redis import RedisServer
from worker.pipeline import process
from worker.runtime import Runtime
from worker.settings import WorkerSettings
from worker.throttle import AdaptiveRate, Ticket


def test_jobs_of_different_messages_starting_together_share_one_read(start_redis: Callable[..., RedisServer]) -> None:
    # Given a fresh Redis (its command counts are this test's) and 40 single-job messages: half of their images are
    # in Redis but are no image (refused on their header, no Rekognition call), half have expired
    server = start_redis()
    client = redis.Redis.from_url(server.url)
    runtime = Runtime(WorkerSettings(redis_url=server.url, concurrency=4, cache_ttl_s=0))  # type: ignore[arg-type]
    payloads, present = [], set()
    for i in range(40):
        data = uuid.uuid4().bytes
        sha = hashlib.sha256(data).hexdigest()
        job_id = f"shared-read-{i}-{uuid.uuid4().hex[:6]}"
        if i % 2 == 0:
            client.set(blob_key(sha), data, ex=600)
            present.add(job_id)
        image = {"kind": "blob", "sha256": sha, "size_bytes": len(data)}
        payloads.append({"job_id": job_id, "operation": "DetectFaces", "image": image})
    client.config_resetstat()

    async def all_at_once() -> list[ResultEnvelope]:
        deps, publisher = runtime.deps, runtime.publisher
        return await asyncio.gather(
            *(process(p, Operation.DETECT_FACES, p["job_id"], deps, publisher) for p in payloads)
        )

    # When they all start in the same loop turn, as messages handed to a busy loop do
    try:
        envelopes = runtime.run(all_at_once())
    finally:
        runtime.close()
    # Then each job saw its own keys: the expired images are missing, the others were read and refused
    assert all(e.status is JobStatus.FAILED for e in envelopes)
    codes = {e.job_id: e.error.code for e in envelopes if e.error is not None}
    assert {codes[j] for j in codes if j not in present} == {"ImageBlobMissing"}
    assert "ImageBlobMissing" not in {codes[j] for j in present}
    # And they read Redis in two MGETs, not one each: the first sent when it held 64 keys (32 jobs' result keys and
    # blobs), about what a packed message reads
    stats = client.info("commandstats")
    assert stats["cmdstat_mget"]["calls"] == 2, stats["cmdstat_mget"]


def test_callers_asking_for_rate_slots_together_share_one_round_trip(start_redis: Callable[..., RedisServer]) -> None:
    # Given a fresh Redis and a worker's shared rate on a fresh connection pool
    server = start_redis()
    client = redis.Redis.from_url(server.url)
    opened = int(client.info("stats")["total_connections_received"])

    async def ask_together() -> list[Ticket]:
        pool = aredis.Redis.from_url(server.url)
        rate = AdaptiveRate(pool, {"DetectFaces": 1000})
        try:
            return await asyncio.gather(*(rate.reserve("DetectFaces") for _ in range(30)))
        finally:
            await pool.aclose()

    # When 30 callers ask for a slot in the same loop turn
    tickets = asyncio.run(ask_together())
    # Then each got its own slot, in the order they asked (one schedule advanced 30 times)
    assert all(t.granted for t in tickets)
    assert [t.at_s for t in tickets] == sorted(t.at_s for t in tickets) and len({t.at_s for t in tickets}) == 30
    # And they shared one connection, one round trip, rather than a connection each
    assert int(client.info("stats")["total_connections_received"]) - opened == 1
