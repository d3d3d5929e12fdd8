"""Prometheus metrics of a worker process, served on FACEQUEUE_METRICS_PORT (0: off).

Counters and histograms are per process; scrape every worker (in compose, inside the network; with
facequeue-stack, one port per worker). Queue depth is read from Redis at scrape time, so any one worker reports it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from producer.connection import RedisTarget, sync_client

REGISTRY = CollectorRegistry()

JOBS = Counter("facequeue_jobs", "Jobs finished, by operation and status.", ["operation", "status"], registry=REGISTRY)
CALL_SECONDS = Histogram(
    "facequeue_rekognition_call_seconds",
    "Latency of each Rekognition call attempt.",
    ["operation"],
    buckets=(0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 2, 5, 10, 30),
    registry=REGISTRY,
)
THROTTLES = Counter(
    "facequeue_throttles", "Rekognition calls answered with throttling.", ["operation"], registry=REGISTRY
)
RETRIES = Counter(
    "facequeue_retries", "Calls retried after a transient error, by code.", ["operation", "code"], registry=REGISTRY
)
CACHE_HITS = Counter("facequeue_cache_hits", "Jobs answered from the response cache.", ["operation"], registry=REGISTRY)
IN_FLIGHT = Gauge("facequeue_jobs_in_flight", "Jobs being processed by this worker process.", registry=REGISTRY)


class QueueDepth(Collector):
    """Messages waiting in each facequeue queue, read with LLEN when Prometheus scrapes."""

    def __init__(self, client: redis.Redis, queues: Sequence[str]) -> None:
        self._redis = client
        self._queues = list(queues)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One gauge sample per queue."""
        family = GaugeMetricFamily("facequeue_queue_depth", "Messages waiting in a queue.", labels=["queue"])
        try:
            pipe = self._redis.pipeline(transaction=False)
            for queue in self._queues:
                pipe.llen(queue)
            for queue, depth in zip(self._queues, pipe.execute(), strict=True):
                family.add_metric([queue], float(depth))
        except redis.RedisError:
            pass  # a scrape during a Redis outage shows no depth rather than failing the whole scrape
        yield family


_served: dict[int, Any] = {}


def serve(port: int, target: RedisTarget, queues: Sequence[str]) -> Any:
    """Start the metrics HTTP server in a daemon thread, once per process; None when port is 0 or taken."""
    if not port or os.getpid() in _served:
        return _served.get(os.getpid())
    try:
        server, _thread = start_http_server(port, registry=REGISTRY)
    except OSError as exc:
        # A second process on the host (prefork children, a second worker) must not die for want of a port.
        logging.getLogger("facequeue.metrics").warning("metrics not served on port %s: %s", port, exc)
        return None
    REGISTRY.register(QueueDepth(sync_client(target, socket_timeout=2), queues))
    _served[os.getpid()] = server
    return server


REPLAYED = Counter(
    "facequeue_journal_replays",
    "State-changing jobs whose earlier run's recorded answer was published instead of calling Rekognition again.",
    ["operation"],
    registry=REGISTRY,
)
UNRECORDED = Counter(
    "facequeue_journal_unrecorded",
    "State-changing jobs whose earlier run may have called Rekognition and stopped before recording the answer.",
    ["operation"],
    registry=REGISTRY,
)

RECONCILED = Counter(
    "facequeue_index_faces_reconciled",
    "After a lost IndexFaces answer: answers adopted from the faces found under the job's mark, checks that found "
    "none (IndexFaces called again), and extra copies deleted (reconcile.py).",
    ["outcome"],
    registry=REGISTRY,
)
