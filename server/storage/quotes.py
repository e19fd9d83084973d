"""Quotes and requests for quotation, their versions and their state, stored in Redis.

Key layout (prefix `tt:`); every change is one Lua script, so a state change is all or nothing:
- `quote:{qid}`            hash: cid, kind (quote|rfq), status (open|accepted|declined), n (the
                           latest version), by (its author's user id), created_at, created_by,
                           in_reply_to, closed (JSON {action, version, by, at} once accepted or
                           declined)
- `quote:{qid}:versions`   hash: version number -> the version (JSON: terms, author, time,
                           translations)
- `quote:{qid}:done`       hash: actor + client_id -> the history entry's fields of a response
                           (`quote.respond` is idempotent on its client_id)
- `quote:{qid}:replies`    set: the quotes sent in reply to this one (an RFQ's answers)
- `conv:{cid}:quotes`      sorted set: quote id scored by creation (ms)
- `conv:{cid}:quotecids`   hash: sender + client_id -> quote id (`quote.send`/`quote.request`
                           idempotent on their client_id)

The history entries (`kind: "quote"`) live with the conversation's messages (server/storage/
store.py); a retried event stores its entry once.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import redis.asyncio as aioredis

from server.storage.keys import PREFIX, text

# KEYS: quotecids, quote, versions, convquotes, replies of in_reply_to (or a dummy)
# ARGV: dedupe, qid, cid, kind, author, created_at, version json, now_ms, in_reply_to or ""
# -> {created, qid}
CREATE_SCRIPT = """
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then return {0, existing} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], 'cid', ARGV[3], 'kind', ARGV[4], 'status', 'open', 'n', 1,
  'by', ARGV[5], 'created_by', ARGV[5], 'created_at', ARGV[6], 'in_reply_to', ARGV[9])
redis.call('HSET', KEYS[3], 1, ARGV[7])
redis.call('ZADD', KEYS[4], ARGV[8], ARGV[2])
if ARGV[9] ~= '' then redis.call('SADD', KEYS[5], ARGV[2]) end
return {1, ARGV[2]}
"""

# KEYS: quote, versions, done
# ARGV: dedupe, action, actor, expected n, version json or "", closed json or "", entry json,
#       max versions
# -> {"ok", entry json} | {"duplicate", entry json} | {"gone"} | {"stale", n} |
#    {"closed", status} | {"own"} | {"max"}
RESPOND_SCRIPT = """
local done = redis.call('HGET', KEYS[3], ARGV[1])
if done then return {'duplicate', done} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
local status = redis.call('HGET', KEYS[1], 'status')
local n = tonumber(redis.call('HGET', KEYS[1], 'n'))
if status ~= 'open' then return {'closed', status} end
if n ~= tonumber(ARGV[4]) then return {'stale', tostring(n)} end
if redis.call('HGET', KEYS[1], 'by') == ARGV[3] then return {'own'} end
if ARGV[2] == 'counter' then
  if n + 1 > tonumber(ARGV[8]) then return {'max'} end
  redis.call('HSET', KEYS[2], n + 1, ARGV[5])
  redis.call('HSET', KEYS[1], 'n', n + 1, 'by', ARGV[3])
else
  local closed = 'declined'
  if ARGV[2] == 'accept' then closed = 'accepted' end
  redis.call('HSET', KEYS[1], 'status', closed, 'closed', ARGV[6])
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[7])
return {'ok', ARGV[7]}
"""


def new_quote_id() -> str:
    """A fresh random quote id `q_` + 16 hex digits."""
    return "q_" + secrets.token_hex(8)


def _key(*parts: str) -> str:
    return PREFIX + ":".join(parts)


class QuoteStore:
    """Durable quote state; one per server process, safe to share across tasks."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._create = client.register_script(CREATE_SCRIPT)
        self._respond = client.register_script(RESPOND_SCRIPT)

    async def create(
        self,
        cid: str,
        sender: str,
        client_id: str,
        kind: str,
        version: dict[str, Any],
        in_reply_to: str | None,
    ) -> tuple[bool, str]:
        """Store a new quote (or RFQ) with its first version, once per (sender, client_id):
        returns (created, quote id) — the id stored earlier for a retry."""
        qid = version["quote_id"]
        keys = [
            _key("conv", cid, "quotecids"),
            _key("quote", qid),
            _key("quote", qid, "versions"),
            _key("conv", cid, "quotes"),
            _key("quote", in_reply_to or qid, "replies"),
        ]
        args = [
            f"{sender}\x1f{client_id}",
            qid,
            cid,
            kind,
            sender,
            version["at"],
            json.dumps(version, ensure_ascii=False),
            int(time.time() * 1000),
            in_reply_to or "",
        ]
        created, stored = await self._create(keys=keys, args=args)
        return bool(created), stored.decode()

    async def respond(
        self,
        qid: str,
        actor: str,
        client_id: str,
        action: str,
        expected: int,
        entry: dict[str, Any],
        version: dict[str, Any] | None,
        closed: dict[str, Any] | None,
        max_versions: int,
    ) -> tuple[str, Any]:
        """Apply a response atomically if the quote is still open at version `expected` and
        its latest version is not `actor`'s own. Returns (outcome, detail): ("ok", entry),
        ("duplicate", the entry stored for this client_id earlier), ("gone", None),
        ("stale", latest n), ("closed", status), ("own", None) or ("max", None)."""
        keys = [_key("quote", qid), _key("quote", qid, "versions"), _key("quote", qid, "done")]
        args: list[str | int] = [
            f"{actor}\x1f{client_id}",
            action,
            actor,
            expected,
            json.dumps(version, ensure_ascii=False) if version else "",
            json.dumps(closed, ensure_ascii=False) if closed else "",
            json.dumps(entry, ensure_ascii=False),
            max_versions,
        ]
        first, *rest = await self._respond(keys=keys, args=args)
        outcome = text(first)
        detail = text(rest[0]) if rest else None
        if outcome in ("ok", "duplicate") and detail is not None:
            return outcome, json.loads(detail)
        if outcome == "stale" and detail is not None:
            return outcome, int(detail)
        return outcome, detail

    async def get(self, qid: str) -> dict[str, Any] | None:
        """The quote with every version (oldest first), its state and replies; None if unknown."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(_key("quote", qid))
            pipe.hgetall(_key("quote", qid, "versions"))
            pipe.smembers(_key("quote", qid, "replies"))
            raw, versions, replies = await pipe.execute()
        if not raw:
            return None
        state = {k.decode(): v.decode() for k, v in raw.items()}
        ordered = sorted(((int(n), json.loads(v)) for n, v in versions.items()))
        return {
            "id": qid,
            "conversation_id": state["cid"],
            "kind": state["kind"],
            "status": state["status"],
            "version": int(state["n"]),
            "created_by": state["created_by"],
            "created_at": state["created_at"],
            "in_reply_to": state.get("in_reply_to") or None,
            "closed": json.loads(state["closed"]) if state.get("closed") else None,
            "replies": sorted(r.decode() for r in replies),
            "versions": [v for _, v in ordered],
        }

    async def of_conversation(self, cid: str, limit: int) -> list[str]:
        """The conversation's newest `limit` quote ids, oldest first."""
        raw = await self.redis.zrange(_key("conv", cid, "quotes"), -limit, -1)
        return [text(r) for r in raw]
