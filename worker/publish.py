"""Publish a result envelope exactly once: result key, results stream, batch progress, waiters' notification.

One Lua script does all of it atomically, guarded by SET NX on the result key: a job redelivered after a crash or a
visibility timeout runs again, but its second envelope finds the key taken and publishes nothing. The caller gets the
first envelope back, so Celery's result backend agrees with the stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydantic_core

from producer.connection import RedisTarget
from producer.contract import (
    DEAD_LETTERS_KEY,
    BlobImage,
    JobStatus,
    ResultEnvelope,
    batch_key,
    batch_stream_key,
    blob_key,
    dead_letter_key,
    done_channel,
    journal_key,
    result_key,
)
from worker.cache import CacheEntry
from worker.coalesce import CoalescedScript
from worker.envelopes import dead_letter

_PUBLISH = """
-- KEYS: result key, results stream, dead-letter index, dead-letter key; then, only when present and in this order:
-- the batch hash and its stream, the response-cache key, the job's journal key. Only real key names are passed, so
-- a Redis user limited to facequeue's key patterns can run it (an empty name is a key it may not touch).
-- ARGV: envelope JSON, ttl seconds, status, job id, stream maxlen, done channel, dead letter JSON ('' unless failed),
-- cached response JSON, cache ttl seconds, which optional keys follow ('b' batch, 'c' cache, 'j' journal, 'm' Celery's
-- result meta, 'a' kombu's unacked hash and its index), the JSON before and after the envelope in Celery's meta
-- ('' without 'm'), the message's delivery tag ('' without 'a'), then the job's blob keys to release (succeeded jobs
-- only: a dead letter keeps its image for a retry)
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return 0
end
local k = 5
local batch, batch_stream, cache, journal, meta
if string.find(ARGV[10], 'b', 1, true) then batch, batch_stream, k = KEYS[k], KEYS[k + 1], k + 2 end
if string.find(ARGV[10], 'c', 1, true) then cache, k = KEYS[k], k + 1 end
if string.find(ARGV[10], 'j', 1, true) then journal, k = KEYS[k], k + 1 end
if string.find(ARGV[10], 'm', 1, true) then meta, k = KEYS[k], k + 1 end
if string.find(ARGV[10], 'a', 1, true) then
  -- kombu's ack of the message (MULTI ZREM HDEL EXEC after the task), in the step that publishes its one job.
  redis.call('ZREM', KEYS[k + 1], ARGV[13])
  redis.call('HDEL', KEYS[k], ARGV[13])
end
if cache then
  redis.call('SET', cache, ARGV[8], 'NX', 'EX', ARGV[9])
end
if journal then
  -- The answer it recorded before publishing has done its job: the result key now stands for it.
  redis.call('DEL', journal)
end
for i = 14, #ARGV do
  if redis.call('DECR', ARGV[i] .. ':refs') <= 0 then
    redis.call('DEL', ARGV[i], ARGV[i] .. ':refs')
  end
end
if ARGV[7] ~= '' then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[3], tonumber(t[1]) + tonumber(t[2]) / 1e6, ARGV[4])
  redis.call('SET', KEYS[4], ARGV[7], 'EX', ARGV[2])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'job_id', ARGV[4], 'status', ARGV[3], 'envelope', ARGV[1])
if batch then
  redis.call('HINCRBY', batch, ARGV[3], 1)
  redis.call('EXPIRE', batch, ARGV[2])
  redis.call('XADD', batch_stream, '*', 'job_id', ARGV[4], 'status', ARGV[3])
  redis.call('EXPIRE', batch_stream, ARGV[2])
end
redis.call('PUBLISH', ARGV[6], ARGV[3])
if meta then
  -- What Celery's Redis backend sends for a task's return value (SETEX, then PUBLISH on the key's channel, which
  -- AsyncResult.get() listens to), written here once, with the result it reports.
  local value = ARGV[11] .. ARGV[1] .. ARGV[12]
  redis.call('SET', meta, value, 'EX', ARGV[2])
  redis.call('PUBLISH', meta, value)
end
return 1
"""


@dataclass
class CeleryResult:
    """Celery's result of a single-job message, for the publish script to write with the job's own result.

    Celery's Redis backend would store the task's return value after the task: a GET (it never overwrites a
    SUCCESS), then MULTI SETEX PUBLISH EXEC, two round trips a job. Written by the script instead, the meta appears
    in the same atomic step as the result it reports, and only when that step publishes; ``written`` tells the
    task so, and the task then asks Celery to store nothing (tasks.py). When the result was already published (a
    redelivery, a second message for the same job id), Celery's backend stores it as before.
    """

    key: str
    """Celery's result key for the task, ``celery-task-meta-<task id>`` (the backend's own key prefix)."""
    task_id: str
    written: bool = False
    unacked: tuple[str, str, str] | None = None
    """The message's entry in kombu's unacked hash, its index and its delivery tag (worker/broker/settle.py): the
    script acknowledges the message when it publishes, and ``written`` then also says it did."""

    def around(self) -> tuple[str, str]:
        """The JSON before and after the envelope in the meta Celery's backend writes for a task's return value.

        The same fields as ``BaseBackend._get_result_meta`` for SUCCESS, without a group, parent, children or
        ``result_extended`` (tasks.py leaves those messages to Celery), dated now in UTC as Celery's ``app.now()``.
        """
        date_done = datetime.now(UTC).isoformat()
        tail: dict[str, Any] = {"traceback": None, "children": [], "date_done": date_done, "task_id": self.task_id}
        return '{"status": "SUCCESS", "result": ', ", " + json.dumps(tail)[1:]


class Publisher:
    """Publishes envelopes through one registered Lua script, pipelined across jobs that publish together."""

    def __init__(
        self, redis: Any, *, stream: str, stream_maxlen: int, ttl_s: int, durable: RedisTarget | None = None
    ) -> None:
        self._redis = redis
        self._script = CoalescedScript(redis, redis.register_script(_PUBLISH), durable)
        self._stream = stream
        self._maxlen = stream_maxlen
        self._ttl_s = ttl_s

    async def publish(
        self,
        envelope: ResultEnvelope,
        job: Any = None,
        release: Sequence[BlobImage] = (),
        cache: CacheEntry | None = None,
        journaled: bool = False,
        celery: CeleryResult | None = None,
    ) -> tuple[ResultEnvelope, bool]:
        """Publish unless already published; return the envelope that stands and whether this call published it.

        A failed envelope also becomes a dead letter, kept with ``job`` (the job as received) so it can be retried;
        a succeeded one releases the job's references to the blobs in ``release``, and stores its response (fresh
        from Rekognition) under ``cache`` in the response cache in the same round trip (first writer wins).
        ``journaled`` drops the answer the job recorded before publishing (journal.py), now that the result key
        stands for it. ``celery`` is Celery's
        result for the task, written with this envelope when this call publishes it (``celery.written``).
        """
        batch = envelope.batch_id
        envelope_json = envelope.model_dump_json(exclude_none=True)
        dead = ""
        cached = b""
        blobs: list[str] = []
        if envelope.status is JobStatus.FAILED:
            dead = dead_letter(envelope_json, job)
        else:
            blobs = [blob_key(b.sha256) for b in release]
            if cache:
                # pydantic-core's serialiser: the response is a few KB of nested JSON; json.dumps cost ~3% of the loop.
                cached = pydantic_core.to_json(envelope.response, fallback=str)
        keys = [result_key(envelope.job_id), self._stream, DEAD_LETTERS_KEY, dead_letter_key(envelope.job_id)]
        present = ""
        if batch:
            keys += [batch_key(batch), batch_stream_key(batch)]
            present += "b"
        if cached and cache:
            keys.append(cache.key)
            present += "c"
        if journaled:
            keys.append(journal_key(envelope.job_id))
            present += "j"
        head, tail, tag = "", "", ""
        if celery is not None:
            keys.append(celery.key)
            present += "m"
            head, tail = celery.around()
            if celery.unacked is not None:
                unacked, index, tag = celery.unacked
                keys += [unacked, index]
                present += "a"
        args = [
            envelope_json,
            self._ttl_s,
            envelope.status.value,
            envelope.job_id,
            self._maxlen,
            done_channel(envelope.job_id),
            dead,
            cached,
            cache.ttl_s if cached and cache else 0,
            present,
            head,
            tail,
            tag,
            *blobs,
        ]
        if await self._script(keys=keys, args=args):
            if celery is not None:
                celery.written = True
            return envelope, True
        existing = await self._redis.get(result_key(envelope.job_id))
        return (ResultEnvelope.model_validate_json(existing) if existing else envelope), False

    async def dead_letter(self, envelope: ResultEnvelope, job: Any) -> None:
        """Keep a job as a dead letter without publishing its result (for when Redis refuses the publish itself)."""
        dead = dead_letter(envelope, job)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(DEAD_LETTERS_KEY, {envelope.job_id: time.time()})
            pipe.set(dead_letter_key(envelope.job_id), dead, ex=self._ttl_s)
            await pipe.execute()

    async def published(self, job_id: str, prefetched: Mapping[str, bytes | None]) -> ResultEnvelope | None:
        """Return the job's published envelope, if any (a redelivered job checks this before paying again).

        ``prefetched`` holds the result key when the caller read it with the job's other keys (one MGET).
        """
        key = result_key(job_id)
        existing = prefetched[key] if key in prefetched else await self._redis.get(key)
        return ResultEnvelope.model_validate_json(existing) if existing else None
