"""A call to Rekognition, wrapped middleware-style: retries outside, the shared rate limit inside, the call itself.

Each layer is a function from a call to a call, so what wraps what reads in one line (``rekognition_call``). The
retry layer is the only one for throttling, 5xx, timeouts and connection errors: botocore's own retries are off
(runtime.py), so every attempt is counted in the envelope and seen by the rate limiter. The job's request (its images
fetched, images.py) goes through the same retry layer alone, on its own count: S3 reads are not Rekognition calls and
take no rate-limit slot. A job's path enters this module once (``rekognition``): the request, then the call.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore import xform_name
from redis.exceptions import RedisError

from worker import metrics
from worker.deps import Deps
from worker.errors import JobFailure, PermanentError, ShuttingDown, TransientError
from worker.responses import check_members
from worker.settings import WorkerSettings
from worker.throttle import UNPACED

T = TypeVar("T")
Call = Callable[[], Awaitable[T]]

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
THROTTLING_CODES = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException"})


@dataclass
class CallOutcome:
    """What a job's calls cost: attempts, and time in Rekognition."""

    attempts: int = 0
    rekognition_ms: float = 0.0
    throttled: bool = False
    """Whether the endpoint throttled one of the calls: from then on, waiting for a slot counts against the job's
    deadline (an endpoint that throttles every call must still end the job)."""
    paced: bool = False
    """Whether the last call took a slot of the shared rate (rate_limited): its throttle uses up no attempt."""


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


JOB_CLOCK: contextvars.ContextVar[asyncio.Timeout | None] = contextvars.ContextVar("job_clock", default=None)
"""The running job's FACEQUEUE_JOB_TIMEOUT_S deadline, which waits inside the worker push back (set by the
pipeline around a job's calls)."""


async def wait_uncounted(deps: Deps, seconds: float) -> None:
    """Wait (for a rate-limit slot, or a backoff) without the time counting against the job's timeout: the timeout
    is for the calls, not for queueing inside the worker (issue 25: under load, jobs failed as JobTimeout while
    they waited their turn)."""
    clock = JOB_CLOCK.get()
    when = clock.when() if clock is not None else None
    if clock is not None and when is not None:
        clock.reschedule(when + seconds)
    await deps.pause(seconds)


def backoff_s(attempt: int, settings: WorkerSettings) -> float:
    """Full-jitter exponential backoff (AWS Architecture Blog): uniform(0, min(cap, base × 2^attempt))."""
    return random.uniform(0, min(settings.backoff_cap_s, settings.backoff_base_s * 2**attempt))


def retrying(call: Call[T], deps: Deps, outcome: CallOutcome, label: str, *, counted: bool = True) -> Call[T]:
    """The call, retried on transient failures up to max_attempts with jittered backoff; each attempt counted here,
    or (``counted=False``) by rate_limited inside it, once its slot has come.

    A throttle of a call paced by the shared rate (rate_limited) is not the job's fault and uses up no attempt: the
    rate has just been cut for every worker, so the call goes again at once, after a slot at the new rate. The
    job's deadline (FACEQUEUE_JOB_TIMEOUT_S) still bounds how long its calls take; the backoff between them does
    not count against it (wait_uncounted).
    """

    async def attempt() -> T:
        settings = deps.settings
        throttled = 0
        while True:
            if counted:
                outcome.attempts += 1
            if deps.stopping.is_set():
                raise ShuttingDown
            try:
                return await call()
            except (ShuttingDown, RedisError):
                # Not the call's failure: the worker is stopping, or Redis (the rate limit's, a blob's) is away.
                # The task gives the message back instead of retrying or failing the job.
                raise
            except Exception as exc:
                failure = classify(exc)
                if outcome.paced and failure.code in THROTTLING_CODES:
                    throttled += 1
                    continue
                if not failure.retryable or outcome.attempts - throttled >= settings.max_attempts:
                    raise failure from None
                metrics.RETRIES.labels(label, failure.code).inc()
                await wait_uncounted(deps, backoff_s(outcome.attempts - throttled - 1, settings))

    return attempt


def rate_limited(call: Call[T], deps: Deps, operation: str, outcome: CallOutcome) -> Call[T]:
    """The call after a slot of the operation's shared, adaptive rate (throttle.py); a throttle slows every worker.

    Each attempt is counted here, once its slot has come: a job whose deadline passes while it waits for one made no
    call. An operation the rate does not pace gets its (unpaced) ticket at once.
    """

    async def limited() -> T:
        ticket = None
        if deps.limiter is not None:
            # Queueing for a slot is not the job's time, until the endpoint has throttled it (then the deadline runs).
            pause = deps.pause if outcome.throttled else lambda s: wait_uncounted(deps, s)
            ticket = await deps.limiter.acquire(operation, pause)
        outcome.paced = ticket is not None and ticket is not UNPACED
        outcome.attempts += 1
        try:
            return await call()
        except Exception as exc:
            failure = classify(exc)
            if failure.code in THROTTLING_CODES:
                outcome.throttled = True
                metrics.THROTTLES.labels(operation).inc()
                if deps.limiter is not None and outcome.paced and ticket is not None:
                    await deps.limiter.throttled(operation, ticket)
            raise failure from None

    return limited


def timed(call: Call[T], outcome: CallOutcome, operation: str) -> Call[T]:
    """The call, its time added to the job's rekognition_ms and to the latency histogram, answered or not."""

    async def measured() -> T:
        started = time.perf_counter()
        try:
            return await call()
        finally:
            elapsed = time.perf_counter() - started
            outcome.rekognition_ms += elapsed * 1000
            metrics.CALL_SECONDS.labels(operation).observe(elapsed)

    return measured


def rekognition_call(
    deps: Deps,
    outcome: CallOutcome,
    operation: str,
    params: dict[str, Any],
    layer: Callable[[Call[dict[str, Any]]], Call[dict[str, Any]]] | None = None,
) -> Call[dict[str, Any]]:
    """One Rekognition operation with its parameters, wrapped: retries around the rate limit around the timed call
    (``layer``, if given, goes just inside the retries: reconcile.guard, which runs before each attempt).

    The answer is checked before it is believed (responses.py) and comes without its ResponseMetadata. The client
    method is named from the operation the way boto3 names it (botocore's xform_name: DetectFaces → detect_faces).
    """
    method = getattr(deps.rekognition, xform_name(operation))

    async def call() -> dict[str, Any]:
        answer: dict[str, Any] = await method(**params)
        check_members(operation, answer)
        answer.pop("ResponseMetadata", None)
        return answer

    limited = rate_limited(timed(call, outcome, operation), deps, operation, outcome)
    return retrying(layer(limited) if layer is not None else limited, deps, outcome, operation, counted=False)


async def rekognition(
    deps: Deps,
    outcome: CallOutcome,
    operation: str,
    request: Call[dict[str, Any]],
    before_call: Call[None] | None = None,
    layer: Callable[[Call[dict[str, Any]]], Call[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """A job's Rekognition answer: its ``request`` built (the images fetched; S3 hiccups retried on their own count),
    ``before_call`` awaited (a state-changing job's journal mark), then the call (``rekognition_call``, with its
    ``layer``)."""
    params = await retrying(request, deps, CallOutcome(), "fetch")()
    if before_call is not None:
        await before_call()
    return await rekognition_call(deps, outcome, operation, params, layer)()
