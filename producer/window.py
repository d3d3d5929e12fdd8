"""Flow control: how much of a batch one producer keeps in Redis at once, and when it must wait for results.

A producer stores a job's image bytes and its task message before any worker takes it, so an unbounded submit puts a
whole batch in Redis (1,000 photos of 440 KB grew Redis by 460 MB, issue 20). The window holds at most ``max_bytes``
of image bytes and ``max_jobs`` jobs submitted but without a result; the producer stores more as results come back.

This module does no I/O: ``plan`` turns a stream of prepared jobs into steps (send this chunk, or wait for results),
and the sync and asyncio clients carry them out, reading the batch's done stream to ``release`` finished jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from producer.jobs import PreparedJob

MIN_CHUNK_BYTES = 512 * 1024
"""A chunk may always hold this much (or one job), however small the window."""
MAX_CHUNK_BYTES = 8 * 2**20
"""Nor more than this: past a few megabytes a bigger round trip saves nothing."""
CHUNK_SHARE = 16
"""A chunk holds at most 1/16 of the window's bytes: Redis briefly holds a chunk twice while it reads it (the query
buffer and the stored values; used_memory_peak shows it)."""
HEADROOM_SHARE = 8
"""Stored images fill at most 7/8 of the window: the rest is for what Redis holds for a moment besides them (a
chunk being read and its AOF copy, blobs being sent to workers, allocator rounding), so Redis grows by at most about
the window besides the batch's results, which grow with the batch and are sized apart (docs/big-batches.md)."""


class Wait:
    """A step of ``plan``: nothing more fits until results come back; wait for some, then resume the plan."""


WAIT = Wait()


STRING_OVERHEAD = 12
"""What Redis adds to a large string value before allocating it (its sds header and terminator, rounded up)."""


def stored_bytes(length: int) -> int:
    """The memory Redis spends on a string value of ``length`` bytes.

    Redis's allocator (jemalloc) hands out blocks of four sizes per doubling, so a value just past a size class takes
    up to a quarter more than its length: 262,200 bytes take 320 KiB (measured: 24 % over), and a window that
    counted lengths let Redis grow past it.
    """
    size = length + STRING_OVERHEAD
    step = 1 << max(0, (size - 1).bit_length() - 3)
    return -(-size // step) * step


def job_bytes(prepared: PreparedJob) -> int:
    """The memory a job's images take in Redis (an image shared by several jobs counts for each: a safe overcount)."""
    return sum(stored_bytes(len(data)) for data in prepared.blobs.values())


@dataclass
class Window:
    """Jobs of one producer in Redis without a result yet, and the bytes of their images."""

    max_bytes: int
    max_jobs: int
    max_chunk_jobs: int = 500
    in_flight: dict[str, int] = field(default_factory=dict)
    """Job id → image bytes, for every job sent and not yet finished."""
    bytes: int = 0
    cursor: str = "0-0"
    """How far the batch's done stream has been read (entry id)."""

    @property
    def max_chunk_bytes(self) -> int:
        """The most image bytes one chunk (one Redis round trip) carries."""
        return max(MIN_CHUNK_BYTES, min(MAX_CHUNK_BYTES, self.max_bytes // CHUNK_SHARE))

    @property
    def max_stored_bytes(self) -> int:
        """The most image bytes in Redis at once: the window less its headroom."""
        return self.max_bytes - self.max_bytes // HEADROOM_SHARE

    def fits(self, nbytes: int, jobs: int) -> bool:
        """True when ``jobs`` more jobs holding ``nbytes`` fit; an empty window takes any one job, so a photo larger
        than the window still goes (alone)."""
        if not self.in_flight and jobs == 1:
            return True
        return self.bytes + nbytes <= self.max_stored_bytes and len(self.in_flight) + jobs <= self.max_jobs

    def add(self, job_id: str, nbytes: int) -> None:
        """Count a job that was sent."""
        self.in_flight[job_id] = nbytes
        self.bytes += nbytes

    def release(self, job_ids: Iterable[str]) -> int:
        """Forget jobs that have a result (ids this producer did not send are ignored); return how many it knew."""
        known = 0
        for job_id in job_ids:
            nbytes = self.in_flight.pop(job_id, None)
            if nbytes is not None:
                self.bytes -= nbytes
                known += 1
        return known

    def plan(self, prepared: Iterable[PreparedJob]) -> Iterator[list[PreparedJob] | Wait]:
        """Steps that submit ``prepared`` within the window: a chunk to send (then ``add`` its jobs), or WAIT.

        The input is read one job ahead of what is sent, never more: a batch of any size costs the producer one
        chunk of memory. WAIT repeats until ``release`` has made room.
        """
        chunk: list[PreparedJob] = []
        chunk_bytes = 0
        for item in prepared:
            size = job_bytes(item)
            if chunk and (
                len(chunk) >= self.max_chunk_jobs
                or chunk_bytes + size > self.max_chunk_bytes
                or not self.fits(chunk_bytes + size, len(chunk) + 1)
            ):
                yield chunk
                chunk, chunk_bytes = [], 0
            while not chunk and not self.fits(size, 1):
                yield WAIT
            chunk.append(item)
            chunk_bytes += size
            if len(chunk) >= self.max_chunk_jobs:
                # Sent before the next job is read: a slow input (one that waits on results) never holds it back.
                yield chunk
                chunk, chunk_bytes = [], 0
        if chunk:
            yield chunk
