"""Pipeline throughput per worker process against the Rekognition stand-in (150 ms per call, no quota).

Three runs, same machine, same run, same Redis, same stand-in:
  naive      the AWS-blog worker: a Celery task calling boto3 synchronously, prefork pool, concurrency = cores
  no-op      Celery's own ceiling for one worker process: a task that does nothing (threads pool and prefork -c 1;
             the better of the two is the ceiling)
  facequeue  one facequeue worker process (threads feeding one event loop and one aioboto3 client)

Each run starts its worker and warms it up with an untimed tenth of its jobs (a long-lived worker has its HTTP and
Redis connections open; opening ~256 of each cost a cold facequeue worker ~10% of a short run), then submits its jobs
and times submit → last result stored (Celery's result backend for the Celery tasks, facequeue's result keys for
facequeue), polled with pipelined EXISTS over at most POLL_WINDOW pending keys at a time.

    python bench/pipeline_throughput.py                       # full size
    python bench/pipeline_throughput.py --jobs 200 --naive-jobs 20 --noop-jobs 200   # smoke size
"""

from __future__ import annotations

import argparse
import base64
import os
import time
from dataclasses import dataclass

import redis
from _stack import aws_env, celery_worker, redis_server, standin, standin_stats
from celery import Celery

from producer import FaceQueue, ProducerSettings, jobs
from producer.cli.demo_photos import demo_photos
from producer.contract import result_key


@dataclass
class Run:
    """One measured run."""

    name: str
    processes: int
    jobs: int
    seconds: float

    @property
    def rate(self) -> float:
        """Jobs per second, all processes together."""
        return self.jobs / self.seconds

    @property
    def per_process(self) -> float:
        """Jobs per second per worker process."""
        return self.rate / self.processes


POLL_WINDOW = 200
"""Keys a poll checks at most: the harness's own load on Redis and on the machine stays flat as the run goes on."""


def _wait_all(client: redis.Redis, keys: list[str], started: float, timeout_s: float = 600) -> float:
    """Seconds from ``started`` until every key exists (each run's result keys).

    Each poll checks only the first POLL_WINDOW keys still pending, and sleeps only when one of them is: checking
    every pending key each 20 ms cost Redis and this process work that grew with the run's length times its jobs
    (a 13 s run of 3,000 jobs sent about a million EXISTS), on the two cores the measured worker shares, so the
    slower run paid more for being watched.
    """
    pending = list(keys)
    deadline = time.monotonic() + timeout_s
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(pending)} of {len(keys)} jobs unfinished after {timeout_s} s")
        window, rest = pending[:POLL_WINDOW], pending[POLL_WINDOW:]
        pipe = client.pipeline(transaction=False)
        for key in window:
            pipe.exists(key)
        left = [t for t, done in zip(window, pipe.execute(), strict=True) if not done]
        pending = left + rest
        if left:
            time.sleep(0.02)
    return time.perf_counter() - started


def _celery_run(name: str, redis_url: str, endpoint: str, task: str, arg: str | None, n: int, *worker_args: str) -> Run:
    app = Celery("bench-client", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"])
    client = redis.Redis.from_url(redis_url)
    processes = next((int(a.split("=")[1]) for a in worker_args if a.startswith("--concurrency=")), 1)
    if "--pool=threads" in worker_args:
        processes = 1

    def batch(count: int) -> float:
        started = time.perf_counter()
        with app.producer_or_acquire() as producer, producer.batch(max_size=500):
            ids = [app.send_task(task, args=[arg], producer=producer).id for _ in range(count)]
        return _wait_all(client, [f"celery-task-meta-{task_id}" for task_id in ids], started)

    with celery_worker("naive_worker", aws_env(endpoint, redis_url), *worker_args):
        batch(_warm_up(n))
        seconds = batch(n)
    return Run(name, processes, n, seconds)


def _warm_up(n: int) -> int:
    """How many untimed jobs warm a worker up before a timed run of ``n``."""
    return max(1, n // 10)


def _facequeue_run(redis_url: str, endpoint: str, n: int, concurrency: int, photo: bytes) -> Run:
    client = redis.Redis.from_url(redis_url)
    env = aws_env(endpoint, redis_url, FACEQUEUE_CONCURRENCY=str(concurrency))
    # Every job a different photo (4 bytes after the JPEG's end marker), as in a real batch: the response cache
    # misses and every job pays for its own Rekognition call, blob read and publish.
    photos = [photo + i.to_bytes(4, "big") for i in range(n + _warm_up(n))]

    def batch(fq: FaceQueue, chosen: list[bytes]) -> float:
        calls_before = int(standin_stats(endpoint)["calls"])
        started = time.perf_counter()
        handle = fq.submit_many(jobs.detect_faces(p) for p in chosen)
        seconds = _wait_all(client, [result_key(job_id) for job_id in handle.job_ids], started)
        failed = fq.progress(handle.batch_id).failed
        if failed:
            raise SystemExit(f"{failed} facequeue jobs failed; the benchmark is void")
        calls = int(standin_stats(endpoint)["calls"]) - calls_before
        if calls < len(chosen):
            raise SystemExit(f"only {calls} Rekognition calls for {len(chosen)} jobs: results came from a cache; void")
        return seconds

    with celery_worker("worker.app", env), FaceQueue(ProducerSettings(redis_url=redis_url)) as fq:  # type: ignore[arg-type]
        batch(fq, photos[n:])
        seconds = batch(fq, photos[:n])
    return Run(f"facequeue (threads -c {concurrency}, 1 process)", 1, n, seconds)


def main() -> None:
    """Run the three configurations and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=3000, help="facequeue jobs")
    p.add_argument("--naive-jobs", type=int, default=80)
    p.add_argument("--noop-jobs", type=int, default=5000)
    p.add_argument("--delay-ms", type=float, default=150)
    p.add_argument("--concurrency", type=int, default=256, help="facequeue jobs in flight per process")
    args = p.parse_args()
    photo = demo_photos()[0].read_bytes()
    cores = os.cpu_count() or 1
    with redis_server() as redis_url, standin("--delay-ms", str(args.delay_ms)) as endpoint:
        b64 = base64.b64encode(photo).decode()
        naive = _celery_run(
            f"naive boto3 (prefork -c {cores})",
            redis_url,
            endpoint,
            "naive.detect_faces",
            b64,
            args.naive_jobs,
            "--pool=prefork",
            f"--concurrency={cores}",
        )
        noop_threads = _celery_run(
            f"no-op (threads -c {args.concurrency}, 1 process)",
            redis_url,
            endpoint,
            "naive.noop",
            None,
            args.noop_jobs,
            "--pool=threads",
            f"--concurrency={args.concurrency}",
        )
        noop_prefork = _celery_run(
            "no-op (prefork -c 1)",
            redis_url,
            endpoint,
            "naive.noop",
            None,
            args.noop_jobs,
            "--pool=prefork",
            "--concurrency=1",
        )
        ours = _facequeue_run(redis_url, endpoint, args.jobs, args.concurrency, photo)
    ceiling = max(noop_threads, noop_prefork, key=lambda r: r.per_process)
    print(f"stand-in latency {args.delay_ms:.0f} ms, {cores} cores, photo {len(photo)} bytes")
    print(f"{'run':48} {'jobs':>6} {'s':>7} {'jobs/s':>8} {'per process':>12}")
    for run in (naive, noop_threads, noop_prefork, ours):
        print(f"{run.name:48} {run.jobs:6d} {run.seconds:7.2f} {run.rate:8.1f} {run.per_process:12.1f}")
    print(
        f"facequeue per process = {ours.per_process / naive.per_process:.1f}x naive (target >= 15x), "
        f"{100 * ours.per_process / ceiling.per_process:.0f}% of the no-op ceiling (target >= 80%)"
    )


if __name__ == "__main__":
    main()
