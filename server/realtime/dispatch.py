"""Wraps Socket.IO event handlers: rate limit, error acks, never an unhandled crash."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.exceptions
import socketio

from server import metrics
from server.realtime.errors import (
    INTERNAL,
    INVALID,
    RATE_LIMITED,
    UNAUTHORIZED,
    UNAVAILABLE,
    UNKNOWN_EVENT,
    AppError,
    error_ack,
)
from server.realtime.sessions import Session
from server.realtime.strict_json import Rejected
from server.realtime.turns import CURRENT
from server.storage.ratelimit import UserRateLimit

log = logging.getLogger("tradetalk.events")

Handler = Callable[[Session, str, Any], Awaitable[dict[str, Any]]]
# Runs before a handler; an ack it returns refuses the event (the handler does not run).
Guard = Callable[[Session, str, Any], Awaitable[dict[str, Any] | None]]
# Runs after a handler (also when it failed) with the ack.
Follow = Callable[[Session, str, dict[str, Any]], Awaitable[None]]

# Events one socket's later emits must not overtake: each commits (is stored and delivered) in
# the order it arrived (`realtime/turns.py`; the handler marks its commit with `commit_turn`).
ORDERED_EVENTS = frozenset({"message.send"})
# Redis is away (down, restarting, loading its data): retry later, nothing was changed.
REDIS_AWAY = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    ConnectionError,
    TimeoutError,
)
UNAVAILABLE_MESSAGE = "the server's database is unavailable for a moment; retry"


def unavailable() -> dict[str, Any]:
    """The `unavailable` ack."""
    return error_ack(UNAVAILABLE, UNAVAILABLE_MESSAGE)


class Dispatcher:
    """Registers named handlers on a Socket.IO server; each gets (session, sid, payload)."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        sessions: dict[str, Session],
        rate_limit: UserRateLimit,
    ) -> None:
        self.sio = sio
        self.sessions = sessions
        self.rate_limit = rate_limit
        self.events: dict[str, Handler] = {}
        self.guards: dict[str, list[Guard]] = {}
        self.follows: dict[str, list[Follow]] = {}
        sio.on("*", self._unknown)

    def before(self, name: str, guard: Guard) -> None:
        """Run `guard` before event `name`'s handler (after validation of the rate limit)."""
        self.guards.setdefault(name, []).append(guard)

    def after(self, name: str, follow: Follow) -> None:
        """Run `follow` once event `name` has its ack."""
        self.follows.setdefault(name, []).append(follow)

    def register(self, name: str, handler: Handler) -> None:
        """Serve event `name` with `handler`; its return value is the ack."""
        self.events[name] = handler

        async def entry(sid: str, *args: Any) -> dict[str, Any]:
            started = time.perf_counter()
            ack = await self._run(name, handler, sid, args)
            metrics.event_done(name, ack, time.perf_counter() - started)
            return ack

        self.sio.on(name, entry)

    async def _run(self, name: str, handler: Handler, sid: str, args: tuple) -> dict[str, Any]:
        session = self.sessions.get(sid)
        if session is None:
            return error_ack(UNAUTHORIZED, "socket is not signed in")
        ticket = session.ordered.ticket() if name in ORDERED_EVENTS else None
        current = CURRENT.set(ticket)  # the handler finds its ticket here
        try:
            if ticket is not None:
                await ticket.admitted()
            refused = await self._refusal(session, args)
            if refused is not None:
                return refused
            ack = await self._guarded(name, handler, session, sid, args[0] if args else None)
        finally:
            CURRENT.reset(current)
            if ticket is not None:
                ticket.release()
        for follow in self.follows.get(name, ()):
            await self.safely(name, follow(session, sid, ack))
        return ack

    async def _guarded(
        self, name: str, handler: Handler, session: Session, sid: str, data: Any
    ) -> dict[str, Any]:
        for guard in self.guards.get(name, ()):
            refused = await self.safely(name, guard(session, sid, data))
            if refused is not None:
                return refused
        return await self.safely(name, handler(session, sid, data))

    async def safely(self, name: str, step: Awaitable[Any]) -> Any:
        """Await one step of an event; failures become the documented error acks."""
        try:
            return await step
        except AppError as exc:
            return exc.ack()
        except REDIS_AWAY as exc:
            metrics.REDIS_ERRORS.inc()
            log.warning("event %s: redis unavailable (%s)", name, exc)
            return unavailable()
        except Exception:
            log.exception("event %s failed", name)
            return error_ack(INTERNAL, "internal server error")

    async def _refusal(self, session: Session, args: tuple) -> dict[str, Any] | None:
        """The ack refusing an event before its handler runs, or None."""
        try:
            if not await self.rate_limit.allow(session.identity.id):
                return error_ack(RATE_LIMITED, "too many events; slow down")
        except REDIS_AWAY:
            metrics.REDIS_ERRORS.inc()
            return unavailable()
        if len(args) > 1:
            return error_ack(INVALID, "send exactly one payload object")
        if args and isinstance(args[0], Rejected):
            return error_ack(INVALID, args[0].reason)
        return None

    async def _unknown(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        session = self.sessions.get(sid)
        if session is not None:
            refused = await self._refusal(session, ())
            if refused is not None:
                return refused
        shown = event[:64] if isinstance(event, str) else "?"
        metrics.event_done("(unknown)", error_ack(UNKNOWN_EVENT, ""), 0.0)
        return error_ack(UNKNOWN_EVENT, f"unknown event {shown!r}")
