"""Resource bounds that hold whatever clients do: idle calls and tours end, per-user caps, and
nothing a socket started outlives it.

- A call with no member, or a tour with neither a publishing host nor a viewer, for
  `Limits.idle_end_s` seconds ends (`call.ended` / `tour.ended` with reason `idle`).
- Per user, over every node (the sessions' records in Redis): at most `max_calls_per_user`
  running calls started, `max_tours_per_user` running tours hosted, `conversations_per_hour`
  conversations created (in Redis, all processes); over a
  cap an event is answered `limit_reached` and changes nothing.
- A socket that disconnects while its `call.join` / `tour.join` / `tour.publish` is still
  running is dropped again once the handler returns, so no peer, UDP port or recognizer it got
  meanwhile survives it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Container, Mapping
from typing import Any, Protocol

from server.background import Periodic
from server.config import Limits
from server.realtime.errors import LIMIT_REACHED, error_ack
from server.realtime.sessions import Session
from server.storage.media_records import MediaRecord, MediaRecords
from server.storage.ratelimit import HourlyQuota

log = logging.getLogger("tradetalk.bounds")

IDLE_REASON = "idle"
MEDIA_JOINS = ("call.join", "tour.join", "tour.publish")


class Idle(Protocol):
    """A running call or tour as the idle sweep sees it."""

    id: str
    members: Mapping[str, Any]


class MediaKind(Protocol):
    """Calls or tours, as the idle sweep sees them."""

    @property
    def sessions(self) -> Mapping[str, Any]: ...

    async def end_session(self, session: Any, reason: str) -> None: ...


class Bounds:
    """The caps (guards `server/events.py` puts on events) and the idle sweep of one process."""

    def __init__(
        self,
        limits: Limits,
        records: MediaRecords,
        created: HourlyQuota,
        sockets: Container[str],
        drop_media: Callable[[str], Awaitable[None]],
        kinds: list[MediaKind],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.records = records
        self.created = created
        self.sockets = sockets
        self.drop_media = drop_media
        self.kinds = kinds
        self.clock = clock
        self._empty_since: dict[str, float] = {}
        interval = max(0.05, min(5.0, self.limits.idle_end_s / 4))
        self._loop = Periodic("idle sweep", interval, self.sweep)

    # ------------------------------------------------------------------ caps

    async def _running(self, kind: str) -> list[MediaRecord]:
        """The records of the running calls or tours on every node."""
        return [r for r in await self.records.all() if r.get("kind") == kind]

    async def call_cap(self, session: Session, sid: str, data: Any) -> dict[str, Any] | None:
        """Before `call.start`: at most `max_calls_per_user` running calls started."""
        cid = data.get("conversation_id") if isinstance(data, dict) else None
        if isinstance(cid, str) and await self.records.by_conversation(cid):
            return None  # call.start returns the running call
        calls = await self._running("call")
        mine = sum(1 for c in calls if c.get("started_by") == session.identity.id)
        if mine >= self.limits.max_calls_per_user:
            cap = self.limits.max_calls_per_user
            return error_ack(LIMIT_REACHED, f"a user may run at most {cap} calls at once")
        return None

    async def tour_cap(self, session: Session, sid: str, data: Any) -> dict[str, Any] | None:
        """Before `tour.start`: at most `max_tours_per_user` running tours hosted."""
        tours = await self._running("tour")
        mine = sum(1 for t in tours if t["host"]["id"] == session.identity.id)
        if mine >= self.limits.max_tours_per_user:
            cap = self.limits.max_tours_per_user
            return error_ack(LIMIT_REACHED, f"a user may host at most {cap} tours at once")
        return None

    async def conversation_cap(
        self, session: Session, sid: str, data: Any
    ) -> dict[str, Any] | None:
        """Before `conversation.create`: at most `conversations_per_hour`."""
        cap = self.limits.conversations_per_hour
        made = await self.created.used(session.identity.id)
        if made and made >= cap:
            return error_ack(LIMIT_REACHED, f"a user may create at most {cap} conversations/hour")
        return None

    async def count_conversation(self, session: Session, sid: str, ack: dict[str, Any]) -> None:
        """After `conversation.create`: count it when it was created."""
        if ack.get("ok"):
            await self.created.count(session.identity.id)

    async def drop_if_gone(self, session: Session, sid: str, ack: dict[str, Any]) -> None:
        """After a media join: drop what it gave a socket that disconnected meanwhile."""
        if sid not in self.sockets:
            await self.drop_media(sid)

    # ------------------------------------------------------------------ idle sweep

    def start(self) -> None:
        """Start the idle sweep."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop the idle sweep."""
        await self._loop.stop()

    async def sweep(self) -> None:
        """End the calls and tours that have been without members for too long."""
        now = self.clock()
        idle: dict[str, tuple[MediaKind, Idle]] = {}
        for kind in self.kinds:
            for item in kind.sessions.values():
                if not item.members:
                    idle[item.id] = (kind, item)
        self._empty_since = {key: self._empty_since.get(key, now) for key in idle}
        for key, since in list(self._empty_since.items()):
            if now - since < self.limits.idle_end_s:
                continue
            del self._empty_since[key]
            kind, item = idle[key]
            log.info("ending %s: no member for %.0f s", key, now - since)
            await kind.end_session(item, IDLE_REASON)
