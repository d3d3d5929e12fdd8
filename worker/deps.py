"""What a job's path needs from its process: the long-lived clients, the settings, and the stop signal."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from worker.cache import ResponseCache
from worker.errors import ShuttingDown
from worker.reads import CoalescedReads
from worker.settings import WorkerSettings
from worker.throttle import AdaptiveRate
from worker.unpublished import Unpublished


@dataclass
class Deps:
    """What the core needs from its process: long-lived clients and settings."""

    rekognition: Any
    s3: Any
    redis: Any
    settings: WorkerSettings
    limiter: AdaptiveRate | None = None
    cache: ResponseCache | None = None
    worker: str = ""
    reads: CoalescedReads | None = None
    """The load stage's MGET, shared by the jobs that read in the same loop turn (else one MGET a message)."""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the worker shuts down: waiting jobs give their message back instead of holding the shutdown."""
    unpublished: Unpublished = field(default_factory=Unpublished)
    """Results Redis refused to publish, kept for when their message comes back (never paid twice)."""

    async def pause(self, seconds: float) -> None:
        """Sleep, unless the worker starts stopping: then raise ShuttingDown at once."""
        if self.stopping.is_set():
            raise ShuttingDown
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise ShuttingDown
