"""One rate limit per Rekognition operation, shared by every worker process on every host, kept in Redis.

Rekognition's quotas are per account, region and operation (transactions per second). Celery's `rate_limit` is per
worker process and per task (celery#5732), so N workers either under-use the quota or get throttled. Here each call
reserves a slot in a Redis-side schedule (GCRA: a "theoretical arrival time" advanced by 1/rate per call), so all
processes together never exceed the rate, and a waiting job sleeps on the event loop without holding other jobs.

When Rekognition still answers ThrottlingException (another client shares the account, the quota changed), the
limiter multiplies the rate by BACKOFF_FACTOR; it then climbs back by CLIMB_PER_S of the configured rate each calm
second (additive increase, multiplicative decrease, as TCP does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from producer.contract import rate_key

BACKOFF_FACTOR = 0.7
CLIMB_PER_S = 0.05
FLOOR = 0.1
"""The rate never drops below this share of the configured rate, so a burst of throttles cannot stall a queue."""

_RESERVE = """
-- KEYS[1]: limiter hash. ARGV: configured rate, burst (calls), event ('reserve' | 'throttled'), climb/s, backoff,
-- floor. Returns the milliseconds the caller must wait before its call (0: go now), the rate now in force, and the
-- slot itself in seconds on Redis's clock (a reply's wait depends on when it was asked; the slots do not).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local cfg = tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'updated')
local tat = tonumber(state[1]) or now
local rate = tonumber(state[2]) or cfg
local updated = tonumber(state[3]) or now
if rate > cfg then rate = cfg end
if ARGV[3] == 'throttled' then
  rate = math.max(cfg * tonumber(ARGV[6]), rate * tonumber(ARGV[5]))
  redis.call('HSET', KEYS[1], 'rate', rate, 'updated', now)
  redis.call('EXPIRE', KEYS[1], 3600)
  return {0, tostring(rate), string.format('%.6f', now)}
end
rate = math.min(cfg, rate + cfg * tonumber(ARGV[4]) * math.max(0, now - updated))
local interval = 1 / rate
if tat < now then tat = now end
local allowed_at = tat - (tonumber(ARGV[2]) - 1) * interval
redis.call('HSET', KEYS[1], 'tat', tat + interval, 'rate', rate, 'updated', now)
redis.call('EXPIRE', KEYS[1], 3600)
local wait = allowed_at - now
if wait < 0 then wait = 0 end
return {math.floor(wait * 1000 + 0.5), tostring(rate), string.format('%.6f', math.max(allowed_at, now))}
"""


class Slot(NamedTuple):
    """A reserved call slot: how long the caller waits, and when the slot falls on Redis's clock."""

    wait_s: float
    at_s: float


class RateLimiter:
    """Reserves call slots per operation against a shared Redis schedule; a no-op for operations without a limit."""

    def __init__(self, redis: Any, limits_tps: Mapping[str, float], burst: int = 1) -> None:
        self._script = redis.register_script(_RESERVE)
        self._limits = {op: float(tps) for op, tps in limits_tps.items() if tps > 0}
        self._burst = max(1, burst)

    def limit(self, operation: str) -> float | None:
        """The configured transactions per second for an operation, or None when unlimited."""
        return self._limits.get(operation)

    async def reserve(self, operation: str) -> float:
        """Reserve the next call slot; return the seconds to wait before making the call."""
        return (await self.reserve_slot(operation)).wait_s

    async def reserve_slot(self, operation: str) -> Slot:
        """Reserve the next call slot; return the wait and the slot's time on Redis's clock (0 when unlimited)."""
        tps = self._limits.get(operation)
        if tps is None:
            return Slot(0.0, 0.0)
        wait_ms, _rate, at = await self._script(
            keys=[rate_key(operation)], args=[tps, self._burst, "reserve", CLIMB_PER_S, BACKOFF_FACTOR, FLOOR]
        )
        return Slot(float(wait_ms) / 1000, float(at))

    async def throttled(self, operation: str) -> None:
        """Tell every process that Rekognition throttled this operation: slow down for all of them."""
        tps = self._limits.get(operation)
        if tps is not None:
            await self._script(
                keys=[rate_key(operation)], args=[tps, self._burst, "throttled", CLIMB_PER_S, BACKOFF_FACTOR, FLOOR]
            )
