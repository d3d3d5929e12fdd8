"""The `facequeue` command: parse, call the client, render with rich.

Exit codes scripts can rely on: 0 every job succeeded; 1 at least one job failed; 2 nothing could be submitted
(bad arguments, no images); 3 Redis unreachable or results timed out.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import redis
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from producer import jobs
from producer.client import FaceQueue, UnknownBatchError, stream_entries
from producer.contract import DEFAULT_RESULTS_STREAM, JobStatus, ResultEnvelope
from producer.settings import ProducerSettings

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class UsageError(Exception):
    """The command line asks for something that cannot be done; exit 2 with the message."""


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
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for obj in page.get("Contents", []):
            if Path(obj["Key"]).suffix.lower() in IMAGE_SUFFIXES:
                yield f"s3://{bucket}/{obj['Key']}"


def _summary(envelope: ResultEnvelope) -> str:
    if envelope.status is JobStatus.FAILED:
        assert envelope.error is not None
        return f"[red]{envelope.error.code}[/]: {envelope.error.message}"
    response = envelope.response or {}
    if "FaceMatches" in response and "SourceImageFace" in response:
        sims = [f"{m['Similarity']:.1f}" for m in response["FaceMatches"]]
        return f"match {', '.join(sims)}" if sims else "no match"
    if "FaceMatches" in response:
        return (
            ", ".join(
                f"{m['Face'].get('ExternalImageId', m['Face']['FaceId'])} {m['Similarity']:.1f}"
                for m in response["FaceMatches"]
            )
            or "no match"
        )
    if "CollectionArn" in response:
        return str(response["CollectionArn"])
    if "Faces" in response:
        return f"{len(response['Faces'])} faces"
    return f"{envelope.face_count()} face(s)"


class Renderer:
    """Prints envelopes as a table at the end, or as JSON lines as they arrive."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.rows: list[ResultEnvelope] = []

    def add(self, envelope: ResultEnvelope) -> None:
        """Render or keep one envelope."""
        if self.fmt == "jsonl":
            out.print(envelope.model_dump_json(exclude_none=True), markup=False, highlight=False)
        else:
            self.rows.append(envelope)

    def finish(self) -> None:
        """Print the table, if that is the format."""
        if self.fmt != "table" or not self.rows:
            return
        labels = [e.label or e.job_id for e in self.rows]
        # Long absolute paths hide the file name: show them relative to the folder they share.
        common = os.path.commonpath(labels) if all(os.path.isabs(x) for x in labels) else ""
        if common in labels:
            common = os.path.dirname(common)
        table = Table(header_style="bold")
        table.add_column("photo", overflow="fold")
        table.add_column("operation")
        table.add_column("result", overflow="fold")
        table.add_column("ms", justify="right")
        for label, e in sorted(zip(labels, self.rows, strict=True), key=lambda pair: pair[0]):
            shown = os.path.relpath(label, common) if common else label
            table.add_row(shown, e.operation, _summary(e), f"{e.rekognition_ms:.0f}")
        if common:
            out.print(f"in {common}", highlight=False)
        out.print(table)


def _follow(fq: FaceQueue, batch_id: str, fmt: str, timeout_s: float | None) -> int:
    renderer = Renderer(fmt)
    failed = 0
    for envelope in fq.iter_results(batch_id, timeout_s=timeout_s):
        failed += envelope.status is JobStatus.FAILED
        renderer.add(envelope)
    renderer.finish()
    return EXIT_FAILED if failed else EXIT_OK


def cmd_analyze(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Submit DetectFaces for every image; with --wait, print results as they complete."""
    images = list(expand_images(args.inputs))
    if not images:
        raise UsageError("no images found in " + " ".join(args.inputs))
    max_bytes = fq.settings.max_image_bytes
    prepared = [jobs.detect_faces(i, attributes=args.attributes, max_bytes=max_bytes) for i in images]
    batch = fq.submit_many(prepared)
    err.print(f"submitted {len(batch)} job(s) as batch [bold]{batch.batch_id}[/]")
    if not args.wait:
        err.print(f"follow it with: facequeue status {batch.batch_id} --wait")
        return EXIT_OK
    return _follow(fq, batch.batch_id, args.format, args.timeout)


def _one(fq: FaceQueue, prepared: jobs.PreparedJob, args: argparse.Namespace) -> int:
    envelope = fq.result(fq.submit(prepared), timeout_s=args.timeout)
    renderer = Renderer(args.format)
    renderer.add(envelope)
    renderer.finish()
    return EXIT_FAILED if envelope.status is JobStatus.FAILED else EXIT_OK


def cmd_compare(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Compare the largest face of A with the faces of B."""
    return _one(fq, jobs.compare_faces(args.source, args.target, similarity_threshold=args.threshold), args)


def cmd_collection(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Create, fill, search, list or delete a collection."""
    action, cid = args.action, args.collection_id
    if action == "create":
        return _one(fq, jobs.create_collection(cid), args)
    if action == "delete":
        return _one(fq, jobs.delete_collection(cid), args)
    if action == "list":
        return _one(fq, jobs.list_faces(cid), args)
    images = list(expand_images(args.images))
    if not images:
        raise UsageError(f"collection {action} needs image paths")
    if action == "search":
        batch = fq.submit_many(jobs.search_faces_by_image(i, cid, face_match_threshold=args.threshold) for i in images)
    else:
        batch = fq.submit_many(
            jobs.index_faces(i, cid, external_image_id=_external_id(i), max_faces=args.max_faces) for i in images
        )
    return _follow(fq, batch.batch_id, args.format, args.timeout)


def _external_id(image: str) -> str:
    """A file name made to fit ExternalImageId's pattern."""
    stem = Path(image).name
    return "".join(c if c.isalnum() or c in "_.-:" else "_" for c in stem)[:255] or "image"


def cmd_results(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Print one job's result, a batch's results, or follow the results stream."""
    if args.follow:
        return _tail_stream(fq, args.format)
    if args.batch:
        return _follow(fq, args.batch, args.format, args.timeout)
    if not args.job_id:
        raise UsageError("give a JOB id, --batch ID or --follow")
    envelope = fq.result(args.job_id, timeout_s=args.timeout)
    renderer = Renderer(args.format)
    renderer.add(envelope)
    renderer.finish()
    return EXIT_FAILED if envelope.status is JobStatus.FAILED else EXIT_OK


def _tail_stream(fq: FaceQueue, fmt: str) -> int:
    renderer = Renderer("jsonl" if fmt == "jsonl" else "line")
    last = "$"
    stream = fq.settings.results_stream or DEFAULT_RESULTS_STREAM
    while True:
        for entry_id, fields in stream_entries(fq.redis.xread({stream: last}, block=5000, count=100)):
            last = entry_id
            envelope = ResultEnvelope.model_validate_json(fields[b"envelope"])
            if renderer.fmt == "jsonl":
                renderer.add(envelope)
            else:
                out.print(f"{envelope.label or envelope.job_id}  {_summary(envelope)}")


def cmd_status(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Print a batch's progress; with --wait, until it finishes."""
    progress = fq.progress(args.batch_id)
    if args.wait:
        with err.status(f"batch {args.batch_id}") as status:
            for _ in fq.iter_results(args.batch_id, timeout_s=args.timeout):
                p = fq.progress(args.batch_id)
                status.update(f"batch {args.batch_id}: {p.done}/{p.total} done, {p.failed} failed")
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


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(prog="facequeue", description="Face analysis jobs through Redis and Celery.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", choices=["table", "jsonl"], default="table")
        p.add_argument("--timeout", type=float, default=None, help="seconds to wait for results (default: forever)")

    p = sub.add_parser("analyze", help="DetectFaces on photos: PATH, GLOB, DIR or s3://bucket/prefix")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--attributes", default="DEFAULT", help="DEFAULT, ALL, or names like AGE_RANGE,EMOTIONS")
    p.add_argument("--wait", action="store_true", help="wait and print the results")
    common(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("compare", help="CompareFaces: the largest face of SOURCE against TARGET")
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("--threshold", type=float, default=80.0)
    common(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("collection", help="collections: create, index, search, list, delete")
    p.add_argument("action", choices=["create", "index", "search", "list", "delete"])
    p.add_argument("collection_id")
    p.add_argument("images", nargs="*")
    p.add_argument("--threshold", type=float, default=80.0)
    p.add_argument("--max-faces", type=int, default=None)
    common(p)
    p.set_defaults(func=cmd_collection)

    p = sub.add_parser("results", help="a job's result, a batch's results, or --follow the results stream")
    p.add_argument("job_id", nargs="?")
    p.add_argument("--batch")
    p.add_argument("--follow", action="store_true")
    common(p)
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("status", help="a batch's progress")
    p.add_argument("batch_id")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--timeout", type=float, default=None)
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    """Run the command; return its exit code."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        settings = ProducerSettings()
        with FaceQueue(settings) as fq:
            code: int = args.func(fq, args)
            return code
    except (UsageError, jobs.ImageInputError, UnknownBatchError) as exc:
        err.print(f"facequeue: {exc}", markup=False, highlight=False)
        return EXIT_USAGE
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        err.print(f"facequeue: invalid job: {where}: {first['msg']}", markup=False, highlight=False)
        return EXIT_USAGE
    except redis.ConnectionError:
        err.print(
            "facequeue: Redis does not answer at FACEQUEUE_REDIS_URL; start it (`redis-server`, `make stack`) "
            "or point FACEQUEUE_REDIS_URL at yours",
            markup=False,
            highlight=False,
        )
        if args.debug:
            raise
        return EXIT_UNAVAILABLE
    except TimeoutError as exc:
        err.print(f"facequeue: {exc}; are workers running? (`celery -A worker.app inspect ping`)", markup=False)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        err.print("facequeue: detached; the jobs keep running (facequeue status BATCH --wait)")
        return 130


if __name__ == "__main__":
    sys.exit(main())
