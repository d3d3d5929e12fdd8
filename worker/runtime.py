"""The per-process event loop and the long-lived aioboto3 and Redis clients, shared by every job in flight.

Celery's thread pool runs the task shells; each hands its coroutine to this loop and waits. Creating an aioboto3
session and client costs tens of milliseconds and binds the client to a loop (aioboto3#288, aiobotocore#807), so
both are made once per process and live as long as it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import socket
import threading
from collections.abc import Coroutine
from importlib.metadata import version
from typing import Any, TypeVar

import aioboto3
from aiobotocore.config import AioConfig
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from producer.connection import async_client
from producer.contract import MAX_JOBS_PER_MESSAGE
from worker.cache import ResponseCache
from worker.deps import Deps
from worker.publish import Publisher
from worker.reads import CoalescedReads
from worker.request_body import install as splice_image_bytes
from worker.responses import install as check_response_bodies
from worker.settings import WorkerSettings
from worker.throttle import AdaptiveRate

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (the worker extra pulls it in), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


USER_AGENT = (
    f"facequeue/{version('facequeue')} aiobotocore/{version('aiobotocore')} botocore/{version('botocore')} "
    f"Python/{platform.python_version()}"
)


def _client_config(settings: WorkerSettings) -> AioConfig:
    return AioConfig(
        connect_timeout=settings.rekognition_connect_timeout_s,
        read_timeout=settings.rekognition_read_timeout_s,
        # One HTTP connection per job in flight, or jobs queue for a connection inside aiohttp's pool. A worker
        # may run up to one multi-job message's worth beyond its concurrency (prefetch counts are approximate).
        max_pool_connections=settings.concurrency + MAX_JOBS_PER_MESSAGE + 8,
        # botocore's retries off: calls.retrying is the one retry layer for transient errors, so each
        # attempt is counted, backed off with jitter and visible to the rate limiter.
        retries={"total_max_attempts": 1, "mode": "standard"},
        # The contract already validated every parameter against Rekognition's rules at both ends; botocore's
        # second pass over a multi-megabyte request is pure cost on the hot path.
        parameter_validation=False,
        # A fixed User-Agent: botocore otherwise rebuilds and sanitises a ~30-part string twice per request, 13% of
        # a DetectFaces call's CPU in a profile (bench/README.md). It also names facequeue in CloudTrail.
        user_agent=USER_AGENT,
    )


class Runtime:
    """One event loop thread and its clients; `run` executes a coroutine there from any thread."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._loop = new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="facequeue-loop", daemon=True)
        self._stack = contextlib.AsyncExitStack()
        self._thread.start()
        self.deps, self.publisher = self.run(self._open())

    async def _open(self) -> tuple[Deps, Publisher]:
        s = self.settings
        session = aioboto3.Session()
        config = _client_config(s)
        rekognition = await self._stack.enter_async_context(
            session.client("rekognition", config=config, region_name=s.aws_region)
        )
        splice_image_bytes(rekognition)
        check_response_bodies(rekognition)
        s3 = await self._stack.enter_async_context(session.client("s3", config=config, region_name=s.aws_region))
        redis = async_client(
            s,
            # One connection per job in flight; past that a command waits for a free one.
            max_connections=s.concurrency + MAX_JOBS_PER_MESSAGE + 8,
            # Ride out a Redis restart or failover (~30 s) while publishing: every write the worker makes is
            # idempotent (SET NX guards publication), so repeating one after a lost reply is safe.
            retry=Retry(ExponentialWithJitterBackoff(base=0.1, cap=2.0), 20),
        )
        self._stack.push_async_callback(redis.aclose)
        publisher = Publisher(
            redis, stream=s.results_stream, stream_maxlen=s.results_stream_maxlen, ttl_s=s.result_ttl_s, durable=s
        )
        deps = Deps(
            rekognition=rekognition,
            s3=s3,
            redis=redis,
            settings=s,
            limiter=AdaptiveRate(
                redis,
                s.rate_limits_tps,
                s.rate_limit_burst,
                learn=s.adaptive_rate,
                endpoint=rekognition.meta.endpoint_url,
            ),
            cache=ResponseCache(redis, s.cache_ttl_s),
            worker=self.worker,
            reads=CoalescedReads(redis),
        )
        return deps, publisher

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the process's loop and block the calling thread until it finishes."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def begin_shutdown(self) -> None:
        """Tell every job in flight that the worker is stopping (waiting ones give their message back)."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.deps.stopping.set)

    def close(self) -> None:
        """Close the clients and stop the loop."""
        if self._loop.is_closed():
            return
        with contextlib.suppress(Exception):
            self.run(self._stack.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


_runtime: Runtime | None = None
_runtime_pid = 0
_lock = threading.Lock()


def get_runtime(settings: WorkerSettings | None = None) -> Runtime:
    """Return this process's runtime, creating it on first use (and anew in a forked child)."""
    global _runtime, _runtime_pid
    with _lock:
        if _runtime is None or _runtime_pid != os.getpid():
            _runtime = Runtime(settings or WorkerSettings())
            _runtime_pid = os.getpid()
        return _runtime


def begin_shutdown() -> None:
    """Start a graceful shutdown of this process's runtime, if any."""
    if _runtime is not None and _runtime_pid == os.getpid():
        _runtime.begin_shutdown()


def close_runtime() -> None:
    """Close this process's runtime, if any."""
    global _runtime
    with _lock:
        if _runtime is not None and _runtime_pid == os.getpid():
            _runtime.close()
        _runtime = None
