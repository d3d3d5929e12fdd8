"""A redelivered IndexFaces touches nothing another job indexed, and an answer Rekognition gave is never paid twice.

IndexFaces has no idempotency token, so a run killed between Rekognition's answer and the publish is the hard case.
The worker records the answer under the job's id before it publishes; a later run of the job publishes that answer.
"""

from __future__ import annotations

import io
import json
import signal
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from PIL import Image, ImageEnhance, ImageOps

from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from producer.contract import queue_for
from producer.messages import protocol_app, task_message
from testmedia.photos import grace_hopper
from tests.fixtures.aws import rekognition_client
from tests.fixtures.chaos import CHAOS, account
from tests.fixtures.redis import every_key_but, wait_until
from tests.fixtures.workers import WorkerProcess, worker_environment

pytestmark = pytest.mark.timeout(180)


def _views() -> list[bytes]:
    """Four photos of one person: the portrait, mirrored, cropped and brightened (similarity ≥ 99 to each other)."""
    base = Image.open(grace_hopper()).convert("RGB")
    w, h = base.size
    variants = [
        base,
        ImageOps.mirror(base),
        base.crop((w // 10, 0, w, h * 9 // 10)),
        ImageEnhance.Brightness(base).enhance(1.3),
    ]
    out = []
    for img in variants:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


@pytest.fixture
def fq(redis_url: str, worker_queue: str, worker: WorkerProcess) -> Iterator[FaceQueue]:
    """A producer client on the session's Redis and queue, with the session's worker running."""
    client = FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue))  # type: ignore[arg-type]
    yield client
    client.close()


def _push_redelivered(fq: FaceQueue, client: redis.Redis, prepared: jobs.PreparedJob) -> str:
    """Push a job's message marked redelivered, as kombu marks one restored after a crash; return its job id."""
    batch = fq.submit_many([])
    job = prepared.job.model_copy(update={"batch_id": batch.batch_id})
    for digest, data in prepared.blobs.items():
        client.set(f"facequeue:blob:{digest}", data, ex=600)
    queue = queue_for(fq.settings.queue, job.operation)
    message = json.loads(task_message(protocol_app(), [job], queue))
    message["properties"]["delivery_info"]["redelivered"] = True
    client.lpush(queue, json.dumps(message))
    return job.job_id


def test_a_redelivered_index_faces_never_deletes_faces_other_jobs_indexed(
    fq: FaceQueue, redis_client: redis.Redis, local_rekognition_url: str
) -> None:
    # Given one person enrolled from four photos under one ExternalImageId (a normal way to enrol a person)
    cid = f"enrol-{uuid.uuid4().hex[:8]}"
    rekognition = rekognition_client(local_rekognition_url)
    rekognition.create_collection(CollectionId=cid)
    views = _views()
    enrolled = fq.wait(fq.submit_many(jobs.index_faces(v, cid, external_image_id="grace") for v in views).batch_id)
    earlier = {r.response["FaceRecords"][0]["Face"]["FaceId"] for r in enrolled}  # type: ignore[index]
    assert len(earlier) == 4
    # When a fifth photo's job is redelivered (its message restored after a visibility timeout)
    job_id = _push_redelivered(fq, redis_client, jobs.index_faces(views[0], cid, external_image_id="grace"))
    envelope = fq.result(job_id, timeout_s=60)
    # Then it indexes its own face and deletes none of the four
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    new = envelope.response["FaceRecords"][0]["Face"]["FaceId"]  # type: ignore[index]
    faces = {f["FaceId"] for f in rekognition.list_faces(CollectionId=cid)["Faces"]}
    assert faces == earlier | {new}
    rekognition.delete_collection(CollectionId=cid)


def _user_refused_result_writes(redis_url: str, client: redis.Redis) -> tuple[str, str]:
    """A Redis user that may read result keys but not write them (as a misconfigured ACL); its name and URL."""
    user, password = f"noresult-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    patterns = [f"~{p}" for p in every_key_but("facequeue:result:")] + ["%R~facequeue:result:*"]
    client.acl_setuser(user, enabled=True, passwords=[f"+{password}"], commands=["+@all"], channels=["*"])
    client.execute_command("ACL", "SETUSER", user, *patterns)
    return user, redis_url.replace("redis://", f"redis://{user}:{password}@")


def _refused(client: redis.Redis, user: str) -> bool:
    """True once Redis's ACL LOG records a refusal for ``user``."""
    return any(e.get("username") == user for e in client.acl_log())


def test_an_answer_given_before_the_publish_failed_is_published_without_indexing_again(
    redis_url: str,
    redis_client: redis.Redis,
    local_rekognition_url: str,
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a worker whose Redis user may read result keys but not write them (Redis refuses the publish, as a
    # misconfigured ACL does), while everything else works
    user, worker_url = _user_refused_result_writes(redis_url, redis_client)
    queue = f"journal-{uuid.uuid4().hex[:8]}"
    start_worker(worker_environment(worker_url, local_rekognition_url, moto_s3_url, queue, cache_ttl_s="0"))
    cid = f"journal-{uuid.uuid4().hex[:8]}"
    rekognition = rekognition_client(local_rekognition_url)
    rekognition.create_collection(CollectionId=cid)
    fq = FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue))  # type: ignore[arg-type]
    # When an IndexFaces job runs: Rekognition indexes the face, then the publish is refused and the message requeued
    handle = fq.submit(jobs.index_faces(grace_hopper(), cid, external_image_id="grace"))
    wait_until(lambda: rekognition.list_faces(CollectionId=cid)["Faces"], 60, "the face to be indexed")
    [indexed] = [f["FaceId"] for f in rekognition.list_faces(CollectionId=cid)["Faces"]]
    wait_until(lambda: _refused(redis_client, user), 30, "Redis to refuse the publish")
    # And Redis lets it publish again, while the message comes round once more
    redis_client.execute_command("ACL", "SETUSER", user, "~*")
    envelope = fq.result(handle, timeout_s=60)
    # Then the face Rekognition indexed on the first run is the one published, and the only one in the collection
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    assert [r["Face"]["FaceId"] for r in envelope.response["FaceRecords"]] == [indexed]  # type: ignore[index]
    assert [f["FaceId"] for f in rekognition.list_faces(CollectionId=cid)["Faces"]] == [indexed]
    rekognition.delete_collection(CollectionId=cid)
    fq.close()
    redis_client.acl_deluser(user)


def test_sigkill_mid_message_of_index_faces_keeps_every_face_other_jobs_indexed(
    redis_url: str, local_rekognition_url: str, moto_s3_url: str, start_worker: Callable[..., WorkerProcess]
) -> None:
    # Given a person enrolled from 4 photos, and a message of 8 more IndexFaces jobs for them under the same id
    queue = f"kill-index-{uuid.uuid4().hex[:8]}"
    env = worker_environment(redis_url, local_rekognition_url, moto_s3_url, queue, **CHAOS)
    fq = FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue))  # type: ignore[arg-type]
    cid = f"kill-{uuid.uuid4().hex[:8]}"
    rekognition = rekognition_client(local_rekognition_url)
    rekognition.create_collection(CollectionId=cid)
    views = _views()
    earlier = {
        rekognition.index_faces(CollectionId=cid, Image={"Bytes": v}, ExternalImageId="grace")["FaceRecords"][0][
            "Face"
        ]["FaceId"]
        for v in views
    }
    batch = fq.submit_many(jobs.index_faces(views[i % 4], cid, external_image_id="grace") for i in range(8))
    # When the worker is SIGKILLed once Rekognition has indexed some of them, and another takes over
    first = start_worker(env)
    wait_until(lambda: len(rekognition.list_faces(CollectionId=cid)["Faces"]) > 4, 60, "a face to be indexed")
    first.stop(signal.SIGKILL)
    start_worker(env)
    results = fq.wait(batch.batch_id, timeout_s=120)
    # Then every job has one result, no face indexed by anyone else is gone, and every published face exists
    summary = account(fq.redis, fq, batch)
    published = {r.response["FaceRecords"][0]["Face"]["FaceId"] for r in results}  # type: ignore[index]
    faces = {f["FaceId"] for f in rekognition.list_faces(CollectionId=cid, MaxResults=100)["Faces"]}
    extra = len(faces) - len(earlier) - len(published)
    print(f"faces: {len(faces)} ({len(earlier)} earlier, {len(published)} published, {extra} unrecorded copies)")
    assert summary["lost"] == 0 and summary["duplicated"] == 0 and summary["succeeded"] == 8
    assert earlier <= faces and published <= faces and extra >= 0
    rekognition.delete_collection(CollectionId=cid)
    fq.close()


def test_a_create_collection_whose_publish_was_refused_succeeds_when_it_comes_back(
    redis_url: str,
    redis_client: redis.Redis,
    local_rekognition_url: str,
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a worker whose user may not write result keys, and a CreateCollection job
    user, worker_url = _user_refused_result_writes(redis_url, redis_client)
    queue = f"journal-{uuid.uuid4().hex[:8]}"
    start_worker(worker_environment(worker_url, local_rekognition_url, moto_s3_url, queue, redis_error_pause_s="0.2"))
    fq = FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue))  # type: ignore[arg-type]
    cid = f"journal-{uuid.uuid4().hex[:8]}"
    rekognition = rekognition_client(local_rekognition_url)
    # When the collection is made, the publish refused, and the job comes round again once Redis lets it publish
    handle = fq.submit(jobs.create_collection(cid))
    wait_until(lambda: cid in rekognition.list_collections()["CollectionIds"], 60, "the collection to exist")
    wait_until(lambda: _refused(redis_client, user), 30, "Redis to refuse the publish")
    redis_client.execute_command("ACL", "SETUSER", user, "~*")
    envelope = fq.result(handle, timeout_s=60)
    # Then the job succeeded with the answer of its first run, not ResourceAlreadyExistsException from a second
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    assert envelope.response is not None and envelope.response["StatusCode"] == 200
    rekognition.delete_collection(CollectionId=cid)
    fq.close()
    redis_client.acl_deluser(user)
