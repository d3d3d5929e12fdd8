"""The `facequeue` command: the parser, one module per command family, and the presentation in show/."""

from __future__ import annotations

from collections.abc import Iterable


def main(argv: Iterable[str] | None = None) -> int:
    """Run the `facequeue` command; return its exit code."""
    from producer.cli.app import run

    return run(argv)
