"""Benchmark: `facequeue watch`'s delay from a frame's capture to its event, beside a direct DetectFaces call.

A private Redis, a local_rekognition server and one Celery worker run on this machine; an MJPEG stream served in
this process plays a pan over Grace Hopper's portrait at 10 fps (320x240). The Watcher samples it at ``--fps``,
each sample going through the queue (JPEG blob, DetectFaces, result key) and the tracker. Its delay is measured
from the moment the frame was read to the moment its result was handled. The baseline, in the same run: the same
JPEG frames sent straight to local_rekognition with boto3, one at a time (the model and HTTP time a queue adds to).

    python bench/watch_delay.py [--seconds S] [--fps F]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import cv2
import numpy as np
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stack import aws_env, celery_worker, redis_server  # noqa: E402 - needs the paths first

from producer import FaceQueue, ProducerSettings  # noqa: E402
from producer.cli.show.live import Watcher  # noqa: E402
from testmedia import clips  # noqa: E402
from testmedia.mjpeg import mjpeg_stream  # noqa: E402
from testmedia.photos import grace_hopper  # noqa: E402


@contextlib.contextmanager
def local_rekognition() -> Iterator[str]:
    """A local_rekognition server on a free port with a throw-away data dir; yields its URL."""
    with tempfile.TemporaryDirectory() as data, tempfile.NamedTemporaryFile("w+b", suffix=".log") as log:
        env = aws_env("http://unused", "redis://unused")
        server = subprocess.Popen(
            [sys.executable, "-m", "local_rekognition", "--port", "0", "--data-dir", data],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        try:
            deadline, url = time.monotonic() + 120, None
            while url is None and time.monotonic() < deadline:
                found = re.search(rb"listening on (http://\S+)", Path(log.name).read_bytes())
                url = found.group(1).decode() if found else None
                time.sleep(0.1)
            if url is None:
                raise SystemExit("local_rekognition did not start")
            yield url
        finally:
            server.terminate()
            server.wait()


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"p50 {statistics.median(ordered):6.1f} ms, p95 {p95:6.1f} ms (n={len(ordered)})"


def main() -> None:
    """Run both measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=4.0)
    args = parser.parse_args()
    frames = clips.frames(grace_hopper(), clips.pan, seconds=args.seconds, fps=10, size=(320, 240))
    with redis_server() as redis_url, local_rekognition() as rekognition_url:
        env = aws_env(rekognition_url, redis_url, FACEQUEUE_CACHE_TTL_S="0", FACEQUEUE_QUEUE="watchbench")
        with celery_worker("worker.app", env, "-c", "8"):
            client = boto3.client(
                "rekognition",
                endpoint_url=rekognition_url,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
                config=Config(retries={"total_max_attempts": 1}),
            )
            step = max(1, round(10 / args.fps))
            jpegs = [
                cv2.imencode(".jpg", np.ascontiguousarray(f[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
                for f in frames[::step]
            ]
            client.detect_faces(Image={"Bytes": jpegs[0]})  # warm up
            direct = []
            for jpeg in jpegs:
                started = time.perf_counter()
                client.detect_faces(Image={"Bytes": jpeg})
                direct.append((time.perf_counter() - started) * 1000)
            settings = ProducerSettings(redis_url=redis_url, queue="watchbench")  # type: ignore[arg-type]
            with FaceQueue(settings) as fq, mjpeg_stream(frames, fps=10) as url:
                events: list[dict[str, object]] = []
                stats = Watcher(fq, events.append, fps=args.fps).run(url)
    print(f"stream: {args.seconds:g} s of 320x240 MJPEG at 10 fps, sampled at {args.fps:g} fps; worker -c 8")
    print(f"baseline: DetectFaces straight to local_rekognition, one frame at a time: {_percentiles(direct)}")
    print(
        f"watch: frame read → result handled through the queue: {_percentiles(stats.delays_ms)}; "
        f"{stats.dropped} dropped, {stats.tracks} track(s), {sum(e['event'] == 'appeared' for e in events)} appeared"
    )


if __name__ == "__main__":
    main()
