"""Who is online, across server processes: a Redis hash of live sockets per user.

Each server process is an *instance* with a heartbeat key; sockets of an instance that died
without cleaning up are swept away, so a crashed process never leaves users "online".
"""

from __future__ import annotations

import secrets

import redis.asyncio as aioredis

from server.storage.keys import PREFIX, text

# KEYS: presence:{uid}  ARGV: sid, instance  -> sockets the user has now
# Count and add in one step, so sockets connecting at once can't pass the cap together.
ADD_SCRIPT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3])
then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HLEN', KEYS[1])
"""
REMOVE_SCRIPT = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return -1 end
return redis.call('HLEN', KEYS[1])
"""


class Presence:
    """Counts each user's sockets over all processes; tells when a user comes or goes."""

    def __init__(self, client: aioredis.Redis, heartbeat_s: float = 30.0) -> None:
        """`heartbeat_s`: how long an instance counts as alive without a heartbeat (it beats
        every third of it), so a killed process's users go offline within about 4/3 of it."""
        self.redis = client
        self.heartbeat_s = heartbeat_s
        self.instance = secrets.token_hex(6)
        self._add = client.register_script(ADD_SCRIPT)
        self._remove = client.register_script(REMOVE_SCRIPT)

    @staticmethod
    def _key(user: str) -> str:
        return f"{PREFIX}presence:{user}"

    async def heartbeat(self) -> None:
        """Mark this instance alive for the next `heartbeat_s` seconds."""
        key = f"{PREFIX}instance:{self.instance}"
        await self.redis.set(key, 1, px=int(self.heartbeat_s * 1000))

    async def connect(self, user: str, sid: str, limit: int) -> int:
        """Record a socket unless the user already has `limit` open; return how many the user
        has now (1: the user came online), or -1 when refused."""
        return int(await self._add(keys=[self._key(user)], args=[sid, self.instance, limit]))

    async def disconnect(self, user: str, sid: str) -> bool:
        """Forget a socket; True when it was the user's last (the user went offline)."""
        return int(await self._remove(keys=[self._key(user)], args=[sid])) == 0

    async def online(self, users: list[str]) -> dict[str, bool]:
        """Whether each user has at least one live socket."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.hlen(self._key(user))
            counts = await pipe.execute()
        return {user: count > 0 for user, count in zip(users, counts, strict=True)}

    async def sweep(self, include_self: bool = False) -> list[str]:
        """Drop sockets of dead instances (or of this one); return users that went offline."""
        alive: dict[str, bool] = {}
        gone_offline = []
        async for key in self.redis.scan_iter(match=f"{PREFIX}presence:*", count=500):
            entries = await self.redis.hgetall(key)
            for sid, instance in entries.items():
                inst = text(instance)
                if inst not in alive:
                    alive[inst] = bool(await self.redis.exists(f"{PREFIX}instance:{inst}"))
                dead = not alive[inst] or (include_self and inst == self.instance)
                if dead and await self._remove(keys=[key], args=[sid]) == 0:
                    gone_offline.append(text(key)[len(PREFIX) + len("presence:") :])
        return gone_offline
