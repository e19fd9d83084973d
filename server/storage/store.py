"""Conversations, messages, read markers and inboxes, stored in Redis.

Key layout (prefix `tt:`), all written atomically by Lua scripts where several change together:
- `conv:{cid}`         hash: id, title, participants (JSON), created_at, created_by
- `conv:{cid}:seq`     last message id (ids count 1, 2, 3, ... in send order)
- `conv:{cid}:msgs`    hash: message id -> message JSON
- `conv:{cid}:cids`    hash: sender + client_id -> message id (idempotent sends)
- `conv:{cid}:reads`   hash: user id -> last message id read
- `conv:{cid}:glossary` JSON: term -> fixed translation (or null: keep as is)
- `inbox:{uid}`        sorted set: conversation id scored by last activity (ms)
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from server.tokens import Identity

PREFIX = "tt:"

# KEYS: seq, msgs, cids, reads, inbox:{p}...   ARGV: dedupe, message json, sender, now_ms, cid, p...
SEND_SCRIPT = """
local existing = redis.call('HGET', KEYS[3], ARGV[1])
local created = 0
local encoded
if existing then
  encoded = redis.call('HGET', KEYS[2], existing)
else
  created = 1
  local seq = redis.call('INCR', KEYS[1])
  local msg = cjson.decode(ARGV[2])
  msg['id'] = seq
  encoded = cjson.encode(msg)
  redis.call('HSET', KEYS[2], seq, encoded)
  redis.call('HSET', KEYS[3], ARGV[1], seq)
  redis.call('HSET', KEYS[4], ARGV[3], seq)
  for i = 5, #KEYS do redis.call('ZADD', KEYS[i], ARGV[4], ARGV[5]) end
end
local top = redis.call('GET', KEYS[1])
local reads = {}
for i = 6, #ARGV do reads[#reads + 1] = redis.call('HGET', KEYS[4], ARGV[i]) or '0' end
return {created, encoded, top, reads}
"""

# KEYS: reads, seq   ARGV: user, message id  -> new marker, or -1 when the id doesn't exist
READ_SCRIPT = """
local top = tonumber(redis.call('GET', KEYS[2]) or '0')
local m = tonumber(ARGV[2])
if m < 1 or m > top then return -1 end
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if m > cur then redis.call('HSET', KEYS[1], ARGV[1], m); return m end
return cur
"""

# KEYS: cids, msgs, lang, glossary   ARGV: dedupe, participant ids...
# -> {stored message json or false, glossary json or false, each participant's language or false}
PREPARE_SCRIPT = """
local seq = redis.call('HGET', KEYS[1], ARGV[1])
local earlier = false
if seq then earlier = redis.call('HGET', KEYS[2], seq) end
local result = {earlier, redis.call('GET', KEYS[4])}
for i = 2, #ARGV do result[#result + 1] = redis.call('HGET', KEYS[3], ARGV[i]) end
return result
"""

LANG_KEY = PREFIX + "lang"
INBOX_MAX = 500
CONVERSATION_CACHE_SIZE = 10_000


def now_iso() -> str:
    """UTC time as ISO-8601 with milliseconds, e.g. 2026-11-23T19:22:27.123Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_conversation_id() -> str:
    """A fresh random conversation id `c_` + 16 hex digits."""
    return "c_" + secrets.token_hex(8)


class Store:
    """All durable chat state; one instance per server process, safe to share across tasks."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._send = client.register_script(SEND_SCRIPT)
        self._read = client.register_script(READ_SCRIPT)
        self._prepare = client.register_script(PREPARE_SCRIPT)
        self._conversations: OrderedDict[str, dict[str, Any]] = OrderedDict()

    @staticmethod
    def key(*parts: str) -> str:
        """A namespaced key."""
        return PREFIX + ":".join(parts)

    async def create_conversation(
        self, creator: Identity, participants: list[str], title: str | None
    ) -> dict[str, Any]:
        """Create a conversation whose participants always include its creator."""
        members = list(dict.fromkeys([creator.id, *participants]))
        conversation = {
            "id": new_conversation_id(),
            "title": title,
            "participants": members,
            "created_at": now_iso(),
        }
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self.key("conv", conversation["id"]),
                mapping={
                    "id": conversation["id"],
                    "title": json.dumps(title),
                    "participants": json.dumps(members),
                    "created_at": conversation["created_at"],
                    "created_by": creator.id,
                },
            )
            for member in members:
                pipe.zadd(self.key("inbox", member), {conversation["id"]: now_ms})
            await pipe.execute()
        self._remember(conversation)
        return conversation

    def _remember(self, conversation: dict[str, Any]) -> None:
        """Cache a conversation (participants never change once created)."""
        self._conversations[conversation["id"]] = conversation
        self._conversations.move_to_end(conversation["id"])
        while len(self._conversations) > CONVERSATION_CACHE_SIZE:
            self._conversations.popitem(last=False)

    async def get_conversation(self, cid: str) -> dict[str, Any] | None:
        """The conversation, or None when it doesn't exist."""
        cached = self._conversations.get(cid)
        if cached is not None:
            return cached
        raw = await self.redis.hgetall(self.key("conv", cid))
        if not raw:
            return None
        conversation = {
            "id": raw[b"id"].decode(),
            "title": json.loads(raw[b"title"]),
            "participants": json.loads(raw[b"participants"]),
            "created_at": raw[b"created_at"].decode(),
        }
        self._remember(conversation)
        return conversation

    async def add_message(
        self, conversation: dict[str, Any], sender: Identity, client_id: str, fields: dict[str, Any]
    ) -> tuple[bool, dict[str, Any], dict[str, int]]:
        """Store a message once per (sender, client_id).

        Returns (created, message, unread per participant).
        """
        cid = conversation["id"]
        members = conversation["participants"]
        message = {
            "conversation_id": cid,
            "sender": sender.public(),
            "client_id": client_id,
            "ts": now_iso(),
            **fields,
        }
        keys = [
            self.key("conv", cid, "seq"),
            self.key("conv", cid, "msgs"),
            self.key("conv", cid, "cids"),
            self.key("conv", cid, "reads"),
            *(self.key("inbox", m) for m in members),
        ]
        args = [
            f"{sender.id}\x1f{client_id}",
            json.dumps(message, ensure_ascii=False),
            sender.id,
            int(time.time() * 1000),
            cid,
            *members,
        ]
        created, encoded, top, reads = await self._send(keys=keys, args=args)
        top = int(top)
        unread = {m: max(0, top - int(r)) for m, r in zip(members, reads, strict=True)}
        return bool(created), json.loads(encoded), unread

    async def messages_range(self, cid: str, first: int, last: int) -> list[dict[str, Any]]:
        """Messages with ids first..last inclusive, in order."""
        if last < first:
            return []
        ids = list(range(first, last + 1))
        raw = await self.redis.hmget(self.key("conv", cid, "msgs"), ids)
        return [json.loads(r) for r in raw if r is not None]

    async def last_id(self, cid: str) -> int:
        """The newest message id (0 when there are none)."""
        return int(await self.redis.get(self.key("conv", cid, "seq")) or 0)

    async def messages_after(self, cid: str, since: int, limit: int) -> tuple[list[dict], bool]:
        """Up to `limit` messages after id `since`, oldest first; and whether more follow."""
        top = await self.last_id(cid)
        last = min(top, since + limit)
        return await self.messages_range(cid, since + 1, last), last < top

    async def messages_before(
        self, cid: str, before: int | None, limit: int
    ) -> tuple[list[dict], bool]:
        """Up to `limit` messages before id `before` (or the newest), oldest first; more older?"""
        top = await self.last_id(cid)
        end = top if before is None else min(top, before - 1)
        first = max(1, end - limit + 1)
        return await self.messages_range(cid, first, end), first > 1

    async def mark_read(self, cid: str, user: str, message_id: int) -> int | None:
        """Move the user's read marker forward; None when the message doesn't exist."""
        marker = await self._read(
            keys=[self.key("conv", cid, "reads"), self.key("conv", cid, "seq")],
            args=[user, message_id],
        )
        return None if int(marker) < 0 else int(marker)

    async def read_markers(self, cid: str) -> dict[str, int]:
        """How far each participant has read: user id -> last message id read."""
        raw = await self.redis.hgetall(self.key("conv", cid, "reads"))
        return {user.decode(): int(marker) for user, marker in raw.items()}

    async def inbox(self, user: str, limit: int = INBOX_MAX) -> list[dict[str, Any]]:
        """The user's conversations, newest activity first, with last message and unread count."""
        cids = [
            c.decode() for c in await self.redis.zrevrange(self.key("inbox", user), 0, limit - 1)
        ]
        return await self.summaries(user, cids)

    async def summaries(self, user: str, cids: list[str]) -> list[dict[str, Any]]:
        """Inbox entries for the given conversations, as seen by `user`."""
        if not cids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in cids:
                pipe.get(self.key("conv", cid, "seq"))
                pipe.hget(self.key("conv", cid, "reads"), user)
            counters = await pipe.execute()
        tops = [int(t or 0) for t in counters[0::2]]
        reads = [int(r or 0) for r in counters[1::2]]
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid, top in zip(cids, tops, strict=True):
                pipe.hget(self.key("conv", cid, "msgs"), top)
            lasts = await pipe.execute()
        result = []
        for cid, top, read, last in zip(cids, tops, reads, lasts, strict=True):
            conversation = await self.get_conversation(cid)
            if conversation is None:
                continue
            result.append(
                summary(conversation, json.loads(last) if last else None, max(0, top - read))
            )
        return result

    async def prepare_send(
        self, conversation: dict[str, Any], sender: str, client_id: str
    ) -> tuple[dict[str, Any] | None, dict[str, str | None], dict[str, str | None]]:
        """Everything a send reads, in one round trip: the message this sender already stored
        under `client_id` (or None), each participant's language, and the glossary."""
        cid = conversation["id"]
        members = conversation["participants"]
        keys = [
            self.key("conv", cid, "cids"),
            self.key("conv", cid, "msgs"),
            LANG_KEY,
            self.key("conv", cid, "glossary"),
        ]
        earlier, glossary, *langs = await self._prepare(
            keys=keys, args=[f"{sender}\x1f{client_id}", *members]
        )
        languages = {
            m: lang.decode() if lang else None for m, lang in zip(members, langs, strict=True)
        }
        return (
            json.loads(earlier) if earlier else None,
            languages,
            json.loads(glossary) if glossary else {},
        )

    async def glossary(self, cid: str) -> dict[str, str | None]:
        """The conversation's glossary: term -> fixed translation, or None to keep it as is."""
        raw = await self.redis.get(self.key("conv", cid, "glossary"))
        return json.loads(raw) if raw else {}

    async def set_glossary(self, cid: str, terms: dict[str, str | None]) -> None:
        """Replace the conversation's glossary."""
        await self.redis.set(
            self.key("conv", cid, "glossary"), json.dumps(terms, ensure_ascii=False)
        )

    async def partners(self, user: str) -> set[str]:
        """Everyone who shares a conversation with `user` (for presence)."""
        cids = await self.redis.zrevrange(self.key("inbox", user), 0, INBOX_MAX - 1)
        people: set[str] = set()
        for cid in cids:
            conversation = await self.get_conversation(cid.decode())
            if conversation:
                people.update(conversation["participants"])
        people.discard(user)
        return people


def summary(
    conversation: dict[str, Any],
    last_message: dict[str, Any] | None,
    unread: int,
    people: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An inbox entry: `{id, title, participants, last_message, unread}` (+ `people` if given)."""
    entry = {
        "id": conversation["id"],
        "title": conversation["title"],
        "participants": conversation["participants"],
        "last_message": last_message,
        "unread": unread,
    }
    if people is not None:
        entry["people"] = people
    return entry
