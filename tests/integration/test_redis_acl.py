"""Least-privilege Redis users: a worker and a producer run every kind of job as the users docker/redis-users.acl
documents, and Redis refuses nothing they do (its ACL LOG stays empty for them)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from producer import FaceQueue, JobStatus, ProducerSettings, ResultEnvelope, jobs
from testmedia.photos import grace_hopper
from tests.fixtures.redis import wait_until
from tests.fixtures.standin import StartStandIn
from tests.fixtures.workers import WorkerProcess, worker_environment

pytestmark = pytest.mark.timeout(180)

ACL_FILE = Path(__file__).resolve().parents[2] / "docker" / "redis-users.acl"
PHOTO = grace_hopper().read_bytes()


def documented_rules() -> dict[str, list[str]]:
    """The ACL rules docker/redis-users.acl gives each user, by user name."""
    rules = {}
    for line in ACL_FILE.read_text().splitlines():
        if line.startswith("user "):
            name, *words = line.split()[1:]
            rules[name] = words
    return rules


@pytest.fixture
def acl_urls(redis_url: str, redis_client: redis.Redis) -> Iterator[Callable[[str], str]]:
    """Create a user from the documented rules (under a name of this test's own); return its Redis URL."""
    made: list[str] = []

    def make(documented: str, *extra: str) -> str:
        name, password = f"{documented}-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
        words = [f">{password}" if w == ">CHANGE-ME" else w for w in documented_rules()[documented]] + list(extra)
        redis_client.execute_command("ACL", "SETUSER", name, "reset", *words)
        made.append(name)
        return redis_url.replace("redis://", f"redis://{name}:{password}@")

    redis_client.execute_command("ACL", "LOG", "RESET")
    yield make
    for name in made:
        redis_client.acl_deluser(name)


def _refusals(client: redis.Redis, users: set[str]) -> list[str]:
    return [
        f"{e['username']}: {e['reason']} {e['object']} ({e['context']})"
        for e in client.acl_log()
        if e["username"] in users
    ]


def test_a_least_privilege_worker_and_producer_run_every_kind_of_job(
    acl_urls: Callable[..., str],
    redis_client: redis.Redis,
    local_rekognition_url: str,
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a worker and a producer that log in as the documented least-privilege users
    worker_url, producer_url = acl_urls("facequeue-worker"), acl_urls("facequeue-producer")
    queue = f"facequeue-acl-{uuid.uuid4().hex[:6]}"
    start_worker(worker_environment(worker_url, local_rekognition_url, moto_s3_url, queue, cache_ttl_s="600"))
    fq = FaceQueue(ProducerSettings(redis_url=producer_url, queue=queue))  # type: ignore[arg-type]
    cid = f"acl-{uuid.uuid4().hex[:8]}"
    photo = PHOTO + uuid.uuid4().bytes

    def run(*prepared: jobs.PreparedJob) -> list[ResultEnvelope]:
        batch = fq.submit_many(prepared)
        done = {r.job_id: r for r in fq.wait(batch.batch_id, timeout_s=60)}
        return [done[job_id] for job_id in batch.job_ids]

    # When it runs every kind of job: fresh, cached, uncached, failed, compare, and a collection's whole life
    first = run(
        jobs.detect_faces(photo),
        jobs.detect_faces(b"not an image at all"),
        jobs.create_collection(cid),
        jobs.compare_faces(photo, PHOTO),
    )
    second = run(
        jobs.detect_faces(photo),
        jobs.detect_faces(photo, use_cache=False),
        jobs.index_faces(photo, cid, external_image_id="grace"),
    )
    third = run(jobs.search_faces_by_image(PHOTO, cid), jobs.list_faces(cid))
    face_id = second[2].response["FaceRecords"][0]["Face"]["FaceId"]  # type: ignore[index]
    # (one at a time: jobs of different operations travel in different queues, in no promised order)
    fourth = [*run(jobs.delete_faces(cid, [face_id])), *run(jobs.delete_collection(cid))]
    dead = [d.job_id for d in fq.dead_letters()]
    retried = fq.retry_dead([first[1].job_id])
    assert retried is not None
    [retried_result] = fq.wait(retried.batch_id, timeout_s=60)
    # Then each job has the result it would have with every permission
    statuses = [r.status for r in [*first, *second, *third, *fourth]]
    assert statuses.count(JobStatus.FAILED) == 1 and first[1].status is JobStatus.FAILED
    assert first[1].error is not None and first[1].error.code == "InvalidImageFormatException"
    assert second[0].cached and not second[1].cached
    assert third[0].response["FaceMatches"]  # type: ignore[index]
    assert first[1].job_id in dead and retried_result.status is JobStatus.FAILED
    # And Redis refused neither of them anything
    users = {u.split(":")[0].rpartition("/")[2] for u in (worker_url, producer_url)}
    assert _refusals(redis_client, users) == []
    fq.close()


def test_a_lasting_redis_refusal_is_paid_once_and_ends_as_a_dead_letter(
    acl_urls: Callable[..., str],
    redis_client: redis.Redis,
    moto_s3_url: str,
    start_standin: StartStandIn,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a worker whose results stream lies outside its user's key patterns: every publish is refused, for good
    standin = start_standin("--delay-ms", "5")
    worker_url = acl_urls("facequeue-worker")
    queue = f"facequeue-refused-{uuid.uuid4().hex[:6]}"
    env = worker_environment(
        worker_url,
        standin.url,
        moto_s3_url,
        queue,
        cache_ttl_s="0",
        results_stream="elsewhere:results",
        redis_error_pause_s="0.2",
        max_requeues="3",
    )
    start_worker(env)
    fq = FaceQueue(ProducerSettings(redis_url=redis_client_url(redis_client), queue=queue))  # type: ignore[arg-type]
    # When a job runs, and its message keeps coming back
    handle = fq.submit(jobs.detect_faces(PHOTO + uuid.uuid4().bytes))
    wait_until(lambda: handle.job_id in {d.job_id for d in fq.dead_letters()}, 60, "the job to become a dead letter")
    # Then Rekognition was paid once, the message left the queue, and the dead letter says what happened
    assert standin.stats()["calls"] == 1
    letter = next(d for d in fq.dead_letters() if d.job_id == handle.job_id)
    assert letter.envelope.error is not None and letter.envelope.error.code == "PublishRefused"
    assert letter.envelope.error.retryable and "facequeue dead retry" in letter.envelope.error.message
    assert letter.envelope.response is not None and "FaceDetails" in letter.envelope.response
    wait_until(lambda: fq.redis.llen(queue) == 0 and not _unacked(fq.redis, queue), 30, "the queue to drain")
    fq.close()


def test_a_worker_refused_client_tracking_still_takes_every_job(
    acl_urls: Callable[..., str],
    redis_client: redis.Redis,
    local_rekognition_url: str,
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a worker whose Redis user may not use CLIENT TRACKING (an older ACL, or a server without it)
    worker_url = acl_urls("facequeue-worker", "-client|tracking")
    queue = f"facequeue-notrack-{uuid.uuid4().hex[:6]}"
    worker = start_worker(worker_environment(worker_url, local_rekognition_url, moto_s3_url, queue, cache_ttl_s="0"))
    fq = FaceQueue(ProducerSettings(redis_url=redis_client_url(redis_client), queue=queue))  # type: ignore[arg-type]
    # When jobs arrive one at a time at the idle worker
    outcomes = [fq.result(fq.submit(jobs.detect_faces(PHOTO)).job_id, timeout_s=30) for _ in range(3)]
    # Then it still takes each (looking every 0.1 s instead of being woken), and says why once
    assert [r.status for r in outcomes] == [JobStatus.SUCCEEDED] * 3
    assert worker.output().count("Redis refused CLIENT TRACKING") == 1
    fq.close()


def redis_client_url(client: redis.Redis) -> str:
    """The URL of the tests' Redis as the default user."""
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


def _unacked(client: redis.Redis, queue: str) -> bool:
    """True while kombu holds a delivered, unacknowledged message of ``queue``."""
    return any(queue.encode() in raw for raw in client.hvals("unacked"))
