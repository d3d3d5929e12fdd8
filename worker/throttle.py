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
ceiling: with one, the rate starts there, never exceeds it, and climbs back after a cut by CLIMB_PER_S of it.

Slots go in the order callers asked: a caller beyond the horizon joins a queue (a sorted set by first ask) and is
told to come back when its turn nears, so its wait is bounded by the callers ahead of it. Turned away at random
instead, a job behind a quota could starve past its deadline (FACEQUEUE_JOB_TIMEOUT_S) while later ones went.

The schedule belongs to one endpoint (its host: Rekognition's regional endpoint, or a local_rekognition): quotas are
per account, region and operation, so a rate learnt against one endpoint must not pace calls to another sharing the
Redis (another region, a test double).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from producer.contract import rate_key
from worker.coalesce import CoalescedScript

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
TTL_RENEW_S = 60.0
"""How often a slot renews the schedule's TTL (so it never has less than STATE_TTL_S - TTL_RENEW_S left while in
use): renewing it with every slot cost an EXPIRE a Rekognition call."""
MAX_ASK_GAP_S = 1.0
"""A caller turned away comes back within this, however far its turn: its place is kept only while it asks."""
STALE_AFTER_S = 3.0
"""A caller that has not asked for this long (its job ended, its process died) loses its place in the queue."""

_SCRIPT = """
-- KEYS[1]: the operation's hash; KEYS[2]: callers waiting for a slot by first ask; KEYS[3]: the same by last ask.
-- ARGV: event ('reserve' | 'throttled'), configured ceiling (0: none), burst, epoch of the throttled call, then the
-- tuning: initial, slow-start gain per slot, slow-start exit, backoff, climb/s, floor, ceiling, ttl, horizon s,
-- backoff of a quick second cut; then the caller's id, its first ask (0: now), the longest gap between its asks,
-- how long a silent caller keeps its place, and how often the hash's TTL is renewed.
-- Returns {wait ms, rate, epoch, slot time on Redis's clock, granted, the caller's first ask}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local cfg = tonumber(ARGV[2])
local s = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'epoch', 'mode', 'peak', 'cut_at', 'kept')
local tat = tonumber(s[1]) or now
local rate = tonumber(s[2])
local epoch = tonumber(s[3]) or 0
local mode = s[4]
local peak = tonumber(s[5])
local cut_at = tonumber(s[6]) or 0
local kept = tonumber(s[7]) or 0
local ceiling = tonumber(ARGV[11])
if cfg > 0 then ceiling = math.min(ceiling, cfg) end
if not rate then
  if cfg > 0 then rate, mode = cfg, 'avoid' else rate, mode = tonumber(ARGV[5]), 'start' end
end
peak = peak or rate
local function save(refresh)
  -- The TTL is renewed every ARGV[19] seconds, not with every slot (an EXPIRE a slot was one command in four).
  local renew = refresh or now - kept >= tonumber(ARGV[19])
  if renew then kept = now end
  redis.call('HSET', KEYS[1], 'tat', tat, 'rate', rate, 'epoch', epoch, 'mode', mode, 'peak', peak, 'kept', kept)
  if renew then redis.call('EXPIRE', KEYS[1], ARGV[12]) end
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
    save(true)
    redis.call('HSET', KEYS[1], 'cut_at', now)
  end
  return {0, tostring(rate), epoch, string.format('%.6f', now), 1, '0'}
end
if tat < now then tat = now end
local interval = 1 / rate
local allowed_at = tat - (tonumber(ARGV[3]) - 1) * interval
local horizon = tonumber(ARGV[13])
local since = tonumber(ARGV[16])
if since <= 0 then since = now end
local function grant()
  tat = tat + interval
  -- Grow per slot granted while callers queue for slots (an idle spell says nothing about the quota): slow start
  -- adds a constant per slot, doubling the rate about every second; avoidance adds climb x peak per second, or
  -- climb x the configured quota when there is one (the quota is known: no need to creep up to it from a low cut).
  if allowed_at > now then
    local base = peak
    if cfg > 0 then base = cfg end
    if mode == 'start' then rate = rate + tonumber(ARGV[6]) else rate = rate + tonumber(ARGV[9]) * base / rate end
    rate = math.max(tonumber(ARGV[10]), math.min(rate, ceiling))
  end
  save(false)
  local wait = math.max(0, allowed_at - now)
  return {math.floor(wait * 1000 + 0.5), tostring(rate), epoch, string.format('%.6f', math.max(allowed_at, now)), 1,
    string.format('%.6f', since)}
end
-- Nobody waiting and a slot within the horizon: the caller would join the queue at rank 0 and leave it granted at
-- once, so it is granted without touching the queue (4 commands instead of 13: the common case below a quota).
if allowed_at - now <= horizon and redis.call('EXISTS', KEYS[2]) == 0 then
  return grant()
end
-- Callers that stopped asking (their job ended, their process died) hold no place.
local silent = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[18]), 'LIMIT', 0, 100)
if #silent > 0 then
  redis.call('ZREM', KEYS[2], unpack(silent))
  redis.call('ZREM', KEYS[3], unpack(silent))
end
redis.call('ZADD', KEYS[2], 'NX', since, ARGV[15])
redis.call('ZADD', KEYS[3], now, ARGV[15])
redis.call('EXPIRE', KEYS[2], ARGV[12])
redis.call('EXPIRE', KEYS[3], ARGV[12])
local rank = redis.call('ZRANK', KEYS[2], ARGV[15])
-- Slots within the horizon go to the callers that asked first: no slot beyond it, as a slot held long would be at
-- a rate that may be stale by then. The others come back about when their turn enters the horizon.
local free = 0
if allowed_at - now <= horizon then free = math.floor((now + horizon - allowed_at) / interval) + 1 end
if rank >= free then
  local turn = allowed_at + rank * interval
  local wait = math.min(tonumber(ARGV[17]), math.max(0.001, turn - horizon - now))
  return {math.floor(wait * 1000 + 0.5), tostring(rate), epoch, string.format('%.6f', turn), 0,
    string.format('%.6f', since)}
end
redis.call('ZREM', KEYS[2], ARGV[15])
redis.call('ZREM', KEYS[3], ARGV[15])
return grant()
"""


_HOST_SEED = uuid.uuid4().hex[:12]
_CALLS = itertools.count()


def _caller_id() -> str:
    """An id no other caller of any process shares: a uuid4 per call cost ~1% of a single-job worker's CPU."""
    # The pid tells apart the children a prefork pool forks after import, which share the seed.
    return f"{_HOST_SEED}.{os.getpid()}.{next(_CALLS)}"


class Ticket(NamedTuple):
    """A call slot: how long the caller waits, the epoch it belongs to, the rate in force, its time, and whether it
    was granted (False: none within the horizon; wait, then ask again)."""

    wait_s: float
    epoch: int
    rate_tps: float
    at_s: float
    granted: bool = True
    since_s: float = 0.0
    """When the caller first asked (Redis's clock): asking again with it keeps the caller's place."""


UNPACED = Ticket(0.0, -1, 0.0, 0.0)
"""The ticket of a call that takes no slot."""


class AdaptiveRate:
    """Reserves call slots per operation against one schedule in Redis whose rate adapts to throttling."""

    def __init__(
        self,
        redis: Any,
        limits_tps: Mapping[str, float] | None = None,
        burst: int = 1,
        *,
        learn: bool = True,
        endpoint: str = "",
    ) -> None:
        self._redis = redis
        self._endpoint = endpoint_scope(endpoint)
        # Callers asking in the same loop turn share a round trip; each still runs the script on its own, in order.
        self._script = CoalescedScript(redis, redis.register_script(_SCRIPT))
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

    def key(self, operation: str) -> str:
        """The Redis hash of an operation's schedule against this endpoint."""
        return rate_key(operation, self._endpoint)

    async def _run(self, event: str, operation: str, epoch: int = 0, caller: str = "", since: float = 0.0) -> Ticket:
        tuning = [INITIAL_TPS, SLOW_START_GAIN, SLOW_START_EXIT, BACKOFF_FACTOR, CLIMB_PER_S, FLOOR_TPS]
        key = self.key(operation)
        wait_ms, rate, current, at, granted, first = await self._script(
            keys=[key, f"{key}:queue", f"{key}:asked"],
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
                caller,
                since,
                MAX_ASK_GAP_S,
                STALE_AFTER_S,
                TTL_RENEW_S,
            ],
        )
        return Ticket(float(wait_ms) / 1000, int(current), float(rate), float(at), bool(granted), float(first))

    async def reserve(self, operation: str, caller: str | None = None, since: float = 0.0) -> Ticket:
        """Ask for the next call slot: granted (wait ``wait_s``, then call) or not (wait, then ask again with the
        same ``caller`` id and the ticket's ``since_s``, which keep the caller's place in the queue)."""
        return await self._run("reserve", operation, caller=caller or _caller_id(), since=since)

    async def acquire(self, operation: str, pause: Callable[[float], Awaitable[None]]) -> Ticket:
        """Wait with ``pause`` for a slot that no throttle has voided, and return it."""
        if not self.paces(operation):
            return UNPACED
        caller, since = _caller_id(), 0.0
        try:
            while True:
                ticket = await self.reserve(operation, caller, since)
                # A slot voided by a cut, or a turn not come yet: ask again from the same place in the queue.
                since = ticket.since_s
                if not ticket.granted:
                    await pause(ticket.wait_s)
                    continue
                if ticket.wait_s <= 0:
                    return ticket
                await pause(ticket.wait_s)
                if ticket.wait_s < RECHECK_AFTER_S or await self.epoch(operation) == ticket.epoch:
                    return ticket
        except BaseException:
            # The job's deadline passed or the worker stops while it waits: give up its place at once, so the
            # callers behind it do not wait for it to fall silent (STALE_AFTER_S).
            await self._leave(operation, caller)
            raise

    async def _leave(self, operation: str, caller: str) -> None:
        key = self.key(operation)
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrem(f"{key}:queue", caller)
        pipe.zrem(f"{key}:asked", caller)
        try:
            await pipe.execute()
        except Exception:  # best effort: a silent caller loses its place after STALE_AFTER_S anyway
            pass

    async def epoch(self, operation: str) -> int:
        """The operation's current epoch (it grows with every cut of the rate)."""
        raw = await self._redis.hget(self.key(operation), "epoch")
        return int(raw or 0)

    async def throttled(self, operation: str, ticket: Ticket) -> None:
        """Report that the call sent on ``ticket`` was throttled: every process slows down (once per epoch)."""
        if ticket is not UNPACED:
            await self._run("throttled", operation, ticket.epoch)


def endpoint_scope(endpoint_url: str) -> str:
    """The part of an endpoint URL a schedule belongs to: its host and port (a regional endpoint names its region)."""
    return urlsplit(endpoint_url).netloc if "://" in endpoint_url else endpoint_url
