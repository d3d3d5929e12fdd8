"""Processes the benchmarks start and stop: a private Redis, the Rekognition stand-in, Celery workers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll until predicate() is truthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throw-away redis-server (no persistence) on a free port; yields its URL."""
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                d,
            ],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"

        def up() -> bool:
            try:
                return bool(redis.Redis.from_url(url).ping())
            except redis.RedisError:
                return False

        wait(up, 15, "redis-server")
        try:
            yield url
        finally:
            proc.terminate()
            proc.wait()


@contextlib.contextmanager
def standin(*args: str) -> Iterator[str]:
    """The Rekognition stand-in with the given options; yields its URL."""
    with tempfile.NamedTemporaryFile("w+b", suffix=".log") as log:
        proc = subprocess.Popen(
            [sys.executable, str(BENCH / "rekognition_standin.py"), "--port", "0", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        found: list[str] = []

        def up() -> bool:
            match = re.search(rb"listening on (http://\S+)", Path(log.name).read_bytes())
            if match:
                found.append(match.group(1).decode())
            return bool(found)

        wait(up, 30, "the stand-in")
        try:
            yield found[0]
        finally:
            proc.terminate()
            proc.wait()


def standin_stats(url: str, path: str = "/stats", method: str = "GET") -> dict[str, float]:
    """What the stand-in has seen (calls, throttles, accepted rate); POST /reset clears it."""
    request = urllib.request.Request(f"{url}{path}", method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def aws_env(rekognition_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """Environment for a worker: fake credentials, the stand-in as Rekognition."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FACEQUEUE_"))}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_REKOGNITION=rekognition_url,
        AWS_EC2_METADATA_DISABLED="true",
        FACEQUEUE_REDIS_URL=redis_url,
        PYTHONPATH=f"{ROOT}:{BENCH}",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def celery_worker(app: str, env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """A `celery worker` process at log level WARNING (no per-task log lines); yields once it answers a ping."""
    from celery import Celery

    name = f"bench{free_port()}@{socket.gethostname()}"
    with tempfile.NamedTemporaryFile("w+b", suffix=".log") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app,
                "worker",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--hostname",
                name,
                *args,
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        control = Celery(broker=env["FACEQUEUE_REDIS_URL"], set_as_current=False).control

        def ready() -> bool:
            if proc.poll() is not None:
                raise SystemExit(f"worker exited: {Path(log.name).read_text()[-3000:]}")
            return bool(control.ping(destination=[name], timeout=0.5))

        wait(ready, 90, f"worker {app}")
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
