"""Rate limits and quotas per user, shared by all their sockets in every server process (in
Redis): the event token bucket `tt:rate:{user}`, and hourly counts such as
`tt:created:{user}:{hour}` (conversations created).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.storage.batching import BatchedScript
from server.storage.keys import PREFIX

HOUR_S = 3600

# take_token(bucket key, rate per second, burst) -> 1 allowed / 0 refused
# The clock is Redis's own (TIME), so processes on hosts whose clocks differ share one bucket.
# REPL_NONE: the bucket's writes stay in memory, out of the append-only file and replicas, so
# a token costs no fsync under `appendfsync always` (a restarted Redis starts with full buckets).
# A script that goes on to write durable data (`store.SEND_SCRIPT`) is back to REPL_ALL after.
TAKE_TOKEN_LUA = """
local function take_token(key, rate, burst)
  redis.set_repl(redis.REPL_NONE)
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
  local state = redis.call('HMGET', key, 'tokens', 'stamp')
  local tokens = tonumber(state[1]) or burst
  local stamp = tonumber(state[2]) or now
  if now > stamp then tokens = math.min(burst, tokens + (now - stamp) * rate) end
  local allowed = 0
  if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'stamp', tostring(math.max(now, stamp)))
  redis.call('EXPIRE', key, math.ceil(burst / rate) + 1)
  redis.set_repl(redis.REPL_ALL)
  return allowed
end
"""

# KEYS: bucket   ARGV: rate per second, burst  -> 1 allowed / 0 refused
BUCKET_SCRIPT = TAKE_TOKEN_LUA + "return take_token(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))"


class UserRateLimit:
    """A token bucket per user id: `rate` events per second on average, bursts up to `burst`,
    counted over every socket of the user in every process."""

    def __init__(self, redis: Any, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        #: tokens taken in the same event-loop turn (other users, other sockets) share one
        #: round trip; each bucket is still its own atomic script call
        self._script = BatchedScript(redis, BUCKET_SCRIPT)

    def bucket(self, user_id: str) -> Bucket:
        """The user's bucket, for a script that takes its token itself (`TAKE_TOKEN_LUA`)."""
        return Bucket(f"{PREFIX}rate:{user_id}", repr(self.rate), str(self.burst))

    async def allow(self, user_id: str) -> bool:
        """Take one token from the user's bucket if there is one."""
        bucket = self.bucket(user_id)
        return bool(await self._script(keys=[bucket.key], args=[bucket.rate, bucket.burst]))


@dataclass(frozen=True)
class Bucket:
    """One user's token bucket: its key and the script arguments rate and burst."""

    key: str
    rate: str
    burst: str


class HourlyQuota:
    """How many times each user did something in the current clock hour, over every process:
    `tt:{name}:{user}:{hour}` counts, kept an hour and a minute."""

    def __init__(self, redis: Any, name: str, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.name = name
        self.clock = clock

    def key(self, user_id: str) -> str:
        """`tt:{name}:{user}:{hours since the epoch}`."""
        return f"{PREFIX}{self.name}:{user_id}:{int(self.clock() // HOUR_S)}"

    async def used(self, user_id: str) -> int:
        """How many the user counted this hour."""
        raw = await self.redis.get(self.key(user_id))
        return 0 if raw is None else int(raw)

    async def count(self, user_id: str) -> None:
        """Count one more for the user this hour."""
        key = self.key(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, HOUR_S + 60)
            await pipe.execute()
