"""A message carrying n jobs counts as n against the worker's prefetch, so a worker reserves about as many jobs as
it runs at once, whatever the messages carry.

Celery reserves up to `concurrency` messages per worker (prefetch multiplier 1). Unweighted, a worker would hold
`concurrency` × 16 jobs from a bulk submit: other workers would starve at the end of a batch, and a job waiting
behind them could outlive the visibility timeout and run twice. Celery weighs ETA tasks the same way
(`qos.increment_eventually` in celery/worker/strategy.py); the main thread applies the new count on its next loop.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_taken: dict[str, tuple[Any, int]] = {}


def jobs_in(args: Any) -> int:
    """How many jobs a task message's positional arguments carry."""
    return len(args[0]) if args and isinstance(args[0], list) else 1


def on_received(qos: Any, task_id: str, args: Any) -> None:
    """Lower the prefetch count by the extra jobs of a multi-job message (never below 1)."""
    extra = jobs_in(args) - 1
    if extra <= 0 or qos is None or not qos.value:  # value 0: prefetch unlimited
        return
    # QoS's own mutex, so a pool thread's increment cannot land between the two reads.
    with qos._mutex:
        before = qos.value
        qos.decrement_eventually(extra)
        taken = before - qos.value
    if taken:
        with _lock:
            _taken[task_id] = (qos, taken)


def on_finished(task_id: str) -> None:
    """Give back what the message took from the prefetch count, to the QoS it was taken from."""
    with _lock:
        entry = _taken.pop(task_id, None)
    if entry is not None:
        qos, taken = entry
        qos.increment_eventually(taken)
