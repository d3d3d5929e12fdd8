"""`facequeue video s3://bucket/clip.mp4 [--search COLLECTION] --wait`: a stored video through the queue.

The summary says who was seen, when and for how long; ``--format jsonl|csv`` writes one row per face per timestamp
(stdout or ``--output``); ``--annotate out.mp4`` draws the boxes and names on a copy of the clip.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from pathlib import Path
from typing import IO, Any

from rich.markup import escape
from rich.table import Table

from producer.cli.common import Subcommands, add_common, err, out, output
from producer.cli.show.hints import hint
from producer.client import FaceQueue
from producer.contract import JobStatus, ResultEnvelope
from producer.video import FaceRow, appearances, face_detection, face_rows, face_search
from producer.watch import WorkerCheck, follow

ROW_FIELDS = [field.name for field in dataclasses.fields(FaceRow)]


def write_rows(rows: list[FaceRow], fmt: str, stream: IO[str]) -> None:
    """One JSON object or CSV row per face per timestamp."""
    if fmt == "jsonl":
        for row in rows:
            stream.write(json.dumps(dataclasses.asdict(row)) + "\n")
    else:
        writer = csv.DictWriter(stream, fieldnames=ROW_FIELDS)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(row) for row in rows)
    stream.flush()


def summary_table(envelope: ResultEnvelope, rows: list[FaceRow]) -> Table:
    """Who was seen, from when to when, and in how many sampled frames."""
    metadata = (envelope.response or {}).get("VideoMetadata", {})
    duration_s = float(metadata.get("DurationMillis", 0)) / 1000
    table = Table(title=f"{escape(envelope.label or envelope.job_id)}: {duration_s:.1f} s, {len(rows)} face sightings")
    for name in ("who", "first seen", "last seen", "on screen", "frames"):
        table.add_column(name, justify="left" if name == "who" else "right")
    for seen in appearances(rows):
        table.add_row(
            escape(seen.who),
            f"{seen.first_ms / 1000:.1f} s",
            f"{seen.last_ms / 1000:.1f} s",
            f"{seen.seconds:.1f} s",
            str(seen.frames),
        )
    return table


def _wait(fq: FaceQueue, batch_id: str, timeout_s: float | None) -> ResultEnvelope:
    """The job's envelope; a status line on stderr while Rekognition works (it reports no percentage)."""
    check = WorkerCheck.for_queue(fq)
    started = time.monotonic()

    def idle(progress: Any) -> None:
        check(progress)
        if err.is_terminal:
            err.print(f"\rwaiting for the video job: {time.monotonic() - started:.0f} s", end="")

    for envelope in follow(fq, batch_id, timeout_s=timeout_s, on_idle=idle):
        if err.is_terminal:
            err.print()
        return envelope
    raise TimeoutError(f"the video job of batch {batch_id} left no result")


def cmd_video(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Submit a face detection (or --search) job on a stored video; with --wait, summarise and export."""
    if args.search:
        prepared = face_search(args.video, args.search, face_match_threshold=args.threshold)
    else:
        prepared = face_detection(args.video, face_attributes=args.attributes)
    handle = fq.submit(prepared)
    args.watching = handle.batch_id
    err.print(f"submitted video job {handle.job_id} as batch {handle.batch_id}", markup=False, highlight=False)
    if not (args.wait or args.annotate):
        err.print(f"follow it with: facequeue results {handle.job_id}", markup=False, highlight=False)
        return 0
    envelope = _wait(fq, handle.batch_id, args.timeout)
    if envelope.status is JobStatus.FAILED:
        assert envelope.error is not None
        err.print(f"facequeue: {envelope.error.code}: {envelope.error.message}", markup=False, highlight=False)
        if advice := hint(envelope.error.code):
            err.print(f"facequeue: {advice}", markup=False, highlight=False)
        return 1
    rows = list(face_rows(envelope))
    if args.format in ("jsonl", "csv"):
        with output(args) as stream:
            write_rows(rows, args.format, stream)
        err.print(summary_table(envelope, rows))
    else:
        out.print(summary_table(envelope, rows))
    if args.annotate:
        from producer.cli.show.video_annotate import annotate_video

        written = annotate_video(args.video, envelope, Path(args.annotate))
        err.print(f"annotated: {written}", markup=False, highlight=False)
    return 0


def register(sub: Subcommands) -> None:
    """Add the `video` command to the `facequeue` parser."""
    p = sub.add_parser("video", help="faces in a stored video (s3://bucket/clip.mp4): detection, or --search")
    p.add_argument("video", help="s3://bucket/key of an H.264 MP4 or MOV")
    p.add_argument("--search", metavar="COLLECTION", help="search the video's faces in this collection")
    p.add_argument("--threshold", type=float, default=80.0, help="with --search: FaceMatchThreshold")
    p.add_argument(
        "--attributes", choices=["DEFAULT", "ALL"], default="DEFAULT", help="face detection's FaceAttributes"
    )
    p.add_argument("--wait", action="store_true", help="wait, then print who was seen when (and export rows)")
    p.add_argument("--annotate", metavar="OUT.mp4", help="write the clip with boxes and names drawn (waits)")
    add_common(p)
    p.set_defaults(func=cmd_video)
