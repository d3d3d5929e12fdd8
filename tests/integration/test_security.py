"""Doors that must stay closed: the S3 allow-list, Redis passwords, secrets in logs and results, data lifetime."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from devtools.stack import worker_argv
from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from producer.contract import S3Image, blob_key, blob_refs_key
from producer.settings import ProducerSettings as PS
from testmedia.photos import grace_hopper
from tests.fixtures.aws import s3_client
from tests.fixtures.redis import RedisServer, redis_answers, wait_until
from tests.fixtures.standin import StartStandIn
from tests.fixtures.workers import ROOT, WorkerProcess, worker_environment
from worker.settings import WorkerSettings

pytestmark = pytest.mark.timeout(180)

PHOTO = grace_hopper().read_bytes()


def test_buckets_outside_the_allow_list_are_refused_without_any_call(
    redis_url: str,
    moto_s3_url: str,
    s3_bucket: str,
    start_standin: StartStandIn,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a worker allowed to read only <bucket>/faces/
    s3_client(moto_s3_url).put_object(Bucket=s3_bucket, Key="faces/a.jpg", Body=PHOTO)
    s3_client(moto_s3_url).put_object(Bucket=s3_bucket, Key="private/a.jpg", Body=PHOTO)
    standin = start_standin("--delay-ms", "1")
    queue = f"acl-{uuid.uuid4().hex[:8]}"
    env = worker_environment(
        redis_url, standin.url, moto_s3_url, queue, cache_ttl_s="0", s3_allowed=f'["{s3_bucket}/faces/"]'
    )
    start_worker(env)
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue)) as fq:  # type: ignore[arg-type]
        allowed = fq.result(fq.submit(jobs.detect_faces(S3Image(bucket=s3_bucket, key="faces/a.jpg"))), timeout_s=60)
        calls_after_allowed = standin.stats()["calls"]
        # When jobs name another prefix and another bucket
        refused = [
            fq.result(fq.submit(jobs.detect_faces(image)), timeout_s=60)
            for image in (S3Image(bucket=s3_bucket, key="private/a.jpg"), S3Image(bucket="elsewhere", key="x.jpg"))
        ]
    # Then they fail with AccessDeniedException, and Rekognition was never called for them
    assert allowed.status is JobStatus.SUCCEEDED
    assert [r.error.code for r in refused if r.error] == ["AccessDeniedException"] * 2
    assert all("FACEQUEUE_S3_ALLOWED" in r.error.message for r in refused if r.error)
    assert standin.stats()["calls"] == calls_after_allowed


def test_image_blobs_are_deleted_when_their_last_job_succeeds(
    redis_url: str, worker_queue: str, worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    photo = PHOTO + uuid.uuid4().bytes  # a blob no other test shares
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue)) as fq:  # type: ignore[arg-type]
        # Given three jobs on one photo: it is stored once, referenced three times
        batch = fq.submit_many([jobs.detect_faces(photo) for _ in range(3)])
        digest = jobs.image_source(photo)[0].sha256  # type: ignore[union-attr]
        assert redis_client.exists(blob_key(digest))
        results = fq.wait(batch.batch_id, timeout_s=60)
    assert all(r.status is JobStatus.SUCCEEDED for r in results)
    # Then the last success deletes it, and its counter
    assert not redis_client.exists(blob_key(digest), blob_refs_key(digest))


def test_a_failed_jobs_image_stays_for_a_retry_and_expires(
    redis_url: str, worker_queue: str, worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    cid = f"missing-{uuid.uuid4().hex[:8]}"
    photo = PHOTO + uuid.uuid4().bytes
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue, blob_ttl_s=600)) as fq:  # type: ignore[arg-type]
        failed = fq.result(fq.submit(jobs.index_faces(photo, cid)), timeout_s=60)
    assert failed.status is JobStatus.FAILED
    digest = jobs.image_source(photo)[0].sha256  # type: ignore[union-attr]
    assert 0 < redis_client.ttl(blob_key(digest)) <= 600


def test_redis_with_a_password_works_end_to_end(
    tmp_path: Path, local_rekognition_url: str, moto_s3_url: str, start_worker: Callable[..., WorkerProcess]
) -> None:
    # Given a Redis that requires a password
    password = f"pw-{uuid.uuid4().hex}"
    with password_redis(tmp_path, password) as url:
        # Then a client without it is refused, and the whole pipeline works with it
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(url.replace(f":{password}@", "")).ping()
        queue = f"auth-{uuid.uuid4().hex[:8]}"
        worker = start_worker(worker_environment(url, local_rekognition_url, moto_s3_url, queue))
        with FaceQueue(ProducerSettings(redis_url=url, queue=queue)) as fq:  # type: ignore[arg-type]
            envelope = fq.result(fq.submit(jobs.detect_faces(PHOTO)), timeout_s=60)
        assert envelope.status is JobStatus.SUCCEEDED
        assert password not in worker.output()


def test_secrets_never_reach_logs_results_or_reprs(
    tmp_path: Path,
    local_rekognition_url: str,
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
    s3_bucket: str,
) -> None:
    # Given known fake secrets: an AWS secret key and a Redis password
    aws_secret = f"AWSSECRET{uuid.uuid4().hex}"
    password = f"REDISPW{uuid.uuid4().hex}"
    with password_redis(tmp_path, password) as url:
        queue = f"secrets-{uuid.uuid4().hex[:8]}"
        env = worker_environment(url, local_rekognition_url, moto_s3_url, queue)
        env["AWS_SECRET_ACCESS_KEY"] = aws_secret
        worker = start_worker(env)
        # When a batch runs, with successes and failures of every kind
        with FaceQueue(ProducerSettings(redis_url=url, queue=queue)) as fq:  # type: ignore[arg-type]
            batch = fq.submit_many(
                [
                    jobs.detect_faces(PHOTO),
                    jobs.detect_faces(b"not an image"),
                    jobs.detect_faces(S3Image(bucket=s3_bucket, key="missing.jpg")),
                    jobs.index_faces(PHOTO, "no-such-collection"),
                ]
            )
            results = fq.wait(batch.batch_id, timeout_s=60)
            stream = fq.redis.xrange(fq.settings.results_stream)  # type: ignore[union-attr]
            dead = fq.dead_letters()
        # Then neither secret appears anywhere a person or program could read it
        texts = [worker.output(), *(r.model_dump_json() for r in results), repr(stream), repr(dead)]
        texts += [repr(PS(redis_url=url)), repr(WorkerSettings(redis_url=url))]  # type: ignore[arg-type]
        assert len(results) == 4 and any(r.error for r in results)
        for secret in (aws_secret, password):
            assert not [t for t in texts if secret in t], secret


@contextlib.contextmanager
def password_redis(directory: Path, password: str) -> Iterator[str]:
    """A redis-server that requires ``password``; yields its URL (password included)."""
    port = RedisServer(directory).port
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            password,
            "--save",
            "",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: redis_answers(url), 15, "a password-protected redis-server")
        yield url
    finally:
        process.terminate()
        process.wait()


def test_a_redis_url_that_does_not_parse_stops_the_worker_without_showing_the_password(
    local_rekognition_url: str, moto_s3_url: str
) -> None:
    # Given a Redis password with a `/` in it, not percent-encoded, so the URL does not parse
    password = f"PW/{uuid.uuid4().hex}"
    url = f"redis://:{password}@127.0.0.1:6379/0"
    env = worker_environment(url, local_rekognition_url, moto_s3_url, "unparsable")
    # When a worker starts with it

    started = subprocess.run(
        worker_argv("badurl@%h"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    output = started.stdout + started.stderr
    # Then it exits with EX_CONFIG and one line naming the setting and the fix, and no part of the password
    assert started.returncode == 78, output
    assert "FACEQUEUE_REDIS_URL" in output and "%2F" in output
    assert password not in output and password.split("/")[1] not in output
    assert "Traceback" not in output
