"""Redis memory of a big bytes batch: a window of blob bytes against today's unbounded submit, same run, same photos.

Each run gets a fresh redis-server (INFO's used_memory_peak cannot be reset, so a fresh server's peak covers exactly
one batch, transient buffers included: nothing is missed between samples), the Rekognition stand-in and worker
processes, then one producer process submits every photo of a directory of distinct JPEGs and waits for the results:

  client, unbounded    FaceQueue().submit_many with the window set to 1 TiB: as main stored, as fast as it could
  client, window       the same with FACEQUEUE_WINDOW_BLOB_BYTES (default 256 MiB)
  CLI, window          `facequeue analyze DIR --wait --format jsonl` with the same window

It prints each run's peak Redis growth (used_memory_peak minus used_memory once the workers were idle), the growth
left at the end (results: they stay for FACEQUEUE_RESULT_TTL_S), the producer's peak RSS, and photos per second
from first submit to last result.

    python bench/batch_memory.py                          # 5,000 photos of ~440 KB (2.2 GB), window 256 MiB
    python bench/batch_memory.py --photos 300 --window-mib 16   # smoke size
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from _stack import ROOT, aws_env, celery_worker, redis_server, standin

MIB = 2**20


@dataclass
class Run:
    """One measured run."""

    name: str
    photos: int
    seconds: float
    peak_growth: int
    end_growth: int
    producer_rss: int

    @property
    def rate(self) -> float:
        """Photos per second, first submit to last result."""
        return self.photos / self.seconds


def make_photos(directory: Path, count: int) -> int:
    """Write ``count`` distinct ~440 KB JPEGs; return their total size in bytes."""
    sys.path.insert(0, str(ROOT))
    from testmedia.imaging import distinct_jpegs
    from testmedia.photos import grace_hopper

    total = 0
    for i, data in enumerate(distinct_jpegs(grace_hopper(), count, seed=20)):
        (directory / f"{i:05}.jpg").write_bytes(data)
        total += len(data)
    return total


def _memory(client: redis.Redis) -> tuple[int, int]:
    info = client.info("memory")
    return int(info["used_memory"]), int(info["used_memory_peak"])  # type: ignore[index]


def producer_argv(kind: str, folder: Path) -> list[str]:
    """The producer process of a run: this script's own --produce mode (the client) or the CLI."""
    if kind == "cli":
        return [sys.executable, "-m", "producer.cli", "analyze", str(folder), "--wait", "--format", "jsonl",
                "--output", os.devnull, "--progress", "never"]  # fmt: skip
    return [sys.executable, __file__, "--produce", str(folder)]


def produce(folder: Path) -> None:
    """Submit every photo of ``folder`` through the client, lazily, and wait for the results (a producer process)."""
    from producer import FaceQueue, jobs

    paths = sorted(folder.glob("*.jpg"))
    with FaceQueue() as fq:
        batch = fq.submit_many(jobs.detect_faces(path) for path in paths)
        results = fq.wait(batch.batch_id, timeout_s=1800)
    failed = sum(r.error is not None for r in results)
    if len(results) != len(paths) or failed:
        raise SystemExit(f"{len(results)} results of {len(paths)}, {failed} failed")


def run(name: str, kind: str, folder: Path, count: int, window: int, args: argparse.Namespace) -> Run:
    """One configuration on a fresh Redis, stand-in and workers."""
    with redis_server() as redis_url, standin("--delay-ms", str(args.delay_ms)) as url:
        env = aws_env(url, redis_url, FACEQUEUE_CACHE_TTL_S="0", FACEQUEUE_CONCURRENCY=str(args.concurrency))
        client = redis.Redis.from_url(redis_url)
        with contextlib.ExitStack() as stack:
            for _ in range(args.workers):
                stack.enter_context(celery_worker("worker.app", env))
            start_used, _ = _memory(client)
            producer_env = {**env, "FACEQUEUE_WINDOW_BLOB_BYTES": str(window), "PYTHONPATH": str(ROOT)}
            log = stack.enter_context(tempfile.TemporaryFile())
            started = time.perf_counter()
            proc = subprocess.Popen(producer_argv(kind, folder), env=producer_env, cwd=ROOT, stderr=log)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - started
            if os.waitstatus_to_exitcode(status) != 0:
                log.seek(0)
                raise SystemExit(f"{name}: the producer failed:\n{log.read().decode(errors='replace')[-3000:]}")
            end_used, peak = _memory(client)
        client.close()
    # ru_maxrss is in KiB on Linux.
    return Run(name, count, seconds, peak - start_used, end_used - start_used, usage.ru_maxrss * 1024)


def main() -> None:
    """Make the photos, run the three configurations, print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=int, default=5000)
    p.add_argument("--window-mib", type=int, default=256)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--delay-ms", type=float, default=20)
    p.add_argument("--produce", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.produce:
        produce(args.produce)
        return
    window = args.window_mib * MIB
    with tempfile.TemporaryDirectory(prefix="batch-memory-") as d:
        folder = Path(d)
        total = make_photos(folder, args.photos)
        rows = [
            run("client, unbounded (as main)", "client", folder, args.photos, 2**40, args),
            run(f"client, window {args.window_mib} MiB", "client", folder, args.photos, window, args),
            run(f"CLI, window {args.window_mib} MiB", "cli", folder, args.photos, window, args),
        ]
    print(
        f"{args.photos} distinct photos, {total / MIB:,.0f} MiB; {args.workers} workers x {args.concurrency}, "
        f"stand-in {args.delay_ms:g} ms; window {args.window_mib} MiB (+10 % = {1.1 * args.window_mib:.0f} MiB)"
    )
    print(f"{'run':28} {'Redis peak growth':>17} {'left at end':>11} {'producer RSS':>12} {'photos/s':>8}")
    for r in rows:
        print(
            f"{r.name:28} {r.peak_growth / MIB:13,.0f} MiB {r.end_growth / MIB:7,.0f} MiB "
            f"{r.producer_rss / MIB:8,.0f} MiB {r.rate:8.1f}"
        )
    base = rows[0].rate
    for r in rows[1:]:
        within = r.peak_growth <= 1.1 * window
        print(
            f"{r.name}: peak {r.peak_growth / window:.0%} of the window ({'within' if within else 'OVER'} +10 %), "
            f"throughput {r.rate / base:.0%} of unwindowed"
        )


if __name__ == "__main__":
    main()
