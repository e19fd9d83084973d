"""The minimal durable chat server for bench/chat.py: the bare relay plus what TradeTalk's
guarantees and protocol cannot do without, written the plain python-socketio way.

Per `message.send {to, client_id, text}`: one Lua script stores the message durably (Redis with
`appendfsync always`: the ack means it is on disk) and gives it its id, then the frames
TradeTalk's protocol sends for a message go out — `message.new` to the sender's and the
partner's sockets, an `inbox.update` to each — and the sender gets its ack. No sign-in check,
validation, rate limit, translation, ordering or cross-process fan-out. The chat benchmark runs
it beside the relay and TradeTalk: relay -> minimal is what durability and the protocol's
frames cost on this stack; minimal -> TradeTalk is what the server's own code adds (or saves:
TradeTalk encodes each packet once and writes a socket's frames together, which plain
python-socketio does not).

Run (by bench/chat.py): python -m bench.minimal_server PORT REDIS_URL
"""

from __future__ import annotations

import json
import sys

import redis.asyncio as aioredis
import socketio
from aiohttp import web

# KEYS: the conversation's id counter, its messages   ARGV: the message (JSON, no id) -> id
STORE = """
local id = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], id, ARGV[1])
return id
"""


def main(port: int, redis_url: str) -> None:
    """Serve `message.send` stored, then fanned out as TradeTalk's protocol does, acked."""
    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)
    users: dict[str, str] = {}
    redis = aioredis.Redis.from_url(redis_url)
    store = redis.register_script(STORE)

    @sio.on("connect")
    async def connect(sid: str, environ: dict, auth: dict) -> None:
        users[sid] = auth["user"]
        await sio.enter_room(sid, auth["user"])

    @sio.on("message.send")
    async def send(sid: str, data: dict) -> dict:
        me, to = users[sid], data["to"]
        conversation = "minimal:" + ":".join(sorted((me, to)))
        message = {"sender": me, "client_id": data["client_id"], "text": data["text"]}
        keys = [conversation + ":seq", conversation + ":msgs"]
        message["id"] = await store(keys=keys, args=[json.dumps(message)])
        await sio.emit("message.new", {"message": message}, to=[me, to])
        for user in (me, to):
            entry = {"id": conversation, "last_message": message, "unread": 1}
            await sio.emit("inbox.update", {"conversation": entry}, to=user)
        return {"ok": True, "message": message}

    web.run_app(app, host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
