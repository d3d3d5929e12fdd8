"""The pipeline end to end: producer → Redis → real worker process → local_rekognition → published results."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from PIL import Image

from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from producer.contract import TASK_NAMES, Operation, ResultEnvelope, S3Image, result_key
from producer.messages import protocol_app, task_message
from testmedia.photos import grace_hopper
from tests.fixtures.aws import s3_client
from tests.fixtures.workers import WorkerProcess

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def fq(redis_url: str, worker_queue: str, worker: WorkerProcess) -> Iterator[FaceQueue]:
    """A producer client on the session's Redis and queue, with the session's worker running."""
    client = FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue))  # type: ignore[arg-type]
    yield client
    client.close()


def _jpeg(size: tuple[int, int] = (320, 240), color: str = "gray") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


def test_detect_faces_from_redis_blob(fq: FaceQueue) -> None:
    # Given a portrait submitted as bytes (stored in Redis as a claim check)
    handle = fq.submit(jobs.detect_faces(grace_hopper(), attributes="ALL"))
    # When the worker has run it
    envelope = fq.result(handle, timeout_s=60)
    # Then the envelope carries Rekognition's response and the job's accounting
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    assert envelope.job_id == handle.job_id and envelope.batch_id == handle.batch_id
    assert envelope.operation == "DetectFaces"
    assert len(envelope.response["FaceDetails"]) == 1  # type: ignore[index]
    face = envelope.response["FaceDetails"][0]  # type: ignore[index]
    assert {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"} <= face.keys()
    assert "ResponseMetadata" not in envelope.response  # type: ignore[operator]
    assert envelope.attempts == 1 and envelope.rekognition_ms > 0
    assert envelope.queue_wait_ms is not None and envelope.queue_wait_ms >= 0
    assert envelope.started_at <= envelope.finished_at
    assert envelope.worker


def test_detect_faces_from_s3_object(fq: FaceQueue, moto_s3_url: str, s3_bucket: str) -> None:
    s3_client(moto_s3_url).put_object(Bucket=s3_bucket, Key="people/grace.jpg", Body=grace_hopper().read_bytes())
    envelope = fq.result(fq.submit(jobs.detect_faces(f"s3://{s3_bucket}/people/grace.jpg")), timeout_s=60)
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    assert envelope.face_count() == 1
    assert envelope.label == f"s3://{s3_bucket}/people/grace.jpg"


def test_s3_image_needing_normalisation_is_fetched_and_converted(
    fq: FaceQueue, moto_s3_url: str, s3_bucket: str
) -> None:
    # Given a WebP in S3, a format Rekognition refuses
    out = io.BytesIO()
    Image.open(grace_hopper()).save(out, "WEBP")
    s3_client(moto_s3_url).put_object(Bucket=s3_bucket, Key="grace.webp", Body=out.getvalue())
    # Then the worker converts it and the face is still found
    envelope = fq.result(fq.submit(jobs.detect_faces(S3Image(bucket=s3_bucket, key="grace.webp"))), timeout_s=60)
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    assert envelope.face_count() == 1


@pytest.mark.parametrize("key", ["missing.jpg", None])
def test_missing_s3_object_or_bucket_fails_permanently(fq: FaceQueue, s3_bucket: str, key: str | None) -> None:
    bucket = s3_bucket if key else f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    envelope = fq.result(fq.submit(jobs.detect_faces(S3Image(bucket=bucket, key=key or "x.jpg"))), timeout_s=60)
    assert envelope.status is JobStatus.FAILED
    assert envelope.error is not None
    assert envelope.error.code == "InvalidS3ObjectException"
    assert envelope.error.retryable is False
    assert bucket in envelope.error.message


def test_bad_image_fails_with_a_code_and_the_worker_keeps_serving(fq: FaceQueue, worker: WorkerProcess) -> None:
    bad = fq.result(fq.submit(jobs.detect_faces(b"this is a text file, not a photo")), timeout_s=60)
    assert bad.status is JobStatus.FAILED and bad.error is not None
    assert bad.error.code == "InvalidImageFormatException"
    good = fq.result(fq.submit(jobs.detect_faces(grace_hopper())), timeout_s=60)
    assert good.status is JobStatus.SUCCEEDED
    assert worker.alive


def test_collection_lifecycle_through_the_queue(fq: FaceQueue, moto_s3_url: str, s3_bucket: str) -> None:
    cid = f"fq-{uuid.uuid4().hex[:10]}"
    s3_client(moto_s3_url).put_object(Bucket=s3_bucket, Key="grace.jpg", Body=grace_hopper().read_bytes())

    created = fq.result(fq.submit(jobs.create_collection(cid)), timeout_s=60)
    assert created.status is JobStatus.SUCCEEDED, created.error
    assert cid in created.response["CollectionArn"]  # type: ignore[index]

    again = fq.result(fq.submit(jobs.create_collection(cid)), timeout_s=60)
    assert again.error is not None and again.error.code == "ResourceAlreadyExistsException"

    indexed = fq.result(fq.submit(jobs.index_faces(grace_hopper(), cid, external_image_id="grace")), timeout_s=60)
    assert indexed.status is JobStatus.SUCCEEDED, indexed.error
    records = indexed.response["FaceRecords"]  # type: ignore[index]
    assert len(records) == 1 and records[0]["Face"]["ExternalImageId"] == "grace"
    face_id = records[0]["Face"]["FaceId"]

    listed = fq.result(fq.submit(jobs.list_faces(cid)), timeout_s=60)
    assert [f["FaceId"] for f in listed.response["Faces"]] == [face_id]  # type: ignore[index]

    # The same person from S3: found in the collection above the default threshold
    search = fq.result(fq.submit(jobs.search_faces_by_image(f"s3://{s3_bucket}/grace.jpg", cid)), timeout_s=60)
    assert search.status is JobStatus.SUCCEEDED, search.error
    matches = search.response["FaceMatches"]  # type: ignore[index]
    assert [m["Face"]["FaceId"] for m in matches] == [face_id]
    assert matches[0]["Similarity"] > 80

    compared = fq.result(fq.submit(jobs.compare_faces(grace_hopper(), f"s3://{s3_bucket}/grace.jpg")), timeout_s=60)
    assert compared.status is JobStatus.SUCCEEDED, compared.error
    assert compared.response["FaceMatches"][0]["Similarity"] > 80  # type: ignore[index]

    deleted = fq.result(fq.submit(jobs.delete_faces(cid, [face_id])), timeout_s=60)
    assert deleted.response["DeletedFaces"] == [face_id]  # type: ignore[index]
    dropped = fq.result(fq.submit(jobs.delete_collection(cid)), timeout_s=60)
    assert dropped.status is JobStatus.SUCCEEDED
    gone = fq.result(fq.submit(jobs.list_faces(cid)), timeout_s=60)
    assert gone.error is not None and gone.error.code == "ResourceNotFoundException"


def test_compare_faces_without_a_face_in_the_source_is_invalid_parameter(fq: FaceQueue) -> None:
    envelope = fq.result(fq.submit(jobs.compare_faces(_jpeg(), grace_hopper())), timeout_s=60)
    assert envelope.status is JobStatus.FAILED and envelope.error is not None
    assert envelope.error.code == "InvalidParameterException"
    assert envelope.error.retryable is False


def test_batch_results_stream_in_as_they_complete(fq: FaceQueue) -> None:
    photo = grace_hopper().read_bytes()
    batch = fq.submit_many(jobs.detect_faces(photo, label=f"copy-{i}") for i in range(40))
    seen = [e.job_id for e in fq.iter_results(batch.batch_id, timeout_s=120)]
    assert sorted(seen) == sorted(batch.job_ids)
    progress = fq.progress(batch.batch_id)
    assert (progress.total, progress.succeeded, progress.failed, progress.finished) == (40, 40, 0, True)


def test_a_redelivered_job_publishes_once(fq: FaceQueue, redis_client: redis.Redis) -> None:
    # Given the very same task message delivered twice, as after a crash between publish and ack
    prepared = jobs.detect_faces(grace_hopper())
    batch = fq.submit_many([prepared])
    job = prepared.job.model_copy(update={"batch_id": batch.batch_id, "job_id": batch.job_ids[0]})
    redis_client.lpush(fq.settings.queue, task_message(protocol_app(), [job], fq.settings.queue))
    first = fq.result(job.job_id, timeout_s=60)
    # When both deliveries have run (the duplicate leaves the queue and is acknowledged)
    _wait_for_queue_drained(redis_client, fq.settings.queue)
    # Then one result stands: one stream entry, one count in the batch
    stream = [e for e in redis_client.xrange(fq.settings.results_stream) if e[1][b"job_id"].decode() == job.job_id]
    assert len(stream) == 1
    assert fq.progress(batch.batch_id).succeeded == 1
    assert fq.get_result(job.job_id) == first


def _wait_for_queue_drained(client: redis.Redis, queue: str) -> None:
    from tests.fixtures.redis import wait_until

    # unacked: kombu's hash of delivered, not yet acknowledged messages; empty when every delivery finished
    wait_until(lambda: client.llen(queue) == 0 and client.hlen("unacked") == 0, 60, "the queue to drain")


def test_a_consumer_needs_only_the_task_name_and_the_json_contract(
    redis_url: str, worker_queue: str, worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    # Given a service that knows nothing of facequeue's code: a bare Celery app and the documented JSON
    app = Celery("consumer", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_accept_content=["json"])
    fq = FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue))  # type: ignore[arg-type]
    blob = jobs.image_source(grace_hopper())
    fq.redis.set(blob[0].key, next(iter(blob[1].values())), ex=600)  # type: ignore[union-attr]
    job = {"operation": "DetectFaces", "image": blob[0].model_dump(), "attributes": ["DEFAULT"]}
    # When it sends the job by task name
    async_result = app.send_task(TASK_NAMES[Operation.DETECT_FACES], args=[job], queue=worker_queue)
    # Then Celery's own result backend returns the envelope, keyed by the Celery task id
    envelope = ResultEnvelope.model_validate(async_result.get(timeout=60))
    assert envelope.status is JobStatus.SUCCEEDED and envelope.face_count() == 1
    assert envelope.job_id == async_result.id
    # And a raw XREAD of the results stream, without Celery, finds the same envelope
    entries = redis_client.xrevrange(fq.settings.results_stream, count=200)
    mine = [json.loads(f[b"envelope"]) for _, f in entries if f[b"job_id"].decode() == async_result.id]
    assert len(mine) == 1 and mine[0]["status"] == "succeeded"
    assert redis_client.exists(result_key(async_result.id))
    fq.close()


def test_a_job_that_breaks_the_contract_gets_a_failed_result(
    redis_url: str, worker_queue: str, worker: WorkerProcess
) -> None:
    app = Celery("consumer", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_accept_content=["json"])
    bad = {"operation": "DetectFaces", "image": {"kind": "s3", "bucket": "b!", "key": ""}, "surprise": 1}
    async_result = app.send_task(TASK_NAMES[Operation.DETECT_FACES], args=[bad], queue=worker_queue)
    envelope = ResultEnvelope.model_validate(async_result.get(timeout=60))
    assert envelope.status is JobStatus.FAILED and envelope.error is not None
    assert envelope.error.code == "InvalidJob"
    assert "surprise" in envelope.error.message and "bucket" in envelope.error.message
    assert worker.alive
