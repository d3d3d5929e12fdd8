"""The async core: a validated job in, a result envelope out. No Celery here."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError

from producer.contract import (
    BlobImage,
    CompareFacesJob,
    FaceDetectionVideoJob,
    FaceSearchVideoJob,
    Job,
    JobError,
    JobStatus,
    ResultEnvelope,
    S3Image,
    cache_key,
    job_images,
    journal_key,
    result_key,
    utcnow,
)
from worker import journal, metrics
from worker.cache import CacheEntry, ResponseCache, cacheable, fingerprint
from worker.errors import JobFailure, PermanentError, ShuttingDown, TransientError
from worker.images import JobReads, blob_identity, identity, rekognition_image
from worker.journal import journaled
from worker.ratelimit import RateLimiter
from worker.responses import check_members
from worker.settings import WorkerSettings
from worker.unpublished import Unpublished

log = logging.getLogger("facequeue.worker")

# Codes AWS documents as worth retrying. Anything else Rekognition answers with a 4xx is the job's own fault.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "InternalServerError",
        "ServiceUnavailableException",
        "LimitExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)

_METHODS = {
    "DetectFaces": "detect_faces",
    "CompareFaces": "compare_faces",
    "IndexFaces": "index_faces",
    "SearchFacesByImage": "search_faces_by_image",
    "CreateCollection": "create_collection",
    "DeleteCollection": "delete_collection",
    "ListFaces": "list_faces",
    "DeleteFaces": "delete_faces",
    "CreateUser": "create_user",
    "DeleteUser": "delete_user",
    "AssociateFaces": "associate_faces",
    "DisassociateFaces": "disassociate_faces",
    "ListUsers": "list_users",
    "SearchUsers": "search_users",
    "SearchUsersByImage": "search_users_by_image",
}


@dataclass
class Deps:
    """What the core needs from its process: long-lived clients and settings."""

    rekognition: Any
    s3: Any
    redis: Any
    settings: WorkerSettings
    limiter: RateLimiter | None = None
    cache: ResponseCache | None = None
    worker: str = ""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the worker shuts down: waiting jobs give their message back instead of holding the shutdown."""
    unpublished: Unpublished = field(default_factory=Unpublished)
    """Results Redis refused to publish, kept for when their message comes back (never paid twice)."""

    async def pause(self, seconds: float) -> None:
        """Sleep, unless the worker starts stopping: then raise ShuttingDown at once."""
        if self.stopping.is_set():
            raise ShuttingDown
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise ShuttingDown


@dataclass
class CallOutcome:
    """What a job's calls cost: attempts, time in Rekognition, and the cache entry they may fill."""

    attempts: int = 0
    rekognition_ms: float = 0.0
    cache_entry: CacheEntry | None = None


def classify(exc: BaseException) -> JobFailure:
    """Map an exception from botocore/aiohttp to a transient or permanent failure with a stable code."""
    if isinstance(exc, JobFailure):
        return exc
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        code = str(response["Error"].get("Code") or "UnknownError")
        message = str(response["Error"].get("Message") or code)
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in TRANSIENT_CODES or status >= 500:
            return TransientError(code, message)
        return PermanentError(code, message)
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError", "NoRegionError"):
        return PermanentError(
            "NoCredentials" if "Credentials" in name else "NoRegion",
            f"{exc}: configure the worker through the standard AWS chain (AWS_PROFILE, AWS_REGION, ...)",
        )
    if isinstance(exc, asyncio.TimeoutError | TimeoutError) or "Timeout" in name:
        return TransientError("Timeout", f"Rekognition did not answer in time ({name})")
    if isinstance(exc, OSError | ConnectionError) or "Connection" in name or "Endpoint" in name:
        return TransientError("EndpointConnectionError", f"could not reach Rekognition: {exc}")
    return PermanentError("InternalWorkerError", f"{name}: {exc}")


def backoff_s(attempt: int, settings: WorkerSettings) -> float:
    """Full-jitter exponential backoff (AWS Architecture Blog): uniform(0, min(cap, base × 2^attempt))."""
    return random.uniform(0, min(settings.backoff_cap_s, settings.backoff_base_s * 2**attempt))


THROTTLING_CODES = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException"})


JOB_CLOCK: contextvars.ContextVar[asyncio.Timeout | None] = contextvars.ContextVar("job_clock", default=None)
"""The running job's FACEQUEUE_JOB_TIMEOUT_S, which waits inside the worker push back (set in run_job)."""


async def wait_uncounted(deps: Deps, seconds: float) -> None:
    """Wait (for a rate-limit slot, or a backoff) without the time counting against the job's timeout: the timeout
    is for the calls, not for queueing inside the worker (issue 25: under load, jobs failed as JobTimeout while
    they waited their turn)."""
    clock = JOB_CLOCK.get()
    when = clock.when() if clock is not None else None
    if clock is not None and when is not None:
        clock.reschedule(when + seconds)
    await deps.pause(seconds)


async def with_retries(
    call: Callable[[], Awaitable[Any]], deps: Deps, outcome: CallOutcome, operation: str | None = None
) -> Any:
    """Run one call, retrying transient failures up to max_attempts with jittered backoff.

    This is the only retry layer for throttling, 5xx, timeouts and connection errors: botocore's own retries are
    off (runtime.py), so every attempt is counted in the envelope and seen by the rate limiter. With ``operation``
    the call is a Rekognition call: it waits for a slot of the shared rate limit first, and reports throttles.
    """
    settings = deps.settings
    while True:
        outcome.attempts += 1
        if deps.stopping.is_set():
            raise ShuttingDown
        if operation and deps.limiter:
            wait_s = await deps.limiter.reserve(operation)
            if wait_s:
                await wait_uncounted(deps, wait_s)
        started = time.perf_counter()
        try:
            return await call()
        except Exception as exc:
            failure = classify(exc)
            if operation and failure.code in THROTTLING_CODES:
                metrics.THROTTLES.labels(operation).inc()
                if deps.limiter:
                    await deps.limiter.throttled(operation)
            if not failure.retryable or outcome.attempts >= settings.max_attempts:
                raise failure from None
            metrics.RETRIES.labels(operation or "fetch", failure.code).inc()
            await wait_uncounted(deps, backoff_s(outcome.attempts - 1, settings))
        finally:
            elapsed = time.perf_counter() - started
            outcome.rekognition_ms += elapsed * 1000
            if operation:
                metrics.CALL_SECONDS.labels(operation).observe(elapsed)


async def _request(job: Job, deps: Deps, reads: JobReads) -> dict[str, Any]:
    """Build the Rekognition request for a job, fetching and normalising its images."""
    params = job.request()
    s = deps.settings
    fetch = dict(redis=deps.redis, s3=deps.s3, reads=reads, max_pixels=s.max_image_pixels, max_bytes=s.max_image_bytes)
    if isinstance(job, CompareFacesJob):
        source, target = await asyncio.gather(
            rekognition_image(job.source, **fetch), rekognition_image(job.target, **fetch)
        )
        params.update(SourceImage=source, TargetImage=target)
    elif hasattr(job, "image"):
        params["Image"] = await rekognition_image(job.image, **fetch)
    return params


def prefetch_keys(job: Job, deps: Deps) -> list[str]:
    """The Redis keys a job reads that are known before it runs, for one MGET: its result key, its image blobs, its
    journal entry (state-changing jobs), and its cache entry when every image is a blob (an S3 image's cache key
    needs the object's ETag first)."""
    images = job_images(job)
    blobs = [image for image in images if isinstance(image, BlobImage)]
    keys = [result_key(job.job_id), *(blob.key for blob in blobs)]
    if journaled(job):
        keys.append(journal_key(job.job_id))
    if deps.cache is not None and deps.cache.ttl_s and cacheable(job) and len(blobs) == len(images):
        keys.append(cache_key(fingerprint(job, [blob_identity(blob) for blob in blobs])))
    return keys


async def _cached(job: Job, deps: Deps, reads: JobReads) -> tuple[str | None, dict[str, Any] | None]:
    """The job's cache fingerprint and stored response, when the job may use the cache."""
    if deps.cache is None or not deps.cache.ttl_s or not cacheable(job):
        return None, None
    images = job_images(job)
    if all(isinstance(image, BlobImage) for image in images):
        # Known from the job alone: no read to retry, no task to gather.
        ids = [blob_identity(image) for image in images]  # type: ignore[arg-type]
    else:
        ids = await with_retries(
            lambda: asyncio.gather(*(identity(image, reads) for image in images)), deps, CallOutcome()
        )
    fp = fingerprint(job, ids)
    return fp, await deps.cache.get(fp, reads)


def _check_s3_allowed(job: Job, allowed: list[str]) -> None:
    """Refuse, before any S3 or Rekognition call, an S3 image outside FACEQUEUE_S3_ALLOWED."""
    if not allowed:
        return
    for image in job_images(job):
        if isinstance(image, S3Image) and not any(
            image.bucket == entry.partition("/")[0] and image.key.startswith(entry.partition("/")[2])
            for entry in allowed
        ):
            raise PermanentError(
                "AccessDeniedException",
                f"{image.describe()} is outside the buckets this worker may read (FACEQUEUE_S3_ALLOWED)",
            )


async def _call(job: Job, deps: Deps, outcome: CallOutcome, reads: JobReads) -> tuple[dict[str, Any], bool]:
    """Rekognition's response for a job (less ResponseMetadata), and whether it came from the cache."""
    _check_s3_allowed(job, deps.settings.s3_allowed)
    fp, stored = await _cached(job, deps, reads)
    if stored is not None:
        return stored, True
    recording = journaled(job)
    if recording:
        earlier = await journal.earlier_answer(job, deps.redis, reads)
        if earlier is not None:
            return earlier, False
    params = await _request_with_transient_retries(job, deps, reads)
    if recording:
        await journal.begin(job, deps.redis, deps.settings.result_ttl_s)
    method = getattr(deps.rekognition, _METHODS[job.operation.value])

    async def call() -> dict[str, Any]:
        answer: dict[str, Any] = await method(**params)
        check_members(job.operation.value, answer)
        return answer

    response: dict[str, Any] = await with_retries(call, deps, outcome, job.operation.value)
    response.pop("ResponseMetadata", None)
    if recording:
        await journal.record(job, deps.redis, response, deps.settings.result_ttl_s)
    if fp is not None and deps.cache is not None:
        outcome.cache_entry = deps.cache.entry(fp, response)
    return response, False


async def run_job(
    job: Job, deps: Deps, redis_values: Mapping[str, bytes | None] | None = None
) -> tuple[ResultEnvelope, CacheEntry | None]:
    """Run a job against Rekognition (or the cache); never raises for a bad job.

    Returns its envelope and the cache entry to store with it (publish.py writes both in one round trip).
    ``redis_values`` holds the job's prefetch_keys, read in one MGET by the caller.
    """
    # One ranged read per S3 image serves both the cache key (its ETag) and the format check (its header).
    reads = JobReads(deps.s3, deps.settings.max_image_bytes, redis_values)
    started_at = utcnow()
    outcome = CallOutcome()
    response: dict[str, Any] | None = None
    error: JobError | None = None
    cached = False
    try:
        async with asyncio.timeout(deps.settings.job_timeout_s) as clock:
            token = JOB_CLOCK.set(clock)
            try:
                response, cached = await _call(job, deps, outcome, reads)
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
    return envelope, (outcome.cache_entry if error is None else None)


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


async def _request_with_transient_retries(job: Job, deps: Deps, reads: JobReads) -> dict[str, Any]:
    """Fetch a job's images; S3 hiccups (5xx, connection) are retried like Rekognition's, on their own count."""
    return await with_retries(lambda: _request(job, deps, reads), deps, CallOutcome())  # type: ignore[no-any-return]
