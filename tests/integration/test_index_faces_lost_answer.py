"""An IndexFaces whose answer is lost after Rekognition acted leaves one copy of the face, not one per attempt (issue
25, the chaos campaign's "faces indexed twice"): a real worker, a real local_rekognition, and the HTTP fault proxy
dropping IndexFaces answers after the endpoint indexed the face. Faces other jobs indexed from the same photo, with
or without an ExternalImageId, are never adopted or deleted.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from producer.contract import job_mark, journal_key
from testmedia.photos import grace_hopper
from tests.fixtures.aws import rekognition_client
from tests.fixtures.faultproxy import HttpFaults
from tests.fixtures.redis import wait_until
from tests.fixtures.workers import WorkerProcess, worker_environment

pytestmark = pytest.mark.timeout(240)

PHOTO = grace_hopper().read_bytes()


def _faces(rekognition: Any, cid: str) -> dict[str, dict[str, Any]]:
    """The collection's faces by FaceId, as ListFaces lists them."""
    return {f["FaceId"]: f for f in rekognition.list_faces(CollectionId=cid, MaxResults=4096)["Faces"]}


@pytest.fixture
def collection(local_rekognition_url: str) -> Iterator[tuple[Any, str]]:
    """A fresh collection on the session's local_rekognition, and a client reaching it directly."""
    rekognition = rekognition_client(local_rekognition_url)
    cid = f"lost-{uuid.uuid4().hex[:8]}"
    rekognition.create_collection(CollectionId=cid)
    yield rekognition, cid
    rekognition.delete_collection(CollectionId=cid)


def _stack(
    redis_url: str, moto_s3_url: str, proxy: HttpFaults, start_worker: Callable[..., WorkerProcess], **settings: str
) -> tuple[FaceQueue, Callable[[], WorkerProcess]]:
    """A producer on a queue of its own, and a starter of workers reaching Rekognition through the proxy."""
    queue = f"lost-{uuid.uuid4().hex[:8]}"
    env = worker_environment(redis_url, proxy.url, moto_s3_url, queue, cache_ttl_s="0", **settings)
    fq = FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue))  # type: ignore[arg-type]
    return fq, lambda: start_worker(env, concurrency=2)


def _the_one_record(envelope: Any) -> dict[str, Any]:
    """The one FaceRecord of a job that succeeded."""
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    assert envelope.response is not None
    [record] = envelope.response["FaceRecords"]
    return dict(record)


def _published(fq: FaceQueue, job_id: str) -> int:
    """How many entries the results stream holds for the job."""
    return sum(1 for _, f in fq.redis.xrange(fq.settings.results_stream) if f[b"job_id"].decode() == job_id)


def test_a_lost_index_faces_answer_leaves_one_copy_and_touches_no_other_jobs_faces(
    redis_url: str,
    moto_s3_url: str,
    local_rekognition_url: str,
    collection: tuple[Any, str],
    http_faults: Callable[[str], HttpFaults],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a collection already holding the same photo's face three times: indexed by another job through the
    # worker (no ExternalImageId), directly without an ExternalImageId, and directly under "grace"
    rekognition, cid = collection
    proxy = http_faults(local_rekognition_url)
    fq, start = _stack(redis_url, moto_s3_url, proxy, start_worker, backoff_base_s="0.05", backoff_cap_s="0.5")
    start()
    other = fq.result(fq.submit(jobs.index_faces(PHOTO, cid, max_faces=1)), timeout_s=60)
    assert other.status is JobStatus.SUCCEEDED, other.error
    rekognition.index_faces(CollectionId=cid, Image={"Bytes": PHOTO}, MaxFaces=1)
    rekognition.index_faces(CollectionId=cid, Image={"Bytes": PHOTO}, MaxFaces=1, ExternalImageId="grace")
    earlier = _faces(rekognition, cid)
    assert len(earlier) == 3
    # When every IndexFaces answer is dropped after local_rekognition indexed the face
    proxy.set("cut", operations=["IndexFaces"])
    envelope = fq.result(fq.submit(jobs.index_faces(PHOTO, cid, max_faces=1)), timeout_s=120)
    # Then the job succeeds with the one face its lost call indexed, the only copy in the collection, and every
    # face another job indexed is still there, untouched
    assert proxy.stats().get("cut:IndexFaces", 0) >= 1
    record = _the_one_record(envelope)
    now = _faces(rekognition, cid)
    assert set(now) == set(earlier) | {record["Face"]["FaceId"]} and len(now) == 4
    assert all(now[face_id] == face for face_id, face in earlier.items())
    # And the answer is the face as the collection holds it, under the job's mark
    assert record["Face"] == now[record["Face"]["FaceId"]]
    assert record["Face"]["ExternalImageId"] == job_mark(envelope.job_id)
    assert record["FaceDetail"]["BoundingBox"] == record["Face"]["BoundingBox"]
    assert _published(fq, envelope.job_id) == 1
    fq.close()


def test_a_job_redelivered_after_its_call_acted_unrecorded_adopts_that_face(
    redis_url: str,
    moto_s3_url: str,
    local_rekognition_url: str,
    collection: tuple[Any, str],
    http_faults: Callable[[str], HttpFaults],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a worker whose IndexFaces (and ListFaces) answers are all dropped, with a minute's backoff between
    # attempts, and a collection already holding the photo's face from another job
    rekognition, cid = collection
    proxy = http_faults(local_rekognition_url)
    fq, start = _stack(
        redis_url,
        moto_s3_url,
        proxy,
        start_worker,
        backoff_base_s="60",
        backoff_cap_s="60",
        visibility_timeout_s="15",
        restore_interval_s="1",
        job_timeout_s="5",
    )
    rekognition.index_faces(CollectionId=cid, Image={"Bytes": PHOTO}, MaxFaces=1)
    earlier = _faces(rekognition, cid)
    proxy.set("cut", operations=["IndexFaces", "ListFaces"])
    first = start()
    handle = fq.submit(jobs.index_faces(PHOTO, cid, max_faces=1))
    # When the worker is SIGKILLed once Rekognition indexed the face (its journal still says "pending"), and
    # another worker takes the message when it comes back, the network healed
    wait_until(lambda: len(_faces(rekognition, cid)) > len(earlier), 60, "the face to be indexed")
    first.stop(signal.SIGKILL)
    assert fq.redis.get(journal_key(handle.job_id)) == b"pending"
    proxy.set("pass")
    start()
    envelope = fq.result(handle, timeout_s=120)
    # Then the job's one result holds the face the killed run indexed, and the collection holds it once
    record = _the_one_record(envelope)
    now = _faces(rekognition, cid)
    assert set(now) == set(earlier) | {record["Face"]["FaceId"]} and len(now) == len(earlier) + 1
    assert _published(fq, handle.job_id) == 1
    fq.close()


def test_a_run_after_two_lost_calls_keeps_one_copy_and_deletes_only_its_own_extra(
    redis_url: str,
    moto_s3_url: str,
    local_rekognition_url: str,
    collection: tuple[Any, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a job whose earlier runs called IndexFaces twice and recorded neither answer (its journal says
    # "pending"; two copies of the face under the job's mark), and the same photo indexed by others meanwhile
    rekognition, cid = collection
    queue = f"lost-{uuid.uuid4().hex[:8]}"
    start_worker(worker_environment(redis_url, local_rekognition_url, moto_s3_url, queue, cache_ttl_s="0"))
    fq = FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue))  # type: ignore[arg-type]
    prepared = jobs.index_faces(PHOTO, cid, max_faces=1)
    mark = job_mark(prepared.job.job_id)
    fq.redis.set(journal_key(prepared.job.job_id), b"pending", ex=600)
    for external in (mark, None, mark, "grace"):
        rekognition.index_faces(
            CollectionId=cid, Image={"Bytes": PHOTO}, MaxFaces=1, **({"ExternalImageId": external} if external else {})
        )
    before = _faces(rekognition, cid)
    copies = sorted((f["ImageId"], face_id) for face_id, f in before.items() if f.get("ExternalImageId") == mark)
    assert len(before) == 4 and len(copies) == 2
    # When the job runs again
    envelope = fq.result(fq.submit(prepared), timeout_s=60)
    # Then it publishes one of its copies without indexing again, and deletes the other one only
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    assert envelope.response is not None
    assert [r["Face"]["FaceId"] for r in envelope.response["FaceRecords"]] == [copies[0][1]]
    assert set(_faces(rekognition, cid)) == set(before) - {copies[1][1]}
    fq.close()


def test_calls_that_reach_rekognition_after_the_worker_gave_up_leave_one_copy(
    redis_url: str,
    moto_s3_url: str,
    local_rekognition_url: str,
    collection: tuple[Any, str],
    http_faults: Callable[[str], HttpFaults],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a proxy holding every IndexFaces 3 s before it forwards it, and a worker that gives up after 2 s
    rekognition, cid = collection
    proxy = http_faults(local_rekognition_url)
    settings = {"backoff_base_s": "0.05", "backoff_cap_s": "0.5", "rekognition_read_timeout_s": "2"}
    fq, start = _stack(redis_url, moto_s3_url, proxy, start_worker, **settings)
    start()
    proxy.set("stall", operations=["IndexFaces"], stall_s=3.0)
    # When an IndexFaces job runs: each attempt times out, and its call indexes the face after the worker gave up
    envelope = fq.result(fq.submit(jobs.index_faces(PHOTO, cid, max_faces=1)), timeout_s=120)
    # Then the job's answer is one face, the only one in the collection
    assert proxy.stats().get("stall:IndexFaces", 0) >= 2
    record = _the_one_record(envelope)
    assert set(_faces(rekognition, cid)) == {record["Face"]["FaceId"]}
    fq.close()
