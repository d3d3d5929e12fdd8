"""What every `facequeue` command shares: exit codes, the usage error, the consoles, the output file, the options."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TypeAlias

from rich.console import Console

from producer.cli.show.render import FORMATS

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a Unix tool whose reader closed the pipe."""

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What `ArgumentParser.add_subparsers` returns: each command family adds its commands to it."""

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class UsageError(Exception):
    """The command line asks for something that cannot be done; exit 2 with the message."""


@contextlib.contextmanager
def output(args: argparse.Namespace) -> Iterator[IO[str]]:
    """Where results go: ``--output FILE`` (its folder made), else stdout."""
    path = getattr(args, "output", None)
    if not path:
        yield sys.stdout
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # newline="": the csv module writes its own line endings (RFC 4180's CRLF).
    with open(path, "w", encoding="utf-8", newline="") as stream:
        yield stream


def display_console(args: argparse.Namespace) -> Console | None:
    """The console the live progress bar draws on, or None: on a terminal, or anywhere with --progress always."""
    choice = getattr(args, "progress", "auto")
    if choice == "never":
        return None
    if choice == "always":
        return Console(stderr=True, force_terminal=True)
    return err if err.is_terminal else None


def add_debug(p: argparse.ArgumentParser) -> None:
    """``--debug`` after the command too; SUPPRESS keeps the subcommand from resetting the global flag."""
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")


def add_common(p: argparse.ArgumentParser, *, formats: bool = True) -> None:
    """--debug, --timeout and (with ``formats``) --format and --output."""
    add_debug(p)
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for results (default: forever)")
    if formats:
        p.add_argument("--format", choices=FORMATS, default="table", help="table, jsonl, or csv (one row a face)")
        p.add_argument("--output", "-o", metavar="FILE", help="write the results to FILE instead of stdout")


def add_progress(p: argparse.ArgumentParser) -> None:
    """--progress: the live progress bar on stderr."""
    p.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="live progress bar on stderr (auto: when stderr is a terminal)",
    )
