"""Redis Sentinel: the master SIGKILLed mid-batch, the sentinels promote the replica, producer and workers follow.

Real processes throughout: a master, a replica and three sentinels (tests/fixtures/sentinel.py), real worker
processes, and the protocol-level stand-in as the Rekognition endpoint (it counts calls).
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from producer import FaceQueue, NotReplicatedError, ProducerSettings, jobs
from producer.connection import async_client, sync_client
from tests.fixtures.chaos import CHAOS, PHOTO, account
from tests.fixtures.redis import wait_until
from tests.fixtures.sentinel import MASTER_NAME, SentinelGroup
from tests.fixtures.standin import StartStandIn
from tests.fixtures.workers import WorkerProcess, worker_environment

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def _sentinel_settings(group: SentinelGroup, durable: bool) -> dict[str, str]:
    return {
        "redis_sentinels": group.addresses,
        "redis_sentinel_master": MASTER_NAME,
        "redis_wait_replicas": "1" if durable else "0",
    }


def test_a_master_killed_mid_batch_fails_over_with_nothing_lost_or_published_twice(
    sentinel_group: SentinelGroup,
    start_standin: StartStandIn,
    start_worker: Callable[..., WorkerProcess],
    moto_s3_url: str,
    tmp_path: Path,
) -> None:
    # Given a Sentinel deployment, two workers and a producer that find the master through the sentinels and count
    # a write only once a replica has it (durable writes)
    group = sentinel_group
    first_master = group.master_port()
    url = f"redis://127.0.0.1:{first_master}/0"  # only the database number and credentials are read from it
    standin = start_standin("--delay-ms", "100")
    queue = f"ha-{uuid.uuid4().hex[:8]}"
    settings = _sentinel_settings(group, durable=True)
    env = worker_environment(url, standin.url, moto_s3_url, queue, **{**CHAOS, **settings})
    workers = [start_worker(env, concurrency=16) for _ in range(2)]
    fq = FaceQueue(ProducerSettings(redis_url=url, queue=queue, **settings))  # type: ignore[arg-type]
    try:
        batch = fq.submit_many(jobs.detect_faces(PHOTO, label=str(i)) for i in range(240))
        wait_until(lambda: fq.progress(batch.batch_id).done >= 40, 90, "40 results before the failover")
        # When the master is SIGKILLed mid-batch, the sentinels promote the replica, and the old master comes back
        # as a replica of the new one
        killed = group.kill_master()
        new_master = group.wait_for_new_master(first_master)
        group.rejoin(killed)
        results = fq.wait(batch.batch_id, timeout_s=180)
        # Then the batch completes on the new master: every job once, none lost, none published twice
        assert new_master != first_master
        summary = account(fq.redis, fq, batch)
        assert summary == {"submitted": 240, "succeeded": 240, "failed": 0, "lost": 0, "duplicated": 0}
        assert sorted(r.job_id for r in results) == sorted(batch.job_ids)
        # ... and the workers are still running, having followed the failover themselves
        assert all(w.alive for w in workers)
    finally:
        fq.close()


def test_durable_writes_are_refused_with_a_clear_error_when_no_replica_answers(
    sentinel_group: SentinelGroup,
) -> None:
    # Given a producer that counts a submit only once a replica has it, and a deployment whose replica is gone
    group = sentinel_group
    group.replica.stop()
    settings = _sentinel_settings(group, durable=True) | {"redis_wait_timeout_ms": "300"}
    url = f"redis://127.0.0.1:{group.master_port()}/0"
    fq = FaceQueue(ProducerSettings(redis_url=url, queue=f"ha-{uuid.uuid4().hex[:8]}", **settings))  # type: ignore[arg-type]
    try:
        # When it submits, then the submit fails with an error that says the write was not replicated
        with pytest.raises(NotReplicatedError) as raised:
            fq.submit(jobs.detect_faces(PHOTO))
        assert raised.value.code == "NotReplicated"
        assert "0 of 1 replicas" in str(raised.value)
    finally:
        fq.close()


def test_a_worker_started_before_any_sentinel_answers_waits_says_why_and_runs_jobs_once_they_do(
    sentinel_group: SentinelGroup,
    start_standin: StartStandIn,
    moto_s3_url: str,
    tmp_path: Path,
) -> None:
    # Given a Sentinel deployment whose sentinels are all down (the master and replica still run)
    group = sentinel_group
    for sentinel in group.sentinels:
        sentinel.stop()
    url = f"redis://127.0.0.1:{group.master.port}/0"
    queue = f"ha-{uuid.uuid4().hex[:8]}"
    settings = _sentinel_settings(group, durable=False)
    env = worker_environment(url, start_standin().url, moto_s3_url, queue, **{**CHAOS, **settings})
    # When a worker starts, it keeps trying, each attempt logged with its reason, and does not exit
    worker = WorkerProcess(env, tmp_path / "early.log", concurrency=4).launch()
    try:
        wait_until(lambda: "reason=no_master attempt=2" in worker.output() or not worker.alive, 60, "a second attempt")
        assert worker.alive, worker.output()[-3000:]
        assert "waiting for Redis: reason=no_master attempt=1" in worker.output()
        # ... and once the sentinels are back, it connects and a job completes
        for sentinel in group.sentinels:
            sentinel.start()
        group.wait_for_sentinels()
        worker.wait_ready()
        with FaceQueue(ProducerSettings(redis_url=url, queue=queue, **settings)) as fq:  # type: ignore[arg-type]
            result = fq.result(fq.submit(jobs.detect_faces(PHOTO)), timeout_s=60)
        assert result.status.value == "succeeded"
        assert "Redis reached after" in worker.output()
    finally:
        worker.stop()


def test_a_server_the_sentinels_still_call_master_but_is_a_replica_is_refused(sentinel_group: SentinelGroup) -> None:
    # Given a Sentinel deployment whose master became a replica before the sentinels noticed (they ask INFO every
    # 10 s): the server a reconnect during a failover reaches when it asked the sentinels just before the switch
    group = sentinel_group
    master, replica = group.master, group.replica
    assert group.master_port() == master.port
    redis.Redis(port=replica.port, socket_timeout=1).execute_command("REPLICAOF", "NO", "ONE")
    redis.Redis(port=master.port, socket_timeout=1).execute_command("REPLICAOF", "127.0.0.1", str(replica.port))
    url = f"redis://127.0.0.1:{master.port}/0"
    settings = ProducerSettings(redis_url=url, **_sentinel_settings(group, durable=False))  # type: ignore[arg-type]
    assert group.master_port() == master.port
    # When the producer's clients (sync and asyncio, the worker's too) connect through the sentinels, one attempt
    sync = sync_client(settings, retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.ConnectionError, match="is a slave, not the master"):
        # Then they refuse to read there (a replica answers reads: a stale results stream, a stale batch)
        sync.get("anything")
    sync.close()

    async def read_async() -> None:
        client = async_client(settings, retry=Retry(NoBackoff(), 0))  # type: ignore[arg-type]
        try:
            await client.get("anything")
        finally:
            await client.aclose()
            for sentinel in client.connection_pool.sentinel_manager.sentinels:  # type: ignore[attr-defined]
                await sentinel.aclose()

    with pytest.raises(redis.ConnectionError, match="is a slave, not the master"):
        asyncio.run(read_async())


def test_a_connection_cut_mid_command_reconnects_through_the_sentinels_not_to_the_old_address(
    sentinel_group: SentinelGroup,
) -> None:
    # Given a producer's client connected to the master through the sentinels
    group = sentinel_group
    first = group.master_port()
    url = f"redis://127.0.0.1:{first}/0"
    settings = ProducerSettings(redis_url=url, **_sentinel_settings(group, durable=False))  # type: ignore[arg-type]
    client = sync_client(settings, retry=Retry(NoBackoff(), 3), socket_timeout=1, socket_connect_timeout=1)
    stopped = group.master.process
    assert stopped is not None
    try:
        assert client.execute_command("ROLE")[0] == b"master"
        # When the master stops answering without closing anything (SIGSTOP: a container whose network namespace
        # is gone), and the sentinels promote the replica
        stopped.send_signal(signal.SIGSTOP)
        promoted = group.wait_for_new_master(first)
        # Then the client's next command, timed out on its connection, reconnects to the new master: redis-py 8
        # alone reconnects to the address the connection had, which in a compose network resolves to the old
        # master once it is back
        assert client.execute_command("ROLE")[0] == b"master"
        connection = client.connection_pool.get_connection()
        try:
            assert connection.port == promoted
        finally:
            client.connection_pool.release(connection)
    finally:
        stopped.send_signal(signal.SIGCONT)
        client.close()
