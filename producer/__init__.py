"""facequeue's client side: the wire contract, the FaceQueue client and the `facequeue` command."""

from producer.client import AsyncFaceQueue, BatchHandle, BatchProgress, FaceQueue, JobHandle
from producer.contract import JobError, JobStatus, Operation, ResultEnvelope
from producer.jobs import PreparedJob
from producer.settings import ProducerSettings

__all__ = [
    "AsyncFaceQueue",
    "BatchHandle",
    "BatchProgress",
    "FaceQueue",
    "JobError",
    "JobHandle",
    "JobStatus",
    "Operation",
    "PreparedJob",
    "ProducerSettings",
    "ResultEnvelope",
]
