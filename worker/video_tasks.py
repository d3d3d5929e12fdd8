"""Thin Celery shells for video jobs: start one, and poll it with a countdown until it ends (worker/video.py)."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.exceptions import Reject
from pydantic import ValidationError
from redis.exceptions import RedisError

from producer.contract import (
    MAX_JOBS_PER_MESSAGE,
    TASK_NAMES,
    VIDEO_POLL_TASK,
    FaceDetectionVideoJob,
    FaceSearchVideoJob,
    Operation,
    ResultEnvelope,
    parse_job,
    queue_for,
)
from worker import metrics, video
from worker.app import app
from worker.errors import ShuttingDown
from worker.pipeline import Admitted, admit, named, publish_refusal, refuse
from worker.runtime import get_runtime
from worker.tasks import after_redis_error, unexpected_arguments

log = logging.getLogger("facequeue.worker")


def _send(continuation: video.Continuation, operation: Operation) -> None:
    """Put the wait back on the queue: the slot is free until the countdown ends."""
    settings = get_runtime().settings
    # A worker holds a countdown message unacknowledged: one held past the visibility timeout would be redelivered
    # to a second worker (harmless, a duplicate poll stops at the result key, but a wasted Get* call).
    countdown_s = min(continuation.delay_s(), settings.visibility_timeout_s / 2)
    app.send_task(
        VIDEO_POLL_TASK,
        args=[continuation.model_dump(mode="json")],
        countdown=countdown_s,
        queue=queue_for(settings.queue, operation),
    )


def _answer(outcome: ResultEnvelope | video.Continuation, operation: Operation) -> dict[str, Any]:
    if isinstance(outcome, video.Continuation):
        _send(outcome, operation)
        return {"waiting_for": outcome.video_job_id, "polls": outcome.polls}
    return outcome.model_dump(mode="json", exclude_none=True)


def _start_one(job: Any, operation: Operation, task_id: str) -> dict[str, Any]:
    """Start one video job, or publish why it cannot start."""
    runtime = get_runtime()
    payload = named(job, task_id)
    admitted = admit(payload, operation, task_id, runtime.deps)
    if isinstance(admitted, ResultEnvelope):
        refused = runtime.run(publish_refusal(runtime.deps, runtime.publisher, admitted, payload))
        return refused.model_dump(mode="json", exclude_none=True)
    assert isinstance(admitted, Admitted)
    assert isinstance(admitted.job, FaceDetectionVideoJob | FaceSearchVideoJob)
    outcome = runtime.run(video.start(admitted.job, payload, runtime.deps, runtime.publisher))
    return _answer(outcome, operation)


def _start_shell(operation: Operation) -> Task:
    def run(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any] | list[Any]:
        runtime = get_runtime()
        task_id = self.request.id or ""
        job, wrong = unexpected_arguments(args, kwargs)
        try:
            with metrics.IN_FLIGHT.track_inprogress():
                if wrong is not None:
                    refused = runtime.run(refuse(job, operation, task_id, runtime.deps, runtime.publisher, wrong))
                    return [e.model_dump(mode="json", exclude_none=True) for e in refused]
                if isinstance(job, list) and 0 < len(job) <= MAX_JOBS_PER_MESSAGE:
                    # A bulk submit packs consecutive jobs of one operation: each video starts (and waits) alone.
                    return [_start_one(one, operation, f"{task_id}-{i}") for i, one in enumerate(job)]
                return _start_one(job, operation, task_id)
        except ShuttingDown:
            raise Reject("worker shutting down", requeue=True) from None
        except RedisError as exc:
            return after_redis_error(runtime, job, operation, task_id, exc)

    run.__name__ = run.__qualname__ = TASK_NAMES[operation].rpartition(".")[2]
    run.__doc__ = f"Start a {operation.value} video job (a JSON object of the facequeue contract)."
    return app.task(name=TASK_NAMES[operation], bind=True)(run)


video_face_detection = _start_shell(Operation.START_FACE_DETECTION)
video_face_search = _start_shell(Operation.START_FACE_SEARCH)


@app.task(name=VIDEO_POLL_TASK, bind=True)  # type: ignore[untyped-decorator]
def video_poll(self: Task, continuation: Any = None) -> dict[str, Any] | list[Any]:
    """Check a video job once; send the next check, or publish its result."""
    runtime = get_runtime()
    task_id = self.request.id or ""
    try:
        waiting = video.Continuation.model_validate(continuation)
        job = parse_job(waiting.job)
    except ValidationError as exc:
        # Only workers send these: a broken one is a bug or a forgery, kept as a dead letter, never retried.
        log.error("task %s: a video poll that does not parse was refused: %s", task_id, exc)
        why = f"a video poll that does not parse: {str(exc)[:300]}"
        job_of = continuation.get("job") if isinstance(continuation, dict) else None
        operation = Operation.START_FACE_DETECTION
        if isinstance(job_of, dict) and job_of.get("operation") == Operation.START_FACE_SEARCH.value:
            operation = Operation.START_FACE_SEARCH
        carried = job_of if isinstance(job_of, dict) else continuation
        try:
            refused = runtime.run(refuse(carried, operation, task_id, runtime.deps, runtime.publisher, why))
        except RedisError as again:
            return after_redis_error(runtime, carried, operation, task_id, again)
        return [e.model_dump(mode="json", exclude_none=True) for e in refused]
    assert isinstance(job, FaceDetectionVideoJob | FaceSearchVideoJob)
    try:
        with metrics.IN_FLIGHT.track_inprogress():
            outcome = runtime.run(video.poll(job, waiting, runtime.deps, runtime.publisher))
            return _answer(outcome, job.operation)
    except ShuttingDown:
        raise Reject("worker shutting down", requeue=True) from None
    except RedisError as exc:
        return after_redis_error(runtime, waiting.job, job.operation, task_id, exc)
