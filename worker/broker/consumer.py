"""Celery's consumer, keeping what it refuses as evidence: the same bounded dead letter the transport keeps.

Celery logs and drops a message it will not run (unsigned or foreign-signed in signed mode, a serializer it does
not accept, a task name nobody registered, headers that are not a task's); the log line was the only trace. Each is
now also a dead letter (`facequeue dead list`), small and expiring, so an operator can see what was sent.
Selected with Celery's ``worker_consumer`` setting (worker.broker.CONSUMER).

It also waits for Redis without end, saying why in one structured line per attempt: a worker started before its
Redis (or before any sentinel answers, or while the sentinels have no master) keeps trying every few seconds
instead of giving up after Celery's 100 attempts, and its log says ``reason=no_master`` rather than a kilobyte of
connection repr.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.state import maybe_shutdown
from redis.exceptions import AuthenticationError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import MasterNotFoundError

from worker.broker.transport import keep_refused_message

log = logging.getLogger("facequeue.worker")

RETRY_MAX_S = 5.0
"""The longest pause between two attempts to reach Redis: a worker is back within seconds of its Redis."""


def unreachable_reason(exc: BaseException) -> str:
    """A short, stable word for why Redis could not be reached (for logs and alerts to match on)."""
    for cause in (exc, exc.__cause__, exc.__context__):
        if isinstance(cause, MasterNotFoundError):
            return "no_master"
        if isinstance(cause, AuthenticationError):
            return "auth"
        if isinstance(cause, RedisTimeoutError | TimeoutError):
            return "timeout"
        if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
            return "refused"
    return "unreachable"


def _short(exc: BaseException) -> str:
    # redis-py's MasterNotFoundError ends with the repr of every sentinel connection: the first clause says it.
    return str(exc).split(" : <", 1)[0][:200]


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's consumer; every message it refuses is also kept as a bounded dead letter."""

    def ensure_connected(self, conn: Any) -> Any:
        """Connect to Redis, trying without end (a pause of at most RETRY_MAX_S) and logging each failure's reason."""
        attempts = 0

        def waiting(exc: BaseException, interval_s: float) -> None:
            nonlocal attempts
            attempts += 1
            reason = unreachable_reason(exc)
            log.warning(
                "waiting for Redis: reason=%s attempt=%d retry_in_s=%.1f detail=%r",
                reason,
                attempts,
                interval_s,
                _short(exc),
                extra={"reason": reason, "attempt": attempts, "retry_in_s": interval_s},
            )

        conn.ensure_connection(
            waiting,
            max_retries=None,
            interval_start=1,
            interval_step=1,
            interval_max=RETRY_MAX_S,
            callback=maybe_shutdown,
        )
        if attempts:
            log.warning("Redis reached after %d failed attempt(s)", attempts, extra={"attempt": attempts})
        return super().ensure_connected(conn)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        """A body that does not deserialize (a bad or unknown signature in signed mode): keep it, then Celery's way."""
        keep_refused_message(message, "UndecodableMessage", f"{type(exc).__name__}: {exc}")
        super().on_decode_error(message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        """A message that is not a valid task, or whose content type is not accepted (unsigned in signed mode)."""
        keep_refused_message(message, "RefusedMessage", f"{type(exc).__name__}: {exc}")
        super().on_invalid_task(body, message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        """A message without a task name."""
        keep_refused_message(message, "RefusedMessage", "not a task message (no task name)")
        super().on_unknown_message(body, message)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        """A task name no facequeue worker registers."""
        keep_refused_message(message, "UnknownTask", f"{type(exc).__name__}: {exc}")
        super().on_unknown_task(body, message, exc)
