"""The reason word a worker logs while it waits for Redis (worker/broker/consumer.py), for each way Redis is away."""

from __future__ import annotations

import pytest
from redis.exceptions import AuthenticationError, ConnectionError, TimeoutError
from redis.sentinel import MasterNotFoundError

from worker.broker.consumer import unreachable_reason


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (MasterNotFoundError("No master found for 'facequeue' : <redis.client.Redis(...)>"), "no_master"),
        (ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."), "refused"),
        (TimeoutError("Timeout connecting to server"), "timeout"),
        (AuthenticationError("invalid username-password pair"), "auth"),
        (ConnectionError("Error -2 connecting to redis:6379. Name or service not known."), "unreachable"),
    ],
)
def test_each_way_redis_is_away_has_its_reason(exc: Exception, reason: str) -> None:
    assert unreachable_reason(exc) == reason


def test_a_wrapped_error_is_read_through_its_cause() -> None:
    try:
        try:
            raise MasterNotFoundError("No master found for 'facequeue'")
        except MasterNotFoundError as inner:
            raise OSError("kombu's wrapper") from inner
    except OSError as outer:
        assert unreachable_reason(outer) == "no_master"
