"""The async core of video jobs: start a Rekognition Video job, check on it later, publish every page as one result.

A video takes minutes, so no worker slot waits for it. The start task calls Start* (the job id, or the first job id of
a retried job, is the ClientRequestToken, so a redelivered or retried start gets the same Rekognition job) and
answers a ``Continuation``; the
task shell sends it back to the queue with a countdown. Each poll is one Get* call: IN_PROGRESS answers the next
continuation with a longer countdown (backoff, capped), SUCCEEDED pages through the results and publishes one
envelope through the same path as every image job (result key, stream, batch, dead letter on failure). Start* and
Get* are separate operations for the shared rate limiter, as they are separate quotas at AWS.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError

from producer.contract import (
    VIDEO_GET_OPERATIONS,
    FaceDetectionVideoJob,
    FaceSearchVideoJob,
    JobError,
    ResultEnvelope,
    utcnow,
)
from worker.calls import CallOutcome, classify, rekognition_call
from worker.deps import Deps
from worker.envelopes import envelope_for
from worker.errors import PermanentError, ShuttingDown
from worker.images import check_allowed
from worker.publish import Publisher

VideoJob = FaceDetectionVideoJob | FaceSearchVideoJob

FIRST_POLL_S = 2.0
"""The first check comes this long after the start: a short clip may be done by then."""

POLL_GROWTH = 1.5
"""Each further check waits this much longer than the one before (jittered ±20 %)..."""

POLL_CAP_S = 30.0
"""...up to this; a 10-minute video at Rekognition's pace is checked a few dozen times."""

MAX_WAIT_S = 12 * 3600.0
"""A video job still IN_PROGRESS after this long fails with VideoJobTimeout (Rekognition's own jobs end well
before: stored videos are at most 6 hours long)."""

PAGE_SIZE = 1000
"""Get* results per call: Rekognition's maximum."""


class Continuation(BaseModel):
    """A video job waiting for Rekognition: what the next poll needs. Worker-internal, JSON on the wire."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job: dict[str, Any]
    """The job as received (dead letters keep it for a retry)."""
    video_job_id: Annotated[str, Field(min_length=1, max_length=64)]
    polls: Annotated[int, Field(ge=0)] = 0
    calls: Annotated[int, Field(ge=0)] = 1
    started_at: datetime
    rekognition_ms: float = 0.0
    failing_since: datetime | None = None
    """When the checks began to fail transiently (None: the last one was answered); see FACEQUEUE_VIDEO_OUTAGE_S."""

    def delay_s(self) -> float:
        """How long to wait before the next poll."""
        base = min(POLL_CAP_S, FIRST_POLL_S * POLL_GROWTH**self.polls)
        return base * random.uniform(0.8, 1.2)


async def start(job: VideoJob, payload: Any, deps: Deps, publisher: Publisher) -> ResultEnvelope | Continuation:
    """Start the Rekognition job (idempotently), or publish why it could not start; never raises for a bad job."""
    already = await publisher.published(job.job_id, {})
    if already is not None:
        return already
    started_at = utcnow()
    outcome = CallOutcome()
    try:
        check_allowed([job.video], deps.settings.s3_allowed)
        answer = await rekognition_call(deps, outcome, job.operation.value, job.request())()
    except (ShuttingDown, RedisError):
        raise
    except Exception as exc:  # a bad video or collection is a result, never a dead worker
        failure = classify(exc)
        error = JobError(code=failure.code, message=failure.message, retryable=failure.retryable)
        envelope = envelope_for(
            job,
            started_at,
            attempts=outcome.attempts,
            rekognition_ms=outcome.rekognition_ms,
            worker=deps.worker,
            error=error,
        )
        return (await publisher.publish(envelope, payload))[0]
    return Continuation(
        job=payload,
        video_job_id=answer["JobId"],
        calls=outcome.attempts,
        started_at=started_at,
        rekognition_ms=outcome.rekognition_ms,
    )


async def _all_pages(
    deps: Deps, outcome: CallOutcome, operation: str, member: str, first: dict[str, Any], video_job_id: str
) -> dict[str, Any]:
    merged = dict(first)
    items = list(first.get(member, []))
    token = first.get("NextToken")
    while token:
        params = {"JobId": video_job_id, "MaxResults": PAGE_SIZE, "NextToken": token}
        page = await rekognition_call(deps, outcome, operation, params)()
        items.extend(page.get(member, []))
        token = page.get("NextToken")
    merged.pop("NextToken", None)
    merged[member] = items
    return merged


async def poll(
    job: VideoJob, continuation: Continuation, deps: Deps, publisher: Publisher
) -> ResultEnvelope | Continuation:
    """Check on the Rekognition job once: the next continuation while it runs, else publish its result."""
    already = await publisher.published(job.job_id, {})
    if already is not None:
        return already  # a duplicate chain (a poll redelivered after it sent its successor) stops here
    operation, member = VIDEO_GET_OPERATIONS[job.operation]
    outcome = CallOutcome()
    try:
        first = await rekognition_call(
            deps, outcome, operation, {"JobId": continuation.video_job_id, "MaxResults": PAGE_SIZE}
        )()
        status = first.get("JobStatus")
        waited_s = (utcnow() - continuation.started_at).total_seconds()
        if status == "IN_PROGRESS":
            if waited_s < MAX_WAIT_S:
                return continuation.model_copy(
                    update={
                        "polls": continuation.polls + 1,
                        "calls": continuation.calls + outcome.attempts,
                        "rekognition_ms": continuation.rekognition_ms + outcome.rekognition_ms,
                        "failing_since": None,
                    }
                )
            raise PermanentError(
                "VideoJobTimeout", f"Rekognition job {continuation.video_job_id} still ran after {waited_s:.0f} s"
            )
        if status != "SUCCEEDED":
            raise PermanentError(
                "VideoJobFailed",
                f"Rekognition job {continuation.video_job_id} {status}: {first.get('StatusMessage') or 'no reason'}",
            )
        response = await _all_pages(deps, outcome, operation, member, first, continuation.video_job_id)
        error = None
    except (ShuttingDown, RedisError):
        raise
    except Exception as exc:
        failure = classify(exc)
        now = utcnow()
        since = continuation.failing_since or now
        if failure.retryable and (now - since).total_seconds() < deps.settings.video_outage_s:
            # The Rekognition job runs on without us: check again after the next countdown, until the outage is
            # FACEQUEUE_VIDEO_OUTAGE_S old. An outage is waited out on the poll's countdown, as IN_PROGRESS is, instead
            # of the poll spending its attempts inside it (issue 25: a 7.5 s restart failed a job that SUCCEEDED).
            return continuation.model_copy(
                update={
                    "polls": continuation.polls + 1,
                    "calls": continuation.calls + outcome.attempts,
                    "rekognition_ms": continuation.rekognition_ms + outcome.rekognition_ms,
                    "failing_since": since,
                }
            )
        response, error = None, JobError(code=failure.code, message=failure.message, retryable=failure.retryable)
    envelope = envelope_for(
        job,
        continuation.started_at,
        attempts=continuation.calls + outcome.attempts,
        rekognition_ms=continuation.rekognition_ms + outcome.rekognition_ms,
        worker=deps.worker,
        response=response,
        error=error,
    )
    return (await publisher.publish(envelope, continuation.job))[0]
