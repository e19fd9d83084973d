"""What a tour leaves in Redis: its meta, final lines, questions and who may read them. They
outlive the tour (`GET /api/tours/{id}/transcript`).

Keys (prefix `tt:`), none with an expiry:
- `tour:{id}`           JSON: the tour's public meta (id, title, lang, host, invite, started_at;
                        `ended_at` and `end_reason` once it ended)
- `tour:{id}:lines`     list: every final line (JSON, oldest first)
- `tour:{id}:questions` list: every viewer question (JSON, oldest first)
- `tour:{id}:asked`     the last question id (ids count 1, 2, 3, ...)
- `tour:{id}:access`    set: ids of the users who joined (they may read the transcript)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from server.storage.keys import PREFIX, text

MAX_EXPORT = 20_000  # lines (and questions) an export reads at most


def tour_key(tour_id: str, *parts: str) -> str:
    """Redis key of a tour: `tt:tour:{id}` (meta), `…:lines`, `…:questions`, `…:access`."""
    return PREFIX + ":".join(("tour", tour_id, *parts))


@dataclass(frozen=True)
class TourTranscript:
    """A tour as kept: meta, lines and questions (JSON objects), who joined."""

    meta: dict[str, Any]
    lines: list[dict[str, Any]]
    questions: list[dict[str, Any]]
    access: set[str]


class TourArchive:
    """Reads and writes every `tt:tour:*` key."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def open(self, tour_id: str, meta: dict[str, Any]) -> None:
        """Keep a starting tour's meta."""
        await self.redis.set(tour_key(tour_id), json.dumps(meta))

    async def mark_ended(self, tour_id: str, ended_at: str, reason: str) -> None:
        """Add `ended_at` and `end_reason` to a kept tour's meta (nothing if none is kept)."""
        raw = await self.redis.get(tour_key(tour_id))
        if raw:
            meta = {**json.loads(raw), "ended_at": ended_at, "end_reason": reason}
            await self.redis.set(tour_key(tour_id), json.dumps(meta))

    async def grant(self, tour_id: str, user_id: str) -> None:
        """`user_id` joined: they may read the transcript."""
        await self.redis.sadd(tour_key(tour_id, "access"), user_id)

    async def next_question_id(self, tour_id: str) -> int:
        """A fresh question id for the tour (1, 2, 3, ...)."""
        return int(await self.redis.incr(tour_key(tour_id, "asked")))

    async def add_question(self, tour_id: str, question: dict[str, Any]) -> None:
        """Keep a viewer's question."""
        await self.redis.rpush(tour_key(tour_id, "questions"), json.dumps(question))

    async def add_line(self, tour_id: str, line: dict[str, Any]) -> None:
        """Keep a final line (before it is shown: a viewer never reads a line the transcript
        lacks)."""
        await self.redis.rpush(tour_key(tour_id, "lines"), json.dumps(line))

    async def transcript(self, tour_id: str) -> TourTranscript | None:
        """The kept tour (at most `MAX_EXPORT` lines and questions), or None."""
        raw = await self.redis.get(tour_key(tour_id))
        if raw is None:
            return None
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.lrange(tour_key(tour_id, "lines"), 0, MAX_EXPORT - 1)
            pipe.lrange(tour_key(tour_id, "questions"), 0, MAX_EXPORT - 1)
            pipe.smembers(tour_key(tour_id, "access"))
            lines, questions, access = await pipe.execute()
        return TourTranscript(
            meta=json.loads(raw),
            lines=[json.loads(x) for x in lines],
            questions=[json.loads(x) for x in questions],
            access={text(a) for a in access},
        )
