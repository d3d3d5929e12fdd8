"""Thin Celery shells: one task per operation, each handing its JSON job to the job's path (pipeline.py)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from celery import Task
from celery.exceptions import Reject
from celery.signals import task_revoked
from redis.exceptions import RedisError

from producer.contract import TASK_NAMES, Operation
from worker import broker, metrics
from worker.app import app
from worker.errors import ShuttingDown
from worker.pipeline import dead_letter_refused, process, process_many, refuse
from worker.publish import CeleryResult
from worker.runtime import Runtime, get_runtime

log = logging.getLogger("facequeue.worker")

REDIS_ERROR_PAUSE_CAP_S = 60.0
"""The longest a message whose jobs met a Redis error waits before going back to the queue."""


def after_redis_error(runtime: Runtime, job: Any, operation: Operation, task_id: str, exc: RedisError) -> list[str]:
    """Send a message whose jobs met a Redis error back to the queue, or, past FACEQUEUE_MAX_REQUEUES, keep its
    unpublished jobs as dead letters and let it be acknowledged.

    The jobs could not be read or published: Redis refused (out of memory, permissions) or stayed away past the
    client's retries. Acknowledging would drop the unpublished ones, so the message goes back, after a pause that
    doubles each time: a lasting failure must not become a loop. Answers already paid for are kept in the process
    (unpublished.py) and published when the message comes back, so Rekognition is not paid again.
    """
    deps = runtime.deps
    # Shortened: redis-py quotes the failed command, and a publish carries a whole envelope.
    reason = str(exc)[:200]
    requeues = deps.unpublished.requeued(task_id)
    if requeues > deps.settings.max_requeues:
        why = f"Redis refused to publish the result {requeues} times ({reason})"
        try:
            left = runtime.run(dead_letter_refused(job, operation, task_id, deps, runtime.publisher, why))
        except RedisError as again:
            log.error("task %s: %s; keeping it as a dead letter failed too (%s)", task_id, why, str(again)[:200])
        else:
            deps.unpublished.forget(task_id, left)
            log.error("task %s: %s; %d unpublished job(s) kept as dead letters", task_id, why, len(left))
            return left
    pause_s = min(REDIS_ERROR_PAUSE_CAP_S, deps.settings.redis_error_pause_s * 2 ** min(requeues - 1, 16))
    log.error("task %s: Redis error, message requeued in %g s: %s", task_id, pause_s, reason)
    with contextlib.suppress(ShuttingDown):
        runtime.run(deps.pause(pause_s))
    raise Reject(f"Redis error: {reason}", requeue=True) from None


def unexpected_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, str | None]:
    """The job a task message carries, and why its other arguments make it no job of the contract (None: none).

    A task takes one argument, the job (or a list of jobs). Any other argument is refused with the job it came
    with, as a result and a dead letter: Celery would only log a TypeError, and the job would vanish.
    """
    job = args[0] if args else kwargs.get("job")
    extra = [f"{len(args) - 1} extra positional"] if len(args) > 1 else []
    names = sorted(k for k in kwargs if not (k == "job" and not args))
    if names:
        extra.append(f"keyword {', '.join(names)[:200]}")
    if not extra:
        return job, None
    return (
        job,
        "a task takes one argument, the job (or a list of jobs); this message also carried "
        f"{' and '.join(extra)} argument(s)",
    )


def celery_result(task: Task) -> CeleryResult | None:
    """Celery's result of a single-job message, for the publish script to write, or None where Celery's backend
    must write it itself: a message that asks for no result, or one whose meta carries more than the return value
    (a group, a parent, a chord, or ``result_extended``)."""
    request = task.request
    if not request.id or getattr(request, "ignore_result", False) or task.app.conf.result_extended:
        return None
    if request.group or request.parent_id or request.chord or not hasattr(task.backend, "get_key_for_task"):
        return None
    key = task.backend.get_key_for_task(request.id)
    # Acknowledged late (the worker's setting), the message can be acknowledged by the publish itself.
    entry = broker.unacked_entry(request.id) if task.acks_late else None
    return CeleryResult(key.decode() if isinstance(key, bytes) else key, request.id, unacked=entry)


def _shell(operation: Operation) -> Task:
    def run(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any] | list[Any]:
        runtime = get_runtime()
        task_id = self.request.id or ""
        job, wrong = unexpected_arguments(args, kwargs)
        try:
            with metrics.IN_FLIGHT.track_inprogress():
                deps, publisher = runtime.deps, runtime.publisher
                if wrong is not None:
                    refused = runtime.run(refuse(job, operation, task_id, deps, publisher, wrong))
                    return [e.model_dump(mode="json", exclude_none=True) for e in refused]
                if isinstance(job, list):
                    envelopes = runtime.run(process_many(job, operation, task_id, deps, publisher))
                    # What a bulk submit sends asks Celery to store nothing (producer/messages.py): skip the dump.
                    if getattr(self.request, "ignore_result", False):
                        return []
                    return [e.model_dump(mode="json", exclude_none=True) for e in envelopes]
                celery = celery_result(self)
                envelope = runtime.run(process(job, operation, task_id, deps, publisher, celery))
                if celery is not None and celery.written:
                    # The publish wrote Celery's result with the job's (bench/README.md: two round trips a job):
                    # Celery's backend skips a request that asks for no result when it would store the return value.
                    self.request.ignore_result = True
                    if celery.unacked is not None:  # and acknowledged the message: kombu's ack sends nothing
                        broker.settled(celery.unacked[2])
                return envelope.model_dump(mode="json", exclude_none=True)
        except ShuttingDown:
            # Back to the queue for another worker; jobs it already published are skipped when it comes round.
            raise Reject("worker shutting down", requeue=True) from None
        except RedisError as exc:
            return after_redis_error(runtime, job, operation, task_id, exc)
        finally:
            broker.on_finished(task_id)

    run.__name__ = run.__qualname__ = TASK_NAMES[operation].rpartition(".")[2]
    run.__doc__ = f"Run a {operation.value} job (a JSON object of the facequeue contract), or a list of them."
    return app.task(name=TASK_NAMES[operation], bind=True)(run)


detect_faces = _shell(Operation.DETECT_FACES)
compare_faces = _shell(Operation.COMPARE_FACES)
index_faces = _shell(Operation.INDEX_FACES)
search_faces_by_image = _shell(Operation.SEARCH_FACES_BY_IMAGE)
create_collection = _shell(Operation.CREATE_COLLECTION)
delete_collection = _shell(Operation.DELETE_COLLECTION)
list_faces = _shell(Operation.LIST_FACES)
delete_faces = _shell(Operation.DELETE_FACES)
create_user = _shell(Operation.CREATE_USER)
delete_user = _shell(Operation.DELETE_USER)
associate_faces = _shell(Operation.ASSOCIATE_FACES)
disassociate_faces = _shell(Operation.DISASSOCIATE_FACES)
list_users = _shell(Operation.LIST_USERS)
search_users = _shell(Operation.SEARCH_USERS)
search_users_by_image = _shell(Operation.SEARCH_USERS_BY_IMAGE)
recognize_celebrities = _shell(Operation.RECOGNIZE_CELEBRITIES)


_OPERATION_OF_TASK = {name: operation for operation, name in TASK_NAMES.items()}


@task_revoked.connect  # type: ignore[untyped-decorator]
def _refuse_expired(sender: Any = None, request: Any = None, expired: bool = False, **_: Any) -> None:
    """A message whose Celery ``expires`` passed before a worker took it: Celery drops it with a log line; here its
    jobs are also published as JobExpired (a result and a dead letter each), so no job vanishes."""
    operation = _OPERATION_OF_TASK.get(getattr(sender, "name", ""))
    if not expired or request is None or operation is None:
        return
    runtime = get_runtime()
    job, _wrong = unexpected_arguments(tuple(request.args or ()), dict(request.kwargs or {}))
    why = "the message expired (its Celery `expires` passed) before a worker took it; submit the job anew"
    try:
        runtime.run(refuse(job, operation, request.id or "", runtime.deps, runtime.publisher, why, "JobExpired"))
    except RedisError as exc:
        log.error("task %s expired; publishing that failed: %s", request.id, str(exc)[:200])
