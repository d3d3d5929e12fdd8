"""Following a batch: its results as they complete, and noticing when nobody is working on it.

Jobs sent to a queue no worker consumes wait silently forever. ``follow`` reads a batch's results like
``FaceQueue.iter_results`` and, whenever a second passes without one, lets an idle hook look around. ``WorkerCheck``
is that hook: it asks the workers which queues they consume (Celery's ``inspect active_queues`` broadcast, one
round trip and a one-second wait for replies), first when the batch goes quiet and again after every
``recheck_s`` of silence. A busy batch never pays for it, and a batch nobody consumes is noticed in about two seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from celery import Celery

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


def queue_consumers(redis_url: str, queue: str, timeout_s: float = 1.0) -> list[str]:
    """Return the names of the live Celery workers consuming ``queue`` (waits ``timeout_s`` for their replies)."""
    app = Celery("facequeue-probe", broker=redis_url, set_as_current=False)
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
    ) -> None:
        self.queue = queue
        self._probe = probe
        self._refresh = refresh
        self._recheck_s = recheck_s
        self._clock = clock
        self._next_probe_at = 0.0
        self._done_seen = -1
        self.consumers: list[str] | None = None
        """What the last probe found (None before the first)."""

    @classmethod
    def for_queue(cls, fq: FaceQueue) -> WorkerCheck:
        """A check on the client's own Redis and queue."""
        settings = fq.settings
        return cls(settings.queue, lambda: queue_consumers(str(settings.redis_url), settings.queue), fq.progress)

    def __call__(self, progress: BatchProgress) -> None:
        now = self._clock()
        if progress.done != self._done_seen:
            # Results keep coming: somebody works on the batch. Look again only after a long silence.
            if self._done_seen >= 0:
                self._next_probe_at = now + self._recheck_s
            self._done_seen = progress.done
        if now < self._next_probe_at:
            return
        self.consumers = self._probe()
        self._next_probe_at = self._clock() + self._recheck_s
        if self.consumers:
            return
        # A worker may have started while the probe waited for replies: only a batch that still did not move stalls.
        latest = self._refresh(progress.batch_id)
        if latest.done == progress.done:
            raise NoWorkersError(self.queue, latest.batch_id, latest.total - latest.done)
