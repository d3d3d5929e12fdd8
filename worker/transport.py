"""kombu's Redis transport, made to survive a malformed queue entry: it is logged, kept as a dead letter, skipped.

kombu parses a queue entry (JSON, then the base64 body) inside the consumer's event loop; any entry it cannot parse
raises there, Celery calls that an "Unrecoverable error" and the worker process exits, leaving the messages it had
reserved to wait out the visibility timeout. Anyone who can LPUSH to a queue could stop every worker that way,
signed mode included (the signature is checked only after parsing). Here an entry that does not parse, or is larger
than any message a producer sends, never reaches Celery: the worker logs it, keeps its first bytes as evidence in
the dead letters (bounded in size, expiring with the results) and reads the next one.

Selected with Celery's ``broker_transport`` setting (worker/app.py); the URL scheme (redis://, rediss://) still
decides how to connect.
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
from kombu.transport.virtual import Empty
from kombu.utils.json import loads
from redis.exceptions import RedisError

from producer.contract import (
    DEAD_LETTERS_KEY,
    MAX_REFUSED_LETTERS,
    REFUSED_LETTERS_KEY,
    TASK_NAMES,
    JobError,
    JobStatus,
    ResultEnvelope,
    dead_letter_key,
    utcnow,
)

log = logging.getLogger("facequeue.worker")

MAX_MESSAGE_BYTES_OPTION = "facequeue_max_message_bytes"
DEAD_LETTER_TTL_OPTION = "facequeue_dead_letter_ttl_s"
EVIDENCE_CHARS = 4096
"""How much of a refused entry a dead letter keeps: enough to recognise it, never megabytes."""


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


_OPERATIONS = {name.rpartition(".")[2]: op.value for op, name in TASK_NAMES.items()}


def _operation_of(queue: str) -> str:
    """The operation a queue carries (`<base>.<operation>`), or "Unknown" for the bare queue."""
    return _OPERATIONS.get(queue.rpartition(".")[2], "Unknown")


def refusal_letter(raw: str, queue: str, code: str, reason: str, size: int) -> tuple[str, str]:
    """A dead letter (id, JSON) for a queue entry refused unread: its first characters, its size, its queue."""
    letter_id = f"refused-{uuid.uuid4().hex}"
    now = utcnow()
    envelope = ResultEnvelope(
        job_id=letter_id,
        operation=_operation_of(queue),
        status=JobStatus.FAILED,
        error=JobError(code=code, message=reason, retryable=False),
        attempts=0,
        started_at=now,
        finished_at=now,
    )
    evidence = {"queue": queue, "bytes": size, "head": raw[:EVIDENCE_CHARS], "truncated": len(raw) > EVIDENCE_CHARS}
    letter = {"job": evidence, "envelope": envelope.model_dump(mode="json", exclude_none=True)}
    return letter_id, json.dumps(letter)


class Channel(kombu_redis.Channel):
    """A Redis channel that refuses, instead of raising on, queue entries it cannot parse."""

    def _option(self, name: str, default: int) -> int:
        return int((self.connection.client.transport_options or {}).get(name, default))

    def keep_refused(self, raw: bytes | str, queue: str, code: str, reason: str) -> None:
        """Log a refused queue entry and keep its first bytes as a dead letter; never raise."""
        text = _text(raw)
        letter_id, letter = refusal_letter(text, queue, code, reason, len(raw))
        log.error(
            "queue %s: entry of %d bytes refused (%s: %s); kept as dead letter %s",
            queue,
            len(raw),
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

    def _parse(self, item: bytes, queue: str) -> dict[str, Any] | None:
        """The queue entry as kombu's payload dict, or None when it was refused."""
        limit = self._option(MAX_MESSAGE_BYTES_OPTION, 8 * 2**20)
        if len(item) > limit:
            reason = f"a task message is at most {limit} bytes; this one had {len(item)}"
            self.keep_refused(item, queue, "MessageTooLarge", reason)
            return None
        try:
            payload = loads(_text(item))  # type: ignore[no-untyped-call]  # kombu's JSON, as kombu reads it
        except ValueError as exc:
            self.keep_refused(item, queue, "MalformedMessage", f"not JSON: {exc}")
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("properties"), dict):
            self.keep_refused(item, queue, "MalformedMessage", "not a kombu message (no properties)")
            return None
        return payload

    def _brpop_read(self, **options: Any) -> bool:
        # kombu's own _brpop_read (5.4-5.6), with the entry parsed by _parse instead of a bare loads().
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            if not dest__item:
                raise Empty()
            dest, item = dest__item
            dest = _text(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            payload = self._parse(item, dest)
            if payload is not None:
                self.connection._deliver(payload, dest)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]
            flush = getattr(self, "_flush_brpop_reauth", None)
            if flush is not None:
                flush()

    def basic_consume(
        self, queue: str, no_ack: bool, callback: Callable[[Any], Any], consumer_tag: str, **kwargs: Any
    ) -> Any:
        """Consume from ``queue``; an entry whose body does not decode (e.g. not base64) is refused, not raised."""
        tag = super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)  # type: ignore[no-untyped-call]

        def deliver(raw_message: dict[str, Any]) -> Any:
            # kombu's own callback, with the Message construction (which decodes the body) guarded.
            try:
                message = self.Message(raw_message, channel=self)  # type: ignore[no-untyped-call]
            except (ValueError, TypeError, KeyError, KombuError) as exc:  # binascii.Error is a ValueError
                self.keep_refused(
                    json.dumps(raw_message, default=str),
                    queue,
                    "MalformedMessage",
                    f"body does not decode: {type(exc).__name__}: {exc}",
                )
                return None
            if not no_ack:
                self.qos.append(message, message.delivery_tag)
            return callback(message)

        self.connection._callbacks[queue] = deliver
        return tag


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the refusing channel."""

    Channel = Channel
