"""The BASELINE a user would write from the AWS blog post: a Celery task calling boto3's detect_faces synchronously,
run under Celery's default prefork pool. Benchmarks only; not facequeue's worker."""

from __future__ import annotations

import base64
import os
from typing import Any

import boto3
from celery import Celery

app = Celery("naive", broker=os.environ["FACEQUEUE_REDIS_URL"], backend=os.environ["FACEQUEUE_REDIS_URL"])
app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")

# As in the blog post: one client at import time (per prefork child after fork, created lazily below).
_client: Any = None


@app.task(name="naive.detect_faces")
def detect_faces(image_b64: str) -> dict[str, Any]:
    """Call DetectFaces with the image bytes and return the response."""
    global _client
    if _client is None:
        _client = boto3.client("rekognition")
    response: dict[str, Any] = _client.detect_faces(Image={"Bytes": base64.b64decode(image_b64)})
    return response


@app.task(name="naive.noop")
def noop(_: Any = None) -> None:
    """Celery's own ceiling: a task that does nothing."""
