"""AsyncFaceQueue: the FaceQueue client for asyncio code, over the same Redis layout and message building."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator

import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.exceptions import ResponseError

from producer.client import (
    REDIS_BACKOFF,
    REDIS_RETRIES,
    BatchHandle,
    BatchProgress,
    BatchState,
    ClientCore,
    Deadline,
    JobHandle,
    UnknownBatchError,
    WaitHook,
    parse_envelope,
    stream_entries,
)
from producer.connection import async_client, check_replicated, wait_command
from producer.contract import ResultEnvelope, batch_key, batch_stream_key, done_channel, new_id, result_key
from producer.cursor import ResultsCursor, rewound, tail_id
from producer.jobs import PreparedJob
from producer.settings import ProducerSettings
from producer.staging import S3Stage
from producer.window import Wait, Window, job_bytes


class AsyncFaceQueue(ClientCore):
    """The asyncio client: the same operations as FaceQueue, awaitable."""

    def __init__(self, settings: ProducerSettings | None = None, client: aredis.Redis | None = None) -> None:
        super().__init__(settings)
        self.redis: aredis.Redis = client or async_client(
            self.settings,
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

    async def submit_many(
        self,
        prepared: Iterable[PreparedJob],
        batch_id: str | None = None,
        *,
        stage: S3Stage | None = None,
        on_wait: WaitHook | None = None,
        spec: str | None = None,
    ) -> BatchHandle:
        """Submit many jobs as one batch within the window, as FaceQueue.submit_many does."""
        return await self._submit(batch_id or new_id(), prepared, 0, stage, on_wait, spec)

    async def batch_state(self, batch_id: str) -> BatchState:
        """The batch's progress, queued count and resume details; UnknownBatchError if Redis has none."""
        raw = await self.redis.hgetall(batch_key(batch_id))
        if not raw:
            raise UnknownBatchError(f"no batch {batch_id} (never submitted, or expired)")
        return BatchState.from_hash(batch_id, raw)

    async def resume(
        self,
        batch_id: str,
        prepared: Iterable[PreparedJob],
        *,
        stage: S3Stage | None = None,
        on_wait: WaitHook | None = None,
    ) -> BatchHandle:
        """Finish submitting a batch stopped part-way, as FaceQueue.resume does."""
        state = await self.batch_state(batch_id)
        if state.progress.sealed:
            return BatchHandle(batch_id, ())
        return await self._submit(batch_id, self.skip_queued(prepared, state), state.queued, stage, on_wait, None)

    async def _submit(
        self,
        batch_id: str,
        prepared: Iterable[PreparedJob],
        queued: int,
        stage: S3Stage | None,
        on_wait: WaitHook | None,
        spec: str | None,
    ) -> BatchHandle:
        window = self.window()
        if stage is not None:
            prepared = stage.stage_all(prepared)
        steps: Iterator[list[PreparedJob] | Wait] = window.plan(self.counted(prepared, queued))
        ids: list[str] = []
        # Reading the input may mean reading files or uploading to S3: off the event loop.
        while (step := await asyncio.to_thread(next, steps, None)) is not None:
            if isinstance(step, Wait):
                await self._await_results(batch_id, window, on_wait)
                continue
            pipe = self.redis.pipeline(transaction=True)
            chunk_ids = self.chunk_commands(pipe, batch_id, step, queued, spec, window.max_chunk_bytes)
            try:
                await pipe.execute()
            except ResponseError as exc:
                raise self.full(exc, batch_id, queued) from exc
            await self.wait_replicas(f"batch {batch_id}: {queued + len(step)} jobs submitted")
            for item, job_id in zip(step, chunk_ids, strict=True):
                window.add(job_id, job_bytes(item))
            queued += len(step)
            ids += chunk_ids
        pipe = self.redis.pipeline(transaction=True)
        self.seal(pipe, batch_id, queued)
        try:
            await pipe.execute()
        except ResponseError as exc:
            raise self.full(exc, batch_id, queued) from exc
        await self.wait_replicas(f"batch {batch_id}: sealing at {queued} jobs")
        return BatchHandle(batch_id, tuple(ids))

    async def wait_replicas(self, what: str) -> None:
        """After a chunk's transaction: WAIT for replicas when FACEQUEUE_REDIS_WAIT_REPLICAS asks for it."""
        command = wait_command(self.settings)
        if command is not None:
            check_replicated(self.settings, await self.redis.execute_command(*command), what)  # type: ignore[no-untyped-call]

    async def _await_results(self, batch_id: str, window: Window, on_wait: WaitHook | None) -> None:
        """Block up to a second for results of the batch, and release them from the window."""
        stream = batch_stream_key(batch_id)
        entries = stream_entries(await self.redis.xread({stream: window.cursor}, count=1000, block=1000))
        if entries:
            window.cursor = entries[-1][0]
            window.release(fields[b"job_id"].decode() for _, fields in entries)
            return
        # As in FaceQueue._await_results: a stream that moved back past the cursor is read again from its start.
        window.cursor = rewound(window.cursor, tail_id(await self.redis.xrevrange(stream, count=1)))
        if on_wait is not None:
            on_wait(await self.progress(batch_id), window)

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
        cursor = ResultsCursor()
        deadline = Deadline(timeout_s)
        while True:
            progress = await self.progress(batch_id)
            if progress.sealed and len(cursor.seen) >= progress.total:
                return
            block_s = deadline.next_block_s(
                f"batch {batch_id}: {len(cursor.seen)}/{progress.total} results after {timeout_s} s"
            )
            block_ms = max(1, int(block_s * 1000))
            entries = stream_entries(await self.redis.xread({stream: cursor.last_id}, count=500, block=block_ms))
            if not entries:
                # A failover may have changed the stream under the cursor (producer/cursor.py).
                cursor.after_idle(tail_id(await self.redis.xrevrange(stream, count=1)), progress.done)
                continue
            fresh = cursor.advance(entries)
            if not fresh:
                continue
            raws = await self.redis.mget([result_key(job_id) for job_id in fresh])
            for job_id, raw in zip(fresh, raws, strict=True):
                if raw:
                    cursor.read(job_id)
                    yield parse_envelope(raw)
