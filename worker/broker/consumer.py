"""Celery's consumer, keeping what it refuses as evidence: the same bounded dead letter the transport keeps.

Celery logs and drops a message it will not run (unsigned or foreign-signed in signed mode, a serializer it does
not accept, a task name nobody registered, headers that are not a task's); the log line was the only trace. Each is
now also a dead letter (`facequeue dead list`), small and expiring, so an operator can see what was sent.
Selected with Celery's ``worker_consumer`` setting (worker.broker.CONSUMER).
"""

from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

from worker.broker.transport import keep_refused_message


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's consumer; every message it refuses is also kept as a bounded dead letter."""

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
