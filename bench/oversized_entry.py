"""What a refused oversized queue entry costs a worker in memory (issue 25, defect 5): its peak RSS (VmHWM) after a
warm-up job (the baseline, same run), then after each refused entry of growing size, then after a job again.

    python bench/oversized_entry.py            # sizes 9, 50, 200 MB

A worker that reads an entry whole before refusing it grows by a few times the entry; one that refuses it from its
length grows by nothing measurable. Uses a private redis-server and the Rekognition stand-in; 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
import uuid
from pathlib import Path

import redis
from _stack import aws_env, celery_worker, redis_server, standin, wait

from producer import FaceQueue, ProducerSettings, jobs
from producer.contract import DEAD_LETTERS_KEY, Operation, queue_for
from testmedia.photos import grace_hopper


def peak_rss_mb(worker: subprocess.Popen[bytes]) -> float:
    """The worker's peak resident set so far, in MB."""
    status = Path(f"/proc/{worker.pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def entry(size: int, queue: str) -> str:
    """A kombu-shaped queue entry of about ``size`` bytes."""
    return json.dumps(
        {
            "body": "A" * size,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {"task": "facequeue.detect_faces", "id": uuid.uuid4().hex},
            "properties": {
                "body_encoding": "base64",
                "delivery_tag": uuid.uuid4().hex,
                "delivery_info": {"exchange": "", "routing_key": queue},
            },
        }
    )


def main(argv: list[str] | None = None) -> None:
    """Print the worker's peak RSS after each step."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes-mb", type=int, nargs="+", default=[9, 50, 200])
    args = p.parse_args(argv)
    queue = f"oversized-{uuid.uuid4().hex[:8]}"
    with redis_server() as redis_url, standin("--delay-ms", "5") as url:
        env = aws_env(url, redis_url, FACEQUEUE_QUEUE=queue, FACEQUEUE_CACHE_TTL_S="0")
        with (
            celery_worker("worker.app", env, "--concurrency", "2") as worker,
            FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue)) as fq,  # type: ignore[arg-type]
        ):
            client = redis.Redis.from_url(redis_url)
            target = queue_for(queue, Operation.DETECT_FACES)
            fq.result(fq.submit(jobs.detect_faces(grace_hopper())), timeout_s=60)
            baseline = peak_rss_mb(worker)
            print(f"worker peak RSS after one job (baseline): {baseline:.0f} MB")
            for size_mb in args.sizes_mb:
                letters = client.zcard(DEAD_LETTERS_KEY)
                started = time.perf_counter()
                client.lpush(target, entry(size_mb * 2**20, target))
                wait(lambda: client.zcard(DEAD_LETTERS_KEY) > letters, 120, "the refusal")  # noqa: B023
                took_s = time.perf_counter() - started
                peak = peak_rss_mb(worker)
                print(
                    f"after a refused {size_mb} MB entry: peak {peak:.0f} MB "
                    f"(+{peak - baseline:.0f} MB over the baseline), refused in {took_s:.2f} s"
                )
            fq.result(fq.submit(jobs.detect_faces(grace_hopper())), timeout_s=60)
            print(f"after one more job: peak {peak_rss_mb(worker):.0f} MB; worker alive: {worker.poll() is None}")


if __name__ == "__main__":
    main()
