"""WebSocket frames to one socket written in one event-loop turn leave in one `send`.

A chat message puts two or more frames on each recipient's socket (`message.new`, then
`inbox.update`; the sender also gets its ack), and Engine.IO's writer hands aiohttp one frame
at a time: each frame was its own `send` system call, which on a busy process was the largest
single cost of the chat path (every write wakes the reader). `CorkedTransport` keeps a socket's
writes of one turn and writes them together at the start of the next, in the order written.
Nothing else changes: the same frames, the same order, only fewer system calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from engineio.async_drivers import aiohttp as eio_aiohttp


class CorkedTransport:
    """Wraps a transport; `write`s made in one event-loop turn go out as one write."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._chunks: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue `data`; the first write of a turn schedules the flush."""
        if not self._chunks:
            self._loop.call_soon(self.flush)
        self._chunks.append(bytes(data))

    def flush(self) -> None:
        """Write what was queued (nothing if the connection is closing)."""
        chunks, self._chunks = self._chunks, []
        if not chunks or self._transport.is_closing():
            return
        self._transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def close(self) -> None:
        """Flush, then close."""
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CorkedWebSocket(eio_aiohttp.WebSocket):
    """Engine.IO's aiohttp WebSocket whose frames are corked per event-loop turn."""

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size)
        await self._sock.prepare(request)
        writer = self._sock._writer
        if writer is not None:
            writer.transport = CorkedTransport(writer.transport)  # type: ignore[assignment]
        self.environ = environ
        await self.handler(self)
        return self._sock

    async def send(self, message: str | bytes) -> None:
        """One frame (the stock `send` asks `inspect` whether aiohttp's send is a coroutine,
        for every frame; it is one)."""
        if isinstance(message, bytes):
            await self._sock.send_bytes(message)
        else:
            await self._sock.send_str(message)


def cork_websockets(eio: Any) -> None:
    """Serve an Engine.IO server's WebSocket connections with `CorkedWebSocket`."""
    eio._async = {**eio._async, "websocket": CorkedWebSocket}
