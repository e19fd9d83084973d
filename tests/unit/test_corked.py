"""`server/realtime/corked.py`: a WebSocket's frames written in one event-loop turn leave in one
write, in order, over a real socket pair and aiohttp's own frame writer."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import WSMsgType
from aiohttp._websocket.writer import WebSocketWriter

from server.realtime.corked import CorkedTransport


class Counting(asyncio.Protocol):
    """The writing side's protocol (aiohttp's writer only asks it whether it is paused)."""

    _paused = False


async def test_frames_of_one_turn_leave_in_one_write_and_in_order() -> None:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, protocol = await loop.create_connection(Counting, sock=ours)
    writes: list[bytes] = []
    real_write = transport.write

    def counted(data: bytes) -> None:
        writes.append(bytes(data))
        real_write(data)

    transport.write = counted  # type: ignore[method-assign]
    corked = CorkedTransport(transport)  # type: ignore[arg-type]
    writer = WebSocketWriter(protocol, corked)  # type: ignore[arg-type]
    try:
        for text in ("message.new", "inbox.update", "ack"):
            await writer.send_frame(text.encode(), WSMsgType.TEXT)
        assert writes == []  # nothing left yet: the turn is not over
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(writes) == 1
        theirs.setblocking(False)
        got = await loop.sock_recv(theirs, 4096)
        frames, rest = [], got
        while rest:
            size = rest[1] & 0x7F
            frames.append(rest[2 : 2 + size].decode())
            rest = rest[2 + size :]
        assert frames == ["message.new", "inbox.update", "ack"]

        await writer.send_frame(b"later", WSMsgType.TEXT)  # the next turn: a write of its own
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(writes) == 2
    finally:
        corked.close()
        theirs.close()
