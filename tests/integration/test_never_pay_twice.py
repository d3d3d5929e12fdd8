"""Never pay twice: the response cache, the shared rate limiter, and dead letters that can be retried."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis.asyncio as aredis

from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from producer.contract import S3Image
from testmedia.photos import grace_hopper
from tests.fixtures.aws import s3_client
from tests.fixtures.standin import StandIn, StartStandIn
from tests.fixtures.workers import WorkerProcess, worker_environment
from worker.throttle import AdaptiveRate, Ticket

pytestmark = pytest.mark.timeout(180)

PHOTO = grace_hopper().read_bytes()


@pytest.fixture
def cached_stack(
    redis_url: str, moto_s3_url: str, start_standin: StartStandIn, start_worker: Callable[..., WorkerProcess]
) -> Iterator[tuple[FaceQueue, StandIn]]:
    """A worker with the response cache on, against a stand-in that counts calls."""
    standin = start_standin("--delay-ms", "5")
    queue = f"cache-{uuid.uuid4().hex[:8]}"
    start_worker(worker_environment(redis_url, standin.url, moto_s3_url, queue, cache_ttl_s="600"))
    fq = FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue))  # type: ignore[arg-type]
    yield fq, standin
    fq.close()


def test_the_same_photo_and_parameters_are_paid_once(cached_stack: tuple[FaceQueue, StandIn]) -> None:
    fq, standin = cached_stack
    # A fresh photo for this test: the cache is keyed by content, and Redis outlives tests.
    photo = PHOTO + uuid.uuid4().bytes
    first = fq.result(fq.submit(jobs.detect_faces(photo)), timeout_s=60)
    second = fq.result(fq.submit(jobs.detect_faces(photo)), timeout_s=60)
    assert (first.cached, first.attempts) == (False, 1)
    assert (second.cached, second.attempts) == (True, 0)
    assert second.response == first.response
    assert standin.stats()["calls"] == 1
    # Other parameters are another question, and an opt-out always pays
    other = fq.result(fq.submit(jobs.detect_faces(photo, attributes="ALL")), timeout_s=60)
    fresh = fq.result(fq.submit(jobs.detect_faces(photo, use_cache=False)), timeout_s=60)
    assert not other.cached and not fresh.cached
    assert standin.stats()["calls"] == 3


def test_a_celebrity_photo_is_paid_once(cached_stack: tuple[FaceQueue, StandIn]) -> None:
    fq, standin = cached_stack
    photo = PHOTO + uuid.uuid4().bytes
    # Given a photo recognised once
    first = fq.result(fq.submit(jobs.recognize_celebrities(photo)), timeout_s=60)
    # When the same photo is recognised again, and then as DetectFaces (another question about the same bytes)
    second = fq.result(fq.submit(jobs.recognize_celebrities(photo)), timeout_s=60)
    detected = fq.result(fq.submit(jobs.detect_faces(photo)), timeout_s=60)
    # Then the second recognition is the first answer, with no call; the DetectFaces job pays its own
    assert first.status is JobStatus.SUCCEEDED, first.error
    assert (first.cached, first.attempts) == (False, 1) and first.response is not None
    assert [c["Name"] for c in first.response["CelebrityFaces"]] == ["Grace Hopper"]
    assert (second.cached, second.attempts) == (True, 0) and second.response == first.response
    assert not detected.cached and detected.response is not None and "FaceDetails" in detected.response
    assert standin.stats()["calls"] == 2


def test_s3_objects_are_cached_by_etag(
    cached_stack: tuple[FaceQueue, StandIn], moto_s3_url: str, s3_bucket: str
) -> None:
    fq, standin = cached_stack
    s3 = s3_client(moto_s3_url)
    s3.put_object(Bucket=s3_bucket, Key="a.jpg", Body=PHOTO)
    image = S3Image(bucket=s3_bucket, key="a.jpg")
    assert not fq.result(fq.submit(jobs.detect_faces(image)), timeout_s=60).cached
    assert fq.result(fq.submit(jobs.detect_faces(image)), timeout_s=60).cached
    # Overwrite the object: a new ETag, a new call
    s3.put_object(Bucket=s3_bucket, Key="a.jpg", Body=PHOTO + b"changed")
    assert not fq.result(fq.submit(jobs.detect_faces(image)), timeout_s=60).cached
    assert standin.stats()["calls"] == 2


def test_state_changing_operations_are_never_served_from_the_cache(
    redis_url: str, moto_s3_url: str, local_rekognition_url: str, start_worker: Callable[..., WorkerProcess]
) -> None:
    queue = f"cache-{uuid.uuid4().hex[:8]}"
    start_worker(worker_environment(redis_url, local_rekognition_url, moto_s3_url, queue, cache_ttl_s="600"))
    fq = FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue))  # type: ignore[arg-type]
    cid = f"nocache-{uuid.uuid4().hex[:8]}"
    assert fq.result(fq.submit(jobs.create_collection(cid)), timeout_s=60).status is JobStatus.SUCCEEDED
    one = fq.result(fq.submit(jobs.index_faces(PHOTO, cid)), timeout_s=60)
    two = fq.result(fq.submit(jobs.index_faces(PHOTO, cid)), timeout_s=60)
    assert not one.cached and not two.cached
    ids = {r["Face"]["FaceId"] for r in one.response["FaceRecords"] + two.response["FaceRecords"]}  # type: ignore[index]
    assert len(ids) == 2
    fq.result(fq.submit(jobs.delete_collection(cid)), timeout_s=60)
    fq.close()


def test_dead_letters_are_listed_and_can_be_retried(fq_local: FaceQueue) -> None:
    # Given a job that fails for good: its collection does not exist yet
    cid = f"dead-{uuid.uuid4().hex[:8]}"
    failed = fq_local.result(fq_local.submit(jobs.index_faces(PHOTO, cid)), timeout_s=60)
    assert failed.error is not None and failed.error.code == "ResourceNotFoundException"
    letters = {d.job_id: d for d in fq_local.dead_letters()}
    assert failed.job_id in letters
    assert letters[failed.job_id].envelope == failed
    # When the cause is fixed and the dead letter retried
    fq_local.result(fq_local.submit(jobs.create_collection(cid)), timeout_s=60)
    retried = fq_local.retry_dead([failed.job_id])
    assert retried is not None and len(retried) == 1
    [result] = fq_local.wait(retried.batch_id, timeout_s=60)
    # Then it succeeds under a new job id, and leaves the dead letters
    assert result.status is JobStatus.SUCCEEDED and result.job_id != failed.job_id
    assert failed.job_id not in {d.job_id for d in fq_local.dead_letters()}
    fq_local.result(fq_local.submit(jobs.delete_collection(cid)), timeout_s=60)


@pytest.fixture
def fq_local(redis_url: str, worker_queue: str, worker: WorkerProcess) -> Iterator[FaceQueue]:
    """A client on the session's worker (local_rekognition)."""
    client = FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue))  # type: ignore[arg-type]
    yield client
    client.close()


def test_the_limiter_paces_every_process_together_and_backs_off_on_throttles(redis_url: str) -> None:
    async def scenario() -> tuple[list[Ticket], float, int]:
        op = f"Op{uuid.uuid4().hex[:6]}"
        # Given three "processes" (clients) sharing one configured limit of 50 calls/s
        clients = [aredis.Redis.from_url(redis_url) for _ in range(3)]
        limiters = [AdaptiveRate(c, {op: 50}) for c in clients]
        # When each reserves 8 slots at once (24 slots: 0.46 s, within the 0.5 s no slot is handed out beyond)
        slots = await asyncio.gather(*(lim.reserve(op) for lim in limiters for _ in range(8)))
        # And then a throttle is reported and two more slots are reserved
        await limiters[0].throttled(op, slots[-1])
        first, second = await limiters[1].reserve(op), await limiters[2].reserve(op)
        # And a throttle of a call sent before that cut comes in late
        await limiters[2].throttled(op, slots[0])
        epoch = await limiters[0].epoch(op)
        for c in clients:
            await c.aclose()
        return sorted(slots, key=lambda s: s.at_s), second.at_s - first.at_s, epoch

    slots, gap_after_throttle, epoch = asyncio.run(scenario())
    # Then the first goes at once, and the 24 slots fall 20 ms apart across all three (checked on Redis's clock:
    # each reply's wait also depends on when its request arrived, which the test process does not control)
    assert all(s.granted for s in slots) and slots[0].wait_s == 0
    assert all(0.0195 <= b.at_s - a.at_s <= 0.0205 for a, b in itertools.pairwise(slots))
    # And no caller waits past its slot, while the last ones do wait (rounding: 0.5 ms)
    assert all(0 <= s.wait_s <= s.at_s - slots[0].at_s + 0.0005 for s in slots) and slots[-1].wait_s > 0
    # And after a throttle the spacing grows for everyone (rate × 0.9: about 22.2 ms instead of 20)
    assert 0.0215 <= gap_after_throttle <= 0.023
    # And the late throttle of a call from before the cut did not cut again (one cut per epoch)
    assert epoch == 1


def test_the_learnt_rate_slow_starts_stays_within_its_horizon_and_halves_on_the_first_throttle(
    redis_url: str,
) -> None:
    async def scenario() -> tuple[list[Ticket], dict[bytes, bytes], dict[bytes, bytes]]:
        op = f"Op{uuid.uuid4().hex[:6]}"
        client = aredis.Redis.from_url(redis_url)
        # Given an operation nobody configured a quota for
        rate = AdaptiveRate(client)
        # When 30 calls ask for a slot at once
        tickets = [await rate.reserve(op) for _ in range(30)]
        before = await client.hgetall(f"facequeue:rate:{op}")
        # And one of them is throttled
        await rate.throttled(op, tickets[0])
        after = await client.hgetall(f"facequeue:rate:{op}")
        await client.aclose()
        return tickets, before, after

    tickets, before, after = asyncio.run(scenario())
    granted = [t for t in tickets if t.granted]
    # Then it starts at 10 calls/s and grows with every slot granted while callers queue (slow start)
    assert granted[0].rate_tps == 10 and granted[-1].rate_tps > granted[1].rate_tps > 10
    # And no slot is handed out more than 0.5 s ahead: the callers beyond are told to come back
    assert 0 < len(granted) < 30 and all(t.wait_s <= 0.5 for t in granted)
    assert all(not t.granted for t in tickets[len(granted) :])
    # And the first throttle halves the rate, ends slow start and starts a new epoch
    assert float(after[b"rate"]) == pytest.approx(float(before[b"rate"]) / 2)
    assert after[b"mode"] == b"recover" and after[b"epoch"] == b"1"


def test_callers_turned_away_get_their_slots_in_the_order_they_asked(redis_url: str) -> None:
    async def scenario() -> tuple[list[Ticket], Ticket, Ticket]:
        op = f"Op{uuid.uuid4().hex[:6]}"
        client = aredis.Redis.from_url(redis_url)
        # Given a configured quota of 20 calls/s: about 10 slots within the 0.5 s no slot is handed out beyond
        rate = AdaptiveRate(client, {op: 20})
        # When 30 callers ask in turn: the first ones get those slots, the others are told to come back
        tickets = [await rate.reserve(op, caller=f"c{i}") for i in range(30)]
        first_turned_away = next(i for i, t in enumerate(tickets) if not t.granted)
        # And, when the first caller turned away is told to come back, the last one asks before it does
        await asyncio.sleep(tickets[first_turned_away].wait_s)
        last = await rate.reserve(op, caller="c29")
        earliest = await rate.reserve(op, caller=f"c{first_turned_away}")
        await client.aclose()
        return tickets[first_turned_away:], last, earliest

    turned_away, last, earliest = asyncio.run(scenario())
    # Then the callers turned away are told to come back in the order they asked, one slot's time apart
    assert all(not t.granted for t in turned_away) and len(turned_away) >= 15
    assert all(b.wait_s > a.wait_s for a, b in itertools.pairwise(turned_away))
    # And the last caller does not overtake the first: a caller's wait is bounded by the callers ahead of it, so a
    # job behind a quota cannot starve past its deadline while later ones go
    assert not last.granted and earliest.granted
