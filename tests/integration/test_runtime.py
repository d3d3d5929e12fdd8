"""The worker's per-process runtime: one loop and its clients, shared by every job in flight."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import redis

from producer.contract import JobStatus, Operation, ResultEnvelope, result_key
from worker.process import process
from worker.runtime import Runtime
from worker.settings import WorkerSettings


def test_more_jobs_in_flight_than_redis_connections_all_get_their_result(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # Given a runtime sized for one job in flight (its Redis pool: 1 + 16 + 8 = 25 connections)
    runtime = Runtime(WorkerSettings(redis_url=redis_url, concurrency=1))  # type: ignore[arg-type]
    # And 120 jobs at once, each reading and publishing in Redis (their photos expired: no Rekognition call)
    payloads = [
        {
            "job_id": uuid.uuid4().hex,
            "operation": "DetectFaces",
            "image": {"kind": "blob", "sha256": hashlib.sha256(uuid.uuid4().bytes).hexdigest(), "size_bytes": 9},
        }
        for _ in range(120)
    ]

    async def all_at_once() -> list[ResultEnvelope]:
        deps, publisher = runtime.deps, runtime.publisher
        return await asyncio.gather(
            *(process(p, Operation.DETECT_FACES, p["job_id"], deps, publisher) for p in payloads)
        )

    try:
        envelopes = runtime.run(all_at_once())
    finally:
        runtime.close()
    # Then each command waited for a free connection rather than failing: every job has its own, correct result
    assert [e.job_id for e in envelopes] == [p["job_id"] for p in payloads]
    assert {(e.status, e.error.code) for e in envelopes} == {(JobStatus.FAILED, "ImageBlobMissing")}  # type: ignore[union-attr]
    assert redis_client.exists(*(result_key(p["job_id"]) for p in payloads)) == 120
