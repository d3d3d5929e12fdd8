"""Celery's own result of a single-job message (`AsyncResult(job_id)`), written by the publish script with the job's
result (issue 21, fleet cost): the same meta Celery's Redis backend writes, in the same atomic step, and Celery's
backend then sends nothing for it."""

from __future__ import annotations

import asyncio
import datetime
import json
import uuid
from collections.abc import Callable

import redis
import redis.asyncio as aredis
from celery import Celery, states
from celery.app.task import Context

from producer import FaceQueue, JobStatus, ProducerSettings, ResultEnvelope, jobs
from producer.contract import TASK_NAMES, Operation, utcnow
from testmedia.photos import grace_hopper
from tests.fixtures.redis import RedisServer
from tests.fixtures.standin import StartStandIn
from tests.fixtures.workers import WorkerProcess, worker_environment
from worker.publish import CeleryResult, Publisher


def _client(redis_url: str) -> Celery:
    app = Celery("consumer", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_accept_content=["json"])
    return app


def _envelope(job_id: str) -> ResultEnvelope:
    now = utcnow()
    return ResultEnvelope(
        job_id=job_id,
        operation="DetectFaces",
        status=JobStatus.SUCCEEDED,
        response={"FaceDetails": []},
        attempts=1,
        started_at=now,
        finished_at=now,
    )


def test_the_publish_writes_the_meta_celerys_backend_writes_and_only_when_it_publishes(redis_url: str) -> None:
    app = _client(redis_url)
    job_id, other_task = uuid.uuid4().hex, uuid.uuid4().hex
    first = CeleryResult(app.backend.get_key_for_task(job_id).decode(), job_id)
    again = CeleryResult(app.backend.get_key_for_task(other_task).decode(), other_task)

    async def publish_twice() -> None:
        client = aredis.Redis.from_url(redis_url)
        publisher = Publisher(client, stream=f"test-results-{job_id[:8]}", stream_maxlen=100, ttl_s=600)
        await publisher.publish(_envelope(job_id), celery=first)
        # A second message for the same job (another task id) finds the result published: it writes nothing
        await publisher.publish(_envelope(job_id), celery=again)
        await client.aclose()

    # Given a Celery client waiting on the task's result before it exists
    waiting = app.AsyncResult(job_id)
    # When the job is published with Celery's result, then published again under another task id
    asyncio.run(publish_twice())
    # Then AsyncResult.get() returns the envelope, as when Celery's backend stored the task's return value
    assert ResultEnvelope.model_validate(waiting.get(timeout=10)).job_id == job_id
    assert waiting.state == states.SUCCESS
    assert isinstance(waiting.date_done, datetime.datetime)
    # And the meta holds the fields Celery's backend writes, its TTL the result's
    meta = json.loads(redis.Redis.from_url(redis_url).get(first.key))  # type: ignore[arg-type]
    request = Context(id=job_id, args=[{}], kwargs={})  # what a worker's request carries for a single-job message
    celerys = app.backend._get_result_meta(result=meta["result"], state=states.SUCCESS, traceback=None, request=request)
    assert meta == {**celerys, "task_id": job_id, "date_done": meta["date_done"]}
    assert datetime.datetime.fromisoformat(meta["date_done"]).utcoffset() == datetime.timedelta(0)
    assert 0 < redis.Redis.from_url(redis_url).ttl(first.key) <= 600
    # And only the call that published wrote it: the second task is left to Celery's backend
    assert first.written and not again.written
    assert not redis.Redis.from_url(redis_url).exists(again.key)


def test_a_single_job_message_costs_celerys_result_backend_no_command(
    start_redis: Callable[..., RedisServer],
    moto_s3_url: str,
    start_standin: StartStandIn,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a fresh Redis (its command counts are this test's), a worker and a Celery client knowing only the task name
    server = start_redis()
    client = redis.Redis.from_url(server.url)
    queue = f"celery-results-{uuid.uuid4().hex[:8]}"
    standin = start_standin("--delay-ms", "0")
    start_worker(worker_environment(server.url, standin.url, moto_s3_url, queue, cache_ttl_s="0"), concurrency=4)
    fq = FaceQueue(ProducerSettings(redis_url=server.url, queue=queue))  # type: ignore[arg-type]
    blob = jobs.image_source(grace_hopper())
    fq.redis.set(blob[0].key, next(iter(blob[1].values())), ex=600)  # type: ignore[union-attr]
    job = {"operation": "DetectFaces", "image": blob[0].model_dump()}
    app = _client(server.url)
    client.config_resetstat()
    # When it sends three single-job messages and waits for each through Celery's result backend
    sent = [app.send_task(TASK_NAMES[Operation.DETECT_FACES], args=[job], queue=queue) for _ in range(3)]
    envelopes = [ResultEnvelope.model_validate(r.get(timeout=60)) for r in sent]
    # Then each has its envelope under its task id
    assert [e.job_id for e in envelopes] == [r.id for r in sent]
    assert all(e.status is JobStatus.SUCCEEDED for e in envelopes)
    # And the worker never ran Celery's store (GET the meta, then MULTI SETEX PUBLISH EXEC): the publish script wrote it
    stats = client.info("commandstats")
    assert "cmdstat_setex" not in stats, stats.get("cmdstat_setex")
    fq.close()


def test_a_single_job_message_is_acknowledged_by_the_step_that_publishes_it(
    start_redis: Callable[..., RedisServer],
    moto_s3_url: str,
    start_standin: StartStandIn,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Given a fresh Redis (its command counts are this test's), a worker and a Celery client knowing only the task name
    server = start_redis()
    client = redis.Redis.from_url(server.url)
    queue = f"celery-acks-{uuid.uuid4().hex[:8]}"
    standin = start_standin("--delay-ms", "0")
    worker = start_worker(
        worker_environment(server.url, standin.url, moto_s3_url, queue, cache_ttl_s="0"), concurrency=4
    )
    fq = FaceQueue(ProducerSettings(redis_url=server.url, queue=queue))  # type: ignore[arg-type]
    blob = jobs.image_source(grace_hopper())
    fq.redis.set(blob[0].key, next(iter(blob[1].values())), ex=600)  # type: ignore[union-attr]
    job = {"operation": "DetectFaces", "image": blob[0].model_dump()}
    app = _client(server.url)
    client.config_resetstat()
    # When it sends three single-job messages and waits for each
    sent = [app.send_task(TASK_NAMES[Operation.DETECT_FACES], args=[job], queue=queue) for _ in range(3)]
    envelopes = [ResultEnvelope.model_validate(r.get(timeout=60)) for r in sent]
    # Then, as soon as each result stands, its message is out of kombu's unacked hash and index (one atomic step)
    assert all(e.status is JobStatus.SUCCEEDED for e in envelopes)
    assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0
    # And, once the worker stopped (every ack it owed made), kombu's ack sent no MULTI ZREM HDEL EXEC of its own:
    # the three MULTI/EXEC left are the Celery client's (on main the worker's acks added three more, and ZREM HDEL)
    assert worker.stop() == 0
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in client.info("commandstats").items()}
    assert calls["multi"] == calls["exec"] == 3, calls
    assert calls["zrem"] == calls["hdel"] == 3, calls
    fq.close()
