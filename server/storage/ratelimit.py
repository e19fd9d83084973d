"""Rate limiting per user, shared by all their sockets in every server process (in Redis)."""

from __future__ import annotations

from typing import Any

# KEYS: bucket   ARGV: rate per second, burst  -> 1 allowed / 0 refused
# The clock is Redis's own (TIME), so processes on hosts whose clocks differ share one bucket.
BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
if now > stamp then tokens = math.min(burst, tokens + (now - stamp) * rate) end
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(math.max(now, stamp)))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return allowed
"""


class UserRateLimit:
    """A token bucket per user id: `rate` events per second on average, bursts up to `burst`,
    counted over every socket of the user in every process."""

    def __init__(self, redis: Any, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._script = redis.register_script(BUCKET_SCRIPT)

    async def allow(self, user_id: str) -> bool:
        """Take one token from the user's bucket if there is one."""
        args = [repr(self.rate), str(self.burst)]
        return bool(await self._script(keys=[f"tt:rate:{user_id}"], args=args))
