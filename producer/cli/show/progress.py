"""What a person watches while a batch runs: a live progress bar, then a summary of the whole batch.

Both go to stderr, so ``--format jsonl`` and ``--format csv`` keep stdout pure data. The bar only draws on a
terminal (or when forced), since a bar written to a log file is noise; the summary is printed everywhere.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from producer.cli.show.hints import hint
from producer.client import BatchProgress
from producer.contract import JobStatus, ResultEnvelope

_FACE_OPERATIONS = {"DetectFaces", "IndexFaces", "RecognizeCelebrities"}
_MATCH_OPERATIONS = {"SearchFacesByImage", "CompareFaces"}


@dataclass
class Tally:
    """Counts over a batch's envelopes: what the summary table shows."""

    photos: int = 0
    succeeded: int = 0
    faces: int = 0
    without_face: int = 0
    matches: int = 0
    searches: int = 0
    cached: int = 0
    retried: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    advice: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Failures by code and the advice their messages call for (one code can need different advice)."""
    first_submitted: datetime | None = None
    last_finished: datetime | None = None
    rekognition_ms: list[float] = field(default_factory=list)

    def add(self, envelope: ResultEnvelope) -> None:
        """Count one envelope."""
        self.photos += 1
        if envelope.status is JobStatus.FAILED:
            assert envelope.error is not None
            self.failures[envelope.error.code] += 1
            if (advice := hint(envelope.error.code, envelope.error.message)) is not None:
                self.advice[envelope.error.code, advice] += 1
        else:
            self.succeeded += 1
            faces = envelope.face_count()
            if envelope.operation in _MATCH_OPERATIONS:
                # face_count() of a search or comparison counts its matches, not the faces in the photo.
                self.searches += 1
                self.matches += faces
            else:
                self.faces += faces
                self.without_face += envelope.operation in _FACE_OPERATIONS and faces == 0
        self.cached += envelope.cached
        self.retried += envelope.attempts > 1
        if not envelope.cached and envelope.attempts > 0:
            self.rekognition_ms.append(envelope.rekognition_ms)
        started = envelope.submitted_at or envelope.started_at
        if self.first_submitted is None or started < self.first_submitted:
            self.first_submitted = started
        if self.last_finished is None or envelope.finished_at > self.last_finished:
            self.last_finished = envelope.finished_at

    @property
    def failed(self) -> int:
        """Jobs that failed, whatever the code."""
        return sum(self.failures.values())

    def elapsed_s(self) -> float | None:
        """Seconds from the first job's submission to the last result, None before any result."""
        if self.first_submitted is None or self.last_finished is None:
            return None
        return max(0.0, (self.last_finished - self.first_submitted).total_seconds())

    def table(self, title: str | None = None) -> Table:
        """The summary: photos, faces, failures by code, cache hits, time."""
        table = Table(title=title, show_header=False, title_justify="left", title_style="bold")
        table.add_column("what", style="bold")
        table.add_column("value", overflow="fold")
        table.add_row("photos", f"{self.photos} ({self.succeeded} succeeded, {self.failed} failed)")
        if self.searches < self.succeeded:
            without = f" ({self.without_face} photo(s) without a face)" if self.without_face else ""
            table.add_row("faces", f"{self.faces}{without}")
        if self.searches:
            table.add_row("matches", f"{self.matches} in {self.searches} search(es)")
        for code, count in self.failures.most_common():
            table.add_row(Text(f"failed: {code}", style="red"), str(count))
        table.add_row("cache hits", f"{self.cached} of {self.photos}")
        if self.retried:
            table.add_row("retried", f"{self.retried} job(s) needed more than one Rekognition call")
        elapsed = self.elapsed_s()
        if elapsed is not None:
            # A rate over one photo or a blink of time says nothing.
            rate = f", {self.photos / elapsed:.1f} photos/s" if self.photos > 1 and elapsed >= 1 else ""
            table.add_row("time", f"{elapsed:.1f} s from first submission to last result{rate}")
        if self.rekognition_ms:
            median = statistics.median(self.rekognition_ms)
            table.add_row("rekognition", f"median {median:.0f} ms, slowest {max(self.rekognition_ms):.0f} ms")
        return table

    def hint_lines(self) -> list[str]:
        """One line per failure code the hints know: how many jobs, what is wrong, what to do."""
        return [f"{count} job(s) failed with {code}: {advice}" for (code, advice), count in self.advice.most_common()]


class _RateColumn(ProgressColumn):
    """Photos per second over the last 30 s (rich's own estimate), or a dash before there is one."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "–/s", style="progress.data.speed")


class BatchDisplay:
    """A live progress bar for one batch: done of total, failed, rate, elapsed time and ETA.

    Results of a resumed batch (``facequeue status ID --wait``) that were in before the display started count in
    its starting point, not in its rate.
    """

    def __init__(self, console: Console, start: BatchProgress, *, enabled: bool) -> None:
        self._already = start.done
        self._seen = 0
        self._failed = start.failed
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("batch [bold]{task.description}"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("[red]{task.fields[failed]} failed"),
                _RateColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
                # rich would otherwise route stdout through the bar's console (stderr): JSON lines must stay on stdout.
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._progress.add_task(
                start.batch_id[:12], total=start.total or None, completed=start.done, failed=start.failed
            )

    def __enter__(self) -> BatchDisplay:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def add(self, envelope: ResultEnvelope) -> None:
        """Count one result (results from before the display started are skipped: they are in its start)."""
        self._seen += 1
        if self._seen <= self._already or self._progress is None:
            return
        self._failed += envelope.status is JobStatus.FAILED
        self._progress.update(self._task, advance=1, failed=self._failed)

    def update(self, progress: BatchProgress) -> None:
        """Follow a batch still growing (another process submitting into it)."""
        if self._progress is not None and progress.total:
            self._progress.update(self._task, total=progress.total)
