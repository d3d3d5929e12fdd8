"""Single-job messages that start in the same event-loop turn share the load stage's MGET (worker/reads.py), and
each still reads its own keys (issue 21, fleet cost)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable

import redis

from producer.contract import JobStatus, Operation, ResultEnvelope, blob_key
from tests.fixtures.redis import RedisServer
from worker.pipeline import process
from worker.runtime import Runtime
from worker.settings import WorkerSettings


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
