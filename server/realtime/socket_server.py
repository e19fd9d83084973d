"""python-socketio's server, closed to packets a client must not send.

- A packet that cannot be decoded (truncated JSON, an event that is not a list starting with a
  string name, binary packets — TradeTalk uses none) closes the connection with one warning log
  line, never a traceback, and never leaves the socket half-alive.
- An event named like one of Socket.IO's own (`connect`, `disconnect`, `connect_error`, ...) is
  answered `invalid` and changes nothing: python-socketio would otherwise run the server's own
  connect/disconnect handlers for it.
- A WebSocket's frames of one event-loop turn leave in one write (`realtime/corked.py`).
"""

from __future__ import annotations

import logging
from typing import Any

import socketio
from socketio import packet

from server.realtime import strict_json
from server.realtime.corked import cork_websockets
from server.realtime.errors import INVALID, error_ack

log = logging.getLogger("tradetalk.packets")

RESERVED_EVENTS = frozenset(
    {
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "message",
        "newListener",
        "removeListener",
        "*",
    }
)
BINARY_TYPES = (packet.BINARY_EVENT, packet.BINARY_ACK)


class MalformedPacket(ValueError):
    """A packet the server cannot take; the connection is closed."""


class SocketServer(socketio.AsyncServer):
    """`socketio.AsyncServer` with strict JSON, reserved event names and clean closes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(json=strict_json, **kwargs)
        if kwargs.get("async_mode") == "aiohttp":
            cork_websockets(self.eio)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            if not isinstance(data, str):
                raise MalformedPacket("binary frames are not part of this protocol")
            if data[:1].isdigit() and int(data[0]) in BINARY_TYPES:
                raise MalformedPacket("binary packets are not part of this protocol")
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            await self._close_malformed(eio_sid, exc)

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise MalformedPacket("an event must be a list starting with its name")
        if data[0] in RESERVED_EVENTS:
            if id is not None:
                ack = error_ack(INVALID, f"{data[0]!r} is a reserved event name")
                await self._send_packet(
                    eio_sid,
                    self.packet_class(packet.ACK, namespace=namespace or "/", id=id, data=[ack]),
                )
            return
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _close_malformed(self, eio_sid: str, exc: Exception) -> None:
        self._binary_packet.pop(eio_sid, None)
        log.warning("closing connection %s: malformed packet (%s)", eio_sid, str(exc)[:200])
        try:
            await self.eio.disconnect(eio_sid)
        except Exception as close_exc:  # already gone
            log.warning("closing connection %s failed: %s", eio_sid, close_exc)
