"""The answer to a state-changing job, recorded under its id before its result is published.

IndexFaces has no idempotency token, and CreateCollection or DeleteCollection fail when run twice: a run that dies
between Rekognition's answer and the publish must not be repeated blindly. So the worker records "pending" before
the call and the answer right after it; a later run of the job (a redelivery, a message requeued after a Redis error)
publishes the recorded answer instead of calling again. The publish script deletes the record.

What remains: a run that dies after Rekognition acted and before the answer is recorded (one Redis round trip, or
longer while Redis is unreachable) leaves "pending", counted in `facequeue_journal_unrecorded`. The next run of an
IndexFaces job indexed under its job mark (one that set no ExternalImageId) then looks for the faces the earlier run
indexed and adopts them (reconcile.py), as it does after an answer lost in transit. Any other journaled job calls
again: an IndexFaces under the caller's own ExternalImageId may leave an extra copy of the face (nothing any other
job indexed is ever touched), and a Create/DeleteCollection answers as Rekognition does to the second call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from producer.contract import Job, Operation, journal_key
from worker import metrics

log = logging.getLogger("facequeue.worker")

JOURNALED = frozenset(
    {Operation.INDEX_FACES, Operation.CREATE_COLLECTION, Operation.DELETE_COLLECTION, Operation.DELETE_FACES}
)
"""Operations that change a collection: running one twice is not the same as running it once."""
PENDING = b"pending"


def journaled(job: Job) -> bool:
    """True when the job's answer is recorded before its result is published."""
    return job.operation in JOURNALED


async def earlier_answer(
    job: Job, redis: Any, values: Mapping[str, bytes | None]
) -> tuple[dict[str, Any] | None, bool]:
    """The answer an earlier run of the job recorded, if any (from ``values``, read with its other keys, when there),
    and whether an earlier run left "pending" (it may have called Rekognition and stopped before recording the
    answer: reconcile.py looks for what it did)."""
    key = journal_key(job.job_id)
    raw = values[key] if key in values else await redis.get(key)
    if raw is None:
        return None, False
    if raw == PENDING:
        metrics.UNRECORDED.labels(job.operation.value).inc()
        log.warning(
            "job %s: an earlier run may have called %s and stopped before recording the answer",
            job.job_id,
            job.operation.value,
        )
        return None, True
    metrics.REPLAYED.labels(job.operation.value).inc()
    log.info("job %s: publishing the answer an earlier run recorded, without calling again", job.job_id)
    answer: dict[str, Any] = json.loads(raw)
    return answer, False


async def begin(job: Job, redis: Any, ttl_s: int) -> None:
    """Record that the job is about to call Rekognition."""
    await redis.set(journal_key(job.job_id), PENDING, ex=ttl_s)


async def record(job: Job, redis: Any, answer: dict[str, Any], ttl_s: int) -> None:
    """Record Rekognition's answer, before the result is published."""
    await redis.set(journal_key(job.job_id), json.dumps(answer, separators=(",", ":")), ex=ttl_s)
