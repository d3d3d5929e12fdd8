"""The accuracy benchmark runs end to end on the wheel portraits, which every clone has."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_accuracy_benchmark_scores_every_field_on_the_wheel_portraits() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "local_rekognition_accuracy.py"), "--source", "wheel-portraits"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    rows = {line.split("|")[1].strip(): line for line in completed.stdout.splitlines() if line.startswith("| ")}
    for field in ("eyeglasses", "sunglasses", "beard", "mustache", "occluded", "smiling", "gender", "emotion"):
        cells = [cell.strip() for cell in rows[field].split("|")[1:-1]]
        # Both portraits are labelled on these fields, and the engine finds a face on each
        assert cells[1] == "2" and cells[7] == "0", rows[field]
    assert "time per face" in completed.stdout
