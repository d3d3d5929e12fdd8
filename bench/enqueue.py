"""Enqueue speed: a 10,000-photo batch through FaceQueue.submit_many vs a loop of Celery's send_task.

Both send the same jobs (DetectFaces on S3 references, so the figure is about messages, not image upload) to the
same Redis; the second part repeats it with image bytes (one shared 60 KB photo stored once as a claim check).

    python bench/enqueue.py               # 10,000 jobs
    python bench/enqueue.py --jobs 200    # smoke size
"""

from __future__ import annotations

import argparse
import time

import redis
from _stack import redis_server
from celery import Celery

from producer import FaceQueue, ProducerSettings, jobs
from producer.cli.demo_photos import demo_photos
from producer.contract import TASK_NAMES, queue_for


def main() -> None:
    """Time both ways and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=10_000)
    args = p.parse_args()
    photo = demo_photos()[0].read_bytes()
    rows = []
    with redis_server() as url:
        app = Celery("bench", broker=url, set_as_current=False)
        app.conf.task_serializer = "json"
        for images in ("s3", "bytes"):

            def make(i: int, images: str = images) -> jobs.PreparedJob:
                return jobs.detect_faces(f"s3://photos/{i}.jpg" if images == "s3" else photo)

            prepared = [make(i) for i in range(args.jobs)]
            started = time.perf_counter()
            with app.producer_or_acquire() as producer:
                for item in prepared:
                    for digest, data in item.blobs.items():
                        producer.channel.client.set(f"facequeue:blob:{digest}", data, ex=3600)
                    job = item.job
                    app.send_task(
                        TASK_NAMES[job.operation],
                        args=[job.model_dump(mode="json")],
                        task_id=job.job_id,
                        queue=queue_for("facequeue", job.operation),
                        producer=producer,
                    )
            loop_s = time.perf_counter() - started
            redis.Redis.from_url(url).flushdb()
            with FaceQueue(ProducerSettings(redis_url=url)) as fq:  # type: ignore[arg-type]
                started = time.perf_counter()
                fq.submit_many(prepared)
                bulk_s = time.perf_counter() - started
            redis.Redis.from_url(url).flushdb()
            rows.append((images, args.jobs / loop_s, args.jobs / bulk_s))
    print(f"{'images':8} {'send_task loop jobs/s':>22} {'submit_many jobs/s':>19} {'ratio':>7}")
    for images, loop, bulk in rows:
        print(f"{images:8} {loop:22.0f} {bulk:19.0f} {bulk / loop:6.1f}x")
    print(
        f"enqueue: submit_many = {rows[0][2] / rows[0][1]:.1f}x a send_task loop for {args.jobs} jobs (target >= 10x)"
    )


if __name__ == "__main__":
    main()
