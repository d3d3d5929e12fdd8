"""facequeue's client library: the wire contract, the FaceQueue client, job builders and settings.

Names load on first use, so `from producer.contract import ...` (what a worker or a consumer needs) does not pull
in the client's Redis and Celery machinery. The `facequeue` command lives apart in producer/cli/ (the cli extra):
it imports this library, never the other way round.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from producer.aclient import AsyncFaceQueue
    from producer.client import BatchHandle, BatchProgress, FaceQueue, JobHandle
    from producer.connection import NotReplicatedError
    from producer.contract import JobError, JobStatus, Operation, ResultEnvelope
    from producer.jobs import PreparedJob
    from producer.settings import ProducerSettings

_WHERE = {
    "AsyncFaceQueue": "producer.aclient",
    "BatchHandle": "producer.client",
    "BatchProgress": "producer.client",
    "FaceQueue": "producer.client",
    "JobHandle": "producer.client",
    "NotReplicatedError": "producer.connection",
    "JobError": "producer.contract",
    "JobStatus": "producer.contract",
    "Operation": "producer.contract",
    "ResultEnvelope": "producer.contract",
    "PreparedJob": "producer.jobs",
    "ProducerSettings": "producer.settings",
}

__all__ = [
    "AsyncFaceQueue",
    "BatchHandle",
    "BatchProgress",
    "FaceQueue",
    "JobError",
    "JobHandle",
    "JobStatus",
    "NotReplicatedError",
    "Operation",
    "PreparedJob",
    "ProducerSettings",
    "ResultEnvelope",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'producer' has no attribute {name!r}")
