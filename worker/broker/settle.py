"""Acknowledging a single-job message inside the publish script, so Celery's ack costs Redis nothing more.

kombu acknowledges a message with its own round trip after the task returns (MULTI ZREM HDEL EXEC on ``unacked``
and its index: four commands, from the pool thread). For a message whose one job the publish script publishes, the
script removes the same entry in the same atomic step as the result (publish.py), and kombu's ack then only does its
in-memory part (transport.py's QoS). Publish and ack being one step also closes a window: a worker killed between
them no longer leaves a message to redeliver whose result already stands.

The consumer's thread records each message's delivery tag by task id as it hands it to Celery (``delivered``); the
task asks for it (``entry``) and, once its publish removed the entry, marks it settled (``settled``) before it
returns. A task id seen twice among the messages a worker holds folds nothing: the tag would be ambiguous.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

MAX_TRACKED = 100_000
"""More messages held than this (a bug elsewhere, or tags whose messages never reached the ack) stops the tracking
rather than let it grow: their acks go to Redis as kombu's always did."""


class Unacked(NamedTuple):
    """A delivered message's entry in kombu's ``unacked`` hash and index (key names with any global prefix)."""

    hash_key: str
    index_key: str
    tag: str


_lock = threading.Lock()
_held: dict[str, dict[str, Unacked]] = {}
"""The messages held, by task id, then delivery tag."""
_task_of: dict[str, str] = {}
_settled: set[str] = set()


def delivered(task_id: object, entry: Unacked) -> None:
    """Record the unacked entry of a message handed to Celery (the consumer's thread)."""
    if not isinstance(task_id, str) or not task_id:
        return
    with _lock:
        if len(_task_of) >= MAX_TRACKED:
            return
        _held.setdefault(task_id, {})[entry.tag] = entry
        _task_of[entry.tag] = task_id


def entry(task_id: str) -> Unacked | None:
    """The unacked entry the publish script may remove for this task's message, or None (kombu acks it)."""
    with _lock:
        held = _held.get(task_id)
        # The running task's own message is among those held: when it is the only one, it is that one. Two messages
        # with the same task id held at once (a resubmit, a redelivery) fold nothing: which is which is unknown.
        return next(iter(held.values())) if held is not None and len(held) == 1 else None


def settled(tag: str) -> None:
    """Mark a message whose unacked entry the publish script removed: its ack needs no Redis command."""
    with _lock:
        if tag in _task_of:
            _settled.add(tag)


def forget(tag: str) -> bool:
    """Drop what is recorded for a message as it is acknowledged or rejected; True if its entry is gone already."""
    with _lock:
        task_id = _task_of.pop(tag, None)
        if task_id is not None:
            held = _held.get(task_id, {})
            held.pop(tag, None)
            if not held:
                _held.pop(task_id, None)
        if tag in _settled:
            _settled.discard(tag)
            return True
        return False
