"""Running calls and tours as kept in Redis: which node owns each, and what another node needs to
take it over (`tt:media:{id}` JSON, the index `tt:media:index`, a call per conversation
`tt:media:conv:{cid}`).

The owner refreshes its records' expiry on every heartbeat, so the record of a session whose
owner died and that nobody could take over disappears by itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict, cast

import redis.asyncio as aioredis

from server.storage.keys import PREFIX, text
from server.tokens import Identity

INDEX = f"{PREFIX}media:index"


class IdentityRecord(TypedDict):
    """A user as kept in a record (`server.tokens.Identity`'s fields)."""

    id: str
    name: str
    role: str
    lang: str


class MediaRecord(TypedDict):
    """`tt:media:{id}`: who runs a call or tour and what another node needs to take it over.

    Every record has the first six fields; a call's has the `conversation…` and `started_by`
    ones, a tour's `title` to `public` (both have `started_at`)."""

    id: str
    kind: str  # "call" or "tour"
    cluster: str
    owner: str  # the node running it
    epoch: int  # + 1 on every take-over
    started_wall: float
    started_at: NotRequired[str]
    conversation_id: NotRequired[str]
    conversation: NotRequired[dict[str, Any]]
    started_by: NotRequired[str]
    title: NotRequired[str]
    lang: NotRequired[str]
    host: NotRequired[IdentityRecord]
    host_sid: NotRequired[str]
    invite: NotRequired[list[str] | None]
    public: NotRequired[dict[str, Any]]


def identity_record(identity: Identity) -> IdentityRecord:
    """An identity as kept in a record or sent to another node."""
    return {"id": identity.id, "name": identity.name, "role": identity.role, "lang": identity.lang}


def as_record(fields: Mapping[str, Any]) -> MediaRecord:
    """A record built by a media session kind (its common fields plus the kind's own)."""
    return cast(MediaRecord, dict(fields))


# KEYS: record  ARGV: expected owner, new owner, ttl ms -> the new record, or nil
TAKE_OVER = """
local raw = redis.call('GET', KEYS[1])
if not raw then return nil end
local record = cjson.decode(raw)
if record['owner'] ~= ARGV[1] then return nil end
record['owner'] = ARGV[2]
record['epoch'] = (record['epoch'] or 0) + 1
local out = cjson.encode(record)
redis.call('SET', KEYS[1], out, 'PX', tonumber(ARGV[3]))
return out
"""


# KEYS: conversation key  ARGV: stale call id, new call id, ttl ms -> the call id it now holds
REPLACE_CONVERSATION = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return current end
redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3]))
return ARGV[2]
"""


def record_key(session_id: str) -> str:
    """`tt:media:{id}`."""
    return f"{PREFIX}media:{session_id}"


def conversation_key(cid: str) -> str:
    """`tt:media:conv:{cid}`: the id of the conversation's running call."""
    return f"{PREFIX}media:conv:{cid}"


class MediaRecords:
    """Ownership records of running media sessions, shared by every node."""

    def __init__(self, client: aioredis.Redis, ttl_s: float = 30.0) -> None:
        self.redis = client
        self.ttl_ms = int(ttl_s * 1000)
        self._take_over = client.register_script(TAKE_OVER)
        self._replace_conversation = client.register_script(REPLACE_CONVERSATION)

    async def put(self, record: Mapping[str, Any]) -> None:
        """Write (or rewrite) a record (a `MediaRecord`, as a session kind builds it) and
        index it."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(record_key(record["id"]), json.dumps(record), px=self.ttl_ms)
            pipe.sadd(INDEX, record["id"])
            await pipe.execute()

    async def get(self, session_id: str) -> MediaRecord | None:
        """The record of a running session, or None."""
        raw = await self.redis.get(record_key(session_id))
        return as_record(json.loads(raw)) if raw else None

    async def claim_conversation(self, cid: str, call_id: str) -> str:
        """Make `call_id` the conversation's call unless it has one; return the one it has."""
        key = conversation_key(cid)
        if await self.redis.set(key, call_id, nx=True, px=self.ttl_ms):
            return call_id
        current = await self.redis.get(key)
        if current is None:  # expired in between: try once more
            return call_id if await self.redis.set(key, call_id, nx=True, px=self.ttl_ms) else ""
        return text(current)

    async def replace_conversation(self, cid: str, stale: str, call_id: str) -> str:
        """Make `call_id` the conversation's call if it still names `stale` (a call that no
        longer runs) or none; return the call it names now."""
        current = await self._replace_conversation(
            keys=[conversation_key(cid)], args=[stale, call_id, self.ttl_ms]
        )
        return current.decode() if isinstance(current, bytes) else str(current)

    async def by_conversation(self, cid: str) -> MediaRecord | None:
        """The record of the conversation's running call, or None."""
        call_id = await self.redis.get(conversation_key(cid))
        return await self.get(text(call_id)) if call_id else None

    async def all(self) -> list[MediaRecord]:
        """Every running session's record (ids whose record expired leave the index)."""
        ids = sorted(text(m) for m in await self.redis.smembers(INDEX))
        if not ids:
            return []
        raws = await self.redis.mget([record_key(i) for i in ids])
        gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if gone:
            await self.redis.srem(INDEX, *gone)
        return [as_record(json.loads(raw)) for raw in raws if raw is not None]

    async def refresh(self, records: list[dict[str, Any]]) -> None:
        """Push back the expiry of an owner's records (every heartbeat)."""
        if not records:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for record in records:
                pipe.pexpire(record_key(record["id"]), self.ttl_ms)
                if record.get("conversation_id"):
                    pipe.pexpire(conversation_key(record["conversation_id"]), self.ttl_ms)
            await pipe.execute()

    async def take_over(self, session_id: str, owner: str, new_owner: str) -> MediaRecord | None:
        """Move a record from `owner` to `new_owner` (epoch + 1) if `owner` still has it."""
        raw = await self._take_over(
            keys=[record_key(session_id)], args=[owner, new_owner, self.ttl_ms]
        )
        return as_record(json.loads(raw)) if raw else None

    async def lock_failover(self, session_id: str, node_id: str, ttl_ms: int) -> bool:
        """Whether `node_id` is the one node to re-place a session whose owner died
        (`tt:media:{id}:failover`, held `ttl_ms`)."""
        lock = record_key(session_id) + ":failover"
        return bool(await self.redis.set(lock, node_id, nx=True, px=ttl_ms))

    async def delete(self, record: Mapping[str, Any], owner: str | None = None) -> None:
        """Forget a session that ended (only if `owner` still holds it, when given); `record`
        needs its `id` and, for a call, its `conversation_id`."""
        if owner is not None:
            current = await self.get(record["id"])
            if current is not None and current.get("owner") != owner:
                return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(record_key(record["id"]))
            pipe.srem(INDEX, record["id"])
            await pipe.execute()
        cid = record.get("conversation_id")
        if cid:
            key = conversation_key(cid)
            current_call = await self.redis.get(key)
            if current_call is not None and text(current_call) == record["id"]:
                await self.redis.delete(key)
