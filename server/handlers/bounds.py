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
from typing import TYPE_CHECKING, Any

from server.background import Periodic
from server.realtime.errors import LIMIT_REACHED, error_ack
from server.realtime.sessions import Session

if TYPE_CHECKING:
    from server.app import Realtime

log = logging.getLogger("tradetalk.bounds")

IDLE_REASON = "idle"
MEDIA_JOINS = ("call.join", "tour.join", "tour.publish")
HOUR_S = 3600


class Bounds:
    """Installs the caps on the dispatcher and runs the idle sweep for one process."""

    def __init__(self, realtime: Realtime) -> None:
        self.realtime = realtime
        self.limits = realtime.settings.limits
        self._empty_since: dict[str, float] = {}
        interval = max(0.05, min(5.0, self.limits.idle_end_s / 4))
        self._loop = Periodic("idle sweep", interval, self.sweep)
        dispatcher = realtime.dispatcher
        dispatcher.before("call.start", self._call_cap)
        dispatcher.before("tour.start", self._tour_cap)
        dispatcher.before("conversation.create", self._conversation_cap)
        dispatcher.after("conversation.create", self._count_conversation)
        for name in MEDIA_JOINS:
            dispatcher.after(name, self._drop_if_gone)

    # ------------------------------------------------------------------ caps

    async def _running(self, kind: str) -> list[dict[str, Any]]:
        """The records of the running calls or tours on every node."""
        return [r for r in await self.realtime.records.all() if r.get("kind") == kind]

    async def _call_cap(self, session: Session, sid: str, data: Any) -> dict[str, Any] | None:
        cid = data.get("conversation_id") if isinstance(data, dict) else None
        if isinstance(cid, str) and await self.realtime.records.by_conversation(cid):
            return None  # call.start returns the running call
        calls = await self._running("call")
        mine = sum(1 for c in calls if c.get("started_by") == session.identity.id)
        if mine >= self.limits.max_calls_per_user:
            cap = self.limits.max_calls_per_user
            return error_ack(LIMIT_REACHED, f"a user may run at most {cap} calls at once")
        return None

    async def _tour_cap(self, session: Session, sid: str, data: Any) -> dict[str, Any] | None:
        tours = await self._running("tour")
        mine = sum(1 for t in tours if t["host"]["id"] == session.identity.id)
        if mine >= self.limits.max_tours_per_user:
            cap = self.limits.max_tours_per_user
            return error_ack(LIMIT_REACHED, f"a user may host at most {cap} tours at once")
        return None

    def _hour_key(self, user_id: str) -> str:
        return f"tt:created:{user_id}:{int(time.time() // HOUR_S)}"

    async def _conversation_cap(
        self, session: Session, sid: str, data: Any
    ) -> dict[str, Any] | None:
        made = await self.realtime.redis.get(self._hour_key(session.identity.id))
        cap = self.limits.conversations_per_hour
        if made is not None and int(made) >= cap:
            return error_ack(LIMIT_REACHED, f"a user may create at most {cap} conversations/hour")
        return None

    async def _count_conversation(self, session: Session, sid: str, ack: dict[str, Any]) -> None:
        if ack.get("ok"):
            key = self._hour_key(session.identity.id)
            async with self.realtime.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, HOUR_S + 60)
                await pipe.execute()

    async def _drop_if_gone(self, session: Session, sid: str, ack: dict[str, Any]) -> None:
        if sid not in self.realtime.sessions:
            await self.realtime.drop_media(sid)

    # ------------------------------------------------------------------ idle sweep

    def start(self) -> None:
        """Start the idle sweep."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop the idle sweep."""
        await self._loop.stop()

    async def sweep(self) -> None:
        """End the calls and tours that have been without members for too long."""
        now = time.monotonic()
        calls, tours = self.realtime.calls, self.realtime.tours
        idle: dict[str, Any] = {}
        for item in [*calls.sessions.values(), *tours.sessions.values()]:
            if not item.members:
                idle[item.id] = item
        self._empty_since = {key: self._empty_since.get(key, now) for key in idle}
        for key, since in list(self._empty_since.items()):
            if now - since < self.limits.idle_end_s:
                continue
            del self._empty_since[key]
            item = idle[key]
            log.info("ending %s: no member for %.0f s", key, now - since)
            kind = calls if key in calls.sessions else tours
            await kind.end_session(item, IDLE_REASON)
