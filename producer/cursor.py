"""Where a reader is in a batch's results stream, kept right across a failover that changes the stream under it.

A stream id is the writing server's clock, and a reader asks for entries after the last id it read. After a
failover the stream is another server's: the new master may lack the last entries the old one had, and what it
added meanwhile (a split brain while the old master still took writes, or a clock behind the old one's) can carry
ids below the reader's cursor, which `XREAD` after that cursor never returns. So a reader that finds nothing new
looks at the stream's last id and at the batch's counters, and reads the stream again from its start when the
cursor is past the end or the batch counts more results than it has read; job ids already read are skipped, so
nothing is skipped and nothing is yielded twice (docs/high-availability.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

START = "0-0"


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass
class ResultsCursor:
    """A batch reader's place in its results stream and the jobs it has read."""

    last_id: str = START
    seen: set[str] = field(default_factory=set)
    rereads: int = 0
    """How many times the stream was read again from its start."""
    _reread_at: int = -1

    def advance(self, entries: Iterable[tuple[str, dict[bytes, bytes]]]) -> list[str]:
        """Move past ``entries``; return the job ids among them not read before, in order, once each."""
        fresh: list[str] = []
        for entry_id, fields in entries:
            self.last_id = entry_id
            job_id = fields[b"job_id"].decode()
            if job_id not in self.seen and job_id not in fresh:
                fresh.append(job_id)
        return fresh

    def read(self, job_id: str) -> None:
        """Count ``job_id`` as read (its result was there)."""
        self.seen.add(job_id)

    def after_idle(self, tail: str | None, done: int) -> None:
        """After a read that found nothing: go back to the start if the stream is not the one the cursor is in.

        ``tail`` is the stream's last id now (None: no stream), ``done`` the batch's count of published results.
        """
        moved_back = rewound(self.last_id, tail) == START != self.last_id
        # Counted but never read: entries below the cursor. Read again once per count of jobs read, not every
        # second, in case a result expired and can never be read.
        missing = done > len(self.seen) and self._reread_at != len(self.seen)
        if moved_back or missing:
            self.last_id = START
            self._reread_at = len(self.seen)
            self.rereads += 1


def rewound(cursor: str, tail: str | None) -> str:
    """``cursor``, or the stream's start when the stream's last id (``tail``) is before it."""
    if cursor != START and (tail is None or _order(tail) < _order(cursor)):
        return START
    return cursor


def tail_id(reply: object) -> str | None:
    """The id in an ``XREVRANGE key + - COUNT 1`` reply, or None for an empty or missing stream."""
    if not isinstance(reply, list) or not reply:
        return None
    entry_id = reply[0][0]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
