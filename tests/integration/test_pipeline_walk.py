"""A DetectFaces job walks the worker in one straight line: each worker module is entered once (issue 22, item 2).

The walk is measured, not read from the import graph: the job runs in-process, as the Celery task hands it to the
loop (`worker.pipeline.process`), against a real Redis and a real local_rekognition, with `sys.setprofile` on the
loop's thread. Every fresh call of a function in ``worker/`` whose caller is in another worker module (or is the
task's hand-off, here the test) begins a *stay* in that module; a resumed coroutine (its frame at an ``await``, not
at its start) is the same stay going on, not a new entry. Calls made by a library into worker code are hooks the
library runs, not steps of the job: botocore's event handlers (request_body.py, responses.py's body check) and the
event loop's callbacks (the round trips coalesce.py shares between jobs).

One helper may appear twice: coalesce.py, which holds no job logic. It shares a round trip between the jobs that run
the same Lua script in one loop turn, and two steps use it, each for its own script: the rate limit's slot
(throttle.py, during the call) and the publish (publish.py). One mechanism written once is issue 22's other rule
("each rule exists once"); a copy in each of its two users would only move the line.
"""

from __future__ import annotations

import dis
import hashlib
import inspect
import sys
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import pytest
import redis

from producer.contract import JobStatus, Operation, ResultEnvelope, blob_key, blob_refs_key
from testmedia.photos import grace_hopper
from tests.fixtures.redis import RedisServer
from worker.pipeline import process
from worker.publish import CeleryResult
from worker.runtime import Runtime
from worker.settings import WorkerSettings

pytestmark = pytest.mark.timeout(120)

T = TypeVar("T")
WORKER = Path(__file__).resolve().parents[2] / "worker"
SHARED_HELPERS = {"coalesce"}
"""Modules that may be entered more than once on the walk, and why: see the module docstring."""

_RESUME = dis.opmap["RESUME"]
_STARTS_SUSPENDED = inspect.CO_COROUTINE | inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR


def _module(frame: FrameType | None) -> str | None:
    """The worker module a frame runs in (``broker/take`` for a subpackage), or None outside worker/."""
    if frame is None:
        return None
    path = Path(frame.f_code.co_filename)
    if not path.is_relative_to(WORKER):
        return None
    return str(path.relative_to(WORKER).with_suffix(""))


def _resumed(frame: FrameType) -> bool:
    """True when a 'call' event is a coroutine or generator going on after an await or yield, not starting.

    A coroutine's frame starts at RESUME with argument 0 (the function's start); RESUME 1-3 follow a yield, a yield
    from and an await (Python 3.11+; f_lasti alone does not tell: it is past the prologue at a fresh start too).
    """
    if not frame.f_code.co_flags & _STARTS_SUSPENDED:
        return False
    code = frame.f_code.co_code
    return not (code[frame.f_lasti] == _RESUME and code[frame.f_lasti + 1] == 0)


class Walk:
    """The worker modules a job enters, in order, with the function each stay began with."""

    def __init__(self) -> None:
        self.stays: list[tuple[str, str]] = []

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        module = _module(frame)
        if module is None or _resumed(frame):
            return
        caller = frame.f_back
        caller_module = _module(caller)
        handed_off = caller is not None and caller.f_code is Walk.run.__code__
        if caller_module is None and not handed_off:
            return  # a library's hook or the loop's callback, not a step of the job
        if caller_module != module:
            self.stays.append((module, frame.f_code.co_qualname))

    async def run(self, coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run the job on this thread (the loop's) with the walk recorded."""
        sys.setprofile(self)
        try:
            return await coro()
        finally:
            sys.setprofile(None)

    def __str__(self) -> str:
        return f"{len(self.stays)} stays: " + " → ".join(f"{m}:{f}" for m, f in self.stays)

    def modules(self) -> list[str]:
        """The sequence of stays, one module name each."""
        return [module for module, _ in self.stays]

    def entered_again(self) -> dict[str, list[str]]:
        """The modules entered more than once (shared helpers left out), with the function each entry called."""
        by_module: dict[str, list[str]] = {}
        for module, function in self.stays:
            by_module.setdefault(module, []).append(function)
        return {m: f for m, f in by_module.items() if len(f) > 1 and m not in SHARED_HELPERS}


@pytest.fixture
def redis_server(start_redis: Callable[..., RedisServer]) -> RedisServer:
    """A Redis of this test's own: no rate learnt by other tests' calls makes the job wait for its slot."""
    return start_redis()


@pytest.fixture
def runtime(
    redis_server: RedisServer, local_rekognition_url: str, moto_s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> Runtime:
    """A worker process's runtime, in this process, on the test's Redis and the session's local_rekognition."""
    # Only the standard AWS variables point it at the endpoints, as a worker is configured.
    monkeypatch.setenv("AWS_ENDPOINT_URL_REKOGNITION", local_rekognition_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_s3_url)
    return Runtime(WorkerSettings(redis_url=redis_server.url, cache_ttl_s=600))


def _blob_job(client: redis.Redis, data: bytes) -> dict[str, Any]:
    """A DetectFaces job on a photo stored the way the producer stores it (blob and reference count)."""
    sha = hashlib.sha256(data).hexdigest()
    client.set(blob_key(sha), data, ex=600)
    client.incrby(blob_refs_key(sha), 1)
    image = {"kind": "blob", "sha256": sha, "size_bytes": len(data)}
    job_id = f"walk-{uuid.uuid4().hex[:12]}"
    return {"job_id": job_id, "operation": "DetectFaces", "image": image, "attributes": ["ALL"]}


def _walk(runtime: Runtime, payload: dict[str, Any]) -> tuple[ResultEnvelope, Walk]:
    """Run one job as the task does (a single-job message, Celery's result written by the publish); its walk."""
    walk = Walk()
    celery = CeleryResult(f"celery-task-meta-{payload['job_id']}", payload["job_id"])
    deps, publisher = runtime.deps, runtime.publisher

    def job() -> Coroutine[Any, Any, ResultEnvelope]:
        return process(payload, Operation.DETECT_FACES, payload["job_id"], deps, publisher, celery)

    envelope = runtime.run(walk.run(job))
    assert celery.written
    return envelope, walk


def test_a_detect_faces_job_enters_each_worker_module_once(runtime: Runtime, redis_server: RedisServer) -> None:
    redis_client = redis.Redis.from_url(redis_server.url)
    # Given a photo of one face, stored as a blob, that nobody has asked about (the cache holds nothing for it)
    data = grace_hopper().read_bytes() + uuid.uuid4().bytes  # bytes after the JPEG's end: a photo of its own
    try:
        # When a worker runs a DetectFaces job on it from the task's hand-off to the publish
        envelope, walk = _walk(runtime, _blob_job(redis_client, data))
        # And a second job on the same photo, which the cache answers (an early exit)
        cached, cached_walk = _walk(runtime, _blob_job(redis_client, data))
    finally:
        runtime.close()
    # Then the first was answered by Rekognition, the second from the cache, both published
    assert envelope.status is JobStatus.SUCCEEDED and not envelope.cached, envelope.error
    assert len(envelope.response["FaceDetails"]) == 1  # type: ignore[index]
    assert cached.status is JobStatus.SUCCEEDED and cached.cached and cached.response == envelope.response
    # And each walked the worker in a straight line: no module entered twice
    assert walk.entered_again() == {}, str(walk)
    assert cached_walk.entered_again() == {}, str(cached_walk)
    # And the walk went admit → load → images → call → record → publish, from the path's own module
    modules = walk.modules()
    assert modules[0] == "pipeline" and modules.count("pipeline") == 1, modules
    assert {"cache", "reads", "images", "calls", "throttle", "publish"} <= set(modules), modules
    steps = [modules.index(m) for m in ("cache", "reads", "unpublished", "images", "throttle", "publish")]
    assert steps == sorted(steps), str(walk)
    # And the cached job stopped before the images and the call
    assert not {"images", "calls", "throttle"} & set(cached_walk.modules()), str(cached_walk)
