"""User jobs end to end: producer → Redis → real worker → local_rekognition, and redelivery never doubles them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from producer import FaceQueue, JobStatus, ProducerSettings, jobs, people
from producer.contract import Job, ResultEnvelope, queue_for
from producer.messages import protocol_app, task_message
from testmedia.imaging import views
from testmedia.photos import astronaut, grace_hopper
from tests.fixtures.aws import rekognition_client
from tests.fixtures.workers import WorkerProcess

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def fq(redis_url: str, worker_queue: str, worker: WorkerProcess) -> Iterator[FaceQueue]:
    """A producer client on the session's Redis and queue, with the session's worker running."""
    client = FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue))  # type: ignore[arg-type]
    yield client
    client.close()


def run(fq: FaceQueue, prepared: jobs.PreparedJob) -> dict[str, Any]:
    """Submit one job, wait for it, and return its response (failing the test if the job failed)."""
    envelope = fq.result(fq.submit(prepared), timeout_s=60)
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    assert envelope.response is not None
    return envelope.response


def redeliver(fq: FaceQueue, redis_client: redis.Redis, job: Job) -> ResultEnvelope:
    """Push ``job`` as kombu does after a worker died holding it (redelivered), and wait for its one result."""
    batch = fq.submit_many([])  # a batch id and progress hash for the hand-pushed job
    job = job.model_copy(update={"batch_id": batch.batch_id})
    queue = queue_for(fq.settings.queue, job.operation)
    message = json.loads(task_message(protocol_app(), [job], queue))
    message["properties"]["delivery_info"]["redelivered"] = True
    redis_client.lpush(queue, json.dumps(message))
    return fq.result(job.job_id, timeout_s=60)


def test_enrol_and_identify_through_the_queue(fq: FaceQueue) -> None:
    cid = f"users-{uuid.uuid4().hex[:8]}"
    run(fq, jobs.create_collection(cid))
    # Given Grace Hopper's face indexed and associated with her user, through jobs
    indexed = run(fq, jobs.index_faces(grace_hopper(), cid, external_image_id="grace", max_faces=1))
    face_id = indexed["FaceRecords"][0]["Face"]["FaceId"]
    run(fq, jobs.create_user(cid, "grace"))
    associated = run(fq, jobs.associate_faces(cid, "grace", [face_id]))
    assert associated["AssociatedFaces"] == [{"FaceId": face_id}] and associated["UserStatus"] == "ACTIVE"
    # When photos are identified
    found = run(fq, jobs.search_users_by_image(grace_hopper(), cid))
    stranger = run(fq, jobs.search_users_by_image(astronaut(), cid))
    # Then Grace is named, the stranger is not
    assert [m["User"]["UserId"] for m in found["UserMatches"]] == ["grace"]
    assert stranger["UserMatches"] == []
    assert run(fq, jobs.list_users(cid))["Users"] == [{"UserId": "grace", "UserStatus": "ACTIVE"}]
    by_face = run(fq, jobs.search_users(cid, face_id=face_id))
    assert [m["User"]["UserId"] for m in by_face["UserMatches"]] == ["grace"]
    assert run(fq, jobs.disassociate_faces(cid, "grace", [face_id]))["UserStatus"] == "CREATED"
    run(fq, jobs.delete_user(cid, "grace"))
    # A second CreateUser job for a taken id fails with Rekognition's code, once, not retried
    run(fq, jobs.create_user(cid, "ada"))
    taken = fq.result(fq.submit(jobs.create_user(cid, "ada")), timeout_s=60)
    assert taken.error is not None and (taken.error.code, taken.error.retryable) == ("ConflictException", False)
    assert taken.attempts == 1
    run(fq, jobs.delete_collection(cid))


def test_redelivered_user_jobs_create_and_associate_once(
    fq: FaceQueue, redis_client: redis.Redis, local_rekognition_url: str
) -> None:
    cid = f"users-{uuid.uuid4().hex[:8]}"
    rekognition = rekognition_client(local_rekognition_url)
    rekognition.create_collection(CollectionId=cid)
    indexed = rekognition.index_faces(CollectionId=cid, Image={"Bytes": grace_hopper().read_bytes()})
    face_id = indexed["FaceRecords"][0]["Face"]["FaceId"]
    # Given a CreateUser and an AssociateFaces job whose earlier runs reached Rekognition, then died before publishing
    create = jobs.create_user(cid, "grace").job
    associate = jobs.associate_faces(cid, "grace", [face_id]).job
    rekognition.create_user(**create.request())
    first = rekognition.associate_faces(**associate.request())
    # When kombu redelivers both
    created = redeliver(fq, redis_client, create)
    again = redeliver(fq, redis_client, associate)
    # Then neither fails nor does anything twice: the user exists once and the association answers as it first did
    assert created.status is JobStatus.SUCCEEDED, created.error
    assert again.status is JobStatus.SUCCEEDED, again.error
    assert again.response is not None
    assert again.response["AssociatedFaces"] == first["AssociatedFaces"] == [{"FaceId": face_id}]
    assert rekognition.list_users(CollectionId=cid)["Users"] == [{"UserId": "grace", "UserStatus": "ACTIVE"}]
    rekognition.delete_collection(CollectionId=cid)


def test_the_library_enrols_a_person_and_removes_faces_left_out(fq: FaceQueue, tmp_path: Path) -> None:
    cid = f"users-{uuid.uuid4().hex[:8]}"
    run(fq, jobs.create_collection(cid))
    photos = {}
    for name, data in {"grace.jpg": grace_hopper().read_bytes(), **views(grace_hopper())}.items():
        photos[name] = tmp_path / (name if name.endswith(".jpg") else f"{name}.jpg")
        photos[name].write_bytes(data)
    (tmp_path / "eileen.png").write_bytes(astronaut().read_bytes())
    # Given Grace enrolled from two photos, then again with one more of her and one of Eileen
    first = people.enrol(fq, cid, "grace", [str(photos["grace.jpg"]), str(photos["flipped"])], timeout_s=60)
    assert sorted(Path(p).name for p in first.associated) == ["flipped.jpg", "grace.jpg"] and not first.left_out
    more = people.enrol(fq, cid, "grace", [str(photos["darker"]), str(tmp_path / "eileen.png")], timeout_s=60)
    # Then her photo joins the same user; Eileen's is left out as too unlike her, and her face is deleted again
    assert [Path(p).name for p in more.associated] == ["darker.jpg"]
    assert [Path(p).name for p in more.left_out] == ["eileen.png"]
    assert more.user_status == "ACTIVE"
    faces = run(fq, jobs.list_faces(cid))["Faces"]
    assert len(faces) == 3 and {face["UserId"] for face in faces} == {"grace"}
    run(fq, jobs.delete_collection(cid))
