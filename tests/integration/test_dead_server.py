"""A Redis that stops answering without closing its connections: every client gives up instead of waiting forever.

A killed container takes its network namespace with it, so a command sent to a Redis in it is neither answered
nor refused, and the kernel retransmits for about 15 minutes (found by `make compose-test-ha`, docs/compose.md).
On loopback a killed process's connections are reset at once, so a proxy stands in for the vanished namespace
(tests/fixtures/faultproxy.py's Blackhole): it forwards, then swallows every byte and closes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis
from celery import Celery
from kombu import Connection
from redis.backoff import NoBackoff
from redis.retry import Retry

from producer import FaceQueue, ProducerSettings
from producer.connection import async_client, sync_client
from tests.fixtures.faultproxy import Blackhole
from worker import broker
from worker.settings import WorkerSettings

# Longer than every client's reply timeout (producer/connection.py: 11 s with the default WAIT timeout), shorter
# than Celery's own 120 s default, and a forever-waiting client never gets there.
pytestmark = pytest.mark.timeout(90)


def _kombu_broker(url: str) -> Callable[[], object]:
    connection = Connection(url, transport=broker.TRANSPORT, transport_options=broker.transport_options(_worker(url)))
    client = connection.default_channel.client
    return client.ping  # type: ignore[no-any-return]


def _celery_backend(url: str) -> Callable[[], object]:
    app = Celery("dead-server", broker=url, backend=url)
    app.conf.update(broker.backend_options(_worker(url)))
    return app.backend.client.ping  # type: ignore[no-any-return]


def _producer(url: str) -> Callable[[], object]:
    settings = ProducerSettings(redis_url=url)  # type: ignore[arg-type]
    # The client FaceQueue builds, with one attempt: its own retries for a minute and more, as a failover needs.
    fq = FaceQueue(settings, client=sync_client(settings, retry=Retry(NoBackoff(), 0)))
    return lambda: fq.get_result("no-such-job")


def _worker(url: str) -> WorkerSettings:
    return WorkerSettings(redis_url=url)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make_client",
    [_kombu_broker, _celery_backend, _producer],
    ids=["worker-broker", "worker-result-backend", "producer"],
)
def test_a_client_gives_up_on_a_redis_that_stopped_answering(
    blackhole: Blackhole, make_client: Callable[[str], Callable[[], object]]
) -> None:
    # Given a client that has talked to Redis through a proxy
    command = make_client(blackhole.url)
    command()
    # When Redis vanishes without closing anything (the proxy swallows every byte from now on)
    blackhole.silence()
    # Then the next command fails with a timeout instead of waiting forever
    with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
        command()


def test_the_async_client_gives_up_on_a_redis_that_stopped_answering(blackhole: Blackhole) -> None:
    # The worker's runtime and AsyncFaceQueue build their clients this way.
    async def story() -> None:
        client = async_client(ProducerSettings(redis_url=blackhole.url), retry=None)  # type: ignore[arg-type]
        try:
            # Given an asyncio client that has talked to Redis through a proxy
            await client.ping()
            # When Redis vanishes without closing anything
            blackhole.silence()
            # Then the next command fails with a timeout instead of waiting forever
            with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
                await client.ping()
        finally:
            await client.aclose()

    asyncio.run(story())
