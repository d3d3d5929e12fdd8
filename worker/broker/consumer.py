"""Celery's consumer, keeping what it refuses as evidence: the same bounded dead letter transport.py keeps.

Celery logs and drops a message it will not run (unsigned or foreign-signed in signed mode, a serializer it does
not accept, a task name nobody registered, headers that are not a task's); the log line was the only trace. Each is
now also a dead letter (`facequeue dead list`), small and expiring, so an operator can see what was sent.
Selected with Celery's ``worker_consumer`` setting (worker.broker.CONSUMER).
"""

from __future__ import annotations

import json
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer


def _keep(message: Any, code: str, reason: str) -> None:
    keep = getattr(getattr(message, "channel", None), "keep_refused", None)
    if keep is None:  # another transport (tests with memory://): Celery's own log line is all there is
        return
    raw = getattr(message, "_raw", None)
    text = json.dumps(raw, default=str) if raw is not None else repr(getattr(message, "body", b""))
    queue = str((getattr(message, "delivery_info", None) or {}).get("routing_key") or "")
    keep(text, queue, code, reason[:500])


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's consumer; every message it refuses is also kept as a bounded dead letter."""

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        """A body that does not deserialize (a bad or unknown signature in signed mode): keep it, then Celery's way."""
        _keep(message, "UndecodableMessage", f"{type(exc).__name__}: {exc}")
        super().on_decode_error(message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        """A message that is not a valid task, or whose content type is not accepted (unsigned in signed mode)."""
        _keep(message, "RefusedMessage", f"{type(exc).__name__}: {exc}")
        super().on_invalid_task(body, message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        """A message without a task name."""
        _keep(message, "RefusedMessage", "not a task message (no task name)")
        super().on_unknown_message(body, message)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        """A task name no facequeue worker registers."""
        _keep(message, "UnknownTask", f"{type(exc).__name__}: {exc}")
        super().on_unknown_task(body, message, exc)
