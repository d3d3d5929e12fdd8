"""AsyncFaceQueue: the FaceQueue client for asyncio code, over the same Redis layout and message building."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry

from producer.client import (
    REDIS_BACKOFF,
    REDIS_RETRIES,
    BatchHandle,
    BatchProgress,
    ClientCore,
    Deadline,
    JobHandle,
    UnknownBatchError,
    parse_envelope,
    stream_entries,
)
from producer.connection import async_client
from producer.contract import ResultEnvelope, batch_key, batch_stream_key, done_channel, new_id, result_key
from producer.jobs import PreparedJob
from producer.settings import ProducerSettings


class AsyncFaceQueue(ClientCore):
    """The asyncio client: the same operations as FaceQueue, awaitable."""

    def __init__(self, settings: ProducerSettings | None = None, client: aredis.Redis | None = None) -> None:
        super().__init__(settings)
        self.redis: aredis.Redis = client or async_client(
            self.settings,
            health_check_interval=30,
            socket_keepalive=True,
            retry=AsyncRetry(REDIS_BACKOFF, REDIS_RETRIES),
        )

    async def aclose(self) -> None:
        """Close the Redis connections."""
        await self.redis.aclose()

    async def __aenter__(self) -> AsyncFaceQueue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def submit(self, prepared: PreparedJob) -> JobHandle:
        """Submit one job (as a batch of one) and return its handle."""
        batch = await self.submit_many([prepared])
        return JobHandle(batch.job_ids[0], batch.batch_id)

    async def submit_many(self, prepared: Iterable[PreparedJob], batch_id: str | None = None) -> BatchHandle:
        """Submit many jobs as one batch, one Redis round trip per chunk."""
        batch_id = batch_id or new_id()
        ids: list[str] = []
        for chunk in self.chunks(prepared):
            pipe = self.redis.pipeline(transaction=False)
            ids += self.chunk_commands(pipe, batch_id, chunk)
            waited = self.add_wait(pipe)
            self.check_wait(waited, await pipe.execute(), f"batch {batch_id}: {len(ids)} jobs submitted")
        pipe = self.redis.pipeline(transaction=False)
        self.seal(pipe, batch_id, len(ids))
        waited = self.add_wait(pipe)
        self.check_wait(waited, await pipe.execute(), f"batch {batch_id}: sealing at {len(ids)} jobs")
        return BatchHandle(batch_id, tuple(ids))

    async def get_result(self, job_id: str) -> ResultEnvelope | None:
        """Return the job's result if it has been published, else None."""
        raw = await self.redis.get(result_key(job_id))
        return parse_envelope(raw) if raw else None

    async def result(self, job: JobHandle | str, timeout_s: float | None = 60.0) -> ResultEnvelope:
        """Wait for one job's result; raise TimeoutError after timeout_s."""
        job_id = job.job_id if isinstance(job, JobHandle) else job
        deadline = Deadline(timeout_s)
        found = await self.get_result(job_id)
        if found:
            return found
        async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(done_channel(job_id))
            while True:
                found = await self.get_result(job_id)
                if found:
                    return found
                block_s = deadline.next_block_s(f"no result for job {job_id} within {timeout_s} s")
                await pubsub.get_message(timeout=block_s)

    async def progress(self, batch_id: str) -> BatchProgress:
        """Return a batch's counters; raise UnknownBatchError if Redis has none."""
        raw = await self.redis.hgetall(batch_key(batch_id))
        if not raw:
            raise UnknownBatchError(f"no batch {batch_id} (never submitted, or expired)")
        return BatchProgress.from_hash(batch_id, raw)

    async def iter_results(self, batch_id: str, timeout_s: float | None = None) -> AsyncIterator[ResultEnvelope]:
        """Yield a batch's results in completion order until every job has one."""
        stream = batch_stream_key(batch_id)
        last_id = "0-0"
        yielded = 0
        deadline = Deadline(timeout_s)
        while True:
            progress = await self.progress(batch_id)
            if progress.sealed and yielded >= progress.total:
                return
            block_s = deadline.next_block_s(f"batch {batch_id}: {yielded}/{progress.total} results after {timeout_s} s")
            block_ms = max(1, int(block_s * 1000))
            entries = stream_entries(await self.redis.xread({stream: last_id}, count=500, block=block_ms))
            if entries:
                last_id = entries[-1][0]
                for raw in await self.redis.mget([result_key(f[b"job_id"].decode()) for _, f in entries]):
                    if raw:
                        yielded += 1
                        yield parse_envelope(raw)
