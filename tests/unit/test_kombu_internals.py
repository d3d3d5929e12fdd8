"""Every private kombu and Celery name the worker relies on exists, with the shape it is used with.

The worker's broker plumbing (worker/broker/: its transport, transport.py and take.py; its consumer hooks,
consumer.py; its prefetch weighing, prefetch.py) overrides or calls kombu's and Celery's internals. It is proven on
the range pyproject.toml pins (docs/dependencies.md); a release that renames or drops one of them fails here, by
name, instead of in a worker at 3 a.m. (kombu 5.6.2 lacks ``MultiChannelPoller._unregister_from_poll``: every close
raised ``AttributeError`` there). The storage format, kombu's ``unacked`` entry, is checked against kombu itself on a
real Redis in tests/integration/test_fetch.py.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from types import SimpleNamespace
from typing import Any

import pytest
from celery.backends.base import BaseBackend
from celery.worker.consumer import Consumer
from kombu.common import QoS as PrefetchQoS
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from packaging.requirements import Requirement
from packaging.version import Version

# (owner, name, the parameters it is called or overridden with, or None for an attribute).
METHODS: list[tuple[Any, str, list[str] | None]] = [
    # worker/broker/transport.py: Channel overrides these three and kombu's poller calls them.
    (kombu_redis.Channel, "_brpop_start", ["self", "timeout"]),
    (kombu_redis.Channel, "_brpop_read", ["self", "options"]),
    (kombu_redis.Channel, "basic_consume", ["self", "queue", "args", "kwargs"]),
    (kombu_redis.Channel, "close", ["self"]),
    # ... and calls or reads these.
    (kombu_redis.Channel, "_q_for_pri", ["self", "queue", "pri"]),
    (kombu_redis.Channel, "conn_or_acquire", ["self", "client"]),
    (kombu_redis.Channel, "_flush_brpop_reauth", ["self"]),
    (kombu_redis.Channel, "_in_poll", None),
    (kombu_redis.Channel, "_brpop_sent_at", None),
    (kombu_redis.Channel, "priority_steps", None),
    (kombu_redis.Channel, "unacked_key", None),
    (kombu_redis.Channel, "unacked_index_key", None),
    (kombu_redis.Channel, "global_keyprefix", None),
    (kombu_redis.Channel, "sep", None),
    (kombu_redis.Transport, "connection_errors", None),  # the channel copies it from its transport
    (kombu_redis.Channel, "Message", None),
    (kombu_redis.QoS, "_remove_from_indices", ["self", "delivery_tag", "pipe"]),
    (virtual.QoS, "append", ["self", "message", "delivery_tag"]),
    # worker/broker/settle.py: the ack of a message its publish acknowledged skips kombu's Redis part only.
    (kombu_redis.QoS, "ack", ["self", "delivery_tag"]),
    (kombu_redis.QoS, "reject", ["self", "delivery_tag", "requeue"]),
    (virtual.QoS, "ack", ["self", "delivery_tag"]),
    (kombu_redis.Channel, "QoS", None),
    (virtual.Transport, "_deliver", ["self", "message", "queue"]),
    (virtual.Transport, "_callbacks", None),
    # The poller: the transport registers its waker like kombu's own BRPOP and LISTEN clients.
    (kombu_redis.MultiChannelPoller, "on_readable", ["self", "fileno"]),
    (kombu_redis.MultiChannelPoller, "_register", ["self", "channel", "client", "type"]),
    (kombu_redis.MultiChannelPoller, "_unregister_from_poll", ["self", "fileno"]),
    (kombu_redis.Transport, "register_with_event_loop", ["self", "connection", "loop"]),
    # worker/broker/prefetch.py: a multi-job message takes as many prefetch slots as it carries jobs.
    (PrefetchQoS, "decrement_eventually", ["self", "n"]),
    (PrefetchQoS, "increment_eventually", ["self", "n"]),
    # worker/broker/consumer.py: every message Celery refuses is also kept as a dead letter.
    (Consumer, "on_decode_error", ["self", "message", "exc"]),
    (Consumer, "on_invalid_task", ["self", "body", "message", "exc"]),
    (Consumer, "on_unknown_message", ["self", "body", "message"]),
    (Consumer, "on_unknown_task", ["self", "body", "message", "exc"]),
    # ... and it connects first with its own retry (without end, each failure's reason logged), then Celery's.
    (Consumer, "ensure_connected", ["self", "conn"]),
]

# Instance attributes set in __init__ (not visible on the class).
POLLER_ATTRIBUTES = ["_chan_to_sock", "_fd_to_chan", "poller"]
PREFETCH_QOS_ATTRIBUTES = ["_mutex", "value"]
# Transport options the worker sets (worker/broker/options.py): a name kombu does not read is silently ignored.
TRANSPORT_OPTIONS = ["visibility_timeout", "unacked_restore_interval", "unacked_restore_throttle"]


@pytest.mark.parametrize(("owner", "name", "parameters"), METHODS, ids=[f"{o.__name__}.{n}" for o, n, _ in METHODS])
def test_a_private_name_the_worker_uses_exists(owner: Any, name: str, parameters: list[str] | None) -> None:
    """kombu/Celery still has the name, and a method still takes the parameters the worker passes."""
    assert hasattr(owner, name), f"{owner.__module__}.{owner.__name__}.{name} is gone: worker/broker/ needs it"
    if parameters is not None:
        found = list(inspect.signature(getattr(owner, name)).parameters)
        assert found == parameters, f"{owner.__name__}.{name}{found}: the worker calls it as {parameters}"


def test_the_poller_and_prefetch_counter_keep_the_state_the_worker_reads() -> None:
    """The instance attributes the transport and the prefetch weighing touch are set by their constructors."""
    poller = kombu_redis.MultiChannelPoller()  # type: ignore[no-untyped-call]
    try:
        for name in POLLER_ATTRIBUTES:
            assert hasattr(poller, name), f"MultiChannelPoller().{name} is gone"
        assert isinstance(poller._chan_to_sock, dict) and isinstance(poller._fd_to_chan, dict)
    finally:
        poller.close()  # type: ignore[no-untyped-call]
    qos = PrefetchQoS(lambda prefetch_count: None, 4)  # type: ignore[no-untyped-call]
    for name in PREFETCH_QOS_ATTRIBUTES:
        assert hasattr(qos, name), f"kombu.common.QoS().{name} is gone"


def test_the_transport_options_the_worker_sets_are_read_by_kombu() -> None:
    """kombu's channel takes each option the worker sets (an unknown option is dropped without a word)."""
    for option in TRANSPORT_OPTIONS:
        assert option in kombu_redis.Channel.from_transport_options, f"kombu no longer reads {option!r}"


def test_the_installed_kombu_and_celery_are_inside_the_proven_range() -> None:
    """The versions installed are the ones pyproject.toml admits (a stale venv would prove nothing)."""
    requirements = [Requirement(r) for r in importlib.metadata.requires("facequeue") or []]
    pins = {r.name.lower(): r.specifier for r in requirements if r.name.lower() in {"kombu", "celery"} and not r.marker}
    assert set(pins) == {"kombu", "celery"}
    for name, specifier in pins.items():
        installed = Version(importlib.metadata.version(name))
        assert specifier.contains(installed), f"{name} {installed} is outside the pin {specifier}"


def test_celery_skips_storing_a_result_whose_request_says_ignore_result() -> None:
    """worker/tasks.py sets ``request.ignore_result`` once the publish script wrote a job's Celery result: Celery's
    ``mark_as_done`` must then skip its own store (two round trips a job), and still store it otherwise."""
    stored: list[str] = []
    backend = SimpleNamespace(store_result=lambda task_id, *_a, **_k: stored.append(task_id))
    BaseBackend.mark_as_done(backend, "written", 1, request=SimpleNamespace(ignore_result=True, chord=None))  # type: ignore[arg-type]
    BaseBackend.mark_as_done(backend, "stored", 1, request=SimpleNamespace(ignore_result=False, chord=None))  # type: ignore[arg-type]
    assert stored == ["stored"]
