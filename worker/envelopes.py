"""Every envelope the worker writes, and every dead letter: a job's result, a refusal, the evidence of what was refused.

A dead letter is ``{"job": what was received, "envelope": its failed result}`` under ``dead_letter_key``; the publish
script writes one for each failed result, the transport and the consumer for queue entries they refuse unread.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from producer.contract import (
    FaceDetectionVideoJob,
    FaceSearchVideoJob,
    Job,
    JobError,
    JobStatus,
    ResultEnvelope,
    utcnow,
)
from worker import metrics

EVIDENCE_CHARS = 4096
"""How much of a refused payload or queue entry a dead letter keeps when it is larger than that: enough to recognise
it, never megabytes. A job that matches the contract is kept whole (its size is bounded by the contract), so it can
be retried."""


def envelope_for(
    job: Job | FaceDetectionVideoJob | FaceSearchVideoJob,
    started_at: datetime,
    *,
    attempts: int,
    rekognition_ms: float,
    worker: str,
    response: dict[str, Any] | None = None,
    error: JobError | None = None,
    cached: bool = False,
) -> ResultEnvelope:
    """A job's result envelope, finished now, counted in the jobs metric."""
    metrics.JOBS.labels(job.operation.value, "failed" if error else "succeeded").inc()
    return ResultEnvelope(
        job_id=job.job_id,
        batch_id=job.batch_id,
        operation=job.operation.value,
        status=JobStatus.FAILED if error else JobStatus.SUCCEEDED,
        label=job.label,
        response=response,
        error=error,
        attempts=attempts,
        cached=cached,
        submitted_at=job.submitted_at,
        started_at=started_at,
        finished_at=utcnow(),
        queue_wait_ms=max(0.0, (started_at - job.submitted_at).total_seconds() * 1000),
        rekognition_ms=round(rekognition_ms, 3),
        worker=worker or None,
    )


def refusal(
    job_id: str,
    operation: str,
    code: str,
    message: str,
    *,
    retryable: bool = False,
    batch_id: str | None = None,
    worker: str = "",
) -> ResultEnvelope:
    """The failed envelope of something refused before any call: a job that breaks the contract, a queue entry."""
    now = utcnow()
    return ResultEnvelope(
        job_id=job_id,
        batch_id=batch_id,
        operation=operation,
        status=JobStatus.FAILED,
        error=JobError(code=code, message=message, retryable=retryable),
        attempts=0,
        started_at=now,
        finished_at=now,
        worker=worker or None,
    )


def head(text: str, size: int | None = None, *, partial: bool = False) -> dict[str, Any]:
    """What a dead letter keeps of a large or unreadable text: its size (``size``: in bytes, when known), its first
    characters (at most EVIDENCE_CHARS once JSON-encoded), and whether that was all of it (``partial``: ``text``
    is itself only the head of something larger)."""
    kept = text[:EVIDENCE_CHARS]
    if len(json.dumps(kept)) > EVIDENCE_CHARS + 2:
        # Bounded once encoded, too: a character JSON escapes (U+FFFD from bytes that are not UTF-8, é) takes up to
        # six. The longest prefix that fits, found by halving (a dozen encodings of at most 4,096 characters).
        lo, hi = 0, len(kept)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if len(json.dumps(kept[:mid])) <= EVIDENCE_CHARS + 2 else (lo, mid - 1)
        kept = kept[:lo]
    return {
        "bytes": len(text) if size is None else size,
        "head": kept,
        "truncated": partial or len(kept) < len(text),
    }


def evidence(payload: Any) -> Any:
    """What a dead letter keeps of a refused payload: itself when small, else its size and first characters."""
    text = json.dumps(payload, default=str)
    return payload if len(text) <= EVIDENCE_CHARS else head(text)


def dead_letter(envelope: ResultEnvelope | str, job: Any) -> str:
    """A dead letter's JSON: the job as received (or the evidence kept of it) and its failed envelope (or its JSON)."""
    stored = json.loads(envelope if isinstance(envelope, str) else envelope.model_dump_json(exclude_none=True))
    return json.dumps({"job": job, "envelope": stored}, default=str)
