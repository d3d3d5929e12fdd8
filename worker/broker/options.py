"""The transport options the worker sets: kombu's own, and the ones the facequeue transport reads."""

from __future__ import annotations

from typing import Any

from producer.connection import celery_sentinel_options, dead_server_options
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
        # kombu leaves socket_timeout unset (wait forever): a Redis that vanished without closing its connections
        # (a killed container) would hold an ack or a restore there for the kernel's ~15 minutes of retransmits.
        # The same timeouts and health checks as every other client (producer/connection.py).
        **dead_server_options(settings),
        # With Sentinel: the master's name, so kombu asks the sentinels for it (and again after a failover).
        **celery_sentinel_options(settings),
    }


def backend_options(settings: WorkerSettings) -> dict[str, Any]:
    """The Celery settings of the Redis result backend: its transport options and its connections' timeouts."""
    timeouts = dead_server_options(settings)
    return {
        "result_backend_transport_options": {
            "visibility_timeout": settings.visibility_timeout_s,
            **celery_sentinel_options(settings),
        },
        # Celery's defaults are a 120 s reply timeout, no connect timeout and no health check: the timeouts every
        # other client has instead (producer/connection.py).
        "redis_socket_timeout": timeouts["socket_timeout"],
        "redis_socket_connect_timeout": timeouts["socket_connect_timeout"],
        "redis_socket_keepalive": timeouts["socket_keepalive"],
        "redis_backend_health_check_interval": timeouts["health_check_interval"],
    }
