"""Quota use: 4 worker processes against the stand-in enforcing a TPS quota (ThrottlingException above it).

facequeue limiter   FACEQUEUE_RATE_LIMITS_TPS={"DetectFaces": quota}: one schedule in Redis for all processes
Celery rate_limit   the same workers, limiter off, Celery's per-worker task rate_limit set to quota / workers
                    (what Celery offers: celery#5732), applied with `celery control rate_limit`

  python bench/quota_use.py                       # 50 TPS, 1,000 jobs per run
  python bench/quota_use.py --quota 20 --jobs 100 # smoke size
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

from _stack import aws_env, celery_worker, redis_server, standin, standin_stats
from celery import Celery

from producer import FaceQueue, ProducerSettings, jobs
from producer.cli.demo_photos import demo_photos
from producer.contract import TASK_NAMES, Operation


def run(name: str, args: argparse.Namespace, photo: bytes, use_limiter: bool) -> tuple[str, dict[str, float], float]:
    """One configuration: start the stand-in and workers, push the batch, read what the stand-in saw."""
    with redis_server() as redis_url, standin("--delay-ms", str(args.delay_ms), "--tps", str(args.quota)) as url:
        settings = {
            "FACEQUEUE_CACHE_TTL_S": "0",
            "FACEQUEUE_CONCURRENCY": str(args.concurrency),
            "FACEQUEUE_MAX_ATTEMPTS": "8",
        }
        if use_limiter:
            settings["FACEQUEUE_RATE_LIMITS_TPS"] = json.dumps({"DetectFaces": args.quota})
        env = aws_env(url, redis_url, **settings)
        with contextlib.ExitStack() as stack:
            for _ in range(args.workers):
                stack.enter_context(celery_worker("worker.app", env))
            if not use_limiter:
                control = Celery(broker=redis_url, set_as_current=False).control
                per_worker = args.quota / args.workers
                control.rate_limit(TASK_NAMES[Operation.DETECT_FACES], f"{per_worker}/s", reply=True, timeout=5)
            # Celery's rate_limit counts messages, not jobs: its baseline sends one job per message, as a Celery
            # user would; facequeue's limiter counts Rekognition calls, so it takes the default packing.
            per_message = {} if use_limiter else {"jobs_per_message": 1}
            with FaceQueue(ProducerSettings(redis_url=redis_url, **per_message)) as fq:  # type: ignore[arg-type]
                started = time.perf_counter()
                batch = fq.submit_many(jobs.detect_faces(photo) for _ in range(args.jobs))
                results = fq.wait(batch.batch_id, timeout_s=600)
                seconds = time.perf_counter() - started
                failed = sum(r.error is not None for r in results)
            stats = standin_stats(url)
            stats["failed_jobs"] = failed
    return name, stats, seconds


def main() -> None:
    """Run both configurations and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quota", type=float, default=50)
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--delay-ms", type=float, default=150)
    args = p.parse_args()
    photo = demo_photos()[0].read_bytes()
    rows = [
        run("facequeue shared limiter", args, photo, True),
        run("Celery rate_limit = quota / 4", args, photo, False),
    ]
    print(f"{args.workers} workers, quota {args.quota:g} TPS, {args.jobs} jobs, stand-in latency {args.delay_ms:g} ms")
    print(f"{'run':32} {'achieved TPS':>12} {'quota use':>9} {'calls':>6} {'throttled':>9} {'failed':>6} {'s':>7}")
    for name, stats, seconds in rows:
        throttled = stats.get("ThrottlingException", 0)
        print(
            f"{name:32} {stats['accepted_rate']:12.2f} {stats['accepted_rate'] / args.quota:9.1%} "
            f"{stats['calls']:6.0f} {throttled / max(1, stats['calls']):9.2%} {stats['failed_jobs']:6.0f} "
            f"{seconds:7.1f}"
        )
    ours, theirs = rows[0][1], rows[1][1]
    print(
        f"quota use: facequeue {ours['accepted_rate'] / args.quota:.1%} with "
        f"{ours.get('ThrottlingException', 0) / max(1, ours['calls']):.2%} throttled (target >= 95%, <= 1%) vs "
        f"Celery rate_limit {theirs['accepted_rate'] / args.quota:.1%}"
    )


if __name__ == "__main__":
    main()
