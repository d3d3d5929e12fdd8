"""The kombu/Celery plumbing, behind this one interface: everything else in the worker imports only these names.

Inside: the take script that moves a message from its queue to ``unacked`` in one server-side step (take.py), kombu's
Redis transport that refuses what it cannot parse as a dead letter and waits on CLIENT TRACKING (transport.py),
Celery's consumer keeping what it refuses (consumer.py), the prefetch weighing of multi-job messages (prefetch.py),
and the ack a publish script makes for a single-job message (settle.py). They rely on private kombu and Celery
names, each listed in tests/unit/test_kombu_internals.py.
"""

from __future__ import annotations

from worker.broker.options import backend_options, transport_options
from worker.broker.prefetch import on_finished, on_received
from worker.broker.settle import Unacked, settled
from worker.broker.settle import entry as unacked_entry

TRANSPORT = "worker.broker.transport:Transport"
"""Celery's ``broker_transport``: kombu's Redis transport, except that an entry it cannot parse is kept as a dead
letter and skipped instead of stopping the worker, and a message is taken without kombu's fetch window."""

SENTINEL_TRANSPORT = "worker.broker.transport:SentinelTransport"
"""The same transport finding the master through Redis Sentinel (FACEQUEUE_REDIS_SENTINELS)."""

CONSUMER = "worker.broker.consumer:Consumer"
"""Celery's ``worker_consumer``: Celery's consumer, except that a message it refuses (bad signature, unknown task...)
is also kept as a dead letter."""

__all__ = [
    "CONSUMER",
    "SENTINEL_TRANSPORT",
    "TRANSPORT",
    "Unacked",
    "backend_options",
    "on_finished",
    "on_received",
    "settled",
    "transport_options",
    "unacked_entry",
]
