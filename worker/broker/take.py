"""Taking a message off a queue and recording it in kombu's ``unacked`` hash in one server-side step.

kombu's Redis transport fetches with BRPOP, then records the message in ``unacked`` with a second command. Between
the two, the message exists only in the worker's socket buffer: a worker SIGKILLed, a connection cut or a Redis
restarted in that window loses it for good, with nothing left to redeliver. Here a Lua script pops the message
and writes the same ``unacked`` entry kombu would (``[payload, exchange, routing_key]``, indexed by the time) before
its reply leaves Redis, so a message is always in a queue or in ``unacked``.

A script cannot block, so waiting is done apart: when every queue is empty the worker asks Redis to tell it when any
of them changes (CLIENT TRACKING, redirected to a connection subscribed to ``__redis__:invalidate``), and takes
again when told. That needs no server configuration; where it is refused (an ACL without CLIENT TRACKING, a
Redis-compatible server without it) the worker falls back to taking again at a fixed interval.
"""

from __future__ import annotations

import hashlib
from typing import Any

TAKE_SCRIPT = """
-- KEYS[1] unacked hash, KEYS[2] unacked index, KEYS[3..] the queue keys in the order to try.
-- ARGV[1] the time to index the message at, ARGV[2] the largest entry worth decoding, ARGV[3] how much of a larger
-- one to send: the worker refuses it from its length, so it never holds the whole of it (a 200 MB entry costs no
-- 200 MB of worker memory).
-- The entry is read, recorded, and only then popped: a write Redis refuses (out of memory on Redis 6) aborts the
-- script before the pop, leaving the message queued rather than popped and lost.
-- The first non-empty queue key is found by halving with multi-key EXISTS: 1 + log2(n) commands instead of one
-- LINDEX per empty key (72 keys: at most 8 instead of 72), so an idle worker and an empty take cost Redis little.
local lo, hi = 3, #KEYS
if hi < lo or redis.call('EXISTS', unpack(KEYS, lo, hi)) == 0 then
  return false
end
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  if redis.call('EXISTS', unpack(KEYS, lo, mid)) > 0 then hi = mid else lo = mid + 1 end
end
local queue = KEYS[lo]
local item = redis.call('LINDEX', queue, -1)
local tag = false
if #item <= tonumber(ARGV[2]) then
  local ok, msg = pcall(cjson.decode, item)
  if ok and type(msg) == 'table' and type(msg.properties) == 'table' then
    local info = msg.properties.delivery_info
    local candidate = msg.properties.delivery_tag
    if type(candidate) == 'string' and type(info) == 'table'
        and type(info.exchange) == 'string' and type(info.routing_key) == 'string' then
      tag = candidate
      -- The entry kombu's QoS.append writes, with the payload kept byte for byte.
      local entry = '[' .. item .. ', ' .. cjson.encode(info.exchange) .. ', '
        .. cjson.encode(info.routing_key) .. ']'
      redis.call('ZADD', KEYS[2], ARGV[1], tag)
      redis.call('HSET', KEYS[1], tag, entry)
    end
  end
end
redis.call('RPOP', queue)
if #item > tonumber(ARGV[2]) then
  return {queue, string.sub(item, 1, tonumber(ARGV[3]) or 16384), tag, #item}
end
return {queue, item, tag}
"""

TAKE_SHA = hashlib.sha1(TAKE_SCRIPT.encode()).hexdigest()

INVALIDATE_CHANNEL = "__redis__:invalidate"


class Waker:
    """A connection of its own that hears Redis's invalidation messages for a waiting worker.

    It has a ``connection`` attribute so kombu's poller can register it like its BRPOP and LISTEN clients. Whatever
    protocol the pool speaks, the messages are only counted: RESP2 delivers them as Pub/Sub messages on the
    subscribed channel, RESP3 as ``invalidate`` pushes.
    """

    def __init__(self, pool: Any) -> None:
        self.connection = pool.make_connection()
        try:
            self.connection.connect()
            self.connection.send_command("CLIENT", "ID")
            self.client_id = int(self.connection.read_response())
            self.connection.send_command("SUBSCRIBE", INVALIDATE_CHANNEL)
            reply = self.connection.read_response(push_request=True)
            if isinstance(reply, Exception):
                raise reply
        except BaseException:
            self.connection.disconnect()
            raise

    def drain(self) -> int:
        """Read every message already received; return how many."""
        count = 0
        while self.connection.can_read(timeout=0):
            self.connection.read_response(push_request=True)
            count += 1
        return count

    def close(self) -> None:
        """Close the connection."""
        self.connection.disconnect()
