"""A job's one straight path through the worker: admit → load → images → call → record → publish.

This module tells an image job's whole story, from the task's argument to its published envelope; the modules it
calls hold the details (contract, images, calls, journal, reconcile, cache, publish) and none of them imports this
one, so the story is read here alone. What a step finds travels on to the next on the ``Admitted`` job: nothing is
worked out twice, and a job enters each module it needs once, in the order below
(tests/integration/test_pipeline_walk.py follows a DetectFaces job to check it).

- **admit**: the task argument becomes a job of the contract, or a refusal to publish in its place; everything known
  from the job alone is worked out here, once: its images, its Rekognition parameters, the Redis keys it reads and
  its cache plan (cache.py: whether the cache serves it and, when every image is a blob, its entry's key) and, for
  an IndexFaces job that sets no ExternalImageId, the job mark it is indexed under (reconcile.py).
- **load**: one MGET (one per message, whatever its number of jobs) reads what every early exit needs: the result key
  (published already: never pay twice), the image blobs, the journal entry (a state-changing job an earlier run
  answered, or left "pending") and the cache entry. A result this process kept when Redis refused its publish is in
  memory. Before any S3 read, an image outside FACEQUEUE_S3_ALLOWED fails the job. An S3 image's cache key needs
  the object's ETag, from the ranged read its format check needs anyway, so that job's cache entry is read after
  it. A job with an S3 image thus enters images.py during the load too (the allow-list; the ETag, with cache.py for
  the key it names): the walk's one detour.
- **images → call**: one step in calls.py: the request built (images.py fetches and normalises the images, S3
  hiccups retried on their own count), then Rekognition, with retries and the shared rate limit wrapped around the
  call, middleware-style; a job under its mark has a guard inside the retries that adopts the faces a lost call
  indexed instead of indexing again (reconcile.py).
- **record**: a state-changing job's answer in the journal (its "pending" mark goes just before the call); a fresh
  response goes to the cache with the publish, which writes it under the key the cache plan named.
- **publish**: once, in one Lua step (publish.py); a publish Redis refuses is kept in memory for the next delivery.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import ValidationError
from redis.exceptions import RedisError

from producer.contract import (
    MAX_JOBS_PER_MESSAGE,
    BlobImage,
    Job,
    JobError,
    Operation,
    ResultEnvelope,
    S3Image,
    image_parameters,
    journal_key,
    parse_job,
    result_key,
    unique_blobs,
    utcnow,
)
from worker import images, journal, metrics, reconcile
from worker.cache import CacheEntry, CachePlan, entry_for
from worker.calls import JOB_CLOCK, CallOutcome, classify, rekognition, retrying
from worker.deps import Deps
from worker.envelopes import envelope_for, evidence, refusal
from worker.errors import ShuttingDown
from worker.publish import CeleryResult, Publisher

_ID = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")


# --- the path ---


async def process(
    payload: Any,
    operation: Operation,
    task_id: str,
    deps: Deps,
    publisher: Publisher,
    celery: CeleryResult | None = None,
) -> ResultEnvelope:
    """Handle one task message for ``operation`` and return the envelope that stands for it (with ``celery``, the
    publish also writes Celery's result for the task)."""
    payload = named(payload, task_id)
    admitted = admit(payload, operation, task_id, deps)
    if isinstance(admitted, ResultEnvelope):
        return await publish_refusal(deps, publisher, admitted, payload, celery)
    return await _carry(admitted, await _read(deps, [admitted]), deps, publisher, celery)


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
        refused = _refused(None, task_id, operation, message, deps.worker, "InvalidJob")
        return [await publish_refusal(deps, publisher, refused, payloads)]
    ids = [f"{task_id}-{i}" for i in range(len(payloads))]
    payloads = [named(p, i) for p, i in zip(payloads, ids, strict=True)]
    admitted = [admit(p, operation, i, deps) for p, i in zip(payloads, ids, strict=True)]
    # One MGET for the whole message (each job's result key, blobs, journal and cache entry), not one per job.
    values = await _read(deps, admitted)
    # A job id twice in one message is one job: it runs (and is paid for) once, and each copy answers with its result.
    first: dict[str, int] = {}
    for n, job in enumerate(admitted):
        if isinstance(job, Admitted):
            first.setdefault(job.job.job_id, n)
    runs = {
        n: publish_refusal(deps, publisher, job, p)
        if isinstance(job, ResultEnvelope)
        else _carry(job, values, deps, publisher)
        for n, (job, p) in enumerate(zip(admitted, payloads, strict=True))
        if isinstance(job, ResultEnvelope) or first[job.job.job_id] == n
    }
    done = dict(zip(runs, await asyncio.gather(*runs.values(), return_exceptions=True), strict=True))
    outcomes = [done[n] if n in done else done[first[job.job.job_id]] for n, job in enumerate(admitted)]  # type: ignore[union-attr]
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if any(isinstance(e, ShuttingDown) for e in errors):
        raise ShuttingDown
    if errors:
        raise errors[0]
    return [o for o in outcomes if not isinstance(o, BaseException)]


async def _carry(
    admitted: Admitted,
    values: Mapping[str, bytes | None],
    deps: Deps,
    publisher: Publisher,
    celery: CeleryResult | None = None,
) -> ResultEnvelope:
    """Carry an admitted job, whose keys were read into ``values``, top to bottom; publish it once."""
    existing = values.get(admitted.keys[0])  # the result key, read first
    if existing is not None:
        # Redelivered after its result was published (a crash between publish and ack): never pay twice.
        return ResultEnvelope.model_validate_json(existing)
    kept = deps.unpublished.take(admitted.job.job_id)
    if kept is not None:
        # Paid for on an earlier delivery whose publish Redis refused: publish that answer, never pay twice.
        return await _publish(deps, publisher, kept.envelope, admitted.payload, admitted, kept.cache, celery)
    answer = await _answer(admitted, values, deps)
    return await _publish(deps, publisher, answer.envelope, admitted.payload, admitted, answer.cache, celery)


# --- admit ---


@dataclass(frozen=True)
class Admitted:
    """A job that matches the contract, with what is known of it before any read."""

    job: Job
    payload: Any
    """The job as received: a dead letter keeps it whole, for a retry."""
    images: list[S3Image | BlobImage]
    """The images the job reads, in request order."""
    parameters: list[str]
    """The Rekognition parameter each of them goes in (Image; SourceImage, TargetImage)."""
    blobs: list[BlobImage]
    s3: list[S3Image]
    """The S3 images among them: checked against FACEQUEUE_S3_ALLOWED before any read."""
    params: dict[str, Any]
    """Rekognition's parameters other than the images."""
    keys: list[str]
    """What the load stage reads in one MGET: result key, blobs, journal entry, and the cache entry when known."""
    journaled: bool
    """Whether the job's answer is recorded before its result is published (journal.py)."""
    cache: CachePlan | None
    """How the response cache serves and stores this job's response (None: it does not)."""
    mark: str | None
    """The job mark an IndexFaces job that sets no ExternalImageId is indexed under, in ``params`` (reconcile.py)."""


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


def named(payload: Any, task_id: str) -> Any:
    """The task argument, with the task id as its job id when it has none."""
    if isinstance(payload, dict) and "job_id" not in payload and _ID.match(task_id):
        # A consumer that only knows the task name and the contract (`celery call`, send_task) may leave the job
        # id out: the Celery task id then names the job, so AsyncResult and the result key agree.
        return {**payload, "job_id": task_id}
    return payload


def _refused(payload: Any, task_id: str, operation: Operation, message: str, worker: str, code: str) -> ResultEnvelope:
    fields = payload if isinstance(payload, dict) else {}
    batch_id = fields.get("batch_id")
    return refusal(
        _job_id(payload, task_id),
        operation.value,
        code,
        message,
        retryable=code not in ("InvalidJob", "JobExpired"),
        batch_id=batch_id if isinstance(batch_id, str) and _ID.match(batch_id) else None,
        worker=worker,
    )


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


def admit(payload: Any, operation: Operation, task_id: str, deps: Deps) -> Admitted | ResultEnvelope:
    """The job a (named) task argument carries, or the refusal to publish in its place when it breaks the contract."""
    try:
        job = parse_job(payload)
    except ValidationError as exc:
        message = f"the job does not match the contract: {_describe(exc)}"
        return _refused(payload, task_id, operation, message, deps.worker, "InvalidJob")
    if job.operation is not operation:
        message = f"task {operation.value} received a {job.operation.value} job"
        return _refused(payload, task_id, operation, message, deps.worker, "InvalidJob")
    if (stale := _stale(payload, job, deps)) is not None:
        return _refused(payload, task_id, operation, stale, deps.worker, "JobExpired")
    by_parameter = image_parameters(job)
    sources = list(by_parameter.values())
    blobs = unique_blobs(sources)
    s3 = [image for image in sources if isinstance(image, S3Image)]
    # An IndexFaces job without ExternalImageId is indexed under its job mark, which finds a lost call's faces.
    params, mark = reconcile.marked(job, job.request())
    recorded = journal.journaled(job)
    plan = deps.cache.plan(job, params, sources) if deps.cache is not None else None
    keys = [result_key(job.job_id), *(blob.key for blob in blobs)]
    if recorded:
        keys.append(journal_key(job.job_id))
    if plan is not None and plan.entry is not None:
        keys.append(plan.entry.key)
    return Admitted(job, payload, sources, list(by_parameter), blobs, s3, params, keys, recorded, plan, mark)


# --- load → images → call → record, failures as results ---


@dataclass(frozen=True)
class Answer:
    """A job's envelope and the cache entry its publish stores with it."""

    envelope: ResultEnvelope
    cache: CacheEntry | None = None


async def _read(deps: Deps, admitted: Sequence[Admitted | ResultEnvelope]) -> dict[str, bytes | None]:
    """The load stage's one round trip: every key the message's jobs read before they run, in one MGET (shared with
    the messages that read in the same loop turn)."""
    keys = list({key: None for job in admitted if isinstance(job, Admitted) for key in job.keys})
    mget = deps.reads.mget if deps.reads is not None else deps.redis.mget
    return dict(zip(keys, await mget(keys), strict=True)) if keys else {}


async def _respond(
    admitted: Admitted, values: Mapping[str, bytes | None], deps: Deps, outcome: CallOutcome
) -> tuple[dict[str, Any], bool, CacheEntry | None]:
    """Rekognition's answer to a job (less ResponseMetadata), whether it came from the cache, and the cache entry its
    publish stores a fresh answer under: load's early exits → images → call → record."""
    job, plan, s = admitted.job, admitted.cache, deps.settings
    entry = plan.entry if plan is not None else None
    reads = None
    if admitted.s3:
        # Before any S3 read, and before any answer is served for one: an image outside FACEQUEUE_S3_ALLOWED fails
        # the job with AccessDeniedException.
        images.check_allowed(admitted.s3, s.s3_allowed)
        if plan is not None and deps.cache is not None:
            # An S3 image is named by its ETag: the ranged read its format check needs anyway (kept in ``reads`` for
            # it), retried like any read.
            reads = images.JobReads(deps.s3, s.max_image_bytes, values)
            etags = await retrying(partial(images.etags, admitted.images, reads), deps, CallOutcome(), "fetch")()
            entry = entry_for(plan, admitted.images, etags)
            stored = await deps.cache.get(entry)
            if stored is not None:
                return stored, True, None
    elif entry is not None and (raw := values.get(entry.key)):
        return json.loads(raw), True, None
    pending = False
    if admitted.journaled:
        earlier, pending = await journal.earlier_answer(job, deps.redis, values)
        if earlier is not None:
            return earlier, False, None
    request = partial(
        images.request,
        admitted.images,
        admitted.parameters,
        admitted.params,
        redis=deps.redis,
        s3=deps.s3,
        values=values,
        max_pixels=s.max_image_pixels,
        max_bytes=s.max_image_bytes,
        reads=reads,
    )
    begin = partial(journal.begin, job, deps.redis, s.result_ttl_s) if admitted.journaled else None
    # A job indexed under its mark looks for a lost call's faces before it calls again (reconcile.py).
    layer = reconcile.guard(deps, outcome, admitted.mark, admitted.params, pending) if admitted.mark else None
    response = await rekognition(deps, outcome, job.operation.value, request, begin, layer)
    if admitted.journaled:
        await journal.record(job, deps.redis, response, s.result_ttl_s)
    return response, False, entry


async def _answer(admitted: Admitted, values: Mapping[str, bytes | None], deps: Deps) -> Answer:
    """A job's envelope, answered or failed, within FACEQUEUE_JOB_TIMEOUT_S; never raises for a bad job."""
    job = admitted.job
    started_at = utcnow()
    outcome = CallOutcome()
    response: dict[str, Any] | None = None
    entry: CacheEntry | None = None
    error: JobError | None = None
    cached = False
    try:
        async with asyncio.timeout(deps.settings.job_timeout_s) as clock:
            # The deadline is for the job's work: a wait for a rate-limit slot or a backoff pushes it back (calls.py).
            token = JOB_CLOCK.set(clock)
            try:
                response, cached, entry = await _respond(admitted, values, deps, outcome)
            finally:
                JOB_CLOCK.reset(token)
    except (ShuttingDown, RedisError):
        # Redis refused or went away: the task puts the message back rather than publish a failure nobody caused.
        raise
    except TimeoutError:
        error = JobError(
            code="JobTimeout",
            message=f"the job took longer than FACEQUEUE_JOB_TIMEOUT_S={deps.settings.job_timeout_s:g} s "
            f"after {outcome.attempts} Rekognition call(s)",
            retryable=True,
        )
    except Exception as exc:  # the worker never dies on a bad job: an unforeseen error is still a result
        failure = classify(exc)
        error = JobError(code=failure.code, message=failure.message, retryable=failure.retryable)
    if cached:
        metrics.CACHE_HITS.labels(job.operation.value).inc()
    envelope = envelope_for(
        job,
        started_at,
        attempts=outcome.attempts,
        rekognition_ms=outcome.rekognition_ms,
        worker=deps.worker,
        response=response,
        error=error,
        cached=cached,
    )
    return Answer(envelope, entry if error is None else None)


# --- publish ---


async def _publish(
    deps: Deps,
    publisher: Publisher,
    envelope: ResultEnvelope,
    payload: Any,
    admitted: Admitted | None,
    cache: CacheEntry | None = None,
    celery: CeleryResult | None = None,
) -> ResultEnvelope:
    """Publish once (with the job's fresh cache entry, if any); return the envelope that stands."""
    blobs = admitted.blobs if admitted is not None else ()
    kept = payload if admitted is not None else evidence(payload)  # a refused payload may be megabytes of anything
    try:
        journaled = admitted is not None and admitted.journaled
        standing, _ = await publisher.publish(envelope, kept, blobs, cache, journaled, celery)
    except RedisError:
        if admitted is not None:
            deps.unpublished.keep(envelope, cache)
        raise
    return standing


async def publish_refusal(
    deps: Deps, publisher: Publisher, refused: ResultEnvelope, payload: Any, celery: CeleryResult | None = None
) -> ResultEnvelope:
    """Publish the refusal of a task argument that is no job of the contract, keeping bounded evidence of it."""
    return await _publish(deps, publisher, refused, payload, None, celery=celery)


async def dead_letter_refused(
    payload: Any, operation: Operation, task_id: str, deps: Deps, publisher: Publisher, why: str
) -> list[str]:
    """Keep a message's unpublished jobs as dead letters, with any answer already paid for; return their job ids.

    For a message Redis refused to publish too many times (tasks.py): the dead letters are a smaller write than a
    publish, to other keys, and `facequeue dead list` shows them; the message can then be acknowledged.
    """
    payloads = payload if isinstance(payload, list) else [payload]
    ids = [f"{task_id}-{i}" for i in range(len(payloads))] if isinstance(payload, list) else [task_id]
    job_ids = [_job_id(named(p, i), i) for p, i in zip(payloads, ids, strict=True)]
    published = await deps.redis.mget([result_key(job_id) for job_id in job_ids])
    left = []
    for p, i, job_id, done in zip(payloads, ids, job_ids, published, strict=True):
        if done is not None:
            continue
        message = f"{why}; kept as a dead letter: `facequeue dead retry {job_id}` once Redis accepts the writes"
        envelope = _refused(named(p, i), i, operation, message, deps.worker, "PublishRefused")
        kept = deps.unpublished.peek(job_id)
        if kept is not None:  # the answer already paid for travels with the dead letter
            envelope = envelope.model_copy(
                update={"response": kept.envelope.response, "attempts": kept.envelope.attempts}
            )
        await publisher.dead_letter(envelope, p)
        left.append(job_id)
    return left


async def refuse(
    payload: Any,
    operation: Operation,
    task_id: str,
    deps: Deps,
    publisher: Publisher,
    why: str,
    code: str = "InvalidJob",
) -> list[ResultEnvelope]:
    """Publish every job a message carries (one, or a list) as refused with ``why`` and ``code``, never run: a
    message the task cannot take as it is (extra arguments, expired on the queue) still ends as results."""
    payloads = payload if isinstance(payload, list) else [payload]
    ids = [f"{task_id}-{i}" for i in range(len(payloads))] if isinstance(payload, list) else [task_id]
    refused = []
    for p, i in zip(payloads[:MAX_JOBS_PER_MESSAGE], ids, strict=False):
        job = named(p, i)
        refused.append(await publish_refusal(deps, publisher, _refused(job, i, operation, why, deps.worker, code), job))
    return refused
