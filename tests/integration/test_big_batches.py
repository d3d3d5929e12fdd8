"""Batches of any size (issue 20): bounded Redis memory, a clear stop at Redis's limit with resume, and throttling
that fails no job. Real redis-server processes (some with --maxmemory), real worker processes, and the
protocol-level Rekognition stand-in where calls must be counted or a TPS quota enforced."""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from producer.aclient import AsyncFaceQueue
from producer.contract import Operation, blob_key, queue_for
from producer.window import Wait, Window, job_bytes
from testmedia.imaging import distinct_jpegs
from testmedia.photos import grace_hopper
from tests.fixtures.aws import s3_client
from tests.fixtures.redis import RedisServer, wait_until
from tests.fixtures.standin import StartStandIn
from tests.fixtures.workers import WorkerProcess, worker_environment
from tests.integration.clirun import batch_id, cli_env, json_lines, run_cli

pytestmark = pytest.mark.timeout(300)

MIB = 2**20


def photos(count: int, seed: int = 0) -> list[bytes]:
    """``count`` distinct ~440 KB JPEGs."""
    return list(distinct_jpegs(grace_hopper(), count, seed=seed))


def used_memory(client: redis.Redis) -> tuple[int, int]:
    """Redis's used_memory and used_memory_peak (the peak since the server started: it cannot be reset)."""
    info: dict[str, Any] = client.info("memory")  # type: ignore[assignment]
    return int(info["used_memory"]), int(info["used_memory_peak"])


# The windowed batches' Redis keeps its append-only file but writes it without fsync. Under `appendfsync everysec`
# Redis postpones its AOF writes for up to 2 s while the previous fsync is still running, and holds every write
# meanwhile in its AOF buffer: on this loaded machine that was 2.5-6 MiB of photos at the peak (19.6 and 22.7 MiB of
# growth for a 16 MiB window; Redis less its AOF buffer never passed 16.5). That is the disk's backlog, which Redis
# does not count against maxmemory and no producer can bound (docs/big-batches.md); without the fsync the buffer
# holds one event loop's writes, a chunk, which the window's headroom covers.
WINDOW_REDIS = ("--appendfsync", "no")


def windowed_stack(
    start_redis: Callable[..., RedisServer],
    moto_s3_url: str,
    start_standin: StartStandIn,
    start_worker: Callable[..., WorkerProcess],
    name: str,
) -> tuple[redis.Redis, ProducerSettings, int]:
    """A fresh Redis, one slow worker (4 at a time, 30 ms a call) on its own queue, and producer settings with a
    16 MiB window: a client on that Redis, the settings, and Redis's used_memory before the batch."""
    server = start_redis(*WINDOW_REDIS)
    client = redis.Redis.from_url(server.url)
    queue = f"{name}-{uuid.uuid4().hex[:8]}"
    standin = start_standin("--delay-ms", "30")
    start_worker(worker_environment(server.url, standin.url, moto_s3_url, queue, cache_ttl_s="0"), concurrency=4)
    settings = ProducerSettings(redis_url=server.url, queue=queue, window_blob_bytes=16 * MIB)  # type: ignore[arg-type,call-arg]
    before, _ = used_memory(client)
    return client, settings, before


def window_growth(client: redis.Redis, before: int) -> tuple[int, int]:
    """Redis's peak growth over ``before``, and the growth the batch left behind once its images are gone: its
    results, which stay for FACEQUEUE_RESULT_TTL_S whatever the window (the docs size maxmemory for them apart)."""
    assert blob_keys(client) == set(), "every image is released with its job's result"
    after, peak = used_memory(client)
    return peak - before, after - before


def blob_keys(client: redis.Redis) -> set[str]:
    """Every image blob in Redis (not their reference counters)."""
    return {k.decode() for k in client.scan_iter("facequeue:blob:*", count=1000) if not k.endswith(b":refs")}


def queued_images(client: redis.Redis, queue: str) -> list[dict[str, Any]]:
    """The image references of every job waiting in a queue (Celery messages: base64 JSON bodies of job lists)."""
    images = []
    for raw in client.lrange(queue, 0, -1):  # type: ignore[union-attr]
        args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
        packed = args[0] if isinstance(args[0], list) else [args[0]]
        images += [job["image"] for job in packed]
    return images


def test_redis_full_mid_batch_stops_cleanly_and_resume_runs_every_job_once(
    start_redis: Callable[..., RedisServer],
    moto_s3_url: str,
    start_standin: StartStandIn,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a Redis limited to 40 MB and a batch of 120 distinct photos (53 MB), with no worker running yet
    server = start_redis("--maxmemory", "40mb")
    client = redis.Redis.from_url(server.url)
    queue = f"full-{uuid.uuid4().hex[:8]}"
    images = photos(120)
    settings = ProducerSettings(redis_url=server.url, queue=queue, window_blob_bytes=1024 * MIB)  # type: ignore[arg-type,call-arg]

    def prepared() -> Iterator[jobs.PreparedJob]:
        return (jobs.detect_faces(data, label=f"p{i:03}") for i, data in enumerate(images))

    with FaceQueue(settings) as fq:
        # When Redis refuses writes part-way
        with pytest.raises(Exception) as caught:
            fq.submit_many(prepared())
        error: Any = caught.value
        # Then the error says so with a code, the batch id and how many jobs went in
        assert getattr(error, "code", None) == "RedisFull", repr(error)
        queued = error.jobs_queued
        assert 0 < queued < 120
        assert error.batch_id in str(error) and str(queued) in str(error)
        # and nothing is half-done: exactly the queued jobs' images are in Redis, each referenced once
        assert blob_keys(client) == {blob_key(jobs.image_source(d)[0].sha256) for d in images[:queued]}  # type: ignore[union-attr]
        assert fq.progress(error.batch_id).total == queued

        # When workers run the queued jobs and the batch is resumed
        standin = start_standin("--delay-ms", "5")
        start_worker(worker_environment(server.url, standin.url, moto_s3_url, queue, cache_ttl_s="0"))
        wait_until(lambda: fq.progress(error.batch_id).done >= queued, 120, "the queued jobs to finish")
        handle = fq.resume(error.batch_id, prepared())
        results = fq.wait(handle.batch_id, timeout_s=180)

    # Then every job ran exactly once: 120 results, one per photo, and 120 Rekognition calls
    assert handle.batch_id == error.batch_id
    labels = collections.Counter(r.label for r in results)
    assert labels == collections.Counter(f"p{i:03}" for i in range(120))
    assert all(r.status is JobStatus.SUCCEEDED for r in results), [r.error for r in results if r.error]
    assert standin.stats()["calls"] == 120
    assert blob_keys(client) == set()


def test_a_batch_far_larger_than_the_window_runs_within_it(
    start_redis: Callable[..., RedisServer],
    moto_s3_url: str,
    start_standin: StartStandIn,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a fresh Redis (its used_memory_peak then covers only this batch), a slow worker, and a window of 16 MiB
    client, settings, before = windowed_stack(start_redis, moto_s3_url, start_standin, start_worker, "window")
    window = settings.window_blob_bytes
    images = photos(200, seed=1)  # 88 MB: more than five windows
    ahead: list[int] = []

    with FaceQueue(settings) as fq:
        batch_id = "window-" + uuid.uuid4().hex[:8]

        def lazily() -> Iterator[jobs.PreparedJob]:
            # How far the producer reads its input ahead of the results: the photos it holds or has in Redis
            for i, data in enumerate(images):
                done = int(client.hget(f"facequeue:batch:{batch_id}", "succeeded") or 0)
                ahead.append(i - done)
                yield jobs.detect_faces(data, label=str(i))

        # When the batch is submitted and waited for
        handle = fq.submit_many(lazily(), batch_id=batch_id)
        results = fq.wait(handle.batch_id, timeout_s=240)

    # Then every job succeeded, Redis never held more than the window + 10 % besides the results, and the input was
    # streamed
    assert len(results) == 200 and all(r.status is JobStatus.SUCCEEDED for r in results)
    grew, kept = window_growth(client, before)
    assert grew - kept <= 1.1 * window, (
        f"Redis grew by {grew / MIB:.1f} MiB, {kept / MIB:.1f} of them results; window {window / MIB} MiB"
    )
    per_window = window // len(images[0]) + 1
    assert max(ahead) <= 2 * per_window, f"read {max(ahead)} photos ahead of the results"


def test_a_burst_against_an_unannounced_quota_fails_no_job(
    redis_url: str,
    moto_s3_url: str,
    start_standin: StartStandIn,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given an endpoint enforcing 40 TPS, which no worker is told about, and 2 workers at concurrency 64 each
    standin = start_standin("--delay-ms", "20", "--tps", "40")
    queue = f"burst-{uuid.uuid4().hex[:8]}"
    env = worker_environment(redis_url, standin.url, moto_s3_url, queue, cache_ttl_s="0")
    for _ in range(2):
        start_worker(env, concurrency=64)
    photo = grace_hopper().read_bytes()
    # When a burst of 1,000 jobs arrives
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue)) as fq:  # type: ignore[arg-type]
        batch = fq.submit_many(jobs.detect_faces(photo, label=str(i)) for i in range(1000))
        results = fq.wait(batch.batch_id, timeout_s=240)
    stats = standin.stats()
    # Then no job failed, and at most 1 % of the calls were throttled
    failed = collections.Counter(r.error.code for r in results if r.error)
    assert not failed, failed
    assert stats.get("ThrottlingException", 0) <= 0.01 * stats["calls"], stats


def test_a_rate_learnt_against_one_endpoint_does_not_pace_another(
    redis_url: str,
    moto_s3_url: str,
    start_standin: StartStandIn,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given workers that learnt a low rate against an endpoint enforcing 2 TPS, on the tests' one Redis
    photo = grace_hopper().read_bytes()
    slow = start_standin("--delay-ms", "5", "--tps", "2")
    slow_queue = f"slow-{uuid.uuid4().hex[:8]}"
    start_worker(worker_environment(redis_url, slow.url, moto_s3_url, slow_queue, cache_ttl_s="0"), concurrency=16)
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=slow_queue)) as fq:  # type: ignore[arg-type]
        learnt = fq.wait(fq.submit_many(jobs.detect_faces(photo, label=str(i)) for i in range(12)).batch_id, 120)
    assert all(r.status is JobStatus.SUCCEEDED for r in learnt)
    assert slow.stats().get("ThrottlingException", 0) > 0
    # When other workers on the same Redis send a burst to another endpoint, with no quota, within a 10 s deadline
    fast = start_standin("--delay-ms", "5")
    fast_queue = f"fast-{uuid.uuid4().hex[:8]}"
    env = worker_environment(redis_url, fast.url, moto_s3_url, fast_queue, cache_ttl_s="0", job_timeout_s="10")
    start_worker(env, concurrency=64)
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=fast_queue)) as fq:  # type: ignore[arg-type]
        results = fq.wait(fq.submit_many(jobs.detect_faces(photo, label=str(i)) for i in range(60)).batch_id, 120)
    # Then none of them fails: the 2 TPS learnt against the first endpoint does not pace calls to the second (60
    # calls at 2 TPS would take 30 s), which slow-starts on its own
    failed = collections.Counter(r.error.code for r in results if r.error)
    assert not failed, failed
    assert fast.stats()["calls"] == 60


def test_stage_uploads_photos_to_s3_once_and_sends_references(
    redis_url: str,
    worker_env: dict[str, str],
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Any,
) -> None:
    # Given a versioned bucket and a directory of 6 distinct photos
    s3 = s3_client(moto_s3_url)
    bucket = f"stage-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    folder = tmp_path / "photos"
    folder.mkdir()
    digests = set()
    for i, data in enumerate(distinct_jpegs(grace_hopper(), 6, scale=1.0, seed=2)):
        (folder / f"{i}.jpg").write_bytes(data)
        digests.add(hashlib.sha256(data).hexdigest())
    queue = f"stage-{uuid.uuid4().hex[:8]}"
    env = cli_env(redis_url, queue, AWS_ENDPOINT_URL_S3=moto_s3_url)
    client = redis.Redis.from_url(redis_url)

    # When they are analysed with --stage while no worker consumes the queue yet
    done = run_cli("analyze", str(folder), "--stage", f"s3://{bucket}/staged", env=env)
    assert done.returncode == 0, done.stderr
    # Then every photo is in S3 under its content hash, and Redis holds no image bytes for them
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="staged/").get("Contents", [])}
    assert {k.removeprefix("staged/").partition(".")[0] for k in keys} == digests
    assert not any(client.exists(blob_key(d)) for d in digests)
    # and the queued messages carry S3 references only
    kinds = collections.Counter(
        image["kind"] for image in queued_images(client, queue_for(queue, Operation.DETECT_FACES))
    )
    assert kinds == {"s3": 6}, kinds

    # When a worker runs them, and the same photos are staged again
    start_worker({**worker_env, "FACEQUEUE_QUEUE": queue})
    waited = run_cli("status", batch_id(done.stderr), "--wait", env=env)
    again = run_cli("analyze", str(folder), "--stage", f"s3://{bucket}/staged", "--wait", "--format", "jsonl", env=env)
    # Then both runs found one face in every photo, and no object was uploaded twice (one version each)
    assert waited.returncode == 0 and '"failed": 0' in waited.stdout, waited.stdout + waited.stderr
    assert again.returncode == 0, again.stderr
    envelopes = json_lines(again.stdout)
    assert len(envelopes) == 6 and all(len(e["response"]["FaceDetails"]) == 1 for e in envelopes)
    versions = s3.list_object_versions(Bucket=bucket, Prefix="staged/")["Versions"]
    assert len(versions) == 6, [v["Key"] for v in versions]


def test_the_cli_stops_at_redis_full_and_resume_finishes_the_batch(
    start_redis: Callable[..., RedisServer],
    moto_s3_url: str,
    start_standin: StartStandIn,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Any,
) -> None:
    # Given a Redis limited to 32 MB and a directory of 90 distinct photos (40 MB)
    server = start_redis("--maxmemory", "32mb")
    queue = f"fullcli-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, data in enumerate(distinct_jpegs(grace_hopper(), 90, seed=3)):
        (folder / f"{i:03}.jpg").write_bytes(data)
    env = cli_env(server.url, queue)

    # When the CLI submits them with no worker running
    done = run_cli("analyze", str(folder), env=env)
    # Then it stops with exit 3 and says what happened, which batch, how many jobs went in, and how to go on
    assert done.returncode == 3, done.stderr
    found = re.search(r"RedisFull: .*batch (\w+).* (\d+) of", done.stderr)
    assert found, done.stderr
    batch, queued = found.group(1), int(found.group(2))
    assert 0 < queued < 90 and f"facequeue resume {batch}" in done.stderr

    # When a worker runs the queued jobs and the batch is resumed
    standin = start_standin("--delay-ms", "5")
    start_worker(worker_environment(server.url, standin.url, moto_s3_url, queue, cache_ttl_s="0"))
    with FaceQueue(ProducerSettings(redis_url=server.url, queue=queue)) as fq:  # type: ignore[arg-type]
        wait_until(lambda: fq.progress(batch).done >= queued, 120, "the queued jobs to finish")
    resumed = run_cli("resume", batch, "--wait", "--format", "jsonl", env=env)
    # Then every photo has exactly one result, and Rekognition was called once per photo
    assert resumed.returncode == 0, resumed.stderr
    labels = collections.Counter(Path(e["label"]).name for e in json_lines(resumed.stdout))
    assert labels == collections.Counter(f"{i:03}.jpg" for i in range(90))
    assert standin.stats()["calls"] == 90


def test_the_asyncio_client_keeps_to_the_window_too(
    start_redis: Callable[..., RedisServer],
    moto_s3_url: str,
    start_standin: StartStandIn,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a fresh Redis, a slow worker, and a window of 16 MiB
    client, settings, before = windowed_stack(start_redis, moto_s3_url, start_standin, start_worker, "awindow")
    window = settings.window_blob_bytes
    images = photos(160, seed=4)  # 70 MB

    async def scenario() -> list[Any]:
        async with AsyncFaceQueue(settings) as fq:
            batch = await fq.submit_many(jobs.detect_faces(data, label=str(i)) for i, data in enumerate(images))
            return [envelope async for envelope in fq.iter_results(batch.batch_id, timeout_s=240)]

    # When the batch is submitted from asyncio code
    results = asyncio.run(scenario())
    # Then every job succeeded and Redis never held more than the window + 10 % besides the results
    assert len(results) == 160 and all(r.status is JobStatus.SUCCEEDED for r in results)
    grew, kept = window_growth(client, before)
    assert grew - kept <= 1.1 * window, (
        f"Redis grew by {grew / MIB:.1f} MiB, {kept / MIB:.1f} of them results; window {window / MIB} MiB"
    )


@pytest.mark.parametrize("photo_bytes", [262_200, 445_000, 1_050_000])
def test_what_the_window_counts_is_what_redis_spends(start_redis: Callable[..., RedisServer], photo_bytes: int) -> None:
    # Given a fresh Redis and photos of a size just past one of the allocator's size classes (262,200 bytes lands
    # in a 320 KiB block: a quarter more than its length)
    server = start_redis(*WINDOW_REDIS)
    client = redis.Redis.from_url(server.url)
    window = Window(max_bytes=16 * MIB, max_jobs=10_000)
    before, _ = used_memory(client)
    prepared = (jobs.detect_faces(n.to_bytes(8, "big") * (photo_bytes // 8)) for n in range(10_000))

    # When images are stored as long as the window says they fit (as a producer with no worker running does)
    for step in window.plan(prepared):
        if isinstance(step, Wait):
            break
        for item in step:
            for digest, data in item.blobs.items():
                client.set(blob_key(digest), data)
            window.add(item.job.job_id, job_bytes(item))

    # Then Redis grew by no more than the window: the images at most 7/8 of it, the rest headroom for what Redis holds
    # beside them (here the connection's read buffer, about one image)
    grown, _ = used_memory(client)
    assert window.bytes <= window.max_stored_bytes
    assert grown - before <= window.max_bytes, (
        f"{len(window.in_flight)} images of {photo_bytes} bytes: Redis grew by {(grown - before) / MIB:.2f} MiB, "
        f"the window counted {window.bytes / MIB:.2f} MiB of a {window.max_bytes / MIB:.0f} MiB window"
    )
