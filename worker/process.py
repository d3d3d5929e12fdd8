"""From a raw task argument to a published envelope: validate, skip if already published, run, publish once."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from redis.exceptions import RedisError

from producer.contract import (
    MAX_JOBS_PER_MESSAGE,
    Job,
    JobError,
    JobStatus,
    Operation,
    ResultEnvelope,
    job_blobs,
    parse_job,
    result_key,
    utcnow,
)
from worker.analysis import Deps, prefetch_keys, run_job
from worker.cache import CacheEntry
from worker.errors import ShuttingDown
from worker.journal import journaled
from worker.publish import Publisher

_ID = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")
EVIDENCE_CHARS = 4096
"""How much of a refused job a dead letter keeps when the job is larger than that: enough to recognise it. A job
that matches the contract is kept whole (its size is bounded by the contract), so it can be retried."""


def _evidence(payload: Any) -> Any:
    """What a dead letter keeps of a refused payload: itself when small, else its size and first characters."""
    text = json.dumps(payload, default=str)
    if len(text) <= EVIDENCE_CHARS:
        return payload
    return {"bytes": len(text), "head": text[:EVIDENCE_CHARS], "truncated": True}


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:8]:
        where = ".".join(str(p) for p in err["loc"]) or "job"
        problems.append(f"{where}: {err['msg']}")
    more = f" (+{exc.error_count() - 8} more)" if exc.error_count() > 8 else ""
    return "; ".join(problems) + more


def _job_id(payload: Any, task_id: str) -> str:
    fields = payload if isinstance(payload, dict) else {}
    job_id = fields.get("job_id")
    return job_id if isinstance(job_id, str) and _ID.match(job_id) else task_id


def _refusal(
    payload: Any, task_id: str, operation: Operation, message: str, worker: str, code: str = "InvalidJob"
) -> ResultEnvelope:
    fields = payload if isinstance(payload, dict) else {}
    batch_id = fields.get("batch_id")
    now = utcnow()
    return ResultEnvelope(
        job_id=_job_id(payload, task_id),
        batch_id=batch_id if isinstance(batch_id, str) and _ID.match(batch_id) else None,
        operation=operation.value,
        status=JobStatus.FAILED,
        error=JobError(code=code, message=message, retryable=code not in ("InvalidJob", "JobExpired")),
        attempts=0,
        started_at=now,
        finished_at=now,
        worker=worker or None,
    )


def _named(payload: Any, task_id: str) -> Any:
    """The task argument, with the task id as its job id when it has none."""
    if isinstance(payload, dict) and "job_id" not in payload and _ID.match(task_id):
        # A consumer that only knows the task name and the contract (`celery call`, send_task) may leave the job
        # id out: the Celery task id then names the job, so AsyncResult and the result key agree.
        return {**payload, "job_id": task_id}
    return payload


def _admit(payload: Any, operation: Operation, task_id: str, deps: Deps) -> Job | ResultEnvelope:
    """The job a task argument carries, or the refusal to publish in its place when it breaks the contract."""
    worker = deps.worker
    try:
        job = parse_job(payload)
    except ValidationError as exc:
        return _refusal(payload, task_id, operation, f"the job does not match the contract: {_describe(exc)}", worker)
    if job.operation is not operation:
        return _refusal(
            payload, task_id, operation, f"task {operation.value} received a {job.operation.value} job", worker
        )
    if (stale := _stale(payload, job, deps)) is not None:
        return _refusal(payload, task_id, operation, stale, worker, code="JobExpired")
    return job


def _stale(payload: Any, job: Job, deps: Deps) -> str | None:
    """Why a job is too old to run, if it is: a job runs at most once per result lifetime.

    Its result key is what stops a second run, and it lives FACEQUEUE_RESULT_TTL_S after publication, so a job
    submitted longer ago than that may be a replay of a captured message (signed mode: the signature stays valid
    forever). Such a job is refused without a call. submitted_at is inside the signed body; a signed job without
    it (which parsing would date "now") is refused too.
    """
    ttl_s = deps.settings.result_ttl_s
    age_s = (utcnow() - job.submitted_at).total_seconds()
    if age_s > ttl_s:
        return (
            f"the job was submitted {age_s:.0f} s ago; workers run jobs at most FACEQUEUE_RESULT_TTL_S ({ttl_s} s) "
            "old, so that a job whose result has expired is never run again (submit it anew)"
        )
    signed = deps.settings.signing() is not None
    if signed and not (isinstance(payload, dict) and "submitted_at" in payload):
        return "in signed mode a job must carry submitted_at, which bounds how long its message can be replayed"
    return None


async def process(payload: Any, operation: Operation, task_id: str, deps: Deps, publisher: Publisher) -> ResultEnvelope:
    """Handle one task message for ``operation`` and return the envelope that stands for it."""
    payload = _named(payload, task_id)
    admitted = _admit(payload, operation, task_id, deps)
    if isinstance(admitted, ResultEnvelope):
        return await _publish(deps, publisher, admitted, payload, None)
    # One round trip for what the job reads from Redis before it runs: result key, blobs, cache entry.
    keys = prefetch_keys(admitted, deps)
    values = dict(zip(keys, await deps.redis.mget(keys), strict=True))
    return await _run(admitted, payload, values, deps, publisher)


async def _run(
    job: Job,
    payload: Any,
    values: Mapping[str, bytes | None],
    deps: Deps,
    publisher: Publisher,
) -> ResultEnvelope:
    """Run an admitted job whose prefetch_keys were read into ``values``, and publish it once."""
    already = await publisher.published(job.job_id, values)
    if already is not None:
        # Redelivered after its result was published (a crash between publish and ack): never pay twice.
        return already
    kept = deps.unpublished.take(job.job_id)
    if kept is not None:
        # Paid for on an earlier delivery whose publish Redis refused: publish that answer, never pay twice.
        return await _publish(deps, publisher, kept.envelope, payload, job, kept.cache)
    envelope, cache = await run_job(job, deps, values)
    return await _publish(deps, publisher, envelope, payload, job, cache)


async def _publish(
    deps: Deps,
    publisher: Publisher,
    envelope: ResultEnvelope,
    payload: Any,
    job: Job | None,
    cache: CacheEntry | None = None,
) -> ResultEnvelope:
    """Publish once (with the job's fresh cache entry, if any); return the envelope that stands."""
    blobs = job_blobs(job) if job is not None else ()
    kept = payload if job is not None else _evidence(payload)  # a refused payload may be megabytes of anything
    try:
        standing, _ = await publisher.publish(envelope, kept, blobs, cache, job is not None and journaled(job))
    except RedisError:
        if job is not None:
            deps.unpublished.keep(envelope, cache)
        raise
    return standing


async def dead_letter_refused(
    payload: Any, operation: Operation, task_id: str, deps: Deps, publisher: Publisher, why: str
) -> list[str]:
    """Keep a message's unpublished jobs as dead letters, with any answer already paid for; return their job ids.

    For a message Redis refused to publish too many times (tasks.py): the dead letters are a smaller write than a
    publish, to other keys, and `facequeue dead list` shows them; the message can then be acknowledged.
    """
    payloads = payload if isinstance(payload, list) else [payload]
    ids = [f"{task_id}-{i}" for i in range(len(payloads))] if isinstance(payload, list) else [task_id]
    job_ids = [_job_id(_named(p, i), i) for p, i in zip(payloads, ids, strict=True)]
    published = await deps.redis.mget([result_key(job_id) for job_id in job_ids])
    left = []
    for p, i, job_id, done in zip(payloads, ids, job_ids, published, strict=True):
        if done is not None:
            continue
        message = f"{why}; kept as a dead letter: `facequeue dead retry {job_id}` once Redis accepts the writes"
        envelope = _refusal(_named(p, i), i, operation, message, deps.worker, code="PublishRefused")
        kept = deps.unpublished.peek(job_id)
        if kept is not None:  # the answer already paid for travels with the dead letter
            envelope = envelope.model_copy(
                update={"response": kept.envelope.response, "attempts": kept.envelope.attempts}
            )
        await publisher.dead_letter(envelope, p)
        left.append(job_id)
    return left


async def process_many(
    payloads: list[Any],
    operation: Operation,
    task_id: str,
    deps: Deps,
    publisher: Publisher,
) -> list[ResultEnvelope]:
    """Handle a task message carrying several jobs: run them side by side, each validated and published on its own.

    The message is done when every job is; if the worker starts stopping, it goes back to the queue whole, and the
    jobs already published are skipped when it comes round again.
    """
    if len(payloads) > MAX_JOBS_PER_MESSAGE:
        # Refused whole, as one failed result under the task id and one bounded dead letter: a message of 3,000
        # jobs must not become 3,000 results and 3,000 stored copies of itself.
        message = f"a task message carries at most {MAX_JOBS_PER_MESSAGE} jobs; this one carried {len(payloads)}"
        refusal = _refusal(None, task_id, operation, message, deps.worker)
        return [await _publish(deps, publisher, refusal, payloads, None)]
    ids = [f"{task_id}-{i}" for i in range(len(payloads))]
    payloads = [_named(p, i) for p, i in zip(payloads, ids, strict=True)]
    admitted = [_admit(p, operation, i, deps) for p, i in zip(payloads, ids, strict=True)]
    # One MGET for the whole message (each job's result key, blobs and cache entry), not one per job.
    keys = {key: None for job in admitted if not isinstance(job, ResultEnvelope) for key in prefetch_keys(job, deps)}
    values = dict(zip(keys, await deps.redis.mget(list(keys)), strict=True)) if keys else {}
    # A job id twice in one message is one job: it runs once, and each copy answers with its one result.
    first: dict[str, int] = {}
    for n, job in enumerate(admitted):
        if not isinstance(job, ResultEnvelope):
            first.setdefault(job.job_id, n)
    runs = {
        n: _publish(deps, publisher, job, p, None)
        if isinstance(job, ResultEnvelope)
        else _run(job, p, values, deps, publisher)
        for n, (job, p) in enumerate(zip(admitted, payloads, strict=True))
        if isinstance(job, ResultEnvelope) or first[job.job_id] == n
    }
    done = dict(zip(runs, await asyncio.gather(*runs.values(), return_exceptions=True), strict=True))
    outcomes = [done[n] if n in done else done[first[job.job_id]] for n, job in enumerate(admitted)]
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if any(isinstance(e, ShuttingDown) for e in errors):
        raise ShuttingDown
    if errors:
        raise errors[0]
    return [o for o in outcomes if not isinstance(o, BaseException)]


async def refuse(
    payload: Any,
    operation: Operation,
    task_id: str,
    deps: Deps,
    publisher: Publisher,
    why: str,
    code: str = "InvalidJob",
) -> list[ResultEnvelope]:
    """Publish every job a message carries (one, or a list) as refused with ``why`` and ``code``, never run."""
    payloads = payload if isinstance(payload, list) else [payload]
    ids = [f"{task_id}-{i}" for i in range(len(payloads))] if isinstance(payload, list) else [task_id]
    refused = []
    for p, i in zip(payloads[:MAX_JOBS_PER_MESSAGE], ids, strict=False):
        named = _named(p, i)
        refused.append(
            await _publish(deps, publisher, _refusal(named, i, operation, why, deps.worker, code), named, None)
        )
    return refused
