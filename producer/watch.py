"""Following a batch: its results as they complete, and noticing when nobody is working on it.

Jobs sent to a queue no worker consumes wait silently forever. ``follow`` reads a batch's results like
``FaceQueue.iter_results`` and, whenever a second passes without one, lets an idle hook look around. ``WorkerCheck``
is that hook: it asks the workers which queues they consume (Celery's ``inspect active_queues`` broadcast, one
round trip and a one-second wait for replies), first when the batch goes quiet and again after every
``recheck_s`` of silence. A busy batch never pays for it, and a batch nobody consumes is noticed in about six seconds.

No reply is not proof on its own: a worker reconnecting after a Redis restart misses broadcasts for a few seconds
while it still holds jobs. So "no worker" also needs that no job of the queue is held (kombu's ``unacked`` hash, as
of the last visibility timeout) and that probes keep finding nobody for ``grace_s``. In signed mode the probe is
signed like any task message, since signing workers refuse anything else.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError
from kombu.transport import redis as kombu_redis
from redis.exceptions import NoPermissionError, RedisError

from producer.client import BatchProgress, FaceQueue
from producer.contract import ResultEnvelope


class NoWorkersError(RuntimeError):
    """No live worker consumes the queue a batch waits in; its jobs stay queued until one starts."""

    def __init__(self, queue: str, batch_id: str, pending: int) -> None:
        super().__init__(
            f"no worker consumes queue {queue!r}: {pending} job(s) of batch {batch_id} wait in it (they stay queued); "
            f"start one (`FACEQUEUE_QUEUE={queue} celery -A worker.app worker`, or `facequeue-stack up`), "
            f"then: facequeue status {batch_id} --wait"
        )
        self.queue = queue
        self.batch_id = batch_id
        self.pending = pending


def follow(
    fq: FaceQueue,
    batch_id: str,
    *,
    timeout_s: float | None = None,
    on_idle: Callable[[BatchProgress], None] | None = None,
) -> Iterator[ResultEnvelope]:
    """Yield a batch's results in completion order until every job has one; TimeoutError after ``timeout_s``.

    ``on_idle(progress)`` runs after every second without a result, and may raise to stop the wait.
    """
    return fq.iter_results(batch_id, timeout_s=timeout_s, on_idle=on_idle)


def _consumes(queue_name: str, queue: str) -> bool:
    # A worker consumes the bare queue and, when jobs travel per operation, `queue.<operation>` queues.
    return queue_name == queue or queue_name.startswith(queue + ".")


class _ProbeQoS(kombu_redis.QoS):
    def restore_visible(self, *args: Any, **kwargs: Any) -> None:
        # kombu's consumer side (the probe collects replies as a consumer) sweeps the workers' unacked messages back
        # to their queues, under a lock in Redis. That sweep is the workers' job, and a least-privilege producer may
        # not touch those keys (docker/redis-users.acl): a probe restores nothing.
        return None


class _ProbeChannel(kombu_redis.Channel):
    QoS = _ProbeQoS


class _ProbeTransport(kombu_redis.Transport):
    """kombu's Redis transport, less the unacked sweep: what the worker probe connects with."""

    Channel = _ProbeChannel


UNACKED_KEY, UNACKED_INDEX_KEY = "unacked", "unacked_index"
"""kombu's Redis transport: messages a worker has reserved and not yet acknowledged, and when it reserved them."""
HELD_FRESH_S = 180.0
"""A reservation younger than this (the workers' default visibility timeout) means a worker holds the job."""


def held_jobs(redis: Any, queue: str, now_s: float | None = None) -> int:
    """How many messages of ``queue`` a worker reserved in the last HELD_FRESH_S seconds and has not acknowledged."""
    since = (time.time() if now_s is None else now_s) - HELD_FRESH_S
    try:
        tags = redis.zrangebyscore(UNACKED_INDEX_KEY, since, "+inf")
    except NoPermissionError:
        # A least-privilege producer (docker/redis-users.acl) may not read kombu's keys: the probe alone decides.
        return 0
    if not tags:
        return 0
    held = 0
    for raw in redis.hmget(UNACKED_KEY, tags):
        try:
            routing_key = json.loads(raw)[2] if raw else ""
        except (ValueError, IndexError, TypeError):
            continue
        held += isinstance(routing_key, str) and _consumes(routing_key, queue)
    return held


PROBE_GIVE_UP_S = 10.0
"""How long past its reply timeout the caller waits for a probe (connecting and closing take milliseconds)."""


def queue_consumers(
    redis_url: str, queue: str, timeout_s: float = 1.0, signing: dict[str, Any] | None = None
) -> list[str]:
    """Return the names of the live Celery workers consuming ``queue`` (waits ``timeout_s`` for their replies).

    ``signing`` (ProducerSettings.signing()) signs the probe, and accepts only signed replies, as signing workers do.
    The probe runs in a daemon thread the caller waits for, so a Ctrl-C of the caller never lands inside kombu:
    interrupted once it has marked a BRPOP outstanding, kombu's close reads that BRPOP's reply with no timeout, and
    when the reply never comes (the BRPOP was not sent yet, or Redis stalls) the command hung instead of detaching
    (issue 20). A probe still running after PROBE_GIVE_UP_S more raises TimeoutError; its thread ends on its own.
    """
    outcome: list[list[str] | BaseException] = []

    def probe() -> None:
        try:
            outcome.append(_probe(redis_url, queue, timeout_s, signing))
        except BaseException as exc:  # handed to the caller, whatever it is
            outcome.append(exc)

    thread = threading.Thread(target=probe, name="facequeue-probe", daemon=True)
    thread.start()
    thread.join(timeout_s + PROBE_GIVE_UP_S)
    if not outcome:
        raise TimeoutError(f"the worker probe got no answer from Redis within {timeout_s + PROBE_GIVE_UP_S:.0f} s")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _probe(redis_url: str, queue: str, timeout_s: float, signing: dict[str, Any] | None) -> list[str]:
    app = Celery("facequeue-probe", broker=redis_url, set_as_current=False)
    app.conf.broker_transport = _ProbeTransport
    if signing is not None:
        app.conf.update(signing)
        app.setup_security(allowed_serializers=["json"])
    try:
        with app.connection_for_write() as connection:
            replies = app.control.inspect(timeout=timeout_s, connection=connection).active_queues() or {}
    finally:
        app.close()
    return sorted(
        worker for worker, queues in replies.items() if any(_consumes(q.get("name", ""), queue) for q in queues or [])
    )


class WorkerCheck:
    """An idle hook for ``follow``: raises NoWorkersError when no worker consumes the queue and nothing moves."""

    def __init__(
        self,
        queue: str,
        probe: Callable[[], list[str]],
        refresh: Callable[[str], BatchProgress],
        recheck_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        held: Callable[[], int] = lambda: 0,
        grace_s: float = 5.0,
    ) -> None:
        self.queue = queue
        self._probe = probe
        self._refresh = refresh
        self._recheck_s = recheck_s
        self._clock = clock
        self._held = held
        self._grace_s = grace_s
        self._nobody_since: float | None = None
        self._next_probe_at = 0.0
        self._done_seen = -1
        self.consumers: list[str] | None = None
        """What the last probe found (None before the first)."""

    @classmethod
    def for_queue(cls, fq: FaceQueue) -> WorkerCheck:
        """A check on the client's own Redis and queue."""
        settings = fq.settings
        signing = settings.signing()
        return cls(
            settings.queue,
            lambda: queue_consumers(str(settings.redis_url), settings.queue, signing=signing),
            fq.progress,
            held=lambda: held_jobs(fq.redis, settings.queue),
        )

    def __call__(self, progress: BatchProgress) -> None:
        now = self._clock()
        if progress.done != self._done_seen:
            # Results keep coming: somebody works on the batch. Look again only after a long silence.
            if self._done_seen >= 0:
                self._next_probe_at = now + self._recheck_s
            self._done_seen = progress.done
            self._nobody_since = None
        if now < self._next_probe_at:
            return
        try:
            self.consumers = self._probe()
            anyone = bool(self.consumers) or self._held() > 0
        except (OSError, RedisError, OperationalError):
            # Redis is away (restarting): that says nothing about the workers. Look again next idle second.
            return
        if anyone:
            self._nobody_since = None
            self._next_probe_at = self._clock() + self._recheck_s
            return
        # Nobody answered and nobody holds a job: probe again each idle second until grace_s has passed, since a
        # worker reconnecting after a Redis restart misses broadcasts for a few seconds.
        if self._nobody_since is None:
            self._nobody_since = now
        if self._clock() - self._nobody_since < self._grace_s:
            return
        self._next_probe_at = self._clock() + self._recheck_s
        # A worker may have started while the probe waited for replies: only a batch that still did not move stalls.
        latest = self._refresh(progress.batch_id)
        if latest.done == progress.done:
            raise NoWorkersError(self.queue, latest.batch_id, latest.total - latest.done)
