"""A raw Engine.IO/Socket.IO websocket client, for packets no Socket.IO client would send."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp


class RawSocket:
    """One websocket speaking Engine.IO v4 by hand; `send` takes a Socket.IO packet string."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http = http
        self.ws = ws

    @classmethod
    async def open(cls, base_url: str, token: str) -> RawSocket:
        """Connect and sign in to the default namespace."""
        http = aiohttp.ClientSession()
        url = base_url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        ws = await http.ws_connect(url, max_msg_size=0)
        raw = cls(http, ws)
        opening = await raw.frame()
        assert opening and opening.startswith("0"), opening
        await ws.send_str("40" + json.dumps({"token": token}))
        accepted = await raw.frame()
        assert accepted and accepted.startswith("40"), accepted
        return raw

    async def send(self, socketio_packet: str) -> None:
        """Send one Engine.IO message (`4` + the Socket.IO packet)."""
        await self.ws.send_str("4" + socketio_packet)

    async def frame(self, timeout: float = 5) -> str | None:
        """The next text frame other than a ping (answered), or None once the socket closed."""
        while True:
            try:
                msg = await asyncio.wait_for(self.ws.receive(), timeout)
            except TimeoutError:
                return ""
            if msg.type != aiohttp.WSMsgType.TEXT:
                return None
            if msg.data == "2":
                await self.ws.send_str("3")
                continue
            return msg.data

    async def ack(self, ack_id: int, timeout: float = 5) -> Any:
        """Wait for the ack with this id (other packets are skipped); its first argument."""
        prefix = f"43{ack_id}["
        while True:
            data = await self.frame(timeout)
            if not data:
                raise AssertionError(f"no ack {ack_id}: socket answered {data!r}")
            if data.startswith(prefix):
                return json.loads(data[len(prefix) - 1 :])[0]

    async def closed(self, timeout: float = 5) -> bool:
        """True when the server closes the connection within `timeout` (frames skipped)."""
        while True:
            data = await self.frame(timeout)
            if data is None or data == "1":
                return True
            if data == "":
                return False

    async def close(self) -> None:
        """Close the socket and its HTTP session."""
        await self.ws.close()
        await self.http.close()
