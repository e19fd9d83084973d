"""Baseline for bench/chat.py: a bare python-socketio relay (no auth, validation or storage).

Run (by bench/chat.py): python -m bench.relay_server PORT
"""

from __future__ import annotations

import sys

import socketio
from aiohttp import web


def main(port: int) -> None:
    """Serve `message.send {to, ...}` -> `message.new` to the `to` user's room, acked."""
    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)

    @sio.on("connect")
    async def connect(sid: str, environ: dict, auth: dict) -> None:
        await sio.enter_room(sid, auth["user"])

    @sio.on("message.send")
    async def send(sid: str, data: dict) -> dict:
        await sio.emit("message.new", {"message": data}, to=data["to"])
        return {"ok": True}

    web.run_app(app, host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main(int(sys.argv[1]))
