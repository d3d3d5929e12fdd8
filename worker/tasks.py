"""Thin Celery shells: one task per operation, each handing its JSON job to the async core."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from celery import Task
from celery.exceptions import Reject
from redis.exceptions import RedisError

from producer.contract import TASK_NAMES, Operation
from worker import metrics, prefetch
from worker.app import app
from worker.errors import ShuttingDown
from worker.process import process, process_many
from worker.runtime import get_runtime

log = logging.getLogger("facequeue.worker")

REDIS_ERROR_PAUSE_S = 5.0
"""How long a message whose jobs met a Redis error waits before going back to the queue."""


def _shell(operation: Operation) -> Task:
    def run(self: Task, job: Any = None) -> dict[str, Any] | list[dict[str, Any]]:
        runtime = get_runtime()
        task_id = self.request.id or ""
        try:
            with metrics.IN_FLIGHT.track_inprogress():
                # kombu marks a message restored after a worker died (or its visibility timeout passed) redelivered.
                redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
                deps, publisher = runtime.deps, runtime.publisher
                if isinstance(job, list):
                    envelopes = runtime.run(process_many(job, operation, task_id, deps, publisher, redelivered))
                    # What a bulk submit sends asks Celery to store nothing (producer/messages.py): skip the dump.
                    if getattr(self.request, "ignore_result", False):
                        return []
                    return [e.model_dump(mode="json", exclude_none=True) for e in envelopes]
                envelope = runtime.run(process(job, operation, task_id, deps, publisher, redelivered))
                return envelope.model_dump(mode="json", exclude_none=True)
        except ShuttingDown:
            # Back to the queue for another worker; jobs it already published are skipped when it comes round.
            raise Reject("worker shutting down", requeue=True) from None
        except RedisError as exc:
            # The jobs could not be read or published: Redis refused (out of memory, permissions) or stayed away
            # past the client's retries. Acknowledging would drop the unpublished ones, so the message goes back,
            # after a pause: a lasting failure must not become a loop paying Rekognition every few milliseconds.
            # Shortened: redis-py quotes the failed command, and a publish carries a whole envelope.
            reason = str(exc)[:200]
            log.error("task %s: Redis error, message requeued in %g s: %s", task_id, REDIS_ERROR_PAUSE_S, reason)
            with contextlib.suppress(ShuttingDown):
                runtime.run(runtime.deps.pause(REDIS_ERROR_PAUSE_S))
            raise Reject(f"Redis error: {reason}", requeue=True) from None
        finally:
            prefetch.on_finished(task_id)

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
