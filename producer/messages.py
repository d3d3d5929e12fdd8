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
from collections.abc import Sequence
from typing import Any

from celery import Celery

from producer.contract import TASK_NAMES, Job, new_id

_ORIGIN = f"{os.getpid()}@{socket.gethostname()}"


def protocol_app() -> Celery:
    """Return a Celery app used only to build messages (no broker connection is opened)."""
    app = Celery("facequeue-producer", set_as_current=False)
    app.conf.task_serializer = "json"
    return app


class Signer:
    """Signs task bodies with Celery's `auth` serializer, without touching kombu's process-wide registry.

    `app.setup_security()` would also disable every other serializer and change the default for the whole process:
    fine in a worker, not in a web app that merely submits jobs.
    """

    def __init__(self, conf: dict[str, Any]) -> None:
        from celery.security.certificate import Certificate
        from celery.security.key import PrivateKey
        from celery.security.serialization import SecureSerializer

        with open(conf["security_key"]) as key, open(conf["security_certificate"]) as cert:
            self._serializer = SecureSerializer(
                PrivateKey(key.read()), Certificate(cert.read()), None, conf["security_digest"], serializer="json"
            )

    def sign(self, body: Any) -> bytes:
        """The signed body, as a worker with the certificate in its store verifies it."""
        signed: str | bytes = self._serializer.serialize(body)
        return signed.encode() if isinstance(signed, str) else signed


def task_message(app: Celery, jobs: Sequence[Job], queue: str, signer: Signer | None = None) -> str:
    """Return the JSON string kombu's Redis transport stores for a task message on ``queue``.

    One job travels as itself under its own id as the task id (so `AsyncResult(job_id)` finds it); several jobs of
    one operation travel as a list under a fresh task id, which nobody is told, so Celery stores no result for them
    (each job's envelope is under its own result key and on the results stream).
    """
    first = jobs[0]
    arg: Any
    if len(jobs) == 1:
        task_id, arg, described = first.job_id, first.model_dump(mode="json", exclude_none=True), first.job_id
    else:
        task_id = new_id()
        arg = [job.model_dump(mode="json", exclude_none=True) for job in jobs]
        described = f"{len(jobs)} jobs {first.job_id}…{jobs[-1].job_id}"
    # argsrepr shows in logs and Flower: name the jobs, never their contents.
    message: Any = app.amqp.as_task_v2(
        task_id,
        TASK_NAMES[first.operation],
        args=[arg],
        kwargs={},
        argsrepr=f"[{first.operation.value} {described}]",
        kwargsrepr="{}",
        origin=_ORIGIN,
        # A packed message's list of envelopes in Celery's backend would be a second copy, unreachable (its task id
        # is never returned) and kept for a day: storing it cost the worker's pool ~8% of its CPU (bench/README.md).
        ignore_result=len(jobs) > 1,
    )
    if signer is None:
        content_type, content_encoding, raw = "application/json", "utf-8", json.dumps(message.body).encode()
    else:  # what Celery's auth serializer registers: a signed envelope around the JSON body
        content_type, content_encoding, raw = "application/data", "utf-8", signer.sign(message.body)
    body = base64.b64encode(raw).decode("ascii")
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
            "content-encoding": content_encoding,
            "content-type": content_type,
            "headers": message.headers,
            "properties": properties,
        }
    )
