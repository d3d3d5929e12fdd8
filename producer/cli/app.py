"""The `facequeue` command: parse, call the client, render with rich.

Exit codes scripts can rely on: 0 every job succeeded; 1 at least one job failed, or an input was left out (an empty
file: the others are submitted); 2 nothing could be submitted (bad arguments, no images, a missing bucket); 3 Redis
unreachable, no worker consuming the queue, or results timed out; 130 interrupted (Ctrl-C detaches: the jobs keep
running); 141 the reader of stdout went away (`| head`).

Errors are one line on stderr saying what is wrong and what to do; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from producer import jobs
from producer.cli import live as live_cli
from producer.cli import video as video_cli
from producer.cli.show.annotate import AnnotationSkipped, Annotator, compare_picture, load_upright, save
from producer.cli.show.hints import explain, hint
from producer.cli.show.progress import BatchDisplay, Tally
from producer.cli.show.render import FORMATS, Renderer, summary
from producer.client import FaceQueue, UnknownBatchError, stream_entries
from producer.contract import DEFAULT_RESULTS_STREAM, JobStatus, ResultEnvelope, new_id
from producer.settings import ProducerSettings
from producer.watch import NoWorkersError, WorkerCheck, follow

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a Unix tool whose reader closed the pipe."""

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class UsageError(Exception):
    """The command line asks for something that cannot be done; exit 2 with the message."""


# --- Inputs. ---


def expand_images(inputs: Sequence[str]) -> Iterator[str]:
    """Yield image paths and s3:// URLs from paths, globs, directories and s3://bucket/prefix arguments."""
    for item in inputs:
        if item.startswith("s3://"):
            yield from _s3_objects(item)
            continue
        matches = sorted(glob.glob(item)) if glob.has_magic(item) else [item]
        if not matches:
            raise UsageError(f"{item}: no file matches")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                yield from (str(p) for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES)
            elif path.exists():
                yield str(path)
            else:
                raise UsageError(f"{match}: no such file or directory")


def _s3_objects(url: str) -> Iterator[str]:
    if Path(url).suffix.lower() in IMAGE_SUFFIXES:
        yield url
        return
    try:
        import boto3
    except ImportError:
        raise UsageError("listing an s3:// prefix needs boto3: pip install 'facequeue[worker]'") from None
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    try:
        for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if Path(obj["Key"]).suffix.lower() in IMAGE_SUFFIXES:
                    yield f"s3://{bucket}/{obj['Key']}"
    except Exception as exc:
        line = explain(exc)
        if line is None:
            raise
        raise UsageError(f"s3://{bucket}: {line}") from exc


def prepare_each(
    images: Sequence[str], prepare: Callable[[str], jobs.PreparedJob], args: argparse.Namespace
) -> tuple[list[str], list[jobs.PreparedJob]]:
    """Prepare a job per image; an image that cannot be used (empty, unreadable, too large) is reported and left out.

    One bad file must not cost the user the whole batch: the rest is submitted, and the exit code says 1.
    """
    kept: list[str] = []
    prepared: list[jobs.PreparedJob] = []
    for image in images:
        try:
            prepared.append(prepare(image))
        except jobs.ImageInputError as exc:
            where = "" if image in str(exc) else f"{image}: "
            err.print(f"facequeue: skipped {where}{exc}", markup=False, highlight=False)
            args.skipped += 1
            continue
        kept.append(image)
    if not prepared:
        raise UsageError(f"none of the {len(images)} image(s) can be used (see above)")
    return kept, prepared


def _external_id(image: str) -> str:
    """A file name made to fit ExternalImageId's pattern."""
    stem = Path(image).name
    return "".join(c if c.isalnum() or c in "_.-:" else "_" for c in stem)[:255] or "image"


# --- Watching results. ---


def _display_console(args: argparse.Namespace) -> Console | None:
    """The console the live progress bar draws on, or None: on a terminal, or anywhere with --progress always."""
    choice = getattr(args, "progress", "auto")
    if choice == "never":
        return None
    if choice == "always":
        return Console(stderr=True, force_terminal=True)
    return err if err.is_terminal else None


@contextlib.contextmanager
def _output(args: argparse.Namespace) -> Iterator[IO[str]]:
    path = getattr(args, "output", None)
    if not path:
        yield sys.stdout
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # newline="": the csv module writes its own line endings (RFC 4180's CRLF).
    with open(path, "w", encoding="utf-8", newline="") as stream:
        yield stream


def watch_batch(
    fq: FaceQueue,
    batch_id: str,
    args: argparse.Namespace,
    *,
    render: bool = True,
    annotator: Annotator | None = None,
) -> int:
    """Follow a batch to its end: progress bar, each result rendered (and annotated), then the summary."""
    args.watching = batch_id
    start = fq.progress(batch_id)
    display_console = _display_console(args)
    display = BatchDisplay(display_console or err, start, enabled=display_console is not None)
    check = WorkerCheck.for_queue(fq)
    tally = Tally()

    def idle(progress: Any) -> None:
        display.update(progress)
        check(progress)

    with _output(args) as stream:
        renderer = Renderer(args.format, stream) if render else None
        with display:
            for envelope in follow(fq, batch_id, timeout_s=args.timeout, on_idle=idle):
                tally.add(envelope)
                display.add(envelope)
                if renderer is not None:
                    renderer.add(envelope)
                if annotator is not None:
                    annotator.add(envelope)
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


def _one(fq: FaceQueue, prepared: jobs.PreparedJob, args: argparse.Namespace) -> ResultEnvelope:
    """Submit one job and wait for its result (noticing when no worker consumes the queue)."""
    handle = fq.submit(prepared)
    args.watching = handle.batch_id
    check = WorkerCheck.for_queue(fq)
    for envelope in follow(fq, handle.batch_id, timeout_s=args.timeout, on_idle=check):
        return envelope
    raise UnknownBatchError(f"job {handle.job_id} left no result")


def _print_one(envelope: ResultEnvelope, args: argparse.Namespace) -> int:
    with _output(args) as stream:
        renderer = Renderer(args.format, stream)
        renderer.add(envelope)
        renderer.finish()
    if envelope.error is not None and (advice := hint(envelope.error.code, envelope.error.message)):
        err.print(f"facequeue: {envelope.error.code}: {advice}", markup=False, highlight=False)
    return EXIT_FAILED if envelope.status is JobStatus.FAILED else EXIT_OK


# --- Commands. ---


def cmd_analyze(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Submit DetectFaces for every image; with --wait, print results as they complete."""
    images = list(expand_images(args.inputs))
    if not images:
        raise UsageError("no images found in " + " ".join(args.inputs))
    max_bytes = fq.settings.max_image_bytes
    images, prepared = prepare_each(
        images, lambda i: jobs.detect_faces(i, attributes=args.attributes, max_bytes=max_bytes), args
    )
    batch = _submit(fq, prepared, args)
    if not (args.wait or args.annotate):
        err.print(f"follow it with: facequeue status {batch.batch_id} --wait", markup=False, highlight=False)
        return EXIT_OK
    annotator = Annotator(args.annotate, dict(zip(batch.job_ids, images, strict=True))) if args.annotate else None
    return watch_batch(fq, batch.batch_id, args, annotator=annotator)


def _submit(fq: FaceQueue, prepared: Iterable[jobs.PreparedJob], args: argparse.Namespace) -> Any:
    # The batch id is chosen here, so an interrupted submission can still name the batch it started.
    args.submitting = new_id()
    batch = fq.submit_many(prepared, batch_id=args.submitting)
    args.submitting = None
    err.print(f"submitted {len(batch)} job(s) as batch [bold]{batch.batch_id}[/]", highlight=False)
    return batch


def cmd_compare(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Compare the largest face of A with the faces of B; --annotate F draws both photos with the match."""
    envelope = _one(fq, jobs.compare_faces(args.source, args.target, similarity_threshold=args.threshold), args)
    code = _print_one(envelope, args)
    if args.annotate:
        try:
            picture = compare_picture(load_upright(args.source), load_upright(args.target), envelope)
        except AnnotationSkipped as why:
            err.print(f"annotate: skipped: {why}", markup=False, highlight=False)
        else:
            err.print(f"annotated: {save(picture, Path(args.annotate))}", markup=False, highlight=False)
    return code


def cmd_collection(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Create, fill, search, list or delete a collection."""
    action, cid = args.action, args.collection_id
    single = {"create": jobs.create_collection, "delete": jobs.delete_collection, "list": jobs.list_faces}
    if action in single:
        return _print_one(_one(fq, single[action](cid), args), args)
    images = list(expand_images(args.images))
    if not images:
        raise UsageError(f"collection {action} needs image paths")
    if action == "search":
        images, prepared = prepare_each(
            images, lambda i: jobs.search_faces_by_image(i, cid, face_match_threshold=args.threshold), args
        )
    else:
        images, prepared = prepare_each(
            images,
            lambda i: jobs.index_faces(i, cid, external_image_id=_external_id(i), max_faces=args.max_faces),
            args,
        )
    batch = _submit(fq, prepared, args)
    annotator = Annotator(args.annotate, dict(zip(batch.job_ids, images, strict=True))) if args.annotate else None
    return watch_batch(fq, batch.batch_id, args, annotator=annotator)


def cmd_results(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Print one job's result, a batch's results (table, JSON lines or CSV), or follow the results stream."""
    if args.follow:
        return _tail_stream(fq, args)
    if args.batch:
        return watch_batch(fq, args.batch, args)
    if not args.job_id:
        raise UsageError("give a JOB id, --batch ID or --follow")
    return _print_one(fq.result(args.job_id, timeout_s=args.timeout), args)


def _tail_stream(fq: FaceQueue, args: argparse.Namespace) -> int:
    last = "$"
    stream = fq.settings.results_stream or DEFAULT_RESULTS_STREAM
    with _output(args) as output:
        renderer = Renderer(args.format, output) if args.format != "table" else None
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


# --- The command line. ---


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(prog="facequeue", description="Face analysis jobs through Redis and Celery.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, *, formats: bool = True) -> None:
        # --debug works after the command too; SUPPRESS keeps the subcommand from resetting the global flag.
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        p.add_argument("--timeout", type=float, default=None, help="seconds to wait for results (default: forever)")
        if formats:
            p.add_argument("--format", choices=FORMATS, default="table", help="table, jsonl, or csv (one row a face)")
            p.add_argument("--output", "-o", metavar="FILE", help="write the results to FILE instead of stdout")

    def progress(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--progress",
            choices=["auto", "always", "never"],
            default="auto",
            help="live progress bar on stderr (auto: when stderr is a terminal)",
        )

    p = sub.add_parser("analyze", help="DetectFaces on photos: PATH, GLOB, DIR or s3://bucket/prefix")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--attributes", default="DEFAULT", help="DEFAULT, ALL, or names like AGE_RANGE,EMOTIONS")
    p.add_argument("--wait", action="store_true", help="wait and print the results")
    p.add_argument("--annotate", metavar="DIR", type=Path, help="draw the faces on each photo into DIR (waits)")
    common(p)
    progress(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("compare", help="CompareFaces: the largest face of SOURCE against TARGET")
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("--threshold", type=float, default=80.0)
    p.add_argument("--annotate", metavar="FILE", help="draw both photos side by side with the match into FILE")
    common(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("collection", help="collections: create, index, search, list, delete")
    p.add_argument("action", choices=["create", "index", "search", "list", "delete"])
    p.add_argument("collection_id")
    p.add_argument("images", nargs="*")
    p.add_argument("--threshold", type=float, default=80.0)
    p.add_argument("--max-faces", type=int, default=None)
    p.add_argument("--annotate", metavar="DIR", type=Path, help="index, search: draw the faces on each photo into DIR")
    common(p)
    progress(p)
    p.set_defaults(func=cmd_collection)

    p = sub.add_parser("results", help="a job's result, a batch's results, or --follow the results stream")
    p.add_argument("job_id", nargs="?")
    p.add_argument("--batch")
    p.add_argument("--follow", action="store_true")
    common(p)
    progress(p)
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("dead", help="dead letters: list the jobs that failed for good, or retry them")
    p.add_argument("action", choices=["list", "retry"])
    p.add_argument("job_ids", nargs="*", help="with retry: only these jobs (default: all)")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--format", choices=["table", "jsonl"], default="table")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    p.set_defaults(func=cmd_dead)

    p = sub.add_parser("status", help="a batch's progress; --wait watches it to the end")
    p.add_argument("batch_id")
    p.add_argument("--wait", action="store_true")
    common(p, formats=False)
    progress(p)
    p.set_defaults(func=cmd_status)

    # Imported here, not at the top: cli_people builds on this module's helpers, so it loads after this module.
    from producer.cli import people as cli_people

    cli_people.add_commands(sub, common, progress)
    video_cli.add_parser(sub, common)
    sub.choices["video"].set_defaults(func=lambda fq, args: video_cli.cmd_video(fq, args, out, err, _output))
    live_cli.add_parser(sub).set_defaults(func=lambda fq, args: live_cli.cmd_watch(fq, args, err))
    return parser


def _problem(exc: BaseException, redis_url: str) -> tuple[int, str] | None:
    """The exit code and one line for an exception a person can act on; None for a bug."""
    if isinstance(exc, UsageError | jobs.ImageInputError | UnknownBatchError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return EXIT_USAGE, f"invalid job: {where}: {first['msg']}"
    if isinstance(exc, NoWorkersError):
        return EXIT_UNAVAILABLE, str(exc)
    if isinstance(exc, TimeoutError):
        return EXIT_UNAVAILABLE, f"{exc}; are workers running? (`celery -A worker.app inspect active_queues`)"
    line = explain(exc, redis_url=redis_url)
    return (EXIT_UNAVAILABLE if _is_redis(exc) else EXIT_USAGE, line) if line else None


def _is_redis(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("redis")


def _settings() -> ProducerSettings:
    try:
        return ProducerSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "FACEQUEUE_" + ".".join(str(p) for p in first["loc"]).upper()
        raise UsageError(f"{name} is not valid: {first['msg']}") from None


def main(argv: Iterable[str] | None = None) -> int:
    """Run the command; return its exit code."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    args.watching = args.submitting = None
    args.skipped = 0
    where = "FACEQUEUE_REDIS_URL"
    try:
        settings = _settings()
        url = settings.redis_url
        where = f"{url.scheme}://{url.host}:{url.port}{url.path or ''}"  # never the password
        with FaceQueue(settings) as fq:
            # The client rides out a Redis restart for ~30 s; a Redis that is not there at all is said at once.
            fq.ping()
            code: int = args.func(fq, args)
            # Inputs left out (prepare_each) make a batch that "succeeded" a partial one: say so in the exit code.
            return EXIT_FAILED if args.skipped and code == EXIT_OK else code
    except BrokenPipeError:
        # The reader went away (`facequeue ... | head`): stop quietly, as Unix tools do, and keep Python's final
        # flush of stdout from raising again (Python's docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        err.print(_detached(args), markup=False, highlight=False)
        return EXIT_INTERRUPTED
    except Exception as exc:
        problem = _problem(exc, where)
        if args.debug:
            traceback.print_exc()
        if problem is None:
            err.print(
                f"facequeue: unexpected {type(exc).__name__}: {exc}"
                + ("" if args.debug else " (run with --debug for the traceback)"),
                markup=False,
                highlight=False,
            )
            return EXIT_FAILED
        code, line = problem
        err.print(f"facequeue: {line}", markup=False, highlight=False)
        return code


def _detached(args: argparse.Namespace) -> str:
    if args.submitting:
        return (
            f"facequeue: interrupted while submitting batch {args.submitting}; "
            "the jobs queued so far will run (the batch stays incomplete)"
        )
    if args.watching:
        resume = f"facequeue status {args.watching} --wait"
        return f"facequeue: detached; the jobs keep running. Resume watching with: {resume}"
    return "facequeue: interrupted"


if __name__ == "__main__":
    sys.exit(main())
