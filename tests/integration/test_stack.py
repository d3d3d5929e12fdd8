"""The Docker-free stack as a user runs it: up, a batch through it, metrics with an HTTP GET, down."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from testmedia.photos import grace_hopper
from tests.fixtures.aws import isolated_environment
from tests.fixtures.redis import free_port
from tests.fixtures.workers import ROOT

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def _free_port_pair() -> int:
    """A port p with p and p + 1 free, below Linux's ephemeral range (32768 and up), where an outgoing connection
    could take p + 1 between this check and the second worker's bind (seen once in a full run)."""
    for base in random.sample(range(20000, 32000, 2), 200):
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", base))
                b.bind(("127.0.0.1", base + 1))
        except OSError:
            continue
        return base
    raise RuntimeError("no two adjacent free ports in 20000-32000")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent (the stack command, gone) could reap it.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_stack_up_analyze_metrics_down(tmp_path: Path) -> None:
    # Given no Redis on the configured URL: the stack must start its own
    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    metrics_port = _free_port_pair()
    env = isolated_environment(FACEQUEUE_REDIS_URL=redis_url)
    stack = [sys.executable, "-m", "devtools.stack"]
    state_dir = tmp_path / "stack"
    common = ["--state-dir", str(state_dir)]
    up = subprocess.run(
        [*stack, "up", "--workers", "2", "--metrics-port", str(metrics_port), *common],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    state = json.loads((state_dir / "stack.json").read_text()) if (state_dir / "stack.json").exists() else {}
    try:
        assert up.returncode == 0, up.stderr
        # Redis, local_rekognition and two workers
        assert len(state["pids"]) == 4
        assert all(_alive(pid) for pid in state["pids"])
        # When a batch runs through it
        analyze = subprocess.run(
            [
                sys.executable,
                "-m",
                "producer.cli",
                "analyze",
                str(grace_hopper()),
                str(grace_hopper()),
                "--wait",
                "--format",
                "jsonl",
            ],
            env={**env, **state["env"]},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert analyze.returncode == 0, analyze.stderr
        envelopes = [json.loads(line) for line in analyze.stdout.splitlines()]
        assert [len(e["response"]["FaceDetails"]) for e in envelopes] == [1, 1]
        # Then every worker's metrics are readable over HTTP
        texts = []
        for url in state["metrics"]:
            with urllib.request.urlopen(url, timeout=5) as response:
                texts.append(response.read().decode())
        assert len(texts) == 2
        assert all("facequeue_queue_depth" in text for text in texts)
        done = sum(
            float(line.rsplit(" ", 1)[1])
            for text in texts
            for line in text.splitlines()
            if line.startswith('facequeue_jobs_total{operation="DetectFaces",status="succeeded"}')
        )
        assert done >= 1  # two identical photos: the second may come from the cache, counted all the same
    finally:
        down = subprocess.run(
            [*stack, "down", *common], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
    # And down stops everything up started
    assert down.returncode == 0, down.stderr
    assert not any(_alive(pid) for pid in state.get("pids", []))


def test_stack_with_s3_runs_s3_jobs_without_aws_credentials_in_the_shell(tmp_path: Path) -> None:
    # Given a shell with no AWS credentials at all (a new user), and the stack with its moto S3
    env = {
        k: v
        for k, v in isolated_environment(FACEQUEUE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").items()
        if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    # When a photo is put in a bucket there and analysed by its s3:// URL, with what `facequeue-stack env` gives
    script = tmp_path / "s3_batch.py"
    script.write_text(
        "import os, subprocess, sys, boto3\n"
        "s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL_S3'])\n"
        "s3.create_bucket(Bucket='photos')\n"
        f"s3.upload_file({str(grace_hopper())!r}, 'photos', 'grace.jpg')\n"
        "cli = [sys.executable, '-m', 'producer.cli', 'analyze', 's3://photos/grace.jpg', '--wait']\n"
        "sys.exit(subprocess.call([*cli, '--format', 'jsonl']))\n"
    )
    run = subprocess.run(
        [
            *(sys.executable, "-m", "devtools.stack", "run", "--s3", "--workers", "1", "--metrics-port", "0"),
            *("--state-dir", str(tmp_path / "stack"), "--", sys.executable, str(script)),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    # Then the S3 job succeeds: local_rekognition reads the moto bucket with the stack's credentials
    assert run.returncode == 0, run.stdout + run.stderr
    envelopes = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert [(e["status"], len(e["response"]["FaceDetails"])) for e in envelopes] == [("succeeded", 1)]
