"""The Celery app: `celery -A worker.app worker`. JSON only, late acks, redelivery on worker loss."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery, signals
from kombu.entity import Queue

from producer.connection import celery_url
from producer.contract import TASK_NAMES, Operation, queue_for
from worker import broker, metrics
from worker.runtime import begin_shutdown, close_runtime, get_runtime
from worker.settings import load_settings

settings = load_settings()
QUEUES = (settings.queue, *(queue_for(settings.queue, op) for op in Operation))

app = Celery(
    "facequeue",
    # The URL, or one sentinel:// URL per sentinel when FACEQUEUE_REDIS_SENTINELS is set (producer/connection.py).
    broker=celery_url(settings),
    backend=celery_url(settings),
    include=["worker.tasks", "worker.video_tasks"],
)
app.conf.update(
    # JSON only, both ways: a pickle message is refused unread (kombu raises ContentDisallowed).
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    task_default_queue=settings.queue,
    # One queue per operation, plus the bare queue for senders that name only it: a backlog of DetectFaces never
    # holds up an IndexFaces job. kombu polls the queues round robin.
    task_queues=[Queue(name) for name in QUEUES],  # type: ignore[no-untyped-call]
    task_routes={TASK_NAMES[op]: {"queue": queue_for(settings.queue, op)} for op in Operation},
    # At-least-once: a job is acknowledged after it ran, and redelivered if its worker dies first.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_acks_on_failure_or_timeout=True,
    # The thread pool feeds one event loop (runtime.py); concurrency is the number of jobs in flight (a message of
    # several jobs counts as that many: worker/broker/prefetch.py).
    worker_pool="threads",
    worker_concurrency=settings.concurrency,
    # With late acks every prefetched message is unacked; one job per slot keeps a dying worker's share small.
    worker_prefetch_multiplier=1,
    # kombu's Redis transport and Celery's consumer, except that what they cannot parse or refuse is kept as a dead
    # letter (worker/broker/).
    broker_transport=broker.SENTINEL_TRANSPORT if settings.redis_sentinels else broker.TRANSPORT,
    worker_consumer=broker.CONSUMER,
    broker_transport_options=broker.transport_options(settings),
    **broker.backend_options(settings),
    result_expires=settings.result_ttl_s,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_send_sent_event=False,
)

if (signing := settings.signing()) is not None:
    # Signed messages only: anyone who can write to Redis can enqueue, but only key holders can make a worker act.
    app.conf.update(signing)
    app.setup_security(allowed_serializers=["json"])


@signals.worker_process_init.connect  # type: ignore[untyped-decorator]
@signals.worker_init.connect  # type: ignore[untyped-decorator]
def _open_runtime(sender: Any = None, **_: Any) -> None:
    # Fail at start, not on the first job, when Redis or the AWS configuration is unusable. Size the HTTP pool for
    # the concurrency the worker really runs with (`-c` on the command line wins over FACEQUEUE_CONCURRENCY).
    concurrency = getattr(sender, "concurrency", None)
    metrics.serve(settings.metrics_port, settings, QUEUES)
    try:
        if isinstance(concurrency, int) and concurrency != settings.concurrency:
            get_runtime(settings.model_copy(update={"concurrency": concurrency}))
        else:
            get_runtime(settings)
    except Exception as exc:
        # A worker that cannot reach Rekognition must not consume jobs: it would fail every one of them.
        logging.getLogger("facequeue.worker").critical("cannot start: %s: %s", type(exc).__name__, exc)
        os._exit(78)  # EX_CONFIG


@signals.task_received.connect  # type: ignore[untyped-decorator]
def _weigh_multi_job_messages(sender: Any = None, request: Any = None, **_: Any) -> None:
    # In the consumer's thread, before it reads the next message: a message of n jobs reserves n prefetch slots.
    broker.on_received(getattr(sender, "qos", None), request.id, request.args)


@signals.worker_shutting_down.connect  # type: ignore[untyped-decorator]
def _stop_waiting(**_: Any) -> None:
    # SIGTERM (docker stop): Celery stops taking jobs and waits for the running ones. Jobs mid-call finish (bounded
    # by the read timeout); jobs waiting for a rate-limit slot or a backoff give their message back at once.
    begin_shutdown()


@signals.worker_process_shutdown.connect  # type: ignore[untyped-decorator]
@signals.worker_shutdown.connect  # type: ignore[untyped-decorator]
def _close_runtime(**_: Any) -> None:
    close_runtime()
