"""The user identification benchmark runs end to end and prints both methods side by side."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.aws import isolated_environment

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_the_benchmark_prints_both_methods_and_a_headline() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "user_identification.py"), "--sweep", "80"],
        env=isolated_environment(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    # Each scenario's table has a row per method; the clean photos of enrolled people are all named correctly
    clean = [line.split() for line in lines if line.startswith("clean ")]
    assert [row[1] for row in clean] == ["person", "best"] * 3
    assert all(int(row[2]) > 0 and int(row[3]) == 0 and int(row[4]) == 0 for row in clean)
    headline = lines[lines.index(next(line for line in lines if line.startswith("headline"))) + 1 :]
    assert len(headline) == 3
    assert all(re.search(r"person \d+/\d+ correct, \d+ false, max impostor [\d.]+ \| best", line) for line in headline)
