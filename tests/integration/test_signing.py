"""Optional message signing with Celery's auth serializer, with throwaway certificates made here."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from producer.contract import TASK_NAMES, Operation
from testmedia.photos import grace_hopper
from tests.fixtures.redis import wait_until
from tests.fixtures.workers import WorkerProcess, worker_environment

pytestmark = pytest.mark.timeout(180)


def make_identity(directory: Path, name: str) -> tuple[str, str]:
    """Write a throwaway RSA key and self-signed certificate; return their paths."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.pem"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_path), str(cert_path)


def test_workers_accept_only_messages_signed_by_a_trusted_key(
    tmp_path: Path,
    redis_url: str,
    local_rekognition_url: str,
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a worker that trusts the certificates in trusted/ (the producer's and its own)
    trusted, untrusted = tmp_path / "trusted", tmp_path / "untrusted"
    trusted.mkdir()
    untrusted.mkdir()
    producer_key, producer_cert = make_identity(trusted, "producer")
    worker_key, worker_cert = make_identity(trusted, "worker")
    rogue_key, rogue_cert = make_identity(untrusted, "rogue")
    store = str(trusted / "*.pem")
    queue = f"signed-{uuid.uuid4().hex[:8]}"
    worker = start_worker(
        worker_environment(
            redis_url,
            local_rekognition_url,
            moto_s3_url,
            queue,
            signing_key=worker_key,
            signing_cert=worker_cert,
            signing_cert_store=store,
        )
    )
    signed = ProducerSettings(
        redis_url=redis_url,
        queue=queue,
        signing_key=producer_key,  # type: ignore[arg-type]
        signing_cert=producer_cert,
        signing_cert_store=store,
    )
    # When a signed job, an unsigned one and one signed by an unknown key arrive
    app = Celery("unsigned", broker=redis_url, set_as_current=False)
    app.conf.task_serializer = "json"
    unsigned = app.send_task(TASK_NAMES[Operation.DETECT_FACES], args=[{}], queue=queue)
    rogue = ProducerSettings(
        redis_url=redis_url,
        queue=queue,
        signing_key=rogue_key,  # type: ignore[arg-type]
        signing_cert=rogue_cert,
        signing_cert_store=str(untrusted / "*.pem"),
    )
    with FaceQueue(rogue) as fq:
        rogue_job = fq.submit(jobs.detect_faces(grace_hopper()))
    with FaceQueue(signed) as fq:
        envelope = fq.result(fq.submit(jobs.detect_faces(grace_hopper())), timeout_s=60)
        # Then only the signed job runs; the others are refused unread, and logged
        assert envelope.status is JobStatus.SUCCEEDED and envelope.face_count() == 1
        wait_until(
            lambda: (
                worker.output().count("ContentDisallowed") + worker.output().count("Refusing") >= 1
                and ("Unable to deserialize" in worker.output() or "could not" in worker.output().lower())
            ),
            60,
            "both refusals in the worker's log",
        )
        assert fq.get_result(rogue_job.job_id) is None
        assert fq.get_result(unsigned.id) is None
    assert worker.alive
