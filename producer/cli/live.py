"""`facequeue watch SOURCE`: the command around producer/cli/show/live.py's Watcher."""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from producer.cli.common import Subcommands, add_debug, err
from producer.cli.show.live import Event, SourceUnavailable, Watcher, describe
from producer.client import FaceQueue


def cmd_watch(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Watch a live source until it ends, --duration passes or Ctrl-C; print events as lines or JSON lines."""

    def emit(event: Event) -> None:
        line = json.dumps(event) if args.format == "jsonl" else describe(event)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    watcher = Watcher(
        fq, emit, fps=args.fps, max_pending=args.max_pending, search=args.search, threshold=args.threshold
    )
    try:
        stats = watcher.run(args.source, duration_s=args.duration, result_timeout_s=args.result_timeout)
    except SourceUnavailable as exc:
        err.print(f"facequeue: {exc}", markup=False, highlight=False)
        return 2
    delays = sorted(stats.delays_ms)
    p50 = f"{statistics.median(delays):.0f} ms" if delays else "n/a"
    err.print(
        f"watched: {stats.sampled} frames sampled, {stats.submitted} submitted, {stats.dropped} dropped, "
        f"{stats.tracks} track(s); frame → result p50 {p50}",
        markup=False,
        highlight=False,
    )
    return 0


def register(sub: Subcommands) -> None:
    """Add the `watch` command to the `facequeue` parser."""
    p = sub.add_parser(
        "watch", help="faces in a live source (camera index, RTSP/HTTP MJPEG URL, video file) as track events"
    )
    p.add_argument("source", help="0 (camera), rtsp://..., http://.../stream.mjpg, or a video file")
    p.add_argument("--fps", type=float, default=2.0, help="frames sampled per second (default 2)")
    p.add_argument("--search", metavar="COLLECTION", help="identify each new track in this collection")
    p.add_argument("--threshold", type=float, default=80.0, help="with --search: FaceMatchThreshold")
    p.add_argument("--max-pending", type=int, default=8, help="frames awaiting results before new ones are dropped")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--result-timeout", type=float, default=60.0, help="at the end, seconds to wait for pending results")
    p.add_argument("--format", choices=["lines", "jsonl"], default="lines")
    add_debug(p)
    p.set_defaults(func=cmd_watch)
