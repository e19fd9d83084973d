"""Conversations, messages, read markers and inboxes, stored in Redis.

Key layout (prefix `tt:`), all written atomically by Lua scripts where several change together:
- `conv:{cid}`         hash: id, title, participants (JSON), created_at, created_by
- `conv:{cid}:seq`     last message id (ids count 1, 2, 3, ... in send order)
- `conv:{cid}:msgs`    hash: message id -> message JSON
- `conv:{cid}:cids`    hash: sender + client_id -> message id (idempotent sends)
- `conv:{cid}:reads`   hash: user id -> last message id read
- `conv:{cid}:last`    id of the last typed message (the inbox preview)
- `conv:{cid}:calls`   sorted set: call id scored by the id of its one `kind: "call"` entry
                       (idempotent; entries that are not typed are left out of unread counts)
- `conv:{cid}:transcript` list: every call's final subtitle lines (JSON, oldest first)
- `conv:{cid}:lineids` hash: line id -> 1 (a line is kept once)
- `conv:{cid}:linecount` hash: call id -> lines kept
- `conv:{cid}:glossary` JSON: term -> fixed translation (or null: keep as is)
- `inbox:{uid}`        sorted set: conversation id scored by last activity (ms)
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from server import compact_json
from server.storage.batching import BatchedScript
from server.storage.keys import PREFIX, text
from server.storage.publication import Publication
from server.storage.ratelimit import TAKE_TOKEN_LUA, Bucket
from server.tokens import Identity

# KEYS: seq, msgs, cids, reads, calls, last, lang, glossary, sender's rate bucket, inbox:{p}...
# ARGV: dedupe, message json (no id), sender, now_ms, cid, n participants, verify (1/0),
#       glossary json expected, p1..pn, their languages expected (n, '' unless verify),
#       the bucket's rate and burst ('' '': no token to take),
#       then a publication (`storage/publication.py`): channel ('' for none), number of
#       slots, piece, slot, piece, ... (slot 'm': the stored message, 'i': p_i's unread count)
# -> {1, new id, unread per p} | {0, stored message json, unread per p} | {-1} (verify: the
#    languages or the glossary the message was translated for are no longer in force) | {-2}
#    (the sender's rate-limit token was refused: nothing stored)
# A new message is published (to the other processes) by this script, after it is stored:
# under `appendfsync always` Redis writes the AOF before it sends any reply or pub/sub message.
SEND_SCRIPT = (
    TAKE_TOKEN_LUA
    + """
local n = tonumber(ARGV[6])
if ARGV[9 + 2 * n] ~= '' then
  if take_token(KEYS[9], tonumber(ARGV[9 + 2 * n]), tonumber(ARGV[10 + 2 * n])) == 0 then
    return {-2}
  end
end
local existing = redis.call('HGET', KEYS[3], ARGV[1])
local result
local stored = false
if existing then
  result = {0, redis.call('HGET', KEYS[2], existing)}
else
  if ARGV[7] == '1' then
    if (redis.call('GET', KEYS[8]) or '') ~= ARGV[8] then return {-1} end
    for i = 1, n do
      if (redis.call('HGET', KEYS[7], ARGV[8 + i]) or '') ~= ARGV[8 + n + i] then
        return {-1}
      end
    end
  end
  local seq = redis.call('INCR', KEYS[1])
  stored = '{"id":' .. seq .. ',' .. string.sub(ARGV[2], 2)
  redis.call('HSET', KEYS[2], seq, stored)
  redis.call('HSET', KEYS[3], ARGV[1], seq)
  redis.call('HSET', KEYS[4], ARGV[3], seq)
  redis.call('SET', KEYS[6], seq)
  for i = 10, #KEYS do redis.call('ZADD', KEYS[i], ARGV[4], ARGV[5]) end
  result = {1, seq}
end
local top = tonumber(redis.call('GET', KEYS[1]) or '0')
local unread = {}
for i = 1, n do
  local read = tonumber(redis.call('HGET', KEYS[4], ARGV[8 + i]) or '0')
  unread[#unread + 1] = top - read - redis.call('ZCOUNT', KEYS[5], '(' .. read, '+inf')
end
result[3] = unread
local base = 12 + 2 * n
if stored and ARGV[base - 1] ~= '' then
  local parts = {ARGV[base + 1]}
  for j = 1, tonumber(ARGV[base]) do
    local name = ARGV[base + 2 * j]
    if name == 'm' then
      parts[#parts + 1] = stored
    else
      parts[#parts + 1] = tostring(math.max(0, unread[tonumber(name)]))
    end
    parts[#parts + 1] = ARGV[base + 2 * j + 1]
  end
  redis.call('PUBLISH', ARGV[base - 1], table.concat(parts))
end
return result
"""
)

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

# KEYS: seq, msgs, calls, last   ARGV: call id, entry json  -> {created, entry json}
# (a conversation from before `last` existed gets it here: its newest entry so far)
CALL_ENTRY_SCRIPT = """
local existing = redis.call('ZSCORE', KEYS[3], ARGV[1])
if existing then return {0, redis.call('HGET', KEYS[2], existing)} end
local seq = redis.call('INCR', KEYS[1])
if redis.call('EXISTS', KEYS[4]) == 0 then redis.call('SET', KEYS[4], seq - 1) end
local msg = cjson.decode(ARGV[2])
msg['id'] = seq
local encoded = cjson.encode(msg)
redis.call('HSET', KEYS[2], seq, encoded)
redis.call('ZADD', KEYS[3], seq, ARGV[1])
return {1, encoded}
"""

# KEYS: transcript, lineids, linecount   ARGV: line id, call id, line json
# -> the call's line count, or 0 when this line was kept already
LINE_SCRIPT = """
if redis.call('HSETNX', KEYS[2], ARGV[1], 1) == 0 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[3])
return redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
"""

LANG_KEY = PREFIX + "lang"
INBOX_MAX = 500
CONVERSATION_CACHE_SIZE = 10_000


class RateLimited(Exception):
    """The sender's rate-limit token was refused by the store script: nothing was stored."""


class StaleContext(Exception):
    """A message was translated for languages or a glossary no longer in force: not stored."""


@dataclass(frozen=True)
class SendContext:
    """What a conversation's sends are translated for: each participant's language and the
    glossary (`glossary_json` as stored, "" for none), as last read from Redis."""

    langs: dict[str, str | None]
    glossary: dict[str, str | None]
    glossary_json: str


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
        #: stores of one event-loop turn (other sockets' sends) share one round trip
        self._send = BatchedScript(client, SEND_SCRIPT)
        self._read = client.register_script(READ_SCRIPT)
        self._prepare = client.register_script(PREPARE_SCRIPT)
        self._call_entry = client.register_script(CALL_ENTRY_SCRIPT)
        self._line = client.register_script(LINE_SCRIPT)
        self._conversations: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._contexts: OrderedDict[str, SendContext] = OrderedDict()

    @staticmethod
    def key(*parts: str) -> str:
        """A namespaced key."""
        return PREFIX + ":".join(parts)

    async def create_conversation(
        self, creator: Identity, participants: list[str], title: str | None
    ) -> dict[str, Any]:
        """Create a conversation whose participants always include its creator."""
        members = list(dict.fromkeys([creator.id, *participants]))
        conversation: dict[str, Any] = {
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
            "id": text(raw[b"id"]),
            "title": json.loads(raw[b"title"]),
            "participants": json.loads(raw[b"participants"]),
            "created_at": text(raw[b"created_at"]),
        }
        self._remember(conversation)
        return conversation

    async def add_message(
        self,
        conversation: dict[str, Any],
        sender: Identity,
        client_id: str,
        fields: dict[str, Any],
        context: SendContext | None = None,
        publication: Publication | None = None,
        bucket: Bucket | None = None,
    ) -> tuple[bool, dict[str, Any], dict[str, int]]:
        """Store a typed message once per (sender, client_id): it becomes the inbox preview and
        counts as unread for the others. With `context` (what `fields` were translated for,
        from `send_context`), it is stored only while those languages and that glossary are
        still in force: StaleContext otherwise (the context is forgotten; read it again).
        `publication`: published by the same script once a new message is stored (its slots:
        the message, and each participant's unread count in `participants` order).
        `bucket`: the sender's rate-limit token is taken by the same script first
        (RateLimited, nothing stored, when there is none).

        Returns (created, message, unread typed messages per participant).
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
            self.key("conv", cid, "calls"),
            self.key("conv", cid, "last"),
            LANG_KEY,
            self.key("conv", cid, "glossary"),
            bucket.key if bucket else self.key("conv", cid, "seq"),  # untouched without
            *(self.key("inbox", m) for m in members),
        ]
        args = [
            f"{sender.id}\x1f{client_id}",
            compact_json.dumps(message),
            sender.id,
            int(time.time() * 1000),
            cid,
            len(members),
            int(context is not None),
            context.glossary_json if context else "",
            *members,
            *((context.langs.get(m) or "" if context else "") for m in members),
            *((bucket.rate, bucket.burst) if bucket else ("", "")),
            *(publication.args() if publication else ("",)),
        ]
        created, *found = await self._send(keys=keys, args=args)
        if created == -2:
            raise RateLimited(sender.id)
        if created < 0:
            self._contexts.pop(cid, None)
            raise StaleContext(cid)
        stored, counts = found
        unread = {m: max(0, int(n)) for m, n in zip(members, counts, strict=True)}
        if created:
            return True, {"id": int(stored), **message}, unread
        return False, json.loads(stored), unread

    async def add_call_entry(
        self, cid: str, starter: dict[str, Any], call_id: str, fields: dict[str, Any]
    ) -> tuple[bool, dict[str, Any]]:
        """The one `kind: "call"` history entry of a call (stored once per call id, whoever
        asks how often): in the history and replays, but neither the inbox preview nor unread.

        Returns (created, entry)."""
        entry = {
            "conversation_id": cid,
            "sender": starter,
            "client_id": call_id,
            "ts": now_iso(),
            "kind": "call",
            "call_id": call_id,
            **fields,
        }
        keys = [
            self.key("conv", cid, "seq"),
            self.key("conv", cid, "msgs"),
            self.key("conv", cid, "calls"),
            self.key("conv", cid, "last"),
        ]
        created, encoded = await self._call_entry(
            keys=keys, args=[call_id, json.dumps(entry, ensure_ascii=False)]
        )
        return bool(created), json.loads(encoded)

    async def add_transcript_line(
        self, cid: str, call_id: str, line_id: str, line: dict[str, Any]
    ) -> int:
        """Keep a call's final subtitle line once per `line_id`; the call's line count (0 when
        the line was kept already)."""
        keys = [
            self.key("conv", cid, "transcript"),
            self.key("conv", cid, "lineids"),
            self.key("conv", cid, "linecount"),
        ]
        args = [line_id, call_id, json.dumps({"id": line_id, **line}, ensure_ascii=False)]
        return int(await self._line(keys=keys, args=args))

    async def transcript_lines(self, cid: str, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` transcript lines of the conversation's calls, oldest first."""
        raw = await self.redis.lrange(self.key("conv", cid, "transcript"), -limit, -1)
        return [json.loads(r) for r in raw]

    async def call_line_count(self, cid: str, call_id: str) -> int:
        """How many transcript lines the call has kept."""
        return int(await self.redis.hget(self.key("conv", cid, "linecount"), call_id) or 0)

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

    async def messages_after(
        self, cid: str, since: int, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to `limit` messages after id `since`, oldest first; and whether more follow."""
        top = await self.last_id(cid)
        last = min(top, since + limit)
        return await self.messages_range(cid, since + 1, last), last < top

    async def messages_before(
        self, cid: str, before: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
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
        return {text(user): int(marker) for user, marker in raw.items()}

    async def inbox(self, user: str, limit: int = INBOX_MAX) -> list[dict[str, Any]]:
        """The user's conversations, newest activity first, with last message and unread count."""
        cids = [text(c) for c in await self.redis.zrevrange(self.key("inbox", user), 0, limit - 1)]
        return await self.summaries(user, cids)

    async def summaries(self, user: str, cids: list[str]) -> list[dict[str, Any]]:
        """Inbox entries for the given conversations, as seen by `user`."""
        if not cids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in cids:
                pipe.get(self.key("conv", cid, "seq"))
                pipe.hget(self.key("conv", cid, "reads"), user)
                pipe.get(self.key("conv", cid, "last"))
            counters = await pipe.execute()
        tops = [int(t or 0) for t in counters[0::3]]
        reads = [int(r or 0) for r in counters[1::3]]
        # conversations from before typed messages were told apart: their newest entry
        lasts = [int(x) if x else top for x, top in zip(counters[2::3], tops, strict=True)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid, read, last in zip(cids, reads, lasts, strict=True):
                pipe.hget(self.key("conv", cid, "msgs"), last)
                pipe.zcount(self.key("conv", cid, "calls"), f"({read}", "+inf")
            found = await pipe.execute()
        result = []
        for cid, top, read, raw, calls in zip(
            cids, tops, reads, found[0::2], found[1::2], strict=True
        ):
            conversation = await self.get_conversation(cid)
            if conversation is None:
                continue
            unread = max(0, top - read - int(calls))
            result.append(summary(conversation, json.loads(raw) if raw else None, unread))
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
        context = SendContext(
            languages, json.loads(glossary) if glossary else {}, text(glossary or b"")
        )
        self._contexts[cid] = context
        self._contexts.move_to_end(cid)
        while len(self._contexts) > CONVERSATION_CACHE_SIZE:
            self._contexts.popitem(last=False)
        return json.loads(earlier) if earlier else None, languages, context.glossary

    def cached_conversation(self, cid: str) -> dict[str, Any] | None:
        """The conversation if this process has it at hand (no Redis read), else None."""
        return self._conversations.get(cid)

    def send_context(self, cid: str) -> SendContext | None:
        """The languages and glossary this process last read for a send to the conversation
        (None when it has none): a send may translate for them without reading again, since
        `add_message(context=...)` refuses to store it if they changed meanwhile."""
        return self._contexts.get(cid)

    async def glossary(self, cid: str) -> dict[str, str | None]:
        """The conversation's glossary: term -> fixed translation, or None to keep it as is."""
        raw = await self.redis.get(self.key("conv", cid, "glossary"))
        return json.loads(raw) if raw else {}

    async def set_glossary(self, cid: str, terms: dict[str, str | None]) -> None:
        """Replace the conversation's glossary."""
        self._contexts.pop(cid, None)
        await self.redis.set(
            self.key("conv", cid, "glossary"), json.dumps(terms, ensure_ascii=False)
        )

    async def partners(self, user: str) -> set[str]:
        """Everyone who shares a conversation with `user` (for presence)."""
        cids = await self.redis.zrevrange(self.key("inbox", user), 0, INBOX_MAX - 1)
        people: set[str] = set()
        for cid in cids:
            conversation = await self.get_conversation(text(cid))
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
