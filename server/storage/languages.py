"""Each user's current language, shared by all server processes through Redis."""

from __future__ import annotations

import redis.asyncio as aioredis

from server.storage.keys import text
from server.storage.store import LANG_KEY as KEY
from server.tokens import Identity


class Languages:
    """A user's language starts as their token's and changes with `user.set_language`."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def register(self, identity: Identity) -> str:
        """Record the token's language unless the user chose one; return the one in force."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(KEY, identity.id, identity.lang)
            pipe.hget(KEY, identity.id)
            _, lang = await pipe.execute()
        return text(lang)

    async def set(self, user: str, lang: str) -> None:
        """Change a user's language."""
        await self.redis.hset(KEY, user, lang)

    async def of(self, users: list[str]) -> dict[str, str | None]:
        """The language of each user (None for users never seen)."""
        values = await self.redis.hmget(KEY, users)
        return {u: text(v) if v else None for u, v in zip(users, values, strict=True)}
