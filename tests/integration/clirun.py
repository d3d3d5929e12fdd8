"""Running the `facequeue` command as a user does: a subprocess configured only through its environment."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fixtures.aws import isolated_environment
from tests.fixtures.workers import ROOT


def cli_env(redis_url: str, queue: str, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: the test stack's Redis and queue, fake AWS credentials, ``extra`` on top."""
    return isolated_environment(FACEQUEUE_REDIS_URL=redis_url, FACEQUEUE_QUEUE=queue, **extra)


def run_cli(*args: str, env: dict[str, str], timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    """Run `python -m producer.cli ARGS` and return what it printed and its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def start_interruptible_cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `python -m producer.cli ARGS` with Ctrl-C (SIGINT) at its default, whatever the test run inherited.

    A shell that starts a command in the background without job control (``make test &``, CI runners, nohup) sets
    SIGINT to ignored, the child inherits that, and Python then installs no KeyboardInterrupt: a test of Ctrl-C
    would hang for a reason that is not the CLI's. A user's terminal gives the CLI the default, as this does.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "producer.cli", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """Every line of stdout parsed as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def batch_id(stderr: str) -> str:
    """The batch id the CLI announced on stderr."""
    found = re.search(r"as batch (\w+)", stderr)
    assert found, stderr
    return found.group(1)


def blocked_modules(directory: Path, *names: str) -> str:
    """A folder to put first on PYTHONPATH in which importing each of ``names`` fails, as if it were not installed."""
    for name in names:
        package = directory / name
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(f"raise ImportError('{name} is blocked for this test')\n")
    return str(directory)


def unique_photo(source: Path, target: Path, seed: int) -> Path:
    """A copy of a photo with one pixel changed: the same face, a content hash no cache has seen."""
    from PIL import Image

    with Image.open(source) as original:
        img = original.convert("RGB")
    img.putpixel((0, 0), (seed % 256, (seed // 256) % 256, 7))
    img.save(target, "JPEG", quality=95)
    return target
