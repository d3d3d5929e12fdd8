"""kombu's Redis transport, made to survive a malformed queue entry: it is logged, kept as a dead letter, skipped.

kombu parses a queue entry (JSON, then the base64 body) inside the consumer's event loop; any entry it cannot parse
raises there, Celery calls that an "Unrecoverable error" and the worker process exits, leaving the messages it had
reserved to wait out the visibility timeout. Anyone who can LPUSH to a queue could stop every worker that way,
signed mode included (the signature is checked only after parsing). Here an entry that does not parse, or is larger
than any message a producer sends, never reaches Celery: the worker logs it, keeps its first bytes as evidence in
the dead letters (bounded in size, expiring with the results) and reads the next one.

It also takes messages without kombu's fetch window: a message leaves its queue and enters ``unacked`` in one
server-side step (take.py), so a worker killed, or a Redis restarted, as a message is handed over loses nothing; the
message comes back after the visibility timeout like any other unacknowledged one.

Selected with Celery's ``broker_transport`` setting (worker.broker.TRANSPORT); the URL scheme (redis://, rediss://)
still decides how to connect.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from kombu.exceptions import KombuError
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.transport.virtual import Empty
from kombu.utils.json import loads
from redis.exceptions import NoScriptError, RedisError, ResponseError

from producer.contract import DEAD_LETTERS_KEY, MAX_REFUSED_LETTERS, REFUSED_LETTERS_KEY, TASK_NAMES, dead_letter_key
from producer.masters import MasterConnection, MasterSSLConnection
from worker.broker import settle
from worker.broker.options import (
    DEAD_LETTER_TTL_OPTION,
    DEFAULT_FETCH_POLL_S,
    DEFAULT_IDLE_RECHECK_S,
    FETCH_POLL_OPTION,
    IDLE_RECHECK_OPTION,
    MAX_MESSAGE_BYTES_OPTION,
)
from worker.broker.take import TAKE_SCRIPT, TAKE_SHA, Waker
from worker.envelopes import EVIDENCE_CHARS, dead_letter, head, refusal

log = logging.getLogger("facequeue.worker")

WAKE = "WAKE"


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


_OPERATIONS = {name.rpartition(".")[2]: op.value for op, name in TASK_NAMES.items()}


def _operation_of(queue: str) -> str:
    """The operation a queue carries (`<base>.<operation>`), or "Unknown" for the bare queue."""
    return _OPERATIONS.get(queue.rpartition(".")[2], "Unknown")


def keep_refused_message(message: Any, code: str, reason: str) -> None:
    """Keep a message Celery refused as a dead letter, when it came through this transport (else Celery's own log
    line is all there is: another transport, e.g. memory:// in tests)."""
    channel = getattr(message, "channel", None)
    if not isinstance(channel, Channel):
        return
    raw = getattr(message, "_raw", None)
    text = json.dumps(raw, default=str) if raw is not None else repr(getattr(message, "body", b""))
    queue = str((getattr(message, "delivery_info", None) or {}).get("routing_key") or "")
    channel.keep_refused(text, queue, code, reason[:500])


class QoS(kombu_redis.QoS):
    """kombu's Redis QoS; a message whose unacked entry the publish script removed is acked without Redis
    (settle.py)."""

    def ack(self, delivery_tag: str) -> None:
        """Acknowledge: kombu's ZREM and HDEL, unless the publish already removed the entry in its own step."""
        if settle.forget(delivery_tag):
            virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]
        else:
            super().ack(delivery_tag)  # type: ignore[no-untyped-call]

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        """Reject as kombu does (a settled message has no entry left to restore: its result is published)."""
        settle.forget(delivery_tag)
        super().reject(delivery_tag, requeue)  # type: ignore[no-untyped-call]


class Channel(kombu_redis.Channel):
    """A Redis channel that refuses, instead of raising on, queue entries it cannot parse."""

    QoS = QoS

    def _option(self, name: str, default: int) -> int:
        return int((self.connection.client.transport_options or {}).get(name, default))

    def keep_refused(self, raw: bytes | str, queue: str, code: str, reason: str, size: int | None = None) -> None:
        """Log a refused queue entry and keep its first bytes as a dead letter; never raise.

        ``size``: the entry's length when ``raw`` is only its head (an oversized entry, sent in part by take.py)."""
        # The same dead letter as a refused job's (worker/envelopes.py), its evidence the entry's first characters.
        letter_id = f"refused-{uuid.uuid4().hex}"
        partial = size is not None
        size = len(raw) if size is None else size
        evidence = {"queue": queue, **head(_text(raw), size, partial=partial)}
        letter = dead_letter(refusal(letter_id, _operation_of(queue), code, reason), evidence)
        log.error(
            "queue %s: entry of %d bytes refused (%s: %s); kept as dead letter %s",
            queue,
            size,
            code,
            reason,
            letter_id,
        )
        try:
            with self.conn_or_acquire() as client:
                ttl_s = self._option(DEAD_LETTER_TTL_OPTION, 7 * 86400)
                with client.pipeline(transaction=True) as pipe:
                    pipe.set(dead_letter_key(letter_id), letter, ex=ttl_s)
                    pipe.zadd(DEAD_LETTERS_KEY, {letter_id: time.time()})
                    pipe.zadd(REFUSED_LETTERS_KEY, {letter_id: time.time()})
                    pipe.expire(REFUSED_LETTERS_KEY, ttl_s)
                    pipe.zrange(REFUSED_LETTERS_KEY, 0, -MAX_REFUSED_LETTERS - 1)  # the oldest beyond the cap
                    *_, dropped = pipe.execute()
                if dropped:
                    # Bounded in number as well as in size: a flood of junk keeps only the newest letters.
                    with client.pipeline(transaction=True) as pipe:
                        pipe.zrem(REFUSED_LETTERS_KEY, *dropped)
                        pipe.zrem(DEAD_LETTERS_KEY, *dropped)
                        pipe.delete(*(dead_letter_key(_text(m)) for m in dropped))
                        pipe.execute()
        except RedisError as exc:  # the log line above is then the only evidence; the worker carries on
            log.error("dead letter %s not stored: %s", letter_id, str(exc)[:200])

    def _parse(self, item: bytes, queue: str, size: int | None = None) -> dict[str, Any] | None:
        """The queue entry as kombu's payload dict, or None when it was refused.

        ``size`` is the entry's length when the take script sent only its head: an entry past the size limit is
        refused from its length, never read whole.
        """
        limit = self._option(MAX_MESSAGE_BYTES_OPTION, 8 * 2**20)
        if size is not None or len(item) > limit:
            reason = f"a task message is at most {limit} bytes; this one had {len(item) if size is None else size}"
            self.keep_refused(item, queue, "MessageTooLarge", reason, size)
            return None
        try:
            payload = loads(_text(item))  # type: ignore[no-untyped-call]  # kombu's JSON, as kombu reads it
        except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than Python's stack allows
            self.keep_refused(item, queue, "MalformedMessage", f"not JSON: {type(exc).__name__}: {str(exc)[:200]}")
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("properties"), dict):
            self.keep_refused(item, queue, "MalformedMessage", "not a kombu message (no properties)")
            return None
        return payload

    # --- taking messages (take.py) ---

    _waiting_since: float | None = None
    _woken = False
    _waker: Waker | None = None
    _tracking: tuple[Any, int] | None = None
    _tracking_refused = False
    _taking_recorded = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.handlers[WAKE] = self._wake_read
        self._take_keys: list[str] = []

    def _key(self, name: str) -> str:
        return f"{self.global_keyprefix}{name}" if self.global_keyprefix else name

    def _recheck_s(self) -> float:
        """How long a waiting worker trusts Redis's word that the queues are empty before it looks again."""
        options = self.connection.client.transport_options or {}
        if self._tracking_refused:
            return float(options.get(FETCH_POLL_OPTION, DEFAULT_FETCH_POLL_S))
        return float(options.get(IDLE_RECHECK_OPTION, DEFAULT_IDLE_RECHECK_S))

    def _brpop_start(self, timeout: float | None = None) -> None:
        # Sends the take script where kombu sends BRPOP; its reply is read by _brpop_read when the socket is ready.
        if self._waiting_since is not None:
            if not self._woken and time.monotonic() - self._waiting_since < self._recheck_s():
                return
            self._waiting_since = None
            self._woken = False
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        pri_key: Callable[[str, int], str] = self._q_for_pri
        self._take_keys = [pri_key(queue, pri) for pri in self.priority_steps for queue in queues]
        keys = [self._key(k) for k in (self.unacked_key, self.unacked_index_key, *self._take_keys)]
        self._in_poll = self.client.connection
        self._brpop_sent_at = time.monotonic()  # type: ignore[assignment]
        limit = self._option(MAX_MESSAGE_BYTES_OPTION, 8 * 2**20)
        # An oversized entry comes back as its head only: enough bytes for the EVIDENCE_CHARS a dead letter keeps.
        head_bytes = 4 * EVIDENCE_CHARS
        self.client.connection.send_command("EVALSHA", TAKE_SHA, len(keys), *keys, repr(time.time()), limit, head_bytes)

    def _brpop_read(self, **options: Any) -> bool:
        # kombu's _brpop_read (5.4-5.7) for the take script's reply, with the entry parsed by _parse.
        connection = self.client.connection
        try:
            try:
                reply = self.client.parse_response(connection, "EVALSHA", **options)
            except self.connection_errors:
                connection.disconnect()
                raise
            except NoScriptError:  # a new or restarted Redis: load the script, take again on the next tick
                connection.send_command("SCRIPT", "LOAD", TAKE_SCRIPT)
                connection.read_response()
                raise Empty() from None
            except ResponseError as exc:  # e.g. a full Redis refusing the script's writes: the message stays queued
                log.warning("taking a message failed, trying again in %.1f s: %s", self._recheck_s(), exc)
                self._wait(arm=False)
                raise Empty() from None
            if not reply:
                self._wait()
                raise Empty()
            key, item, tag, *size = reply  # a size comes only with the head of an oversized entry
            dest = _text(key)
            if self.global_keyprefix:
                dest = dest.removeprefix(self.global_keyprefix)
            dest = dest.rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            payload = self._parse(item, dest, int(size[0]) if size else None)
            if payload is None:
                if tag:  # refused after the script recorded it: never let kombu redeliver it
                    self.qos._remove_from_indices(_text(tag)).execute()
                return True
            self._taking_recorded = bool(tag)
            try:
                self.connection._deliver(payload, dest)
            finally:
                self._taking_recorded = False
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]
            flush = getattr(self, "_flush_brpop_reauth", None)
            if flush is not None:
                flush()

    def _wait(self, arm: bool = True) -> None:
        """Every queue was empty: wait to be told of a change (or for the recheck interval), not spin."""
        self._waiting_since = time.monotonic()
        self._woken = False
        if arm and not self._tracking_refused:
            try:
                self._woken = self._arm_wake()
            except ResponseError as exc:
                self._drop_waker()
                self._tracking_refused = True
                log.warning(
                    "Redis refused CLIENT TRACKING (%s): an idle worker looks for new messages every %.1f s instead",
                    exc,
                    self._recheck_s(),
                )

    def _arm_wake(self) -> bool:
        """Ask Redis to tell the waker when any queue changes; True if one already holds a message."""
        waker = self._waker
        if waker is None or waker.connection._sock is None:
            self._drop_waker()
            waker = self._waker = Waker(self.client.connection_pool)
            self.connection.cycle._register(self, waker, WAKE)
        connection = self.client.connection
        if self._tracking != (connection._sock, waker.client_id):
            _pipelined(
                connection,
                ("CLIENT", "TRACKING", "OFF"),
                ("CLIENT", "TRACKING", "ON", "REDIRECT", waker.client_id, "OPTIN", "NOLOOP"),
            )
            self._tracking = (connection._sock, waker.client_id)
        # Reading the queues with CLIENT CACHING YES is what makes Redis remember them for this connection. A message
        # pushed since the script looked shows up here; one pushed after it wakes the waker.
        keys = [self._key(k) for k in self._take_keys]
        _, found = _pipelined(connection, ("CLIENT", "CACHING", "YES"), ("EXISTS", *keys))
        return bool(found)

    def _wake_read(self) -> None:
        """The waker's socket is readable: Redis says a queue changed (or the connection dropped)."""
        waker = self._waker
        self._woken = True
        if waker is None:
            return
        try:
            waker.drain()
        except self.connection_errors:
            self._drop_waker()  # the next wait makes a new one; until then the recheck interval applies

    def _drop_waker(self) -> None:
        waker, self._waker = self._waker, None
        self._tracking = None
        if waker is None:
            return
        cycle = self.connection.cycle
        sock = cycle._chan_to_sock.pop((self, waker, WAKE), None)
        if sock is not None:
            cycle._fd_to_chan.pop(sock.fileno(), None)
            try:
                cycle._unregister_from_poll(sock.fileno())
            except (KeyError, ValueError, OSError):
                pass
        try:
            waker.close()
        except (RedisError, OSError):
            pass

    def close(self) -> None:
        """Close the channel and its waker."""
        self._drop_waker()
        super().close()  # type: ignore[no-untyped-call]

    def basic_consume(
        self, queue: str, no_ack: bool, callback: Callable[[Any], Any], consumer_tag: str, **kwargs: Any
    ) -> Any:
        """Consume from ``queue``; an entry whose body does not decode (e.g. not base64) is refused, not raised."""
        tag = super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)  # type: ignore[no-untyped-call]

        def deliver(raw_message: dict[str, Any]) -> Any:
            # kombu's own callback, with the Message construction (which decodes the body) guarded.
            try:
                message = self.Message(raw_message, channel=self)  # type: ignore[no-untyped-call]
                if not message.body:
                    # kombu hands an empty body to Celery undecoded (bytes), and Celery's `'args' in message.payload`
                    # then raises TypeError, an unrecoverable error: the worker would exit (found by make chaos).
                    raise ValueError("the body decodes to no bytes")
            except (ValueError, TypeError, KeyError, RecursionError, KombuError) as exc:  # binascii.Error: ValueError
                self.keep_refused(
                    json.dumps(raw_message, default=str),
                    queue,
                    "MalformedMessage",
                    f"body does not decode: {type(exc).__name__}: {exc}",
                )
                recorded = raw_message.get("properties", {}).get("delivery_tag")
                if self._taking_recorded and isinstance(recorded, str):
                    self.qos._remove_from_indices(recorded).execute()
                return None
            if not no_ack:
                if self._taking_recorded:  # the take script wrote the unacked entry already: only count it here
                    virtual.QoS.append(self.qos, message, message.delivery_tag)  # type: ignore[no-untyped-call]
                    entry = settle.Unacked(
                        self._key(self.unacked_key), self._key(self.unacked_index_key), message.delivery_tag
                    )
                    settle.delivered((message.headers or {}).get("id"), entry)
                else:
                    self.qos.append(message, message.delivery_tag)
            return callback(message)

        self.connection._callbacks[queue] = deliver
        return tag


def _pipelined(connection: Any, *commands: tuple[Any, ...]) -> list[Any]:
    """Send commands together and read every reply before raising the first error, so no reply is left unread."""
    for command in commands:
        connection.send_command(*command)
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(connection.read_response())
        except ResponseError as exc:
            replies.append(exc)
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies


class Poller(kombu_redis.MultiChannelPoller):
    """kombu's poller, reading a channel's waker whenever it is readable, with credit or without (else it spins)."""

    def on_readable(self, fileno: int) -> Any:
        """Dispatch a readable socket; a waker is always drained."""
        chan_type = self._fd_to_chan.get(fileno)
        if chan_type is not None and chan_type[1] == WAKE:
            return chan_type[0]._wake_read()
        return super().on_readable(fileno)  # type: ignore[no-untyped-call]


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the refusing, fetch-window-free channel."""

    Channel = Channel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.cycle = Poller()  # type: ignore[no-untyped-call,assignment]

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        """kombu's registration, plus a tick at the waiting worker's recheck interval so it does look again."""
        super().register_with_event_loop(connection, loop)  # type: ignore[no-untyped-call]
        options = self.client.transport_options or {}  # type: ignore[union-attr]
        interval = min(
            float(options.get(FETCH_POLL_OPTION, DEFAULT_FETCH_POLL_S)),
            float(options.get(IDLE_RECHECK_OPTION, DEFAULT_IDLE_RECHECK_S)),
        )
        old = getattr(self, "_recheck_tref", None)
        if old is not None:
            old.cancel()
        self._recheck_tref = loop.call_repeatedly(interval, _nothing)


def _nothing() -> None:
    """A timer that only wakes the event loop, whose tick then runs the poller."""


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """The refusing, fetch-window-free channel on the master Redis Sentinel names; a failover reconnects it there.

    The take script and the waker ride its connections: on the new master the script is loaded again (NOSCRIPT)
    and CLIENT TRACKING re-armed, since both belong to a connection that is new. Its connections check ROLE on
    connect (producer/masters.py): a server the sentinels still name but that is a replica by now is refused.
    """

    connection_class = MasterConnection
    connection_class_ssl = MasterSSLConnection  # type: ignore[assignment]

    def close(self) -> None:
        """Close; a channel whose connection is already gone skips what would need a new pool."""
        try:
            super().close()
        except AttributeError:
            # kombu's sentinel channel builds a new pool to give back its unacked messages on close, and cannot once
            # its connection was released (a failover): `connection.client` is None. Celery took that as an
            # unrecoverable error and the worker exited. Those messages come back after the visibility timeout
            # like any other unacknowledged one (test_sentinel.py).
            if getattr(self.connection, "client", None) is not None:
                raise
            log.warning("channel closed after its connection was gone: its unacked messages return on timeout")


class SentinelTransport(Transport):
    """The facequeue transport for sentinel:// URLs (kombu's SentinelTransport, with the facequeue channel)."""

    Channel = SentinelChannel
    default_port = 26379  # type: ignore[assignment]
