"""The video benchmarks run end to end at a tiny size and print their figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> list[str]:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip().splitlines()


def test_the_video_path_benchmark_prints_both_paths() -> None:
    lines = _run("local_rekognition_video.py", "--seconds", "1", "--size", "320x240", "--repeat", "1")
    assert lines[0].startswith("clip: ") and "5 frames sampled" in lines[0]
    assert lines[-1].startswith("run 1: video path") and "baseline JPEG per frame" in lines[-1]


def test_the_watch_delay_benchmark_prints_baseline_and_watch() -> None:
    lines = _run("watch_delay.py", "--seconds", "2", "--fps", "4")
    assert lines[-2].startswith("baseline: DetectFaces straight to local_rekognition")
    assert lines[-1].startswith("watch: frame read → result handled through the queue: p50")
