"""Submitting jobs and following them: a batch to its end (progress, results, summary), or one job to its result."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from producer import jobs
from producer.cli.common import EXIT_FAILED, EXIT_OK, display_console, err, output
from producer.cli.show.annotate import Annotator
from producer.cli.show.hints import hint
from producer.cli.show.progress import BatchDisplay, Tally
from producer.cli.show.render import Renderer
from producer.client import BatchHandle, FaceQueue, UnknownBatchError
from producer.contract import JobStatus, ResultEnvelope, new_id
from producer.watch import WorkerCheck, follow


def submit(fq: FaceQueue, prepared: Iterable[jobs.PreparedJob], args: argparse.Namespace) -> BatchHandle:
    """Submit the jobs as one batch and say its id."""
    # The batch id is chosen here, so an interrupted submission can still name the batch it started.
    args.submitting = new_id()
    batch = fq.submit_many(prepared, batch_id=args.submitting)
    args.submitting = None
    err.print(f"submitted {len(batch)} job(s) as batch [bold]{batch.batch_id}[/]", highlight=False)
    return batch


def watch_batch(
    fq: FaceQueue,
    batch_id: str,
    args: argparse.Namespace,
    *,
    render: bool = True,
    annotator: Annotator | None = None,
    watchers: Sequence[Callable[[ResultEnvelope], object]] = (),
) -> int:
    """Follow a batch to its end: progress bar, each result rendered (and annotated, and handed to each of
    ``watchers``), then the summary."""
    args.watching = batch_id
    start = fq.progress(batch_id)
    console = display_console(args)
    display = BatchDisplay(console or err, start, enabled=console is not None)
    check = WorkerCheck.for_queue(fq)
    tally = Tally()

    def idle(progress: Any) -> None:
        display.update(progress)
        check(progress)

    with output(args) as stream:
        renderer = Renderer(args.format, stream) if render else None
        with display:
            for envelope in follow(fq, batch_id, timeout_s=args.timeout, on_idle=idle):
                tally.add(envelope)
                display.add(envelope)
                if renderer is not None:
                    renderer.add(envelope)
                if annotator is not None:
                    annotator.add(envelope)
                for watcher in watchers:
                    watcher(envelope)
        if renderer is not None:
            renderer.finish()
    err.print(tally.table(title=f"batch {batch_id}"))
    for line in tally.hint_lines():
        err.print(f"facequeue: {line}", markup=False, highlight=False)
    if annotator is not None:
        _report_annotations(annotator)
    return EXIT_FAILED if tally.failed else EXIT_OK


def _report_annotations(annotator: Annotator) -> None:
    if annotator.written:
        err.print(f"annotated {len(annotator.written)} photo(s) in {annotator.out_dir}", markup=False)
    for reason, count in annotator.skipped.items():
        err.print(f"annotate: skipped {count} photo(s): {reason}", markup=False, highlight=False)


def one(fq: FaceQueue, prepared: jobs.PreparedJob, args: argparse.Namespace) -> ResultEnvelope:
    """Submit one job and wait for its result (noticing when no worker consumes the queue)."""
    handle = fq.submit(prepared)
    args.watching = handle.batch_id
    check = WorkerCheck.for_queue(fq)
    for envelope in follow(fq, handle.batch_id, timeout_s=args.timeout, on_idle=check):
        return envelope
    raise UnknownBatchError(f"job {handle.job_id} left no result")


def print_one(envelope: ResultEnvelope, args: argparse.Namespace) -> int:
    """Render one result (and the hint for its error); 1 if the job failed."""
    with output(args) as stream:
        renderer = Renderer(args.format, stream)
        renderer.add(envelope)
        renderer.finish()
    if envelope.error is not None and (advice := hint(envelope.error.code, envelope.error.message)):
        err.print(f"facequeue: {envelope.error.code}: {advice}", markup=False, highlight=False)
    return EXIT_FAILED if envelope.status is JobStatus.FAILED else EXIT_OK
