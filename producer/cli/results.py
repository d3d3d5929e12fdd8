"""`facequeue results`, `status` and `dead`: what became of jobs already submitted."""

from __future__ import annotations

import argparse
import json

from rich.markup import escape
from rich.table import Table

from producer.cli.batch import print_one, watch_batch
from producer.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    Subcommands,
    UsageError,
    add_common,
    add_debug,
    add_progress,
    err,
    out,
    output,
)
from producer.cli.show.render import Renderer, summary
from producer.client import FaceQueue, stream_entries
from producer.contract import DEFAULT_RESULTS_STREAM, ResultEnvelope


def cmd_results(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Print one job's result, a batch's results (table, JSON lines or CSV), or follow the results stream."""
    if args.follow:
        return _tail_stream(fq, args)
    if args.batch:
        return watch_batch(fq, args.batch, args)
    if not args.job_id:
        raise UsageError("give a JOB id, --batch ID or --follow")
    return print_one(fq.result(args.job_id, timeout_s=args.timeout), args)


def _tail_stream(fq: FaceQueue, args: argparse.Namespace) -> int:
    last = "$"
    stream = fq.settings.results_stream or DEFAULT_RESULTS_STREAM
    with output(args) as destination:
        renderer = Renderer(args.format, destination) if args.format != "table" else None
        while True:
            for entry_id, fields in stream_entries(fq.redis.xread({stream: last}, block=5000, count=100)):
                last = entry_id
                envelope = ResultEnvelope.model_validate_json(fields[b"envelope"])
                if renderer is not None:
                    renderer.add(envelope)
                else:
                    out.print(f"{envelope.label or envelope.job_id}  {summary(envelope)}", highlight=False)


def cmd_status(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Print a batch's progress; with --wait, watch it (progress bar, summary) until it finishes."""
    progress = fq.progress(args.batch_id)
    if args.wait:
        watch_batch(fq, args.batch_id, args, render=False)
        progress = fq.progress(args.batch_id)
    out.print(
        json.dumps(
            {
                "batch_id": progress.batch_id,
                "total": progress.total,
                "succeeded": progress.succeeded,
                "failed": progress.failed,
                "pending": progress.total - progress.done,
                "finished": progress.finished,
            }
        ),
        markup=False,
        highlight=False,
    )
    if not progress.finished:
        return EXIT_OK
    return EXIT_FAILED if progress.failed else EXIT_OK


def cmd_dead(fq: FaceQueue, args: argparse.Namespace) -> int:
    """List dead letters (jobs that failed for good), or re-queue them as a new batch."""
    if args.action == "list":
        letters = fq.dead_letters(limit=args.limit)
        if args.format == "jsonl":
            for letter in letters:
                out.print(
                    json.dumps({"job": letter.raw_job, "envelope": letter.envelope.model_dump(mode="json")}),
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
        else:
            table = Table("job", "operation", "label", "code", "message", "failed at", header_style="bold")
            for letter in letters:
                e = letter.envelope
                table.add_row(
                    e.job_id,
                    e.operation,
                    escape(e.label or ""),
                    e.error.code if e.error else "",
                    escape(e.error.message if e.error else ""),
                    f"{e.finished_at:%Y-%m-%d %H:%M:%S}",
                )
            out.print(table)
            err.print(f"{len(letters)} dead letter(s); re-queue with: facequeue dead retry [JOB ...]")
        return EXIT_OK
    batch = fq.retry_dead(args.job_ids or None)
    if batch is None:
        err.print("facequeue: no dead letters to retry")
        return EXIT_OK
    err.print(
        f"re-queued {len(batch)} job(s) as batch {batch.batch_id}; follow it with: "
        f"facequeue status {batch.batch_id} --wait"
    )
    return EXIT_OK


def register(sub: Subcommands) -> None:
    """Add results, dead and status to the `facequeue` parser."""
    p = sub.add_parser("results", help="a job's result, a batch's results, or --follow the results stream")
    p.add_argument("job_id", nargs="?")
    p.add_argument("--batch")
    p.add_argument("--follow", action="store_true")
    add_common(p)
    add_progress(p)
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("dead", help="dead letters: list the jobs that failed for good, or retry them")
    p.add_argument("action", choices=["list", "retry"])
    p.add_argument("job_ids", nargs="*", help="with retry: only these jobs (default: all)")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--format", choices=["table", "jsonl"], default="table")
    add_debug(p)
    p.set_defaults(func=cmd_dead)

    p = sub.add_parser("status", help="a batch's progress; --wait watches it to the end")
    p.add_argument("batch_id")
    p.add_argument("--wait", action="store_true")
    add_common(p, formats=False)
    add_progress(p)
    p.set_defaults(func=cmd_status)
