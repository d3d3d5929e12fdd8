"""The worker's per-process runtime: one loop and its clients, shared by every job in flight."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import redis
import redis.asyncio as aredis

from producer.contract import JobStatus, Operation, ResultEnvelope, result_key, utcnow
from worker.pipeline import process
from worker.publish import Publisher
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


def _envelope(job_id: str) -> ResultEnvelope:
    now = utcnow()
    return ResultEnvelope(
        job_id=job_id,
        operation="DetectFaces",
        status=JobStatus.SUCCEEDED,
        response={"FaceDetails": []},
        attempts=1,
        started_at=now,
        finished_at=now,
    )


def test_jobs_publishing_together_each_publish_once_even_after_the_script_cache_is_emptied(
    redis_url: str, redis_client: redis.Redis
) -> None:
    stream = f"test-results-{uuid.uuid4().hex[:8]}"
    ids = [uuid.uuid4().hex for _ in range(60)]

    async def publish_all(flush_scripts: bool) -> list[bool]:
        client = aredis.Redis.from_url(redis_url)
        publisher = Publisher(client, stream=stream, stream_maxlen=10_000, ttl_s=600)
        if flush_scripts:
            # As after a Redis restart: the server no longer knows the publish script
            await client.script_flush()
        outcomes = await asyncio.gather(*(publisher.publish(_envelope(job_id)) for job_id in ids))
        await client.aclose()
        return [published for _, published in outcomes]

    # Given 60 jobs publishing in the same loop turn (one pipeline), with Redis's script cache emptied first
    first = asyncio.run(publish_all(flush_scripts=True))
    # When the same 60 publish again (a redelivery), together
    second = asyncio.run(publish_all(flush_scripts=False))
    # Then each was published by the first round only, and appears on the stream once
    assert first == [True] * 60 and second == [False] * 60
    assert sorted(fields[b"job_id"].decode() for _, fields in redis_client.xrange(stream)) == sorted(ids)
