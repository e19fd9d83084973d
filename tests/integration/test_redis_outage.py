"""Redis going away: acks say `unavailable`, healthz false, new sockets refused at once; when it is
back everything resumes and nothing acked is lost. The embedded Redis restarts by itself."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest
import redis
import redis.asyncio as aioredis
import socketio

from server.app import SERVICES, create_app
from server.realtime.sessions import user_room
from server.storage.embedded_redis import EmbeddedRedis, free_port
from tests.support.peers import Peer, ServerProcess, new_user


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server this test may kill (not the session's)."""
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


async def healthz(url: str) -> bool:
    """What /healthz says of Redis (it answers 503 while the node warms up, with the same
    body)."""
    async with aiohttp.ClientSession() as http, http.get(url + "/healthz") as resp:
        return (await resp.json())["redis"]


def send(cid: str, i: int) -> dict:
    return {"conversation_id": cid, "client_id": f"m{i}", "text": f"line {i}"}


async def test_while_redis_is_away(aiohttp_server, own_redis, settings, server_translator) -> None:
    server = await aiohttp_server(create_app(settings, own_redis.url, server_translator))
    url = str(server.make_url("")).rstrip("/")
    alice, bob = new_user(), new_user()
    a, b = await Peer(alice).connect(url), await Peer(bob).connect(url)
    acked: list[int] = []
    try:
        created = await a.call("conversation.create", {"participants": [bob.id]})
        cid = created["conversation"]["id"]
        for i in range(5):
            assert (await a.call("message.send", send(cid, i)))["ok"]
            acked.append(i)

        own_redis.process.kill()
        own_redis.process.wait()
        started = time.monotonic()
        ack = await a.call("message.send", send(cid, 5))
        assert ack["ok"] is False and ack["error"]["code"] == "unavailable", ack
        assert time.monotonic() - started < 3
        assert (await a.call("inbox.list", {}))["error"]["code"] == "unavailable"
        assert await healthz(url) is False
        late = Peer(new_user())
        started = time.monotonic()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await late.connect(url)
        assert late.events["connect_error"][0]["data"]["code"] == "unavailable"
        assert time.monotonic() - started < 3

        own_redis.start()  # same port and data dir: the AOF is replayed
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ack = await a.call("message.send", send(cid, 5))
            if ack["ok"]:
                break
            assert ack["error"]["code"] == "unavailable"
            await asyncio.sleep(0.1)
        assert ack["ok"], ack
        acked.append(5)
        assert await healthz(url) is True
        await b.wait_for("message.new", lambda e: e["message"]["client_id"] == "m5")
        history = await b.call("history.get", {"conversation_id": cid, "limit": 100})
        assert [m["client_id"] for m in history["messages"]] == [f"m{i}" for i in acked]
        newcomer = await Peer(new_user()).connect(url)
        await newcomer.close()
    finally:
        await a.close()
        await b.close()


async def test_a_message_is_stored_and_published_by_one_script(
    aiohttp_server, redis_server, settings, server_translator
) -> None:
    """The store script publishes a new message to the other processes itself, so no separate
    publish can fail between the store and the fan-out (here the separate publish would fail):
    the send is acked, the partner gets it once, and the published batch (as another process
    reads it off the channel) holds the stored message and each participant's unread count."""
    app = create_app(settings, redis_server.url, server_translator)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    manager = app[SERVICES]["realtime"].manager
    alice, bob = new_user(), new_user()
    a, b = await Peer(alice).connect(url), await Peer(bob).connect(url)
    listener = aioredis.Redis.from_url(redis_server.url)
    channel = listener.pubsub(ignore_subscribe_messages=True)
    await channel.subscribe(manager.channel)
    try:
        created = await a.call(
            "conversation.create", {"participants": [bob.id], "title": 'Deal "A" \\ 1'}
        )
        cid = created["conversation"]["id"]

        async def redis_gone(*args: object, **kwargs: object) -> None:
            raise redis.exceptions.ConnectionError("injected: the separate publish fails")

        manager.redis.publish = redis_gone
        text = 'prix "net" \\ 价格 \u00e9'
        ack = await a.call(
            "message.send", {"conversation_id": cid, "client_id": "m1", "text": text}
        )
        assert ack["ok"] and ack["duplicate"] is False, ack
        got = await b.wait_for("message.new", lambda e: e["message"]["client_id"] == "m1")
        assert got["message"] == ack["message"] and got["message"]["text"] == text

        published = None
        for _ in range(50):
            raw = await channel.get_message(timeout=0.1)
            if raw is not None and b"message.new" in raw["data"]:
                published = json.loads(raw["data"])
                break
        assert published is not None, "the store script published nothing"
        emits = {(event, str(room)): data for event, room, data in published["data"][0]}
        rooms = str([user_room(alice.id), user_room(bob.id)])
        assert emits[("message.new", rooms)] == {"message": ack["message"]}
        for user, unread in ((alice.id, 0), (bob.id, 1)):
            entry = emits[("inbox.update", user_room(user))]["conversation"]
            assert entry["unread"] == unread and entry["last_message"] == ack["message"]
            assert entry["title"] == 'Deal "A" \\ 1'

        again = await a.call(
            "message.send", {"conversation_id": cid, "client_id": "m1", "text": text}
        )
        assert again["ok"] and again["duplicate"] is True, again  # a retry publishes nothing
        await asyncio.sleep(0.3)
        assert len(b.events["message.new"]) == 1
        assert await channel.get_message(timeout=0.1) is None
    finally:
        await channel.aclose()
        await listener.aclose()
        await a.close()
        await b.close()


async def test_embedded_redis_is_restarted_by_its_supervisor(own_redis) -> None:
    client = redis.Redis.from_url(own_redis.url)
    client.set("kept", "yes")
    own_redis.supervise(interval=0.1)
    first = own_redis.process.pid
    started = time.monotonic()
    os.kill(first, signal.SIGKILL)
    while time.monotonic() - started < 5:
        try:
            if own_redis.restarts == 1 and client.ping():
                break
        except redis.RedisError:
            pass
        await asyncio.sleep(0.05)
    healed = time.monotonic() - started
    assert own_redis.process.pid != first and own_redis.restarts == 1
    assert healed < 2, healed
    assert client.get("kept") == b"yes"  # same data dir, same port, same password
    client.close()


async def test_killing_the_embedded_redis_mid_chat_heals_itself(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", None, free_port())
    server.env.update(TRADETALK_RATE_PER_SECOND="1000", TRADETALK_RATE_BURST="1000")
    await server.start()
    alice, bob = new_user(), new_user()
    a, b = await Peer(alice).connect(server.url), await Peer(bob).connect(server.url)
    try:
        cid = (await a.call("conversation.create", {"participants": [bob.id]}))["conversation"][
            "id"
        ]
        pidfile = tmp_path / "data" / "redis" / "redis.pid"
        acked, codes = [], set()
        for i in range(60):
            if i == 10:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            ack = await a.call("message.send", send(cid, i))
            while not ack["ok"]:
                codes.add(ack["error"]["code"])
                assert ack["error"]["code"] == "unavailable", ack
                await asyncio.sleep(0.05)
                ack = await a.call("message.send", send(cid, i))
            acked.append(i)
        assert codes == {"unavailable"}  # the outage was seen, and it healed by itself
        history = await b.call("history.get", {"conversation_id": cid, "limit": 100})
        assert [m["client_id"] for m in history["messages"]] == [f"m{i}" for i in acked]
        assert await healthz(server.url) is True
        assert "restarted" in server.log.read_text()
    finally:
        await a.close()
        await b.close()
        assert server.interrupt() == 0
