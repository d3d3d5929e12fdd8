"""Each pipeline benchmark (and the local_rekognition load one) runs at a tiny size and prints its table and headline.

Smoke runs only: the sizes are too small for the figures to mean anything, and nothing here checks speed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.aws import isolated_environment

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def _bench(script: str, *args: str) -> list[str]:
    env = isolated_environment(PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'bench'}")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()


def test_pipeline_throughput() -> None:
    lines = _bench(
        "pipeline_throughput.py", "--jobs", "60", "--naive-jobs", "4", "--noop-jobs", "60", "--delay-ms", "20"
    )
    assert any(line.startswith("naive boto3") for line in lines)
    assert any(line.startswith("facequeue (threads") for line in lines)
    assert lines[-1].startswith("facequeue per process = ") and "naive" in lines[-1]


def test_quota_use() -> None:
    lines = _bench("quota_use.py", "--quota", "20", "--jobs", "40", "--workers", "2", "--delay-ms", "10")
    assert any(line.startswith("facequeue shared limiter") for line in lines)
    assert any(line.startswith("Celery rate_limit") for line in lines)
    assert any(line.startswith("not told, adaptive") for line in lines)
    assert any(line.startswith("not told, full speed") for line in lines)
    assert lines[-1].startswith("quota use: facequeue ")


def test_batch_memory() -> None:
    lines = _bench("batch_memory.py", "--photos", "40", "--window-mib", "4", "--concurrency", "8")
    assert any(line.startswith("client, unbounded (as main)") for line in lines)
    assert lines[-1].startswith("CLI, window 4 MiB: peak ")


def test_enqueue() -> None:
    lines = _bench("enqueue.py", "--jobs", "200")
    assert lines[-1].startswith("enqueue: submit_many = ")


def test_latency_and_memory() -> None:
    lines = _bench("latency_memory.py", "--singles", "10", "--inflight", "10", "--delay-ms", "10")
    assert any(line.startswith("facequeue DetectFaces") for line in lines)
    assert lines[-1].startswith("latency p50 ")


def test_local_rekognition_load() -> None:
    lines = _bench("local_rekognition_load.py", "--rounds", "2", "--per-round", "4", "--threads", "2")
    assert any(line.startswith("baseline, one request at a time") for line in lines)
    assert lines[-1].startswith("load: ") and "cores used" in lines[-1]


def test_failover() -> None:
    lines = _bench("failover.py", "--rounds", "1", "--jobs", "40", "--delay-ms", "20")
    assert any(line.startswith("without WAIT") for line in lines)
    assert any(line.startswith("durable writes") for line in lines)
    assert lines[-1].startswith("failover: without WAIT ")
