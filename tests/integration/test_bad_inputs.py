"""A table of bad inputs through a real worker and local_rekognition: each gets its outcome; the worker goes on."""

from __future__ import annotations

import hashlib
import io
import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis
from celery import Celery
from kombu import Connection
from PIL import Image

from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from producer.contract import TASK_NAMES, BlobImage, Operation, S3Image, queue_for
from testmedia.photos import grace_hopper
from tests.fixtures.workers import WorkerProcess
from tests.unit.test_images import _png_header_only

pytestmark = pytest.mark.timeout(180)


def _encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def _portrait() -> Image.Image:
    return Image.open(grace_hopper()).convert("RGB")


def _noise_jpeg_over_5mb() -> bytes:
    rng = random.Random(3)
    return _encode(Image.frombytes("RGB", (2300, 1700), rng.randbytes(2300 * 1700 * 3)), "JPEG", quality=100)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90° counter-clockwise; a viewer turns it back upright
    return _encode(_portrait().transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif.tobytes())


@dataclass(frozen=True)
class Case:
    """One bad input and what must come of it."""

    name: str
    data: Callable[[], bytes]
    status: JobStatus
    code: str | None = None
    faces: int | None = None


CASES = [
    Case("empty file", lambda: b"", JobStatus.FAILED, "InvalidImageFormatException"),
    Case(
        "truncated JPEG", lambda: grace_hopper().read_bytes()[:20_000], JobStatus.FAILED, "InvalidImageFormatException"
    ),
    Case("text file named .jpg", lambda: b"hello, not a photo\n" * 10, JobStatus.FAILED, "InvalidImageFormatException"),
    Case("1x1 image", lambda: _encode(Image.new("RGB", (1, 1)), "PNG"), JobStatus.FAILED, "InvalidParameterException"),
    Case("30000x30000 PNG bomb", lambda: _png_header_only(30000, 30000), JobStatus.FAILED, "ImageTooLargeException"),
    Case("6 MB of JPEG", _noise_jpeg_over_5mb, JobStatus.SUCCEEDED, faces=0),
    Case("WebP", lambda: _encode(_portrait(), "WEBP"), JobStatus.SUCCEEDED, faces=1),
    Case("TIFF", lambda: _encode(_portrait(), "TIFF"), JobStatus.SUCCEEDED, faces=1),
    Case("GIF", lambda: _encode(_portrait().convert("P"), "GIF"), JobStatus.SUCCEEDED, faces=1),
    Case("BMP", lambda: _encode(_portrait(), "BMP"), JobStatus.SUCCEEDED, faces=1),
    Case("CMYK JPEG", lambda: _encode(_portrait().convert("CMYK"), "JPEG"), JobStatus.SUCCEEDED, faces=1),
    Case(
        "16-bit PNG",
        lambda: _encode(_portrait().convert("L").convert("I").point(lambda v: v * 257).convert("I;16"), "PNG"),
        JobStatus.SUCCEEDED,
        faces=1,
    ),
    Case("RGBA PNG", lambda: _encode(_portrait().convert("RGBA"), "PNG"), JobStatus.SUCCEEDED, faces=1),
    Case("EXIF-rotated photo", _exif_rotated, JobStatus.SUCCEEDED, faces=1),
]


@pytest.fixture
def fq(redis_url: str, worker_queue: str, worker: WorkerProcess) -> Iterator[FaceQueue]:
    """A client on the session's worker."""
    client = FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue))  # type: ignore[arg-type]
    yield client
    client.close()


def _submit_raw(fq: FaceQueue, data: bytes) -> str:
    """Store bytes as a blob and submit DetectFaces for them, bypassing the producer's own checks."""
    if data:
        source, blobs = jobs.image_source(data)
    else:  # the producer refuses empty files itself; a foreign producer might not
        source, blobs = BlobImage(sha256=hashlib.sha256(b"").hexdigest(), size_bytes=0), {}
        fq.redis.set(source.key, b"", ex=600)
    prepared = jobs.PreparedJob(jobs.DetectFacesJob(image=source), blobs)
    return fq.submit(prepared).job_id


def test_every_bad_image_gets_its_outcome_and_the_worker_keeps_serving(fq: FaceQueue, worker: WorkerProcess) -> None:
    submitted = {case.name: _submit_raw(fq, case.data()) for case in CASES}
    outcomes = {name: fq.result(job_id, timeout_s=120) for name, job_id in submitted.items()}
    table = {name: (e.status.value, e.error.code if e.error else e.face_count()) for name, e in outcomes.items()}
    print(json.dumps(table, indent=1))
    for case in CASES:
        envelope = outcomes[case.name]
        assert envelope.status is case.status, (case.name, envelope.error)
        if case.code:
            assert envelope.error is not None and envelope.error.code == case.code, (case.name, envelope.error)
            assert envelope.error.retryable is False and envelope.error.message
        if case.faces is not None:
            assert envelope.face_count() == case.faces, case.name
    assert worker.alive
    assert fq.result(fq.submit(jobs.detect_faces(grace_hopper())), timeout_s=60).face_count() == 1


def test_an_exif_rotated_photo_gets_the_boxes_of_the_upright_photo(fq: FaceQueue) -> None:
    upright = fq.result(fq.submit(jobs.detect_faces(_encode(_portrait(), "JPEG"))), timeout_s=60)
    rotated = fq.result(fq.submit(jobs.detect_faces(_exif_rotated())), timeout_s=60)
    a = upright.response["FaceDetails"][0]["BoundingBox"]  # type: ignore[index]
    b = rotated.response["FaceDetails"][0]["BoundingBox"]  # type: ignore[index]
    assert all(abs(a[k] - b[k]) < 0.03 for k in ("Left", "Top", "Width", "Height")), (a, b)


@pytest.mark.parametrize(
    ("name", "job"),
    [
        ("missing fields", {"operation": "DetectFaces"}),
        ("unknown fields", {"operation": "DetectFaces", "image": {"kind": "s3", "bucket": "abc", "key": "k"}, "x": 1}),
        ("unknown operation", {"operation": "DetectLabels", "image": {"kind": "s3", "bucket": "abc", "key": "k"}}),
        ("not an object", "DetectFaces please"),
    ],
)
def test_jobs_that_break_the_contract_fail_with_invalid_job(
    redis_url: str, worker_queue: str, worker: WorkerProcess, name: str, job: object
) -> None:
    app = Celery("sender", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_accept_content=["json"])
    result = app.send_task(TASK_NAMES[Operation.DETECT_FACES], args=[job], queue=worker_queue)
    envelope = result.get(timeout=60)
    assert envelope["status"] == "failed" and envelope["error"]["code"] == "InvalidJob", name
    assert worker.alive


def test_missing_s3_object_and_bucket_fail_permanently(fq: FaceQueue, s3_bucket: str) -> None:
    for image in (
        S3Image(bucket=s3_bucket, key="nope.jpg"),
        S3Image(bucket=f"nobucket-{uuid.uuid4().hex[:6]}", key="a"),
    ):
        envelope = fq.result(fq.submit(jobs.detect_faces(image)), timeout_s=60)
        assert envelope.error is not None and envelope.error.code == "InvalidS3ObjectException"


def test_pickle_messages_and_unknown_tasks_are_refused_and_logged(
    redis_url: str, worker_queue: str, worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    queue = queue_for(worker_queue, Operation.DETECT_FACES)
    marker = uuid.uuid4().hex
    with Connection(redis_url) as conn:
        producer = conn.Producer()
        # A pickle body could run code when loaded: the worker must refuse it without loading it.
        producer.publish(
            {"marker": marker},
            routing_key=queue,
            serializer="pickle",
            headers={"task": TASK_NAMES[Operation.DETECT_FACES], "id": marker, "lang": "py"},
        )
    app = Celery("sender", broker=redis_url, set_as_current=False)
    app.conf.update(task_serializer="json")
    unknown = app.send_task("facequeue.no_such_task", args=[{}], queue=worker_queue)
    from tests.fixtures.redis import wait_until

    def refusals_logged() -> bool:
        # Celery's own line about the unknown task comes after facequeue's dead-letter line naming it: wait for it.
        output = worker.output()
        return "pickle" in output and (unknown.id in output or "unregistered task" in output)

    wait_until(refusals_logged, 60, "the refusals logged")
    assert "Refusing to deserialize" in worker.output() or "ContentDisallowed" in worker.output()
    wait_until(lambda: redis_client.llen(queue) == 0 and redis_client.llen(worker_queue) == 0, 30, "queues drained")
    assert worker.alive
    with FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue)) as fq:  # type: ignore[arg-type]
        assert fq.result(fq.submit(jobs.detect_faces(grace_hopper())), timeout_s=60).status is JobStatus.SUCCEEDED
