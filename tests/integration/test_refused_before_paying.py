"""Inputs Rekognition refuses are refused by the worker before any call, and a call is paid once per result (issue 25,
defect 4): through a real worker in front of the counting stand-in, which would answer (and bill) anything."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import pytest
from celery import Celery
from PIL import Image

from producer import JobStatus, jobs
from producer.contract import Operation, S3Image, queue_for
from tests.fixtures.aws import s3_client
from tests.fixtures.chaos import PHOTO

pytestmark = pytest.mark.timeout(180)


def _png(width: int, height: int) -> bytes:
    """A real greyscale PNG of width × height black pixels, compressed row by row (100 MP is ~100 KB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pack = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte 0, then the row's pixels
    idat = b"".join(pack.compress(row) for _ in range(height)) + pack.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _tiny_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 150, 120)).save(out, "PNG")
    return out.getvalue()


def test_images_rekognition_refuses_cost_no_call(stack: Callable[..., tuple], moto_s3_url: str, s3_bucket: str) -> None:
    # Given a worker in front of the counting stand-in, a 1x1 PNG (Rekognition needs 80 px a side) as bytes and in
    # S3, and a real 9,990 x 9,990 PNG (99.8 MP, past the pixel limit local_rekognition and the worker share)
    fq, standin, start = stack()
    start(concurrency=2)
    tiny, huge = _tiny_png(), _png(9990, 9990)
    s3_client(moto_s3_url).put_object(Bucket=s3_bucket, Key="tiny.png", Body=tiny)
    batch = fq.submit_many(
        [
            jobs.detect_faces(tiny, label="tiny"),
            jobs.detect_faces(S3Image(bucket=s3_bucket, key="tiny.png"), label="tiny-s3"),
            jobs.detect_faces(huge, label="huge"),
        ]
    )
    # When the worker has run them
    results = {r.label: r for r in fq.wait(batch.batch_id, timeout_s=90)}
    # Then each failed with Rekognition's own code, and nothing was paid
    codes = {label: (r.status, r.error.code, r.attempts) for label, r in results.items() if r.error}
    assert codes == {
        "tiny": (JobStatus.FAILED, "InvalidParameterException", 0),
        "tiny-s3": (JobStatus.FAILED, "InvalidParameterException", 0),
        "huge": (JobStatus.FAILED, "ImageTooLargeException", 0),
    }
    assert "80" in results["tiny"].error.message  # type: ignore[union-attr]
    assert standin.stats().get("calls", 0) == 0


def test_two_jobs_sharing_a_job_id_in_one_message_cost_one_call(
    stack: Callable[..., tuple], moto_s3_url: str, s3_bucket: str
) -> None:
    # Given a worker in front of the counting stand-in, and a message carrying the same job twice
    fq, standin, start = stack()
    s3_client(moto_s3_url).put_object(Bucket=s3_bucket, Key="face.jpg", Body=PHOTO)
    job = jobs.detect_faces(S3Image(bucket=s3_bucket, key="face.jpg")).job.model_dump(mode="json")
    sender = Celery("sender", broker=str(fq.settings.redis_url), set_as_current=False)
    sender.conf.task_serializer = "json"
    sender.send_task(
        "facequeue.detect_faces", args=[[job, dict(job)]], queue=queue_for(fq.settings.queue, Operation.DETECT_FACES)
    )
    # When a worker runs it
    start(concurrency=2)
    envelope = fq.result(str(job["job_id"]), timeout_s=60)
    # Then the job has one result and cost one call
    assert envelope.status is JobStatus.SUCCEEDED
    entries = [f for _, f in fq.redis.xrange(fq.settings.results_stream) if f[b"job_id"].decode() == job["job_id"]]
    assert len(entries) == 1
    assert standin.stats()["calls"] == 1
    sender.close()


def test_the_large_png_is_as_large_as_it_says_and_fully_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The helper itself: a real PNG of 99.8 MP (all its rows there), yet small enough to send as a blob.
    data = _png(9990, 9990)
    assert len(data) < 2**20
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # decode it all, to prove no row is missing
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (9990, 9990)
        img.load()
