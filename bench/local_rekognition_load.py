"""local_rekognition under sustained concurrent load: throughput, cores used, and whether memory stays flat.

Starts the server as its own process, then sends DetectFaces (640-px photos, as bytes) with boto3: first one
request at a time (the baseline), then from N threads at once for R rounds, sampling the server's RSS after each
round. The last line says how far RSS moved between the second round and the last (the first warms up).

    python bench/local_rekognition_load.py                    # 8 threads, 10 rounds of 60 requests
    python bench/local_rekognition_load.py --rounds 2 --per-round 8 --threads 2    # smoke size
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config
from PIL import Image

from producer.cli.demo_photos import demo_photos


def _photos_640() -> list[bytes]:
    out = []
    for path in demo_photos():
        img = Image.open(path).convert("RGB")
        img.thumbnail((640, 640))
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    """Run the load and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--per-round", type=int, default=60)
    args = p.parse_args()
    photos = _photos_640()
    with tempfile.TemporaryDirectory() as data, tempfile.NamedTemporaryFile("w+b", suffix=".log") as log:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
        server = subprocess.Popen(
            [sys.executable, "-m", "local_rekognition", "--port", "0", "--data-dir", data],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            deadline = time.monotonic() + 120
            url = None
            while url is None and time.monotonic() < deadline:
                found = re.search(rb"listening on (http://\S+)", Path(log.name).read_bytes())
                url = found.group(1).decode() if found else None
                time.sleep(0.1)
            if url is None:
                raise SystemExit("local_rekognition did not start")
            client = boto3.client(
                "rekognition",
                endpoint_url=url,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
                config=Config(retries={"total_max_attempts": 1}, max_pool_connections=args.threads),
            )

            def call(i: int) -> float:
                started = time.perf_counter()
                client.detect_faces(Image={"Bytes": photos[i % len(photos)]})
                return (time.perf_counter() - started) * 1000

            serial_started = time.perf_counter()
            serial = [call(i) for i in range(2 * len(photos))]
            serial_rate = len(serial) / (time.perf_counter() - serial_started)
            rows = []
            with ThreadPoolExecutor(args.threads) as pool:
                for r in range(args.rounds):
                    cpu0, wall0 = _cpu_s(server.pid), time.perf_counter()
                    latencies = list(pool.map(call, range(r * args.per_round, (r + 1) * args.per_round)))
                    wall = time.perf_counter() - wall0
                    rows.append(
                        (
                            r + 1,
                            args.per_round / wall,
                            statistics.median(latencies),
                            sorted(latencies)[int(0.99 * (len(latencies) - 1))],
                            (_cpu_s(server.pid) - cpu0) / wall,
                            _rss_mb(server.pid),
                        )
                    )
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"DetectFaces DEFAULT, 640-px photos, {args.threads} client threads, {args.per_round} requests a round")
    print(f"baseline, one request at a time: {serial_rate:.1f} photos/s, p50 {statistics.median(serial):.1f} ms")
    print(f"{'round':>5} {'photos/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'cores used':>10} {'server RSS MB':>14}")
    for r, rate, p50, p99, cores, rss in rows:
        print(f"{r:5d} {rate:9.1f} {p50:8.1f} {p99:8.1f} {cores:10.2f} {rss:14.0f}")
    steady = rows[1:] or rows
    drift = steady[-1][5] - steady[0][5]
    print(
        f"load: {statistics.mean(r[1] for r in steady):.1f} photos/s concurrent vs {serial_rate:.1f} serial, "
        f"{max(r[4] for r in steady):.2f} cores used, RSS {steady[0][5]:.0f} -> {steady[-1][5]:.0f} MB "
        f"({drift:+.0f} MB over {len(steady) * args.per_round} requests)"
    )


if __name__ == "__main__":
    main()
