"""The `facequeue` command: parse, call the client, render with rich.

Exit codes scripts can rely on: 0 every job succeeded; 1 at least one job failed, or an input was left out (an empty
file: the others are submitted); 2 nothing could be submitted (bad arguments, no images, a missing bucket); 3 Redis
unreachable, no worker consuming the queue, or results timed out; 130 interrupted (Ctrl-C detaches: the jobs keep
running); 141 the reader of stdout went away (`| head`).

Errors are one line on stderr saying what is wrong and what to do; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Iterable

from pydantic import ValidationError

from producer import jobs
from producer.cli import celebrities, faces, live, people, results, video
from producer.cli.common import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    UsageError,
    err,
)
from producer.cli.show.hints import explain
from producer.client import FaceQueue, RedisFullError, UnknownBatchError
from producer.settings import ProducerSettings
from producer.staging import StageError
from producer.watch import NoWorkersError

FAMILIES = (faces, results, people, celebrities, video, live)
"""The command families, in the order `facequeue --help` lists them; each adds its commands with `register`."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(prog="facequeue", description="Face analysis jobs through Redis and Celery.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for family in FAMILIES:
        family.register(sub)
    return parser


def _problem(exc: BaseException, redis_url: str) -> tuple[int, str] | None:
    """The exit code and one line for an exception a person can act on; None for a bug."""
    if isinstance(exc, UsageError | jobs.ImageInputError | UnknownBatchError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return EXIT_USAGE, f"invalid job: {where}: {first['msg']}"
    if isinstance(exc, NoWorkersError | RedisFullError):
        return EXIT_UNAVAILABLE, str(exc)
    if isinstance(exc, StageError):
        return EXIT_USAGE, str(exc)
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


def run(argv: Iterable[str] | None = None) -> int:
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
