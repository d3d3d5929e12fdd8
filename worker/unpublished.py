"""Results this worker process computed but Redis refused to publish, kept until their message comes back.

A Redis that refuses writes while it is up (out of memory, an ACL that misses a key) sends the message back to the
queue (tasks.py). Without this memory each return would run the job again and pay Rekognition again; with it, the
answer already paid for is published when the message comes back to this process. State-changing jobs are also in
Redis's journal (journal.py), which serves any worker when Redis takes that write.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from producer.contract import ResultEnvelope
from worker.cache import CacheEntry

MAX_KEPT = 10_000
"""Results kept at most (the oldest go first): bounded memory however long Redis refuses."""


@dataclass(frozen=True)
class Kept:
    """An envelope that could not be published, with what its publish carries."""

    envelope: ResultEnvelope
    cache: CacheEntry | None


class Unpublished:
    """Per-process memory of refused publishes and of how often each message went back to the queue."""

    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self._kept: OrderedDict[str, Kept] = OrderedDict()
        self._requeues: OrderedDict[str, int] = OrderedDict()
        self._max = max_kept

    def keep(self, envelope: ResultEnvelope, cache: CacheEntry | None) -> None:
        """Remember a result Redis refused to publish."""
        self._kept[envelope.job_id] = Kept(envelope, cache)
        self._kept.move_to_end(envelope.job_id)
        while len(self._kept) > self._max:
            self._kept.popitem(last=False)

    def take(self, job_id: str) -> Kept | None:
        """The kept result of a job, forgotten once taken (the caller publishes it or keeps it again)."""
        return self._kept.pop(job_id, None)

    def peek(self, job_id: str) -> Kept | None:
        """The kept result of a job, left in place."""
        return self._kept.get(job_id)

    def requeued(self, task_id: str) -> int:
        """Count one more return to the queue for a message; return how many it has had."""
        count = self._requeues.pop(task_id, 0) + 1
        self._requeues[task_id] = count
        while len(self._requeues) > self._max:
            self._requeues.popitem(last=False)
        return count

    def forget(self, task_id: str, job_ids: list[str]) -> None:
        """Drop what is remembered of a message that is done with."""
        self._requeues.pop(task_id, None)
        for job_id in job_ids:
            self._kept.pop(job_id, None)

    def __len__(self) -> int:
        return len(self._kept)
