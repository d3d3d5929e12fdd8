"""The smaller findings of the outside probe (issue 13, defect 11), each as the user met it: through the `facequeue`
command, real Redis (plain and TLS), real workers, local_rekognition or the counting stand-in."""

from __future__ import annotations

import dataclasses
import datetime
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from producer.contract import S3Image
from testmedia.photos import grace_hopper
from tests.fixtures.aws import s3_client
from tests.fixtures.chaos import PHOTO
from tests.fixtures.workers import ROOT, WorkerProcess, worker_environment
from tests.integration.clirun import cli_env, json_lines, run_cli
from tests.integration.test_redis_tls import tls_redis  # noqa: F401  (the fixture)
from tests.integration.test_signing import make_identity

pytestmark = pytest.mark.timeout(240)


def test_an_empty_file_is_reported_and_the_rest_of_the_batch_runs(
    tmp_path: Path, redis_url: str, worker_queue: str, worker: WorkerProcess
) -> None:
    # Given two good photos and an empty file between them
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    # When they are analysed together
    done = run_cli(
        "analyze",
        str(grace_hopper()),
        str(empty),
        str(grace_hopper()),
        "--wait",
        "--format",
        "jsonl",
        env=cli_env(redis_url, worker_queue),
    )
    # Then the two good ones run, the empty one is named on stderr, and the exit code says not everything ran
    assert [r["status"] for r in json_lines(done.stdout)] == ["succeeded", "succeeded"], done.stderr
    assert f"skipped {empty}" in done.stderr and "empty" in done.stderr
    assert "submitted 2 job(s)" in done.stderr
    assert done.returncode == 1


def test_the_allow_list_refusal_is_not_blamed_on_iam(
    redis_url: str,
    local_rekognition_url: str,
    moto_s3_url: str,
    s3_bucket: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a worker that may read only the bucket "photos"
    queue = f"allow-{uuid.uuid4().hex[:8]}"
    env = worker_environment(redis_url, local_rekognition_url, moto_s3_url, queue, s3_allowed='["photos"]')
    start_worker(env)
    # When a user analyses a photo in another bucket
    done = run_cli("analyze", f"s3://{s3_bucket}/face.jpg", "--wait", env=cli_env(redis_url, queue))
    # Then the hint points at the worker's allow-list, not at the AWS identity's rights
    assert done.returncode == 1
    assert "FACEQUEUE_S3_ALLOWED" in done.stderr.split("AccessDeniedException:", 1)[1], done.stderr
    assert "grant it rekognition" not in done.stderr


def test_an_untrusted_tls_certificate_is_said_as_such(tls_redis: str, worker_queue: str) -> None:  # noqa: F811
    # Given the TLS Redis, and a URL that does not give the CA that signed its certificate
    url = tls_redis.split("&ssl_ca_certs=")[0]
    # When the CLI talks to it
    done = run_cli("status", "nosuchbatch", env=cli_env(url, worker_queue), timeout_s=60)
    # Then it says the certificate is the problem, not that Redis does not answer
    assert done.returncode == 3
    assert "does not answer" not in done.stderr
    assert "certificate" in done.stderr and "ssl_ca_certs" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_output_into_a_closed_pipe_ends_quietly(redis_url: str, worker_queue: str, worker: WorkerProcess) -> None:
    # Given a finished batch of 10 results
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue)) as fq:  # type: ignore[arg-type]
        batch = fq.submit_many(jobs.detect_faces(PHOTO, label=str(i)) for i in range(10))
        assert len(fq.wait(batch.batch_id, timeout_s=120)) == 10
    # When its results are piped into a reader that has gone away (what `| head` is once it has its lines)
    command = [sys.executable, "-m", "producer.cli", "results", "--batch", batch.batch_id, "--format", "jsonl"]
    reader = f"{' '.join(command)} | true"  # a reader gone before the first line, as `head` is after its last
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", reader],
        env=cli_env(redis_url, worker_queue),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then the command stops without a traceback or an "Exception ignored" message, with 141 like a Unix tool
    assert "BrokenPipe" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert done.returncode == 141


def test_a_truncated_jpeg_costs_no_rekognition_call(
    stack: Callable[..., tuple], moto_s3_url: str, s3_bucket: str
) -> None:
    # Given a worker in front of the counting stand-in (which would answer any bytes), and a JPEG cut in half, as
    # bytes and as an S3 object
    fq, standin, start = stack()
    start(concurrency=2)
    s3_client(moto_s3_url).put_object(Bucket=s3_bucket, Key="cut.jpg", Body=PHOTO[: len(PHOTO) // 2])
    # When both cut copies and a whole photo are analysed
    cut = [
        jobs.detect_faces(PHOTO[: len(PHOTO) // 2], label="cut"),
        jobs.detect_faces(S3Image(bucket=s3_bucket, key="cut.jpg"), label="cut-s3"),
    ]
    batch = fq.submit_many([*cut, jobs.detect_faces(PHOTO)])
    results = {r.label or "whole": r for r in fq.wait(batch.batch_id, timeout_s=60)}
    # Then the cut ones fail as bad images without a call, and only the whole one was paid for
    for label in ("cut", "cut-s3"):
        failed = results[label]
        assert (failed.status, failed.error.code, failed.attempts) == (  # type: ignore[union-attr]
            JobStatus.FAILED,
            "InvalidImageFormatException",
            0,
        ), label
        assert "truncated" in failed.error.message  # type: ignore[union-attr]
    assert results["whole"].status is JobStatus.SUCCEEDED
    assert standin.stats()["calls"] == 1


def test_a_signed_message_replayed_after_its_result_expired_is_refused(
    tmp_path: Path,
    redis_url: str,
    local_rekognition_url: str,
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given signing workers keeping results 60 s, and a trusted producer
    key, cert = make_identity(tmp_path, "both")
    signing = {"signing_key": key, "signing_cert": cert, "signing_cert_store": str(tmp_path / "*.pem")}
    queue = f"replay-{uuid.uuid4().hex[:8]}"
    start_worker(worker_environment(redis_url, local_rekognition_url, moto_s3_url, queue, result_ttl_s="60", **signing))
    settings = ProducerSettings(redis_url=redis_url, queue=queue, **signing)  # type: ignore[arg-type]
    with FaceQueue(settings) as fq:
        # When a message signed two minutes ago (captured then, its result expired since) is pushed again as it was
        prepared = jobs.detect_faces(grace_hopper())
        then = prepared.job.submitted_at - datetime.timedelta(seconds=120)
        old = dataclasses.replace(prepared, job=prepared.job.model_copy(update={"submitted_at": then}))
        replayed = fq.result(fq.submit(old), timeout_s=60)
        # And a fresh one is sent
        fresh = fq.result(fq.submit(jobs.detect_faces(grace_hopper())), timeout_s=60)
    # Then the old one is refused without a call, the fresh one runs
    assert (replayed.status, replayed.error.code, replayed.attempts) == (JobStatus.FAILED, "JobExpired", 0)  # type: ignore[union-attr]
    assert fresh.status is JobStatus.SUCCEEDED
