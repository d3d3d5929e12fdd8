"""Celery task messages for the Redis broker, built by Celery's own protocol code and pushed in pipelines.

Celery's `send_task` makes one Redis round trip per message (about 1,600 jobs/s here). A batch builds each message
with Celery's `app.amqp.as_task_v2` (protocol 2, what `send_task` sends) and wraps it in kombu's Redis transport
envelope (JSON, base64 body), so a batch of 10,000 jobs costs 10,000 / chunk round trips. The worker cannot tell
these messages from `send_task`'s: the integration tests run both through real workers.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from typing import Any

from celery import Celery

from producer.contract import TASK_NAMES, Job

_ORIGIN = f"{os.getpid()}@{socket.gethostname()}"


def protocol_app() -> Celery:
    """Return a Celery app used only to build messages (no broker connection is opened)."""
    app = Celery("facequeue-producer", set_as_current=False)
    app.conf.task_serializer = "json"
    return app


def task_message(app: Celery, job: Job, queue: str) -> str:
    """Return the JSON string kombu's Redis transport stores for one job's task message on ``queue``."""
    task_id = job.job_id
    args = [job.model_dump(mode="json", exclude_none=True)]
    # argsrepr shows in logs and Flower: name the job, never its contents.
    message: Any = app.amqp.as_task_v2(
        task_id,
        TASK_NAMES[job.operation],
        args=args,
        kwargs={},
        argsrepr=f"[{job.operation.value} {task_id}]",
        kwargsrepr="{}",
        origin=_ORIGIN,
    )
    body = base64.b64encode(json.dumps(message.body).encode()).decode("ascii")
    properties = dict(
        message.properties,
        body_encoding="base64",
        delivery_tag=task_id,
        delivery_mode=2,
        priority=0,
        delivery_info={"exchange": "", "routing_key": queue},
    )
    return json.dumps(
        {
            "body": body,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": message.headers,
            "properties": properties,
        }
    )
