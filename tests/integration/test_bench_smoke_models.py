"""The models benchmark runs end to end at a tiny size and prints its table and headline."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmark_prints_its_table_and_headline() -> None:
    # Two photos, one timed pass: enough to exercise every code path, too little to mean anything.
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "local_rekognition_models.py"),
            "--photos",
            "2",
            "--repeat",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert any(line.startswith("| DetectFaces DEFAULT ") and "local_rekognition" in line for line in lines)
    assert any(line.startswith("| DetectFaces ALL ") for line in lines)
    assert any(line.startswith("| embedding (IndexFaces) ") for line in lines)
    # The small-face figures come from the same run: IndexFaces counts, then same/different similarity per embedder.
    assert any(line.startswith("small faces, pasted scenes") and "IndexFaces AUTO indexed" in line for line in lines)
    assert any("mesh+YuNet (now)" in line and "small-small" in line and "AUC" in line for line in lines)
    assert any("YuNet only (before)" in line and "small-large" in line for line in lines)
    assert lines[-1].startswith("headline: ")
    peer_present = importlib.util.find_spec("face_recognition_models") is not None
    if peer_present:
        assert "x face_recognition's throughput" in lines[-1]
    else:
        assert "face_recognition is NOT installed" in completed.stdout
        assert "face_recognition absent" in lines[-1]
