"""What facequeue costs Redis: commands per job and per idle worker-second, beside Celery's own no-op in one run.

Counted on a private redis-server from INFO commandstats (machine-independent): `commands` count what clients sent
and what their scripts ran inside (a script walking 72 queue keys is 73), and `µs` is the time Redis spent executing
them, which projects how many jobs one Redis core carries (1 s / µs per job; Redis's own overhead per request, the
network and the event loop, comes on top, so read it as a ceiling). The counts
include the producer's own submit; the benchmark's own progress polling is subtracted.

    facequeue packed   a bulk submit, FACEQUEUE_JOBS_PER_MESSAGE jobs a message (16)
    facequeue single   one message per job: what submit(), `celery call` and other-language producers send
    celery no-op       a Celery task that does nothing, with its result stored (Celery's own floor)
    idle               a worker with nothing to do, per second

    python bench/redis_cost.py                  # 2000 jobs each
    python bench/redis_cost.py --jobs 200 --idle-s 3   # smoke size
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from _stack import aws_env, celery_worker, redis_server, standin
from celery import Celery

from producer import FaceQueue, ProducerSettings, jobs
from producer.cli.demo_photos import demo_photos
from producer.contract import batch_key


@dataclass(frozen=True)
class Counts:
    """Redis's counters at one moment."""

    commands: int
    usec: int
    by_name: tuple[tuple[str, int], ...] = ()

    @classmethod
    def read(cls, client: redis.Redis) -> Counts:
        """Read INFO commandstats (the INFO call itself is counted, and subtracted by the caller)."""
        stats = client.info("commandstats")
        by_name = tuple(sorted((name.removeprefix("cmdstat_"), int(v["calls"])) for name, v in stats.items()))
        return cls(sum(n for _, n in by_name), sum(int(v["usec"]) for v in stats.values()), by_name)

    def __sub__(self, other: Counts) -> Counts:
        before = dict(other.by_name)
        spent = tuple((name, n - before.get(name, 0)) for name, n in self.by_name if n - before.get(name, 0))
        return Counts(self.commands - other.commands, self.usec - other.usec, spent)


READ_COST = Counts(1, 0)
"""What one Counts.read adds: one INFO."""


@dataclass(frozen=True)
class Cost:
    """A measured run: its label, how many units (jobs or seconds), and what they cost Redis."""

    label: str
    units: float
    unit: str
    counts: Counts

    def row(self) -> str:
        """One line of the table."""
        commands, usec = self.counts.commands / self.units, self.counts.usec / self.units
        carried = f"{1e6 / usec:10.0f}" if usec and self.unit == "job" else f"{'':>10}"
        top = sorted(self.counts.by_name, key=lambda item: -item[1])[:6]
        detail = ", ".join(f"{name} {n / self.units:.1f}" for name, n in top)
        return f"{self.label:34} {commands:10.1f} {usec:10.1f} {carried}  per {self.unit}: {detail}"


def _measure(client: redis.Redis, work: Callable[[], int]) -> Counts:
    """Counts spent by ``work()``, less the reads and ``work``'s own polling (it returns how many polls it made)."""
    before = Counts.read(client)
    polls = work()
    spent = Counts.read(client) - before - READ_COST
    return Counts(spent.commands - polls, spent.usec, spent.by_name)


def _until(predicate: Callable[[], bool], timeout_s: float = 600) -> int:
    """Poll ``predicate`` (one Redis command each) until true; return the number of polls."""
    polls = 0
    deadline = time.monotonic() + timeout_s
    while True:
        polls += 1
        if predicate():
            return polls
        if time.monotonic() > deadline:
            raise SystemExit("timed out: the benchmark is void")
        time.sleep(0.2)


def _facequeue(client: redis.Redis, url: str, photo: bytes, n: int, per_message: int, label: str) -> Cost:
    settings = ProducerSettings(redis_url=url, jobs_per_message=per_message)  # type: ignore[arg-type]
    # A different photo per job (bytes after the JPEG's end), so no job is answered from the response cache.
    photos = [photo + time.time_ns().to_bytes(8, "big") + i.to_bytes(4, "big") for i in range(n)]
    with FaceQueue(settings) as fq:

        def work() -> int:
            handle = fq.submit_many(jobs.detect_faces(p) for p in photos)
            key = batch_key(handle.batch_id)
            polls = _until(lambda: sum(int(v or 0) for v in client.hmget(key, "succeeded", "failed")) >= n)
            if fq.progress(handle.batch_id).failed:
                raise SystemExit("facequeue jobs failed: the benchmark is void")
            return polls + 1  # the progress read

        return Cost(label, n, "job", _measure(client, work))


def _celery_noop(client: redis.Redis, url: str, n: int) -> Cost:
    app = Celery("bench-client", broker=url, backend=url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"])

    def work() -> int:
        with app.producer_or_acquire() as producer, producer.batch(max_size=500):
            ids = [app.send_task("naive.noop", producer=producer).id for _ in range(n)]
        polls = _until(lambda: bool(client.exists(f"celery-task-meta-{ids[-1]}")))
        while True:  # the last one sent is taken last; the few before it still running finish within moments
            pipe = client.pipeline(transaction=False)
            for task_id in ids:
                pipe.exists(f"celery-task-meta-{task_id}")
            polls += n
            if all(pipe.execute()):
                return polls

    return Cost("celery no-op (threads)", n, "job", _measure(client, work))


def _idle(client: redis.Redis, label: str, seconds: float) -> Cost:
    def work() -> int:
        time.sleep(seconds)  # nothing to wait for: the quantity measured is what happens while nothing happens
        return 0

    return Cost(label, seconds, "second", _measure(client, work))


def main() -> None:
    """Run the configurations in one Redis and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--idle-s", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args()
    photo = demo_photos()[0].read_bytes()
    rows: list[Cost] = []
    with redis_server() as url, standin("--delay-ms", "0") as endpoint:
        client = redis.Redis.from_url(url)
        env = aws_env(endpoint, url, FACEQUEUE_CONCURRENCY=str(args.concurrency), FACEQUEUE_CACHE_TTL_S="0")
        with celery_worker("worker.app", env):
            time.sleep(1)  # let the worker settle into its idle loop before counting it
            rows.append(_idle(client, "facequeue worker, idle", args.idle_s))
            rows.append(_facequeue(client, url, photo, args.jobs, 16, "facequeue packed (16 a message)"))
            rows.append(_facequeue(client, url, photo, args.jobs, 1, "facequeue single (1 a message)"))
        with celery_worker(
            "naive_worker", aws_env(endpoint, url), "--pool=threads", f"--concurrency={args.concurrency}"
        ):
            time.sleep(1)
            rows.append(_idle(client, "celery worker, idle", args.idle_s))
            rows.append(_celery_noop(client, url, args.jobs))
    print(f"{args.jobs} jobs a run, concurrency {args.concurrency}, idle {args.idle_s:.0f} s")
    print(f"{'run':34} {'commands':>10} {'Redis µs':>10} {'jobs/core':>10}")
    for row in rows:
        print(row.row())


if __name__ == "__main__":
    main()
