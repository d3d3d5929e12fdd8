"""A batch's results read across a failover whose new master's stream is not the one the reader's cursor is in.

Two real Redis servers: B replicates A, then is promoted while A still takes writes (the split brain of a
failover, or a new master whose clock is behind the old one's): B's results carry stream ids below the cursor of a
producer that read A. A proxy stands for the master's name, and moves from A to B (tests/fixtures/faultproxy.py).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio as aredis

from producer import FaceQueue, ProducerSettings, jobs
from producer.contract import JobStatus, ResultEnvelope, batch_stream_key
from tests.fixtures.chaos import PHOTO
from tests.fixtures.faultproxy import Blackhole
from tests.fixtures.redis import wait_until
from worker.publish import Publisher


def _publish(url: str, batch_id: str, job_ids: list[str]) -> None:
    """Publish succeeded results for ``job_ids`` on the Redis at ``url``, with the worker's own publish script."""

    async def publish() -> None:
        client = aredis.Redis.from_url(url)
        try:
            publisher = Publisher(client, stream="facequeue:results", stream_maxlen=1000, ttl_s=600)
            for job_id in job_ids:
                now = datetime.now(UTC)
                envelope = ResultEnvelope(
                    job_id=job_id,
                    batch_id=batch_id,
                    operation="DetectFaces",
                    status=JobStatus.SUCCEEDED,
                    response={"FaceDetails": []},
                    started_at=now,
                    finished_at=now,
                )
                await publisher.publish(envelope)
        finally:
            await client.aclose()

    asyncio.run(publish())


def _ms(entry_id: Any) -> int:
    return int((entry_id.decode() if isinstance(entry_id, bytes) else entry_id).split("-")[0])


def test_results_below_the_cursor_on_a_new_master_are_read_and_none_twice(start_redis: Any) -> None:
    # Given a batch of 8 jobs on A, a producer reading through the master's name (the proxy), and B a replica of A
    a, b = start_redis(), start_redis()
    proxy = Blackhole(a.port).start()
    fq = FaceQueue(ProducerSettings(redis_url=proxy.url, queue=f"moved-{uuid.uuid4().hex[:8]}"))  # type: ignore[arg-type]
    a_client, b_client = redis.Redis.from_url(a.url), redis.Redis.from_url(b.url)
    try:
        batch = fq.submit_many(jobs.detect_faces(PHOTO, label=str(i)) for i in range(8))
        ids = list(batch.job_ids)
        stream = batch_stream_key(batch.batch_id)
        b_client.execute_command("REPLICAOF", "127.0.0.1", str(a.port))
        _publish(a.url, batch.batch_id, ids[:4])
        wait_until(lambda: b_client.xlen(stream) == 4, 30, "B to replicate the first 4 results")
        # ... B is promoted while A still takes writes: job 7's result lands on B, then 5 and 6 land on A, later
        b_client.execute_command("REPLICAOF", "NO", "ONE")
        _publish(b.url, batch.batch_id, [ids[6]])
        on_b = _ms(b_client.xrevrange(stream, count=1)[0][0])
        wait_until(lambda: int(a_client.time()[0]) * 1000 + int(a_client.time()[1]) // 1000 > on_b, 5, "a later ms")
        _publish(a.url, batch.batch_id, ids[4:6])
        # When the producer has read A's 6 results, and the master's name moves to B, where the workers publish
        # again what B lacks (jobs 5 and 6, redelivered) and the last job
        results = fq.iter_results(batch.batch_id, timeout_s=30)
        first = [next(results) for _ in range(6)]
        proxy.move_to(b.port)
        _publish(b.url, batch.batch_id, [*ids[4:6], ids[7]])
        rest = list(results)
        # Then every job's result is read once: job 7, below the cursor, too
        read = [r.job_id for r in first + rest]
        assert sorted(read) == sorted(ids)
    finally:
        fq.close()
        proxy.stop()
        a_client.close()
        b_client.close()
