"""Wraps Socket.IO event handlers: rate limit, error acks, never an unhandled crash."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from .errors import INTERNAL, RATE_LIMITED, UNKNOWN_EVENT, AppError, error_ack
from .sessions import Session

log = logging.getLogger("tradetalk.events")

Handler = Callable[[Session, str, Any], Awaitable[dict[str, Any]]]


class Dispatcher:
    """Registers named handlers on a Socket.IO server; each gets (session, sid, payload)."""

    def __init__(self, sio: socketio.AsyncServer, sessions: dict[str, Session]) -> None:
        self.sio = sio
        self.sessions = sessions
        self.events: dict[str, Handler] = {}
        sio.on("*", self._unknown)

    def register(self, name: str, handler: Handler) -> None:
        """Serve event `name` with `handler`; its return value is the ack."""
        self.events[name] = handler

        async def entry(sid: str, *args: Any) -> dict[str, Any]:
            return await self._run(name, handler, sid, args)

        self.sio.on(name, entry)

    async def _run(self, name: str, handler: Handler, sid: str, args: tuple) -> dict[str, Any]:
        session = self.sessions.get(sid)
        if session is None:
            return error_ack(INTERNAL, "socket is not signed in")
        if not session.bucket.allow():
            return error_ack(RATE_LIMITED, "too many events; slow down")
        if len(args) > 1:
            return error_ack("invalid", "send exactly one payload object")
        try:
            return await handler(session, sid, args[0] if args else None)
        except AppError as exc:
            return exc.ack()
        except Exception:
            log.exception("event %s failed", name)
            return error_ack(INTERNAL, "internal server error")

    async def _unknown(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        session = self.sessions.get(sid)
        if session is not None and not session.bucket.allow():
            return error_ack(RATE_LIMITED, "too many events; slow down")
        shown = event[:64] if isinstance(event, str) else "?"
        return error_ack(UNKNOWN_EVENT, f"unknown event {shown!r}")
