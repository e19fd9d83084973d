"""Everyone who has ever connected: their display name and role (shared through Redis).

Key (prefix `tt:`): `users` hash: user id -> JSON `{name, role}` (written on every connect, so a
name given by a newer token wins). Languages stay in `tt:lang` (see `languages.py`).
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from server.storage.keys import PREFIX
from server.storage.store import LANG_KEY
from server.tokens import Identity

USERS_KEY = PREFIX + "users"


class Directory:
    """Who exists: names, roles and languages of users who have connected at least once."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def register(self, identity: Identity) -> None:
        """Remember (or refresh) a connecting user's name and role."""
        record = {"name": identity.name, "role": identity.role}
        await self.redis.hset(USERS_KEY, identity.id, json.dumps(record, ensure_ascii=False))

    async def unknown(self, users: list[str]) -> list[str]:
        """The ids among `users` that never connected, in the given order."""
        if not users:
            return []
        found = await self.redis.hmget(USERS_KEY, users)
        return [u for u, record in zip(users, found, strict=True) if record is None]

    async def people(self, users: list[str]) -> dict[str, dict[str, Any]]:
        """`{id: {name, role, lang}}` for each given user (name null for one never seen)."""
        if not users:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(USERS_KEY, users)
            pipe.hmget(LANG_KEY, users)
            records, langs = await pipe.execute()
        result: dict[str, dict[str, Any]] = {}
        for user, record, lang in zip(users, records, langs, strict=True):
            known = json.loads(record) if record else {"name": None, "role": None}
            result[user] = {
                "name": known.get("name"),
                "role": known.get("role"),
                "lang": lang.decode() if lang else None,
            }
        return result
