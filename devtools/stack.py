"""The Docker-free stack: Redis (if none answers), local_rekognition, N workers, optionally a moto S3, as processes.

    facequeue-stack run --workers 2 -- facequeue analyze photos/ --wait   # up, run the command, down
    facequeue-stack up --workers 2 && eval "$(facequeue-stack env)"          # leave it running
    facequeue-stack down                                                     # stop what `up` started

It mirrors docker-compose.yml's topology for machines without a Docker engine, and stops only what it started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import redis

STATE_FILE = "stack.json"
_LISTENING = re.compile(rb"listening on (http://\S+)")


@dataclass
class StackState:
    """What `up` started: process ids to stop and the environment that points clients at the stack."""

    pids: list[int] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _wait(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise SystemExit(f"facequeue-stack: timed out waiting for {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        # A session of its own: Ctrl-C in the user's terminal reaches the stack through `down`, not half of it.
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _listening_url(proc: subprocess.Popen[bytes], log: Path, what: str) -> str:
    found: list[str] = []

    def ready() -> bool:
        if proc.poll() is not None:
            raise SystemExit(f"facequeue-stack: {what} exited; see {log}")
        match = _LISTENING.search(log.read_bytes())
        if match:
            found.append(match.group(1).decode())
        return bool(found)

    _wait(ready, 120, f"{what} (log: {log})")
    return found[0]


def worker_argv(hostname: str, *extra: str) -> list[str]:
    """The command that starts one worker process, as users start it: `celery -A worker.app worker`."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.app",
        "worker",
        "--loglevel",
        "INFO",
        "--hostname",
        hostname,
        *extra,
    ]


def up(state_dir: Path, workers: int, with_s3: bool, redis_url: str, metrics_port: int = 0) -> StackState:
    """Start the stack's processes and return what was started."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state = StackState()
    env = dict(os.environ)
    if not _answers(redis_url):
        if not shutil.which("redis-server"):
            raise SystemExit(
                "facequeue-stack: no Redis answers at FACEQUEUE_REDIS_URL and redis-server is not "
                "installed (apt-get install redis-server, or brew install redis)"
            )
        port = urlparse(redis_url).port or 6379
        proc = _spawn(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(state_dir),
                "--appendonly",
                "yes",
                "--maxmemory-policy",
                "noeviction",
            ],
            state_dir / "redis.log",
            env,
        )
        state.pids.append(proc.pid)
        _wait(lambda: _answers(redis_url), 20, f"redis-server on port {port}")
    state.env["FACEQUEUE_REDIS_URL"] = redis_url

    if with_s3:
        port = _free_port()
        proc = _spawn([sys.executable, "-m", "moto.server", "-p", str(port)], state_dir / "s3.log", env)
        state.pids.append(proc.pid)
        state.env["AWS_ENDPOINT_URL_S3"] = f"http://127.0.0.1:{port}"

    local_rekognition = "AWS_ENDPOINT_URL_REKOGNITION" not in os.environ
    if with_s3 or local_rekognition:
        # Local endpoints take any signature; botocore still wants credentials and a region to sign with. Set
        # before local_rekognition starts: it reads the moto bucket with them (without, every S3 job failed with
        # InvalidS3ObjectException on a machine with no AWS credentials in the shell).
        for name, value in (
            ("AWS_ACCESS_KEY_ID", "local"),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ):
            if name not in os.environ:
                state.env[name] = value

    if local_rekognition:
        log = state_dir / "local_rekognition.log"
        log.write_bytes(b"")
        proc = _spawn(
            [
                sys.executable,
                "-m",
                "local_rekognition",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                str(state_dir / "collections"),
            ],
            log,
            {**env, **state.env},
        )
        state.pids.append(proc.pid)
        state.env["AWS_ENDPOINT_URL_REKOGNITION"] = _listening_url(proc, log, "local_rekognition")

    worker_env = {**env, **state.env}
    for n in range(workers):
        log = state_dir / f"worker{n}.log"
        log.write_bytes(b"")
        if metrics_port:
            # One port per worker, so `curl 127.0.0.1:<port>/metrics` reads each of them.
            worker_env["FACEQUEUE_METRICS_PORT"] = str(metrics_port + n)
            state.metrics.append(f"http://127.0.0.1:{metrics_port + n}/metrics")
        proc = _spawn(worker_argv(f"stack{n}@%h"), log, worker_env)
        state.pids.append(proc.pid)
        _wait(lambda log=log: b" ready." in log.read_bytes(), 120, f"worker {n} (log: {log})")
    (state_dir / STATE_FILE).write_text(json.dumps(asdict(state), indent=2))
    return state


def down(state_dir: Path, grace_s: float = 30) -> None:
    """Stop every process `up` started: SIGTERM (workers finish or re-queue their jobs), then SIGKILL."""
    path = state_dir / STATE_FILE
    if not path.exists():
        return
    state = StackState(**json.loads(path.read_text()))
    for pid in reversed(state.pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for pid in state.pids:
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    path.unlink()


def _alive(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Entry point of `facequeue-stack`."""
    p = argparse.ArgumentParser(
        prog="facequeue-stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("action", choices=["up", "down", "env", "run"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--s3", action="store_true", help="also start a moto S3 server")
    p.add_argument("--metrics-port", type=int, default=9808, help="first worker's metrics port (0: off)")
    p.add_argument("--state-dir", type=Path, default=Path(".stack"))
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` is the command `run` runs against the stack, flags and all.
    command = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = p.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    redis_url = os.environ.get("FACEQUEUE_REDIS_URL", "redis://127.0.0.1:6379/0")
    if args.action == "down":
        down(args.state_dir)
        return 0
    if args.action == "env":
        state = json.loads((args.state_dir / STATE_FILE).read_text())
        print("\n".join(f"export {k}={v}" for k, v in state["env"].items()))
        return 0
    down(args.state_dir)  # a stack left behind by a killed `run` must not keep its processes
    state = up(args.state_dir, args.workers, args.s3, redis_url, args.metrics_port)
    print(f"facequeue-stack: up ({len(state.pids)} processes); logs in {args.state_dir}/", file=sys.stderr)
    for url in state.metrics:
        print(f"facequeue-stack: metrics at {url}", file=sys.stderr)
    if args.action == "up":
        return 0
    try:
        return subprocess.call(command, env={**os.environ, **state.env}) if command else 0
    finally:
        down(args.state_dir)


if __name__ == "__main__":
    sys.exit(main())
