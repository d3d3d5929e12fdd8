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
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

from producer import FaceQueue, ProducerSettings, jobs
from producer.contract import DEAD_LETTERS_KEY, Operation, queue_for
from tests.fixtures.aws import isolated_environment
from tests.fixtures.redis import RedisServer, wait_until
from tests.fixtures.workers import WorkerProcess, worker_environment
from tests.photos import grace_hopper

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mb(worker: WorkerProcess) -> float:
    """The worker's peak resident set so far, in MB."""
    assert worker.process is not None
    status = Path(f"/proc/{worker.process.pid}/status").read_text()
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
    root = Path(tempfile.mkdtemp(prefix="facequeue-oversized-"))
    (root / "redis").mkdir()
    server = RedisServer(root / "redis")
    server.start()
    log = root / "standin.log"
    with log.open("wb") as out:
        standin = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "rekognition_standin.py"), "--port", "0", "--delay-ms", "5"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=isolated_environment(),
        )
    worker = None
    try:
        wait_until(lambda: "listening on" in log.read_text(), 30, "the stand-in")
        url = re.search(r"listening on (http://\S+)", log.read_text()).group(1)  # type: ignore[union-attr]
        queue = f"oversized-{uuid.uuid4().hex[:8]}"
        env = worker_environment(server.url, url, url, queue, cache_ttl_s="0")
        worker = WorkerProcess(env, root / "worker.log", concurrency=2).start()
        client = redis.Redis.from_url(server.url)
        target = queue_for(queue, Operation.DETECT_FACES)
        with FaceQueue(ProducerSettings(redis_url=server.url, queue=queue)) as fq:  # type: ignore[arg-type]
            fq.result(fq.submit(jobs.detect_faces(grace_hopper())), timeout_s=60)
            baseline = peak_rss_mb(worker)
            print(f"worker peak RSS after one job (baseline): {baseline:.0f} MB")
            for size_mb in args.sizes_mb:
                letters = client.zcard(DEAD_LETTERS_KEY)
                started = time.perf_counter()
                client.lpush(target, entry(size_mb * 2**20, target))
                wait_until(lambda: client.zcard(DEAD_LETTERS_KEY) > letters, 120, "the refusal")  # noqa: B023
                took_s = time.perf_counter() - started
                peak = peak_rss_mb(worker)
                print(
                    f"after a refused {size_mb} MB entry: peak {peak:.0f} MB "
                    f"(+{peak - baseline:.0f} MB over the baseline), refused in {took_s:.2f} s"
                )
            fq.result(fq.submit(jobs.detect_faces(grace_hopper())), timeout_s=60)
            print(f"after one more job: peak {peak_rss_mb(worker):.0f} MB; worker alive: {worker.alive}")
    finally:
        if worker is not None:
            worker.stop()
        standin.terminate()
        standin.wait(timeout=10)
        server.stop()


if __name__ == "__main__":
    main()
