"""A seeded, randomized fault campaign (`make chaos`): ≥ 10,000 jobs of every kind through several real workers while
faults land at random moments, then the invariants. Not part of `make test`: it takes minutes.

    make chaos                       # a fresh seed, printed
    make chaos CHAOS_ARGS="--seed 7 --jobs 2000"

What it submits (one seed decides all of it): DetectFaces on tiny distinct images (the cheap path: 96 px, no face)
and on a small portrait, CompareFaces, IndexFaces into four collections, SearchFacesByImage, ListFaces, a few
StartFaceDetection videos, then users (CreateUser, AssociateFaces of faces the flood indexed, ListUsers,
SearchUsers). What breaks meanwhile (chaos_stack.py): workers SIGKILLed and SIGTERMed, Redis SIGKILLed and
restarted, Redis at maxmemory, the fault proxy cutting, stalling, throttling, failing and corrupting
Rekognition's answers or going down, local_rekognition SIGKILLed and restarted on its data dir, hostile queue
entries. What must hold afterwards, each printed with its count:

- every job has exactly one result (a failure is also a dead letter): 0 lost, 0 duplicated in the results stream;
- paid calls (those the endpoint answered with success, counted by the proxy) ≤ 1.05 × the jobs that called
  + the reruns the faults explain;
- each collection holds exactly the faces its IndexFaces jobs reported, each user exactly the faces associated;
- no worker exited unless told to; no message left in a queue or in ``unacked``; every key left has a TTL or is
  one of the few that live for good.

Exit code 0 when every invariant holds, 1 otherwise; a failing seed is a regression test to write.
"""

from __future__ import annotations

import argparse
import faulthandler
import io
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from chaos_stack import Stack, run_scheduler
from PIL import Image

from producer import FaceQueue, ProducerSettings, jobs
from producer.contract import ResultEnvelope, result_key
from producer.jobs import PreparedJob
from producer.video import face_detection
from testmedia import clips
from testmedia.photos import grace_hopper
from tests.fixtures.aws import rekognition_client, s3_client

COLLECTIONS = 4
USERS = 20
VIDEOS = 3
WINDOW = 1500
"""Jobs in flight at most: the flood is fed as results come in, so faults land all through it."""
PAID_SLACK = 1.05


def log(message: str) -> None:
    """A timestamped progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def tiny_image(rng: random.Random) -> bytes:
    """A 96 px PNG, one of millions (a few random pixels on a random grey): a cheap call, no face."""
    img = Image.new("L", (96, 96), rng.randrange(256))
    for _ in range(4):
        img.putpixel((rng.randrange(96), rng.randrange(96)), rng.randrange(256))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def portrait(rng: random.Random) -> bytes:
    """A 160 px portrait with one face; a random pixel makes each copy a different image."""
    img = Image.open(grace_hopper()).convert("RGB")
    img.thumbnail((160, 160))
    img.putpixel((rng.randrange(img.width), rng.randrange(4)), (rng.randrange(256),) * 3)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


@dataclass
class Flood:
    """The jobs of the campaign, by kind, and the collections they index into."""

    rng: random.Random
    total: int
    collections: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    """job id → kind."""
    index_into: dict[str, str] = field(default_factory=dict)
    """IndexFaces job id → collection."""

    def plan(self) -> Iterator[tuple[str, PreparedJob]]:
        """(kind, job) in submission order, seeded."""
        rng = self.rng
        weights = {"detect_tiny": 84.5, "detect_face": 6, "compare": 3, "index": 4, "search": 0.5, "list": 1}
        names, shares = list(weights), list(weights.values())
        for _ in range(self.total):
            kind = rng.choices(names, weights=shares)[0]
            collection = rng.choice(self.collections)
            if kind == "detect_tiny":
                prepared = jobs.detect_faces(tiny_image(rng))
            elif kind == "detect_face":
                prepared = jobs.detect_faces(portrait(rng), attributes=rng.choice(["DEFAULT", "ALL"]))
            elif kind == "compare":
                prepared = jobs.compare_faces(portrait(rng), portrait(rng))
            elif kind == "index":
                prepared = jobs.index_faces(portrait(rng), collection, max_faces=1)
                self.index_into[prepared.job.job_id] = collection
            elif kind == "search":
                prepared = jobs.search_faces_by_image(portrait(rng), collection)
            else:
                prepared = jobs.list_faces(collection)
            self.kinds[prepared.job.job_id] = kind
            yield kind, prepared


def results(client: redis.Redis, job_ids: list[str]) -> dict[str, ResultEnvelope]:
    """The published envelopes of those jobs that have one."""
    found: dict[str, ResultEnvelope] = {}
    for start in range(0, len(job_ids), 1000):
        chunk = job_ids[start : start + 1000]
        for job_id, raw in zip(chunk, client.mget([result_key(j) for j in chunk]), strict=True):
            if raw:
                found[job_id] = ResultEnvelope.model_validate_json(raw)
    return found


def wait_for(
    stack: Stack, job_ids: list[str], timeout_s: float, what: str, keep: dict[str, ResultEnvelope], quiet: bool = False
) -> None:
    """Wait until every job has a result (or the timeout); collected into ``keep``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        missing = [j for j in job_ids if j not in keep]
        if not missing:
            return
        try:
            with stack.redis_gate:
                keep.update(results(stack.client(), missing))
        except redis.RedisError:
            pass
        time.sleep(1)  # polling the outcome, bounded by the deadline
    missing = [j for j in job_ids if j not in keep]
    if not quiet:
        log(f"{what}: {len(missing)} job(s) without a result after {timeout_s:.0f} s: {missing[:5]}")


def submit(stack: Stack, fq: FaceQueue, prepared: list[PreparedJob]) -> list[str]:
    """Submit while Redis is up (the producer is not under test here); retried until Redis takes it."""
    while True:
        try:
            with stack.redis_gate:
                return list(fq.submit_many(prepared).job_ids)
        except redis.RedisError as exc:
            log(f"submit failed, again: {exc}")
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:  # noqa: C901  (one campaign, read top to bottom)
    """Run the campaign; 0 when every invariant holds."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=random.SystemRandom().randrange(1_000_000))
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--rate", type=float, default=50.0, help="jobs submitted per second at most")
    p.add_argument("--fault-gap-s", type=float, nargs=2, default=(1.0, 4.0))
    p.add_argument("--drain-s", type=float, default=600.0, help="how long jobs may take after the last fault")
    p.add_argument("--keep", type=Path, help="keep the logs and data here instead of a temporary directory")
    args = p.parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints where a stuck campaign waits
    log(f"seed {args.seed}: {args.jobs} jobs, {args.workers} workers x {args.concurrency}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="facequeue-chaos-"))
    stack = Stack(root, args.seed, args.workers, args.concurrency)
    rng = random.Random(args.seed + 1)  # the workload's own stream: the faults' draws do not shift it
    began = time.monotonic()
    stack.start()
    fq = FaceQueue(ProducerSettings(redis_url=stack.redis.url, queue=stack.queue, blob_ttl_s=3600))  # type: ignore[arg-type]
    envelopes: dict[str, ResultEnvelope] = {}
    flood = Flood(rng, args.jobs)
    try:
        # Setup before any fault: collections, and the videos in S3.
        flood.collections = [f"chaos-{args.seed}-{i}" for i in range(COLLECTIONS)]
        setup = submit(stack, fq, [jobs.create_collection(c) for c in flood.collections])
        wait_for(stack, setup, 120, "collections", envelopes)
        s3 = s3_client(stack.moto_url)
        s3.create_bucket(Bucket="chaos")
        frames = clips.frames(grace_hopper(), clips.pan, seconds=1, fps=10, size=(320, 240))
        s3.put_object(Bucket="chaos", Key="clip.mp4", Body=clips.h264(frames, 10))
        stop = threading.Event()
        scheduler = threading.Thread(target=run_scheduler, args=(stack, stop, tuple(args.fault_gap_s), log))
        scheduler.start()
        submitted: list[str] = []
        videos = submit(stack, fq, [face_detection("s3://chaos/clip.mp4") for _ in range(VIDEOS)])
        for job_id in videos:
            flood.kinds[job_id] = "video"
        submitted += videos
        chunk: list[PreparedJob] = []
        pace_at = time.monotonic()
        for _kind, prepared in flood.plan():
            chunk.append(prepared)
            if len(chunk) == 200:
                submitted += submit(stack, fq, chunk)
                chunk = []
                while len(submitted) - len(envelopes) > WINDOW:
                    wait_for(stack, submitted, 2, "window", envelopes, quiet=True)
                # Paced, so that the faults land all through the flood rather than after it.
                time.sleep(max(0.0, pace_at + len(submitted) / args.rate - time.monotonic()))
                log(f"submitted {len(submitted)}, {len(envelopes)} results, faults {dict(stack.faults)}")
        submitted += submit(stack, fq, chunk)
        wait_for(stack, [j for j, k in flood.kinds.items() if k == "index"], args.drain_s, "indexing", envelopes)
        # Users, still under fire: each user gets up to five of the faces the flood indexed into its collection.
        faces_by_collection: dict[str, list[str]] = {c: [] for c in flood.collections}
        for job_id, collection in flood.index_into.items():
            env = envelopes.get(job_id)
            if env is not None and env.response:
                faces_by_collection[collection] += [r["Face"]["FaceId"] for r in env.response["FaceRecords"]]
        users = [(rng.choice(flood.collections), f"user-{i}") for i in range(USERS)]
        created = submit(stack, fq, [jobs.create_user(c, u) for c, u in users])
        for job_id in created:
            flood.kinds[job_id] = "create_user"
        wait_for(stack, created, args.drain_s, "users", envelopes)
        asked: dict[tuple[str, str], set[str]] = {}
        associations = []
        for (collection, user), job_id in zip(users, created, strict=True):
            pool = faces_by_collection[collection]
            if envelopes.get(job_id) is None or envelopes[job_id].error is not None or not pool:
                continue
            take = rng.sample(pool, k=min(5, len(pool)))
            for face in take:
                pool.remove(face)  # a face belongs to one user at most
            associations.append(((collection, user), jobs.associate_faces(collection, user, take)))
        assoc_ids = submit(stack, fq, [j for _, j in associations])
        extra = [jobs.list_users(c) for c in flood.collections] + [
            jobs.search_users(c, user_id=u) for c, u in users[:10]
        ]
        extra_ids = submit(stack, fq, extra)
        for job_id in assoc_ids:
            flood.kinds[job_id] = "associate"
        for job_id in extra_ids:
            flood.kinds[job_id] = "users_read"
        submitted += created + assoc_ids + extra_ids
        stop.set()
        scheduler.join()
        # Heal: every fault off, every worker up; then let the jobs end.
        stack.proxy.set("pass")
        stack.check_workers()
        for job_id in stack.hostile_ids:
            flood.kinds[job_id] = "hostile"
        everything = submitted + stack.hostile_ids
        wait_for(stack, everything, args.drain_s, "drain", envelopes)
        for (key, prepared), job_id in zip(associations, assoc_ids, strict=True):
            env = envelopes.get(job_id)
            if env is not None and env.error is None:
                asked[key] = set(prepared.job.face_ids)  # type: ignore[attr-defined]
        return report(stack, fq, flood, everything, envelopes, asked, time.monotonic() - began)
    finally:
        fq.close()
        stack.stop()
        log(f"logs and data in {root}")


def report(
    stack: Stack,
    fq: FaceQueue,
    flood: Flood,
    everything: list[str],
    envelopes: dict[str, ResultEnvelope],
    asked: dict[tuple[str, str], set[str]],
    took_s: float,
) -> int:
    """Check the invariants; print the counts and the seed; 0 when all hold."""
    client = stack.client()
    stream = Counter(f[b"job_id"].decode() for _, f in client.xrange(fq.settings.results_stream))
    lost = [j for j in everything if j not in envelopes]
    duplicated = sum(stream[j] - 1 for j in everything if stream[j] > 1)
    unpublished = [j for j in everything if j in envelopes and stream[j] == 0]
    dead = sum(1 for j in everything if client.zscore("facequeue:dead", j) is not None)
    failed = Counter(e.error.code for e in envelopes.values() if e.error is not None)
    kinds = Counter(flood.kinds.get(j, "setup") for j in everything)
    proxy = stack.proxy.stats()
    paid = sum(
        v for k, v in proxy.items() if k.startswith("paid:") and not k.split(":")[1].startswith(("Start", "Get"))
    )
    called = sum(1 for j in everything if (e := envelopes.get(j)) and e.attempts > 0 and flood.kinds.get(j) != "video")
    lost_answers = sum(v for k, v in proxy.items() if k.startswith(("cut:", "corrupt:", "stall:")))
    kills = stack.faults["worker_sigkill"] + stack.faults["worker_sigterm"] + stack.faults["rekognition_restart"]
    explained = lost_answers + kills * (stack.concurrency + 16)
    bound = PAID_SLACK * called + explained
    faces_ok, users_ok, faces_wrong = _collections(stack, flood, envelopes, asked)
    leftovers = _leftovers(client, stack.queue)
    checks = {
        "0 lost": not lost,
        "0 duplicated": duplicated == 0,
        "0 results missing from the stream": not unpublished,
        f"paid calls {paid} <= {bound:.0f}": paid <= bound,
        "collections as the jobs asked": faces_ok,
        "users as the jobs asked": users_ok,
        "workers alive, none exited untold": not stack.unexpected_exits and all(w.alive for w in stack.workers),
        "no orphans (queues, unacked, keys without TTL)": not leftovers,
        "every fault injected and undone": not stack.broken_faults,
    }
    print(f"chaos seed {stack.seed}: {len(everything)} jobs in {took_s:.0f} s")
    print(f"  jobs by kind: {dict(kinds)}")
    print(f"  results {len(envelopes)}, failed {sum(failed.values())} {dict(failed)}, dead letters {dead}")
    print(f"  lost {len(lost)}, duplicated {duplicated}, not in the stream {len(unpublished)}")
    print(f"  faults: {dict(stack.faults)}")
    print(f"  paid calls {paid} for {called} jobs that called ({paid / max(1, called):.3f} per job); answers lost to")
    print(f"    faults {lost_answers}, worker/endpoint kills {kills}; bound {PAID_SLACK} x {called} + {explained}")
    print(f"  proxy: {proxy}")
    if faces_wrong:
        print(f"  collections/users differing: {faces_wrong[:10]}")
    for broken in stack.broken_faults:
        print(f"  fault failed: {broken[-800:]}")
    for exit_ in stack.unexpected_exits:
        print(f"  unexpected exit: {exit_[:600]}")
    if leftovers:
        print(f"  leftovers: {leftovers[:20]}")
    if lost:
        print(f"  lost: {[(j, flood.kinds.get(j)) for j in lost[:20]]}")
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    print(f"chaos seed {stack.seed}: {'all invariants hold' if all(checks.values()) else 'INVARIANTS BROKEN'}")
    return 0 if all(checks.values()) else 1


def _collections(
    stack: Stack, flood: Flood, envelopes: dict[str, ResultEnvelope], asked: dict[tuple[str, str], set[str]]
) -> tuple[bool, bool, list[Any]]:
    """Each collection's faces against the IndexFaces results, each user's against the associations asked."""
    rekognition = rekognition_client(stack.rekognition.url)
    wrong: list[Any] = []
    faces_ok = users_ok = True
    for collection in flood.collections:
        expected = {
            r["Face"]["FaceId"]
            for job_id, c in flood.index_into.items()
            if c == collection and (e := envelopes.get(job_id)) and e.response
            for r in e.response["FaceRecords"]
        }
        listed = {f["FaceId"] for page in _pages(rekognition, CollectionId=collection) for f in page["Faces"]}
        if listed != expected:
            faces_ok = False
            wrong.append((collection, len(listed), len(expected)))
    for (collection, user), faces in asked.items():
        listed = {
            f["FaceId"] for page in _pages(rekognition, CollectionId=collection, UserId=user) for f in page["Faces"]
        }
        if listed != faces:
            users_ok = False
            wrong.append((collection, user, len(listed), len(faces)))
    return faces_ok, users_ok, wrong


def _pages(rekognition: Any, **params: Any) -> Iterator[dict[str, Any]]:
    token = None
    while True:
        page = rekognition.list_faces(**params, MaxResults=1000, **({"NextToken": token} if token else {}))
        yield page
        token = page.get("NextToken")
        if not token:
            return


def _leftovers(client: redis.Redis, queue: str) -> list[str]:
    """Messages still queued or unacknowledged, and keys that would outlive every TTL."""
    left = [k.decode() for k in client.keys(f"{queue}*") if client.type(k) == b"list" and client.llen(k)]
    if client.hlen("unacked"):
        left.append(f"unacked: {client.hlen('unacked')}")
    forever = ("facequeue:results", "facequeue:dead", "facequeue:refused", "_kombu.binding", "unacked")
    for key in client.scan_iter(count=1000):
        name = key.decode(errors="replace")
        if client.ttl(key) == -1 and not name.startswith(forever):
            left.append(f"no TTL: {name}")
    return left


if __name__ == "__main__":
    sys.exit(main())
