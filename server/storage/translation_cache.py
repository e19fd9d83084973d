"""The translation engines' shared cache, kept in Redis so every process reuses translations."""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis

from server.storage.keys import PREFIX, text

TTL_SECONDS = 30 * 24 * 3600


class RedisTranslationCache:
    """Implements `translation.service.AsyncCache` on Redis strings with a TTL."""

    def __init__(self, client: aioredis.Redis, ttl: int = TTL_SECONDS) -> None:
        self.redis = client
        self.ttl = ttl

    @staticmethod
    def _key(key: str) -> str:
        return f"{PREFIX}tr:" + hashlib.sha256(key.encode()).hexdigest()

    async def get(self, key: str) -> str | None:
        """A cached translation, or None."""
        value = await self.redis.get(self._key(key))
        return text(value) if value is not None else None

    async def set(self, key: str, value: str) -> None:
        """Cache a translation."""
        await self.redis.set(self._key(key), value, ex=self.ttl)
