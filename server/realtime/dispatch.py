"""Wraps Socket.IO event handlers: rate limit, error acks, never an unhandled crash."""

from __future__ import annotations

import contextvars
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
from server.storage.ratelimit import Bucket, UserRateLimit

log = logging.getLogger("tradetalk.events")

Handler = Callable[[Session, str, Any], Awaitable[dict[str, Any]]]
# Runs before a handler; an ack it returns refuses the event (the handler does not run).
Guard = Callable[[Session, str, Any], Awaitable[dict[str, Any] | None]]
# Runs after a handler (also when it failed) with the ack.
Follow = Callable[[Session, str, dict[str, Any]], Awaitable[None]]

# Events one socket's later emits must not overtake: each commits (is stored and delivered) in
# the order it arrived (`realtime/turns.py`; the handler marks its commit with `commit_turn`).
ORDERED_EVENTS = frozenset({"message.send"})
# Events whose handler takes the rate-limit token itself (`PendingToken`): `message.send` hands
# it to its store script when nothing else comes before the store (one round trip for both).
DEFERRED_TOKEN_EVENTS = frozenset({"message.send"})
# Redis is away (down, restarting, loading its data): retry later, nothing was changed.
REDIS_AWAY = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    ConnectionError,
    TimeoutError,
)
UNAVAILABLE_MESSAGE = "the server's database is unavailable for a moment; retry"
RATE_LIMITED_MESSAGE = "too many events; slow down"


class PendingToken:
    """The rate-limit token of a `DEFERRED_TOKEN_EVENTS` event, left to its handler: taken
    before any Redis call or costly work (`take`), or handed to the script that stores
    (`hand_over`). One the handler left untaken is taken once it returns (its ack then says
    `rate_limited` if there was none), so every event still spends one."""

    def __init__(self, limit: UserRateLimit, user: str) -> None:
        self.limit = limit
        self.user = user
        self.spent = False

    async def take(self) -> None:
        """Take the token now; AppError(rate_limited) when the bucket is empty."""
        if self.spent:
            return
        self.spent = True
        if not await self.limit.allow(self.user):
            raise AppError(RATE_LIMITED, RATE_LIMITED_MESSAGE)

    def hand_over(self) -> Bucket:
        """The bucket, for a script that takes the token itself (the handler must call it)."""
        self.spent = True
        return self.limit.bucket(self.user)


# The running event's pending token (None: the dispatcher took it before the handler).
PENDING_TOKEN: contextvars.ContextVar[PendingToken | None] = contextvars.ContextVar(
    "pending_token", default=None
)


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
        pending = (
            PendingToken(self.rate_limit, session.identity.id)
            if name in DEFERRED_TOKEN_EVENTS
            else None
        )
        current = CURRENT.set(ticket)  # the handler finds its ticket here
        token = PENDING_TOKEN.set(pending)  # ... and its token to take
        try:
            if ticket is not None:
                await ticket.admitted()
            refused = await self._refusal(session, args, take_token=pending is None)
            if refused is not None:
                return (pending and await self._spend(name, pending)) or refused
            ack = await self._guarded(name, handler, session, sid, args[0] if args else None)
            if pending is not None and not pending.spent:
                ack = await self._spend(name, pending) or ack
        finally:
            PENDING_TOKEN.reset(token)
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

    async def _spend(self, name: str, pending: PendingToken) -> dict[str, Any] | None:
        """Take a token the handler left: the refusing ack (rate_limited, unavailable), or
        None when it was there."""
        return await self.safely(name, pending.take())

    async def _refusal(
        self, session: Session, args: tuple, take_token: bool = True
    ) -> dict[str, Any] | None:
        """The ack refusing an event before its handler runs, or None."""
        try:
            if take_token and not await self.rate_limit.allow(session.identity.id):
                return error_ack(RATE_LIMITED, RATE_LIMITED_MESSAGE)
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
