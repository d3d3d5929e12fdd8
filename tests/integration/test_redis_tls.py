"""rediss://: broker, result backend, blobs and results stream over TLS, with certificates made here."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from testmedia.photos import grace_hopper
from tests.fixtures.redis import free_port, redis_answers, wait_until
from tests.fixtures.workers import WorkerProcess, worker_environment

pytestmark = pytest.mark.timeout(180)


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def make_tls_files(directory: Path) -> tuple[str, str, str]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "facequeue test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return (
        _write(directory / "ca.pem", ca.public_bytes(pem)),
        _write(directory / "server.pem", cert.public_bytes(pem)),
        _write(
            directory / "server.key",
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        ),
    )


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server that speaks only TLS and wants a password; yields a rediss:// URL that verifies its CA."""
    ca, cert, key = make_tls_files(tmp_path)
    port, password = free_port(), f"pw-{uuid.uuid4().hex}"
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            cert,
            "--tls-key-file",
            key,
            "--tls-ca-cert-file",
            ca,
            "--tls-auth-clients",
            "no",
            "--requirepass",
            password,
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"rediss://:{password}@127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={ca}"

    try:
        wait_until(lambda: redis_answers(url), 15, "a TLS redis-server")
        yield url
    finally:
        process.terminate()
        process.wait()


def test_the_whole_pipeline_runs_over_tls(
    tls_redis: str, local_rekognition_url: str, moto_s3_url: str, start_worker: Callable[..., WorkerProcess]
) -> None:
    # Given a Redis that only speaks TLS: a plain connection is refused
    port = int(tls_redis.split("@127.0.0.1:")[1].split("/")[0])
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=port, socket_timeout=2).ping()
    # When a worker and a producer use one rediss:// URL for broker, backend, blobs and stream
    queue = f"tls-{uuid.uuid4().hex[:8]}"
    worker = start_worker(worker_environment(tls_redis, local_rekognition_url, moto_s3_url, queue))
    with FaceQueue(ProducerSettings(redis_url=tls_redis, queue=queue)) as fq:  # type: ignore[arg-type]
        batch = fq.submit_many([jobs.detect_faces(grace_hopper()), jobs.detect_faces(b"not a photo")])
        results = {r.label: r for r in fq.wait(batch.batch_id, timeout_s=60)}
        stream = fq.redis.xrange(fq.settings.results_stream)  # type: ignore[union-attr]
    # Then jobs run, results publish, and the stream is readable, all over TLS
    assert sorted(r.status.value for r in results.values()) == ["failed", "succeeded"]
    assert len(stream) == 2
    assert any(r.status is JobStatus.SUCCEEDED and r.face_count() == 1 for r in results.values())
    assert "rediss://" in worker.output()
    password = tls_redis.split("://:")[1].split("@")[0]
    assert password not in worker.output()
