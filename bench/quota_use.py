"""Quota use: worker processes against the stand-in enforcing a TPS quota (ThrottlingException above it).

Told the quota (4 workers x 16, the quota given to facequeue or to Celery):
  facequeue limiter     FACEQUEUE_RATE_LIMITS_TPS={"DetectFaces": quota}: one schedule in Redis for all processes
  Celery rate_limit     the same workers, limiter off, Celery's per-worker task rate_limit set to quota / workers
                        (what Celery offers: celery#5732), applied with `celery control rate_limit`

Not told (2 workers x 64 by default, a burst; nobody knows the quota, as with AWS's defaults or local_rekognition):
  adaptive              the shared rate learnt from throttles (worker/throttle.py), the default
  full speed (main)     FACEQUEUE_ADAPTIVE_RATE=false: every worker sends at its concurrency, as main did

  python bench/quota_use.py                       # 50 TPS, 1,000 jobs per run
  python bench/quota_use.py --quota 20 --jobs 100 # smoke size
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from dataclasses import dataclass

from _stack import aws_env, celery_worker, redis_server, standin, standin_stats
from celery import Celery

from producer import FaceQueue, ProducerSettings, jobs
from producer.cli.demo_photos import demo_photos
from producer.contract import TASK_NAMES, Operation


@dataclass(frozen=True)
class Config:
    """One configuration: who is told the quota, and how the workers run."""

    name: str
    workers: int
    concurrency: int
    settings: dict[str, str]
    celery_rate_limit: bool = False


def run(config: Config, args: argparse.Namespace, photo: bytes) -> tuple[Config, dict[str, float], float]:
    """One configuration: start the stand-in and workers, push the batch, read what the stand-in saw."""
    with redis_server() as redis_url, standin("--delay-ms", str(args.delay_ms), "--tps", str(args.quota)) as url:
        env = aws_env(url, redis_url, FACEQUEUE_CACHE_TTL_S="0", **config.settings)
        env["FACEQUEUE_CONCURRENCY"] = str(config.concurrency)
        with contextlib.ExitStack() as stack:
            for _ in range(config.workers):
                stack.enter_context(celery_worker("worker.app", env))
            if config.celery_rate_limit:
                control = Celery(broker=redis_url, set_as_current=False).control
                per_worker = args.quota / config.workers
                control.rate_limit(TASK_NAMES[Operation.DETECT_FACES], f"{per_worker}/s", reply=True, timeout=5)
            # Celery's rate_limit counts messages, not jobs: its baseline sends one job per message, as a Celery
            # user would; facequeue's limiter counts Rekognition calls, so it takes the default packing.
            per_message = {"jobs_per_message": 1} if config.celery_rate_limit else {}
            with FaceQueue(ProducerSettings(redis_url=redis_url, **per_message)) as fq:  # type: ignore[arg-type]
                started = time.perf_counter()
                batch = fq.submit_many(jobs.detect_faces(photo) for _ in range(args.jobs))
                results = fq.wait(batch.batch_id, timeout_s=900)
                seconds = time.perf_counter() - started
                failed = sum(r.error is not None for r in results)
            stats = standin_stats(url)
            stats["failed_jobs"] = failed
    return config, stats, seconds


def main() -> None:
    """Run every configuration and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quota", type=float, default=50)
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--burst-workers", type=int, default=2, help="workers of the runs not told the quota")
    p.add_argument("--burst-concurrency", type=int, default=64)
    p.add_argument("--delay-ms", type=float, default=150)
    p.add_argument("--only", choices=["told", "unannounced"], help="run one half only")
    args = p.parse_args()
    photo = demo_photos()[0].read_bytes()
    told = json.dumps({"DetectFaces": args.quota})
    configs = []
    if args.only != "unannounced":
        configs += [
            Config("facequeue shared limiter", args.workers, args.concurrency, {"FACEQUEUE_RATE_LIMITS_TPS": told}),
            Config(f"Celery rate_limit = quota / {args.workers}", args.workers, args.concurrency, {}, True),
        ]
    if args.only != "told":
        w, c = args.burst_workers, args.burst_concurrency
        configs += [
            Config(f"not told, adaptive ({w}x{c})", w, c, {}),
            Config(f"not told, full speed ({w}x{c}, main)", w, c, {"FACEQUEUE_ADAPTIVE_RATE": "false"}),
        ]
    rows = [run(config, args, photo) for config in configs]
    print(f"quota {args.quota:g} TPS, {args.jobs} jobs per run, stand-in latency {args.delay_ms:g} ms")
    print(f"{'run':36} {'achieved TPS':>12} {'quota use':>9} {'calls':>6} {'throttled':>9} {'failed':>6} {'s':>7}")
    for config, stats, seconds in rows:
        throttled = stats.get("ThrottlingException", 0)
        print(
            f"{config.name:36} {stats['accepted_rate']:12.2f} {stats['accepted_rate'] / args.quota:9.1%} "
            f"{stats['calls']:6.0f} {throttled / max(1, stats['calls']):9.2%} {stats['failed_jobs']:6.0f} "
            f"{seconds:7.1f}"
        )
    for config, stats, seconds in rows:
        if config.name.startswith("not told"):
            # Succeeded jobs over the whole batch, slow start included: what a user waits for.
            succeeded = args.jobs - stats["failed_jobs"]
            print(
                f"{config.name}: {succeeded} jobs succeeded, {succeeded / seconds / args.quota:.1%} of the quota "
                "over the whole batch"
            )
    if args.only != "unannounced":
        ours, theirs = rows[0][1], rows[1][1]
        print(
            f"quota use: facequeue {ours['accepted_rate'] / args.quota:.1%} with "
            f"{ours.get('ThrottlingException', 0) / max(1, ours['calls']):.2%} throttled (target >= 95%, <= 1%) vs "
            f"Celery rate_limit {theirs['accepted_rate'] / args.quota:.1%}"
        )


if __name__ == "__main__":
    main()
