"""FaceQueue: submit face jobs, wait for results, follow batches. Sync and asyncio flavours over one Redis layout."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import ValidationError
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ExecAbortError, OutOfMemoryError
from redis.retry import Retry

from producer import jobs as _jobs
from producer.connection import check_replicated, sync_client, wait_command
from producer.contract import (
    DEAD_LETTERS_KEY,
    Job,
    ResultEnvelope,
    batch_key,
    batch_stream_key,
    blob_key,
    blob_refs_key,
    dead_letter_key,
    done_channel,
    job_blobs,
    new_id,
    parse_job,
    queue_for,
    result_key,
)
from producer.cursor import ResultsCursor, rewound, tail_id
from producer.jobs import PreparedJob
from producer.messages import Signer, protocol_app, task_message
from producer.settings import ProducerSettings
from producer.staging import S3Stage
from producer.window import Wait, Window, job_bytes

# Ride out a Redis restart or failover (about 30 s) instead of failing the caller: every command the client sends is
# safe to repeat (re-sent task messages are deduplicated by job id when results are published).
REDIS_RETRIES = 20
REDIS_BACKOFF = ExponentialWithJitterBackoff(base=0.1, cap=2.0)

# Wait loops re-read the result key at least this often, so a lost pub/sub notification (a Redis restart, a
# reconnect) delays a waiter by at most this long instead of forever.
RECHECK_S = 1.0


class Deadline:
    """The end of a wait: how long the next blocking read may last, and a TimeoutError once it has passed."""

    def __init__(self, timeout_s: float | None) -> None:
        self.timeout_s = timeout_s
        self._at = None if timeout_s is None else time.monotonic() + timeout_s

    def next_block_s(self, message: str) -> float:
        """Seconds the next read may block (at most RECHECK_S); raise TimeoutError(message) when time is up."""
        if self._at is None:
            return RECHECK_S
        remaining = self._at - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(message)
        return min(RECHECK_S, remaining)


@dataclass(frozen=True)
class JobHandle:
    """What submit returns: enough to wait for the job's result."""

    job_id: str
    batch_id: str


@dataclass(frozen=True)
class BatchHandle:
    """What submit_many returns."""

    batch_id: str
    job_ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.job_ids)


_COUNTERS = frozenset({"total", "submitted", "succeeded", "failed", "sealed", "queued"})


@dataclass(frozen=True)
class BatchProgress:
    """A batch's counters: jobs submitted, succeeded and failed so far."""

    batch_id: str
    total: int
    succeeded: int
    failed: int
    sealed: bool
    """True once every job of the batch has been submitted."""

    @property
    def done(self) -> int:
        """Jobs with a published result."""
        return self.succeeded + self.failed

    @property
    def finished(self) -> bool:
        """True when every submitted job of a sealed batch has a result."""
        return self.sealed and self.done >= self.total

    @classmethod
    def from_hash(cls, batch_id: str, raw: dict[Any, Any]) -> BatchProgress:
        """Build from the batch hash as redis-py returns it (bytes keys and values)."""
        # Only the counters: the hash also holds a resume's details (last_label, spec), which are not numbers.
        fields = {
            name: int(v) for k, v in raw.items() if (name := k.decode() if isinstance(k, bytes) else k) in _COUNTERS
        }
        return cls(
            batch_id=batch_id,
            total=fields.get("total", fields.get("submitted", 0)),
            succeeded=fields.get("succeeded", 0),
            failed=fields.get("failed", 0),
            sealed=bool(fields.get("sealed", 0)),
        )


@dataclass(frozen=True)
class DeadLetter:
    """A job that failed for good, with its failed result; ``job`` is None if it never matched the contract."""

    job_id: str
    envelope: ResultEnvelope
    job: Job | None
    raw_job: Any

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        """Parse a stored dead letter."""
        data = json.loads(raw)
        envelope = ResultEnvelope.model_validate(data["envelope"])
        try:
            job: Job | None = parse_job(data["job"])
        except ValidationError:
            job = None
        return cls(envelope.job_id, envelope, job, data["job"])


class UnknownBatchError(LookupError):
    """No such batch in Redis: never submitted, or its progress expired."""


class RedisFullError(RuntimeError):
    """Redis refused writes (maxmemory) part-way through a batch. Every chunk goes in whole or not at all, so the jobs
    counted in ``jobs_queued`` are queued with their images and will run, and nothing of the rest is in Redis."""

    code = "RedisFull"

    def __init__(self, batch_id: str, jobs_queued: int) -> None:
        self.batch_id = batch_id
        self.jobs_queued = jobs_queued
        if jobs_queued:
            went = f"after {jobs_queued} of its jobs were queued (they will run; nothing of the rest is in Redis)"
            then = f"resume it with `facequeue resume {batch_id}` (FaceQueue.resume)"
        else:
            went, then = "before any of its jobs was queued", "submit it again"
        super().__init__(
            f"RedisFull: Redis refused writes (its maxmemory is reached) at batch {batch_id} {went}; {then} once "
            "workers have freed memory, or give Redis more maxmemory, a smaller FACEQUEUE_WINDOW_BLOB_BYTES, or "
            "stage the photos in S3 (--stage)"
        )


def _full(exc: Exception) -> bool:
    """True for Redis's refusal at maxmemory (OOM), as redis-py reports it in or out of a transaction."""
    return isinstance(exc, OutOfMemoryError) or (isinstance(exc, ExecAbortError) and "OOM" in str(exc))


WaitHook = Callable[[BatchProgress, Window], None]
"""Called while a submission waits for results to make room in its window (after each second without one)."""


@dataclass(frozen=True)
class BatchState:
    """What a resume needs of a batch: its progress, how many of its jobs are queued, the last one's label, and
    the command line that built it (the CLI's, as JSON), if any."""

    progress: BatchProgress
    queued: int
    last_label: str | None
    spec: str | None

    @classmethod
    def from_hash(cls, batch_id: str, raw: dict[Any, Any]) -> BatchState:
        """Build from the batch hash as redis-py returns it."""
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}
        text = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in fields.items()}
        progress = BatchProgress.from_hash(batch_id, raw)
        return cls(progress, int(text.get("queued", progress.total)), text.get("last_label") or None, text.get("spec"))


class ClientCore:
    """What FaceQueue and AsyncFaceQueue (aclient.py) share: settings, message building, a chunk's commands."""

    def __init__(self, settings: ProducerSettings | None) -> None:
        self.settings = settings or ProducerSettings()
        self._app = protocol_app()
        signing = self.settings.signing()
        self._signer = Signer(signing) if signing else None

    def add_wait(self, pipe: Any) -> bool:
        """End a pipeline of writes with WAIT when they must reach replicas (FACEQUEUE_REDIS_WAIT_REPLICAS)."""
        command = wait_command(self.settings)
        if command is not None:
            pipe.execute_command(*command)
        return command is not None

    def check_wait(self, waited: bool, replies: list[Any], what: str) -> None:
        """Raise NotReplicatedError when the pipeline's WAIT says too few replicas hold its writes."""
        if waited:
            check_replicated(self.settings, replies[-1], what)

    def chunk_commands(
        self,
        pipe: Any,
        batch_id: str,
        chunk: list[PreparedJob],
        queued_before: int = 0,
        spec: str | None = None,
        max_message_bytes: int = 2**63,
    ) -> list[str]:
        """Queue one chunk's blob stores, counters and task messages on a pipeline; return the job ids.

        On a transaction (MULTI/EXEC) the chunk goes in whole or not at all: Redis refuses the whole transaction when
        one of its commands meets maxmemory, so no image is left without its job, nor a job without its image.
        """
        s = self.settings
        key = batch_key(batch_id)
        # How many of the batch's jobs are queued, in input order, set (not added) so a re-sent chunk cannot inflate
        # it: a resume skips exactly these. The last label lets it check that it was given the same inputs.
        pipe.hset(key, mapping={"queued": queued_before + len(chunk), "last_label": chunk[-1].job.label or ""})
        if spec is not None:
            pipe.hsetnx(key, "spec", spec)
        # A running count for progress displays; the exact total is set once, when the batch is sealed, so a chunk
        # re-sent after a lost reply (redis-py retries on connection errors) cannot inflate it.
        pipe.hincrby(key, "submitted", len(chunk))
        pipe.expire(key, s.result_ttl_s)
        # One reference per job on each blob it reads, counted before any of the chunk's messages is pushed: a
        # worker releases a reference when it publishes a success, and deletes the blob with the last one.
        refs = Counter(blob.sha256 for prepared in chunk for blob in job_blobs(prepared.job))
        for digest, count in refs.items():
            pipe.incrby(blob_refs_key(digest), count)
            pipe.expire(blob_refs_key(digest), s.blob_ttl_s)
        ids = []
        packed: list[Job] = []
        packed_bytes = 0
        # Every chunk stores the blobs its own jobs read, even ones an earlier chunk of the batch stored: that
        # chunk's jobs may all have finished meanwhile and deleted the blob with its last reference.
        seen: set[str] = set()
        for prepared in chunk:
            for digest, data in prepared.blobs.items():
                if digest not in seen:
                    # NX: identical photos are stored once; EX: they vanish if nobody runs the job (and EXPIRE
                    # renews a blob an earlier batch stored).
                    pipe.set(blob_key(digest), data, nx=True, ex=s.blob_ttl_s)
                    pipe.expire(blob_key(digest), s.blob_ttl_s)
                    seen.add(digest)
            job = prepared.job.model_copy(update={"batch_id": batch_id})
            size = job_bytes(prepared)
            # A worker reads a message's images in one MGET, which Redis holds in its output buffer while it sends
            # it: a message carries at most max_message_bytes of images, so that buffer stays small.
            if packed and (
                len(packed) >= s.jobs_per_message
                or packed[0].operation is not job.operation
                or packed_bytes + size > max_message_bytes
            ):
                self._push(pipe, packed)
                packed, packed_bytes = [], 0
            packed.append(job)
            packed_bytes += size
            ids.append(job.job_id)
        if packed:
            self._push(pipe, packed)
        return ids

    def _push(self, pipe: Any, jobs: list[Job]) -> None:
        """Queue one task message carrying ``jobs`` (all of one operation) on its operation's queue."""
        queue = queue_for(self.settings.queue, jobs[0].operation)
        pipe.lpush(queue, task_message(self._app, jobs, queue, self._signer))

    def window(self) -> Window:
        """A fresh window for one submission, sized by the settings."""
        s = self.settings
        return Window(s.window_blob_bytes, s.window_jobs, s.submit_chunk)

    def counted(self, prepared: Iterable[PreparedJob], start: int = 0) -> Iterator[PreparedJob]:
        """The jobs, enforcing the batch size limit (``start`` jobs of the batch are queued already)."""
        for count, item in enumerate(prepared, start + 1):
            if count > self.settings.max_batch_jobs:
                raise ValueError(
                    f"a batch holds at most {self.settings.max_batch_jobs} jobs (FACEQUEUE_MAX_BATCH_JOBS)"
                )
            yield item

    @staticmethod
    def skip_queued(prepared: Iterable[PreparedJob], state: BatchState) -> Iterator[PreparedJob]:
        """The jobs a resume still has to submit: ``prepared`` less the batch's queued ones, checked by label."""
        items = iter(prepared)
        last: PreparedJob | None = None
        for given in range(state.queued):
            last = next(items, None)
            if last is None:
                raise ValueError(
                    f"batch {state.progress.batch_id} has {state.queued} jobs queued, more than the {given} inputs "
                    "given to resume it"
                )
        if last is not None and state.last_label and last.job.label != state.last_label:
            raise ValueError(
                f"batch {state.progress.batch_id}: its job {state.queued} was {state.last_label!r}, but the inputs "
                f"given to resume it have {last.job.label!r} there; resume with the inputs it was submitted from"
            )
        return items

    def full(self, exc: Exception, batch_id: str, queued: int) -> Exception:
        """The error to raise for a failed chunk: RedisFullError at maxmemory, else the error itself."""
        return RedisFullError(batch_id, queued) if _full(exc) else exc

    def seal(self, pipe: Any, batch_id: str, total: int) -> None:
        """Mark a batch complete with its exact size: iterators stop once every one of its jobs has a result."""
        pipe.hset(batch_key(batch_id), mapping={"total": total, "sealed": 1})
        pipe.expire(batch_key(batch_id), self.settings.result_ttl_s)


def stream_entries(reply: Any) -> list[tuple[str, dict[bytes, bytes]]]:
    """Flatten an XREAD reply into (entry id, fields) pairs, oldest first."""
    return [(entry_id.decode(), fields) for _stream, entries in reply or [] for entry_id, fields in entries]


def parse_envelope(raw: bytes | str) -> ResultEnvelope:
    """Parse a stored result envelope."""
    return ResultEnvelope.model_validate_json(raw)


class FaceQueue(ClientCore):
    """The synchronous client: for web handlers, scripts and the CLI.

    Jobs may run more than once (a worker killed mid-job is redelivered); each job's result is published once.
    """

    def __init__(self, settings: ProducerSettings | None = None, client: redis.Redis | None = None) -> None:
        super().__init__(settings)
        self.redis: redis.Redis = client or sync_client(
            self.settings,
            retry=Retry(REDIS_BACKOFF, REDIS_RETRIES),
        )

    def close(self) -> None:
        """Close the Redis connections."""
        self.redis.close()

    def __enter__(self) -> FaceQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self, timeout_s: float = 2.0) -> None:
        """Raise redis.ConnectionError at once if Redis does not answer (no retries: for a quick health check)."""
        quick = sync_client(
            self.settings, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, retry=Retry(REDIS_BACKOFF, 0)
        )
        try:
            quick.ping()
        finally:
            quick.close()

    # --- submitting ---

    def submit(self, prepared: PreparedJob) -> JobHandle:
        """Submit one job (as a batch of one) and return its handle."""
        batch = self.submit_many([prepared])
        return JobHandle(batch.job_ids[0], batch.batch_id)

    def submit_many(
        self,
        prepared: Iterable[PreparedJob],
        batch_id: str | None = None,
        *,
        stage: S3Stage | None = None,
        on_wait: WaitHook | None = None,
        spec: str | None = None,
    ) -> BatchHandle:
        """Submit many jobs as one batch, within the window (FACEQUEUE_WINDOW_BLOB_BYTES, FACEQUEUE_WINDOW_JOBS).

        ``prepared`` is read as it is sent, so it may be a generator of any length; past the window the call waits
        for results before storing more. With ``stage`` the images go to S3 and the jobs carry S3 references.
        Raises RedisFullError when Redis refuses writes part-way (then ``resume``). ``spec`` is stored with the
        batch for `facequeue resume` (the CLI's command line).
        """
        return self._submit(batch_id or new_id(), prepared, 0, stage, on_wait, spec)

    def batch_state(self, batch_id: str) -> BatchState:
        """The batch's progress, queued count and resume details; UnknownBatchError if Redis has none."""
        raw = self.redis.hgetall(batch_key(batch_id))
        if not raw:
            raise UnknownBatchError(f"no batch {batch_id} (never submitted, or expired)")
        return BatchState.from_hash(batch_id, raw)

    def resume(
        self,
        batch_id: str,
        prepared: Iterable[PreparedJob],
        *,
        stage: S3Stage | None = None,
        on_wait: WaitHook | None = None,
    ) -> BatchHandle:
        """Finish submitting a batch stopped part-way (RedisFullError, an interrupt): give it the same inputs, in the
        same order; the jobs already queued are skipped, so none is submitted twice and none is lost. The handle
        holds the jobs this call submitted."""
        state = self.batch_state(batch_id)
        if state.progress.sealed:
            return BatchHandle(batch_id, ())
        return self._submit(batch_id, self.skip_queued(prepared, state), state.queued, stage, on_wait, None)

    def _submit(
        self,
        batch_id: str,
        prepared: Iterable[PreparedJob],
        queued: int,
        stage: S3Stage | None,
        on_wait: WaitHook | None,
        spec: str | None,
    ) -> BatchHandle:
        window = self.window()
        if stage is not None:
            prepared = stage.stage_all(prepared)
        ids: list[str] = []
        for step in window.plan(self.counted(prepared, queued)):
            if isinstance(step, Wait):
                self._await_results(batch_id, window, on_wait)
                continue
            pipe = self.redis.pipeline(transaction=True)
            chunk_ids = self.chunk_commands(pipe, batch_id, step, queued, spec, window.max_chunk_bytes)
            try:
                pipe.execute()
            except redis.ResponseError as exc:
                raise self.full(exc, batch_id, queued) from exc
            self.wait_replicas(f"batch {batch_id}: {queued + len(step)} jobs submitted")
            for item, job_id in zip(step, chunk_ids, strict=True):
                window.add(job_id, job_bytes(item))
            queued += len(step)
            ids += chunk_ids
        pipe = self.redis.pipeline(transaction=True)
        self.seal(pipe, batch_id, queued)
        try:
            pipe.execute()
        except redis.ResponseError as exc:
            raise self.full(exc, batch_id, queued) from exc
        self.wait_replicas(f"batch {batch_id}: sealing at {queued} jobs")
        return BatchHandle(batch_id, tuple(ids))

    def wait_replicas(self, what: str) -> None:
        """After a chunk's transaction: WAIT for replicas when FACEQUEUE_REDIS_WAIT_REPLICAS asks for it (a WAIT
        inside MULTI would not block)."""
        command = wait_command(self.settings)
        if command is not None:
            check_replicated(self.settings, self.redis.execute_command(*command), what)  # type: ignore[no-untyped-call]

    def _await_results(self, batch_id: str, window: Window, on_wait: WaitHook | None) -> None:
        """Block up to a second for results of the batch, and release them from the window."""
        stream = batch_stream_key(batch_id)
        entries = stream_entries(self.redis.xread({stream: window.cursor}, count=1000, block=1000))
        if entries:
            window.cursor = entries[-1][0]
            window.release(fields[b"job_id"].decode() for _, fields in entries)
            return
        # A stream that moved back past the cursor (a failover, producer/cursor.py) is read again from its start:
        # releasing a job twice is a no-op, never releasing it would stall the submit.
        window.cursor = rewound(window.cursor, tail_id(self.redis.xrevrange(stream, count=1)))
        if on_wait is not None:
            on_wait(self.progress(batch_id), window)

    def detect_faces(self, image: _jobs.ImageInput, **params: Any) -> JobHandle:
        """Submit one DetectFaces job (attributes=DEFAULT|ALL|names)."""
        return self.submit(_jobs.detect_faces(image, max_bytes=self.settings.max_image_bytes, **params))

    # --- reading ---

    def get_result(self, job_id: str) -> ResultEnvelope | None:
        """Return the job's result if it has been published, else None."""
        raw = self.redis.get(result_key(job_id))
        return parse_envelope(raw) if raw else None

    def result(self, job: JobHandle | str, timeout_s: float | None = 60.0) -> ResultEnvelope:
        """Wait for one job's result; raise TimeoutError after timeout_s (None waits forever)."""
        job_id = job.job_id if isinstance(job, JobHandle) else job
        deadline = Deadline(timeout_s)
        found = self.get_result(job_id)
        if found:
            return found
        with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:  # type: ignore[no-untyped-call]
            pubsub.subscribe(done_channel(job_id))
            while True:
                # Re-read after subscribing: the result may have landed between the first read and the subscribe.
                found = self.get_result(job_id)
                if found:
                    return found
                block_s = deadline.next_block_s(f"no result for job {job_id} within {timeout_s} s")
                pubsub.get_message(timeout=block_s)

    def progress(self, batch_id: str) -> BatchProgress:
        """Return a batch's counters; raise UnknownBatchError if Redis has none."""
        raw = self.redis.hgetall(batch_key(batch_id))
        if not raw:
            raise UnknownBatchError(f"no batch {batch_id} (never submitted, or expired)")
        return BatchProgress.from_hash(batch_id, raw)

    def iter_results(
        self,
        batch_id: str,
        timeout_s: float | None = None,
        on_idle: Callable[[BatchProgress], None] | None = None,
    ) -> Iterator[ResultEnvelope]:
        """Yield a batch's results in completion order until every job has one; TimeoutError on a stall.

        ``on_idle(progress)`` runs after every second without a result, and may raise to stop waiting (the jobs
        are not touched): the CLI uses it to notice that no worker consumes the queue.
        """
        stream = batch_stream_key(batch_id)
        cursor = ResultsCursor()
        deadline = Deadline(timeout_s)
        while True:
            progress = self.progress(batch_id)
            if progress.sealed and len(cursor.seen) >= progress.total:
                return
            block_s = deadline.next_block_s(
                f"batch {batch_id}: {len(cursor.seen)}/{progress.total} results after {timeout_s} s"
            )
            block_ms = max(1, int(block_s * 1000))
            entries = stream_entries(self.redis.xread({stream: cursor.last_id}, count=500, block=block_ms))
            if not entries:
                if on_idle is not None:
                    on_idle(progress)
                # A failover may have changed the stream under the cursor (producer/cursor.py).
                cursor.after_idle(tail_id(self.redis.xrevrange(stream, count=1)), progress.done)
                continue
            fresh = cursor.advance(entries)
            if not fresh:
                continue
            raws: list[bytes | None] = self.redis.mget([result_key(job_id) for job_id in fresh])  # type: ignore[assignment]
            for job_id, raw in zip(fresh, raws, strict=True):
                if raw:
                    cursor.read(job_id)
                    yield parse_envelope(raw)

    def wait(self, batch_id: str, timeout_s: float | None = None) -> list[ResultEnvelope]:
        """Wait for a whole batch and return its results."""
        return list(self.iter_results(batch_id, timeout_s=timeout_s))

    # --- dead letters ---

    def dead_letters(self, limit: int = 1000) -> list[DeadLetter]:
        """Jobs that failed for good (permanent errors, retries exhausted), oldest first."""
        ids = [i.decode() for i in self.redis.zrange(DEAD_LETTERS_KEY, 0, limit - 1)]  # type: ignore[union-attr]
        if not ids:
            return []
        raws: list[bytes | None] = self.redis.mget([dead_letter_key(i) for i in ids])  # type: ignore[assignment]
        expired = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if expired:
            self.redis.zrem(DEAD_LETTERS_KEY, *expired)
        return [DeadLetter.from_json(raw) for raw in raws if raw is not None]

    def retry_dead(self, job_ids: Iterable[str] | None = None) -> BatchHandle | None:
        """Re-queue dead letters (all when job_ids is None) as a new batch; None when there was nothing to retry.

        Each retried job gets a new job id: the old id keeps its failed result, so nothing is published twice.
        """
        wanted = set(job_ids) if job_ids is not None else None
        letters = [d for d in self.dead_letters(limit=100_000) if wanted is None or d.job_id in wanted]
        retryable = [d for d in letters if d.job is not None]
        if not retryable:
            return None
        batch = self.submit_many(
            PreparedJob(d.job.retried())  # type: ignore[union-attr]
            for d in retryable
        )
        done = [d.job_id for d in retryable]
        self.redis.zrem(DEAD_LETTERS_KEY, *done)
        self.redis.delete(*(dead_letter_key(i) for i in done))
        return batch
