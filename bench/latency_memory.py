"""Latency and memory of one worker process against the stand-in.

latency  p50/p99 of enqueue → result in hand for single jobs at low load, minus the stand-in's delay (the
         pipeline's own overhead), for facequeue (FaceQueue.submit + result) and, as the baseline, a plain Celery
         no-op task (send_task + AsyncResult.get) on the same Redis.
memory   peak RSS (VmHWM) of the worker process with N jobs in flight at once (stand-in delay long enough to
         hold them all), vs the same Celery worker idle at the same concurrency.

  python bench/latency_memory.py                          # 300 single jobs, 200 in flight
  python bench/latency_memory.py --singles 20 --inflight 20   # smoke size
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request
from pathlib import Path

from _stack import aws_env, celery_worker, redis_server, standin, wait
from celery import Celery

from producer import FaceQueue, ProducerSettings, jobs
from producer.cli.demo_photos import demo_photos


def _hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _calls(url: str) -> int:
    with urllib.request.urlopen(f"{url}/stats", timeout=5) as response:
        return int(json.loads(response.read()).get("calls", 0))


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    """Measure and print both tables."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--singles", type=int, default=300)
    p.add_argument("--delay-ms", type=float, default=50)
    p.add_argument("--inflight", type=int, default=200)
    args = p.parse_args()
    photo = demo_photos()[0].read_bytes()
    with redis_server() as redis_url:
        app = Celery("bench", broker=redis_url, backend=redis_url, set_as_current=False)
        app.conf.update(task_serializer="json", accept_content=["json"], result_accept_content=["json"])
        with standin("--delay-ms", str(args.delay_ms)) as url:
            env = aws_env(url, redis_url, FACEQUEUE_CACHE_TTL_S="0")
            ours: list[float] = []
            with celery_worker("worker.app", env), FaceQueue(ProducerSettings(redis_url=redis_url)) as fq:  # type: ignore[arg-type]
                for _ in range(args.singles):
                    started = time.perf_counter()
                    fq.result(fq.submit(jobs.detect_faces(photo)), timeout_s=30)
                    ours.append((time.perf_counter() - started) * 1000 - args.delay_ms)
            noop: list[float] = []
            with celery_worker("naive_worker", env, "--pool=threads", "--concurrency=64"):
                for _ in range(args.singles):
                    started = time.perf_counter()
                    app.send_task("naive.noop", args=[None]).get(timeout=30)
                    noop.append((time.perf_counter() - started) * 1000)
        with standin("--delay-ms", "8000") as url:
            env = aws_env(
                url,
                redis_url,
                FACEQUEUE_CACHE_TTL_S="0",
                FACEQUEUE_CONCURRENCY=str(args.inflight),
                FACEQUEUE_JOB_TIMEOUT_S="60",
                FACEQUEUE_VISIBILITY_TIMEOUT_S="120",
            )
            with celery_worker("naive_worker", env, "--pool=threads", f"--concurrency={args.inflight}") as idle:
                idle_mb = _hwm_mb(idle.pid)
            with celery_worker("worker.app", env) as worker, FaceQueue(ProducerSettings(redis_url=redis_url)) as fq:  # type: ignore[arg-type]
                batch = fq.submit_many(jobs.detect_faces(photo + i.to_bytes(4, "big")) for i in range(args.inflight))
                # In flight = every job's call has reached the stand-in, which holds each for 8 s.
                wait(lambda: _calls(url) >= args.inflight, 60, "every job in flight")
                busy_mb = _hwm_mb(worker.pid)
                fq.wait(batch.batch_id, timeout_s=120)
    print(f"latency over {args.singles} single jobs (stand-in delay {args.delay_ms:g} ms subtracted)")
    print(f"{'run':36} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    print(
        f"{'celery no-op task (baseline)':36} {_pct(noop, 0.5):8.1f} {_pct(noop, 0.99):8.1f} "
        f"{statistics.mean(noop):8.1f}"
    )
    print(f"{'facequeue DetectFaces':36} {_pct(ours, 0.5):8.1f} {_pct(ours, 0.99):8.1f} {statistics.mean(ours):8.1f}")
    print(f"memory: peak RSS, one worker process, concurrency {args.inflight}")
    print(f"{'celery worker idle (baseline)':36} {idle_mb:8.0f} MB")
    print(f"{f'facequeue, {args.inflight} jobs in flight':36} {busy_mb:8.0f} MB")
    print(
        f"latency p50 {_pct(ours, 0.5):.1f} ms (target <= 25 ms), peak RSS {busy_mb:.0f} MB with {args.inflight} "
        f"in flight (target <= 200 MB)"
    )


if __name__ == "__main__":
    main()
