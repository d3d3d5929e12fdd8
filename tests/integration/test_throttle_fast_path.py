"""A rate slot granted at once with nobody waiting is cheap for Redis, and still never goes ahead of a caller that
waits (worker/throttle.py; issue 21, fleet cost: the slot's script was a quarter of a single job's commands)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import redis
import redis.asyncio as aredis

from tests.fixtures.redis import RedisServer
from worker.throttle import STATE_TTL_S, TTL_RENEW_S, AdaptiveRate, Ticket


def _commands(client: redis.Redis) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in client.info("commandstats").items()}


def test_a_slot_granted_at_once_with_nobody_waiting_costs_five_commands(
    start_redis: Callable[..., RedisServer],
) -> None:
    # Given a fresh Redis and an operation whose schedule has its first slot taken (and its TTL set)
    server = start_redis()
    client = redis.Redis.from_url(server.url)

    async def slots() -> list[Ticket]:
        pool = aredis.Redis.from_url(server.url)
        rate = AdaptiveRate(pool, {"DetectFaces": 1000})
        try:
            first = await rate.reserve("DetectFaces")
            client.config_resetstat()
            # When 20 callers ask one after the other, each alone (nobody waits: the queue is empty)
            return [first, *[await rate.reserve("DetectFaces") for _ in range(20)]]
        finally:
            await pool.aclose()

    tickets = asyncio.run(slots())
    spent = _commands(client)
    spent.pop("config|resetstat", None)
    # Then each is granted within the horizon, one slot after the other
    assert all(t.granted for t in tickets) and all(b.at_s > a.at_s for a, b in itertools.pairwise(tickets))
    # And each cost Redis its EVALSHA, TIME, HMGET, EXISTS of the queue and HSET: the queue is not touched and the
    # schedule's TTL is not renewed per slot (it was 13 commands: ZADD x2, ZRANK, ZREM x2, EXPIRE x3 more)
    assert spent == {"evalsha": 20, "time": 20, "hmget": 20, "exists": 20, "hset": 20}, spent
    # And the schedule still expires (its TTL renewed every TTL_RENEW_S at most)
    ttl = client.ttl("facequeue:rate:DetectFaces")
    assert STATE_TTL_S - TTL_RENEW_S - 5 <= ttl <= STATE_TTL_S
    assert not client.exists("facequeue:rate:DetectFaces:queue", "facequeue:rate:DetectFaces:asked")


def test_a_new_caller_does_not_go_ahead_of_one_waiting_in_the_queue(start_redis: Callable[..., RedisServer]) -> None:
    server = start_redis()

    async def scenario() -> tuple[Ticket, Ticket, Ticket]:
        pool = aredis.Redis.from_url(server.url)
        # Given a quota of 20 calls/s whose horizon (0.5 s, about 10 slots) is full, and a caller turned away
        rate = AdaptiveRate(pool, {"DetectFaces": 20})
        try:
            tickets = [await rate.reserve("DetectFaces", caller=f"c{i}") for i in range(12)]
            waiting = next(t for t in tickets if not t.granted)
            waiting_id = f"c{tickets.index(waiting)}"
            # When its turn comes in, and a new caller asks just before it does
            await asyncio.sleep(waiting.wait_s)
            newcomer = await rate.reserve("DetectFaces", caller="new")
            back = await rate.reserve("DetectFaces", caller=waiting_id, since=waiting.since_s)
            return waiting, newcomer, back
        finally:
            await pool.aclose()

    waiting, newcomer, back = asyncio.run(scenario())
    # Then the newcomer is queued behind it (the cheap grant is only for a caller with nobody waiting) and the one
    # that waited gets its slot
    assert not waiting.granted and not newcomer.granted and back.granted
