"""One sending rate per Rekognition operation, shared by every worker process through Redis, that finds the quota.

Rekognition's quotas are per account, region and operation (TPS), and nobody tells the workers what they are: a
burst at full concurrency is answered with ThrottlingException, and jobs that keep retrying at full speed fail
(595 of 2,000 in issue 20). So every call first reserves a slot in one schedule kept in Redis (GCRA: a theoretical
arrival time advanced by 1/rate per call), and the rate adapts as TCP's congestion window does:

- slow start: from INITIAL_TPS the rate doubles about every second while callers queue for slots;
- the first throttle halves it and ends slow start; until a cut holds for a second, each throttle multiplies it
  by QUICK_BACKOFF_FACTOR (a burst allowance can hide how far slow start overshot); later throttles by
  BACKOFF_FACTOR;
- congestion avoidance: each second with callers queueing adds CLIMB_PER_S of the rate at the last throttle.

A throttle answered to a call sent before the last cut is ignored (one cut per round, as TCP cuts once per window):
the calls already in flight when the rate fell would otherwise cut it again and again. A cut also starts a new
*epoch* and restarts the schedule, so slots handed out at the old rate are void: a caller that waited for one checks
the epoch before calling, and reserves again if it changed. A configured quota (FACEQUEUE_RATE_LIMITS_TPS) stays a
ceiling: with one, the rate starts there and never exceeds it.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

from producer.contract import rate_key

INITIAL_TPS = 10.0
"""Where an operation without a configured quota starts (Rekognition's smallest default quotas are 5-50 TPS)."""
SLOW_START_GAIN = 0.7
"""Calls/s added per slot granted until the first throttle: the rate doubles about every second (ln 2 / 0.7)."""
SLOW_START_EXIT = 0.5
BACKOFF_FACTOR = 0.9
"""Multiplier of each later throttle. 0.9 with CLIMB_PER_S = 0.02 rides a 5-second sawtooth at ~95 % of the quota,
with a throttle or two per tooth."""
CLIMB_PER_S = 0.02
QUICK_BACKOFF_FACTOR = 0.7
"""Multiplier of a throttle within a second of the last cut, right after slow start."""
FLOOR_TPS = 0.5
"""The rate never drops below this, so a storm of throttles cannot stall a queue."""
CEILING_TPS = 100_000.0
HORIZON_S = 0.5
"""No slot is handed out further ahead than this: callers beyond it come back later (with jitter), so a change of
rate applies within half a second instead of after every slot already handed out."""
RECHECK_AFTER_S = 0.005
"""A caller that waited longer than this for its slot checks that no cut voided it meanwhile (one HGET)."""
STATE_TTL_S = 3600
"""The learnt rate outlives a quiet spell of an hour; after that, slow start again."""

_SCRIPT = """
-- KEYS[1]: the operation's hash. ARGV: event ('reserve' | 'throttled'), configured ceiling (0: none), burst,
-- epoch of the throttled call, then the tuning: initial, slow-start gain per slot, slow-start exit, backoff,
-- climb/s, floor, ceiling, ttl, horizon s, backoff of a quick second cut.
-- Returns {wait ms, rate, epoch, slot time on Redis's clock, granted}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local cfg = tonumber(ARGV[2])
local s = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'epoch', 'mode', 'peak', 'cut_at')
local tat = tonumber(s[1]) or now
local rate = tonumber(s[2])
local epoch = tonumber(s[3]) or 0
local mode = s[4]
local peak = tonumber(s[5])
local cut_at = tonumber(s[6]) or 0
local ceiling = tonumber(ARGV[11])
if cfg > 0 then ceiling = math.min(ceiling, cfg) end
if not rate then
  if cfg > 0 then rate, mode = cfg, 'avoid' else rate, mode = tonumber(ARGV[5]), 'start' end
end
peak = peak or rate
local function save()
  redis.call('HSET', KEYS[1], 'tat', tat, 'rate', rate, 'epoch', epoch, 'mode', mode, 'peak', peak)
  redis.call('EXPIRE', KEYS[1], ARGV[12])
end
if ARGV[1] == 'throttled' then
  if tonumber(ARGV[4]) >= epoch then
    -- The rate at which the quota was hit: the climb after the cut is measured against it.
    peak = rate
    if mode == 'start' then
      rate, mode = rate * tonumber(ARGV[7]), 'recover'
    elseif mode == 'recover' and now - cut_at < 1 then
      -- Throttled again within a second of leaving slow start: a burst allowance hid how far the rate had
      -- overshot, and halving was not enough. Cut harder until a cut holds for a second.
      rate = rate * tonumber(ARGV[14])
    else
      rate, mode = rate * tonumber(ARGV[8]), 'avoid'
    end
    rate = math.max(tonumber(ARGV[10]), math.min(rate, ceiling))
    -- The schedule restarts one interval at the new rate from now: slots handed out before are void (epoch).
    epoch, tat = epoch + 1, now + 1 / rate
    save()
    redis.call('HSET', KEYS[1], 'cut_at', now)
  end
  return {0, tostring(rate), epoch, string.format('%.6f', now), 1}
end
if tat < now then tat = now end
local interval = 1 / rate
local allowed_at = tat - (tonumber(ARGV[3]) - 1) * interval
if allowed_at - now > tonumber(ARGV[13]) then
  -- No slot beyond the horizon: a slot held long would be at a rate that may be stale by then.
  local wait = allowed_at - tonumber(ARGV[13]) - now
  return {math.floor(wait * 1000 + 0.5), tostring(rate), epoch, string.format('%.6f', allowed_at), 0}
end
tat = tat + interval
-- Grow per slot granted while callers queue for slots (an idle spell says nothing about the quota): slow start
-- adds a constant per slot, doubling the rate about every second; avoidance adds climb x peak per second.
if allowed_at > now then
  if mode == 'start' then rate = rate + tonumber(ARGV[6]) else rate = rate + tonumber(ARGV[9]) * peak / rate end
  rate = math.max(tonumber(ARGV[10]), math.min(rate, ceiling))
end
save()
local wait = math.max(0, allowed_at - now)
return {math.floor(wait * 1000 + 0.5), tostring(rate), epoch, string.format('%.6f', math.max(allowed_at, now)), 1}
"""


class Ticket(NamedTuple):
    """A call slot: how long the caller waits, the epoch it belongs to, the rate in force, its time, and whether it
    was granted (False: none within the horizon; wait, then ask again)."""

    wait_s: float
    epoch: int
    rate_tps: float
    at_s: float
    granted: bool = True


UNPACED = Ticket(0.0, -1, 0.0, 0.0)
"""The ticket of a call that takes no slot."""


class AdaptiveRate:
    """Reserves call slots per operation against one schedule in Redis whose rate adapts to throttling."""

    def __init__(
        self, redis: Any, limits_tps: Mapping[str, float] | None = None, burst: int = 1, *, learn: bool = True
    ) -> None:
        self._redis = redis
        self._script = redis.register_script(_SCRIPT)
        self._limits = {op: float(tps) for op, tps in (limits_tps or {}).items() if tps > 0}
        self._burst = max(1, burst)
        self.learn = learn
        """False: only operations with a configured quota are paced; the others go at full concurrency."""

    def paces(self, operation: str) -> bool:
        """True when calls of this operation take a slot (learning, or a quota configured)."""
        return self.learn or operation in self._limits

    def limit(self, operation: str) -> float | None:
        """The configured ceiling in transactions per second for an operation, or None when it is learnt."""
        return self._limits.get(operation)

    async def _run(self, event: str, operation: str, epoch: int = 0) -> Ticket:
        tuning = [INITIAL_TPS, SLOW_START_GAIN, SLOW_START_EXIT, BACKOFF_FACTOR, CLIMB_PER_S, FLOOR_TPS]
        wait_ms, rate, current, at, granted = await self._script(
            keys=[rate_key(operation)],
            args=[
                event,
                self._limits.get(operation, 0),
                self._burst,
                epoch,
                *tuning,
                CEILING_TPS,
                STATE_TTL_S,
                HORIZON_S,
                QUICK_BACKOFF_FACTOR,
            ],
        )
        return Ticket(float(wait_ms) / 1000, int(current), float(rate), float(at), bool(granted))

    async def reserve(self, operation: str) -> Ticket:
        """Ask for the next call slot: granted (wait ``wait_s``, then call) or not (wait, then ask again)."""
        return await self._run("reserve", operation)

    async def acquire(self, operation: str, pause: Callable[[float], Awaitable[None]]) -> Ticket:
        """Wait with ``pause`` for a slot that no throttle has voided, and return it."""
        if not self.paces(operation):
            return UNPACED
        while True:
            ticket = await self.reserve(operation)
            if not ticket.granted:
                # Spread the callers turned away over the horizon, so they do not all ask again at one instant.
                await pause(ticket.wait_s + random.uniform(0, HORIZON_S / 2))
                continue
            if ticket.wait_s <= 0:
                return ticket
            await pause(ticket.wait_s)
            if ticket.wait_s < RECHECK_AFTER_S or await self.epoch(operation) == ticket.epoch:
                return ticket

    async def epoch(self, operation: str) -> int:
        """The operation's current epoch (it grows with every cut of the rate)."""
        raw = await self._redis.hget(rate_key(operation), "epoch")
        return int(raw or 0)

    async def throttled(self, operation: str, ticket: Ticket) -> None:
        """Report that the call sent on ``ticket`` was throttled: every process slows down (once per epoch)."""
        if ticket is not UNPACED:
            await self._run("throttled", operation, ticket.epoch)
