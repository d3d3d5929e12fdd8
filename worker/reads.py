"""The load stage's MGET, shared by every message whose jobs start reading in the same event-loop turn.

A packed message reads all its jobs' keys in one MGET; single-job messages (what `submit()`, `celery call` and other
producers send) each paid their own round trip, connection checkout, socket write and read. Celery's pool threads
hand messages to the loop one by one, and when the loop is busy several arrive within one turn: they now share one
MGET, as their publishes share one pipeline (publish.py). Each job gets the values of its own keys, or the error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from producer.contract import MAX_JOBS_PER_MESSAGE

KEYS_PER_READ = 4 * MAX_JOBS_PER_MESSAGE
"""A shared MGET is sent once it holds this many keys: about what a packed message reads (each job's result key,
image blob, cache and journal entries), so that no job waits behind a whole turn's worth of other jobs' images (up
to FACEQUEUE_MAX_IMAGE_BYTES each)."""

_Pending = tuple[list[str], "asyncio.Future[list[bytes | None]]"]


class CoalescedReads:
    """One MGET per event-loop turn (or per KEYS_PER_READ keys) for the keys of every job that reads in it."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._pending: list[_Pending] = []
        self._pending_keys = 0
        self._flushing: set[asyncio.Task[None]] = set()

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        """The values of ``keys`` (None where absent), read in the round trip this loop turn shares."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[bytes | None]] = loop.create_future()
        self._pending.append((keys, answer))
        self._pending_keys += len(keys)
        if len(self._pending) == 1:
            # Runs after every callback already queued for this turn: the jobs started in it all join.
            loop.call_soon(self._flush)
        if self._pending_keys >= KEYS_PER_READ:
            self._flush()
        return await answer

    def _flush(self) -> None:
        batch, self._pending, self._pending_keys = self._pending, [], 0
        if not batch:  # flushed already, when the batch filled up
            return
        task = asyncio.ensure_future(self._send(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            if len(batch) == 1:
                keys = batch[0][0]
            else:  # jobs of different messages may share a blob: each key is read once
                keys = list({key: None for job_keys, _ in batch for key in job_keys})
            values = dict(zip(keys, await self._redis.mget(keys), strict=True))
        except BaseException as exc:  # every job of the round trip learns it failed, and requeues or fails alone
            for _, answer in batch:
                if not answer.done():
                    # A cancelled read (the loop closing) cancels its waiters rather than leaving them waiting.
                    answer.cancel() if isinstance(exc, asyncio.CancelledError) else answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for job_keys, answer in batch:
            if not answer.done():  # its job was cancelled meanwhile
                answer.set_result([values[key] for key in job_keys])
