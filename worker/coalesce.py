"""One round trip for every caller that runs the same Lua script in the same event-loop turn (publish, rate slots)."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import NoScriptError

from producer.connection import RedisTarget, check_replicated, wait_command


class CoalescedScript:
    """Runs a Lua script for every caller that runs it in the same event-loop turn as one pipeline.

    Jobs tend to reach the same step together (the jobs of a message, messages handed to a busy loop); one round
    trip for all of them saves each its own connection checkout, socket write and read (~5% of the loop's CPU per
    job, bench/README.md). Each caller still gets its own answer or error. A pipeline that hits a dropped connection
    is sent again whole, as a single command would be (redis-py's retry): the publish script publishes nothing twice
    (SET NX), and the rate's script at worst hands out a slot nobody uses. An entry Redis answers NOSCRIPT (its
    script cache was emptied by a restart) runs again on its own, loading the script.
    """

    def __init__(self, redis: Any, script: Any, durable: RedisTarget | None = None) -> None:
        """``script``: redis-py's registered script; ``durable``: end every round trip with WAIT (the publisher's)."""
        self._redis = redis
        self._script = script
        # Durable writes (FACEQUEUE_REDIS_WAIT_REPLICAS): every round trip ends with WAIT, on the same connection.
        self._durable = durable if durable is not None and wait_command(durable) else None
        self._pending: list[tuple[list[str], list[Any], asyncio.Future[Any]]] = []
        self._flushing: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        """Run the script for one caller, sharing the round trip with the others of this loop turn."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        self._pending.append((keys, args, answer))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await answer

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._send(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _send(self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]]) -> None:
        try:
            if self._durable is not None:
                results = await self._send_durable(batch, self._durable)
            elif len(batch) == 1:
                keys, args, _ = batch[0]
                results = [await self._script(keys=keys, args=args)]
            else:
                pipe = self._redis.pipeline(transaction=False)
                for keys, args, _ in batch:
                    pipe.evalsha(self._script.sha, len(keys), *keys, *args)
                results = await pipe.execute(raise_on_error=False)
                for i, result in enumerate(results):
                    if isinstance(result, NoScriptError):
                        results[i] = await self._script(keys=batch[i][0], args=batch[i][1])
        except BaseException as exc:  # every job of the round trip learns it failed, and retries or fails on its own
            for _, _, answer in batch:
                if not answer.done():
                    # A cancelled flush (the loop closing) cancels its waiters rather than leaving them waiting.
                    answer.cancel() if isinstance(exc, asyncio.CancelledError) else answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._answer(batch, results)

    async def _send_durable(
        self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]], target: RedisTarget
    ) -> list[Any]:
        """The batch's scripts and a WAIT in one pipeline; NotReplicatedError when too few replicas confirm them."""
        for attempt in range(2):
            pipe = self._redis.pipeline(transaction=False)
            for keys, args, _ in batch:
                pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            pipe.execute_command(*wait_command(target))  # type: ignore[misc]
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            *results, acknowledged = replies
            if attempt == 0 and any(isinstance(r, NoScriptError) for r in results):
                # A new master (a failover) or a restart emptied the script cache: load it and send the batch again,
                # which publishes nothing twice (SET NX), so that the WAIT covers every write on one connection.
                await self._redis.script_load(self._script.script)
                continue
            if isinstance(acknowledged, Exception):
                raise acknowledged
            check_replicated(target, acknowledged, f"publishing {len(batch)} results")  # only the publisher is durable
            return results
        raise AssertionError("unreachable")

    @staticmethod
    def _answer(batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]], results: list[Any]) -> None:
        for (_, _, answer), result in zip(batch, results, strict=True):
            if answer.done():  # its job was cancelled meanwhile; the publish itself went through
                continue
            if isinstance(result, Exception):
                answer.set_exception(result)
            else:
                answer.set_result(result)
