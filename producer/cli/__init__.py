"""The `facequeue` command: the parser, one module per command family, and the presentation in show/."""

from __future__ import annotations

from producer.cli.app import main

__all__ = ["main"]
