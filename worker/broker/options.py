"""The transport options the worker sets: kombu's own, and the ones the facequeue transport reads."""

from __future__ import annotations

from typing import Any

from producer.connection import celery_sentinel_options
from producer.contract import MAX_MESSAGE_BYTES
from worker.settings import WorkerSettings

MAX_MESSAGE_BYTES_OPTION = "facequeue_max_message_bytes"
DEAD_LETTER_TTL_OPTION = "facequeue_dead_letter_ttl_s"
FETCH_POLL_OPTION = "facequeue_fetch_poll_s"
DEFAULT_FETCH_POLL_S = 0.1
"""How often a waiting worker takes again when Redis will not tell it about new messages (no CLIENT TRACKING)."""
IDLE_RECHECK_OPTION = "facequeue_idle_recheck_s"
DEFAULT_IDLE_RECHECK_S = 1.0
"""How long a waiting worker that Redis will wake trusts that the queues are still empty: a lost wake-up costs this."""


def transport_options(settings: WorkerSettings) -> dict[str, Any]:
    """Celery's ``broker_transport_options`` for a worker with these settings."""
    return {
        MAX_MESSAGE_BYTES_OPTION: MAX_MESSAGE_BYTES,
        DEAD_LETTER_TTL_OPTION: settings.result_ttl_s,
        "visibility_timeout": settings.visibility_timeout_s,
        # kombu sweeps for expired unacked messages every interval × throttle seconds (10 × 10 by default): make
        # the sweep itself frequent so recovery from a killed worker takes the visibility timeout, not 100 s more.
        "unacked_restore_interval": settings.restore_interval_s,
        "unacked_restore_throttle": 1,
        IDLE_RECHECK_OPTION: settings.idle_recheck_s,
        # With Sentinel: the master's name, so kombu asks the sentinels for it (and again after a failover).
        **celery_sentinel_options(settings),
    }
