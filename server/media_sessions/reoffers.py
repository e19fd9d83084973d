"""Server-initiated WebRTC renegotiations: an offer sent to one socket, its answer awaited."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio


class PendingAnswers:
    """The answers a call or tour is waiting for, one per socket (the media room times out)."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[str]] = {}

    def __len__(self) -> int:
        return len(self._futures)

    async def offer(
        self, sio: socketio.AsyncServer, event: str, payload: dict[str, Any], sid: str
    ) -> str:
        """Emit the offer `event` to `sid` and return the SDP it answers with."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._futures[sid] = future
        try:
            await sio.emit(event, payload, to=sid)
            return await future
        finally:
            if self._futures.get(sid) is future:
                del self._futures[sid]

    def answer(self, sid: str, sdp: str) -> bool:
        """Deliver a socket's answer; False when no offer is waiting for one."""
        future = self._futures.get(sid)
        if future is None or future.done():
            return False
        future.set_result(sdp)
        return True

    def cancel(self, sid: str | None = None) -> None:
        """Stop waiting for one socket's answer (it left), or for every answer."""
        for key in [sid] if sid is not None else list(self._futures):
            future = self._futures.pop(key, None)
            if future is not None and not future.done():
                future.cancel()
