"""A socket that drops at any moment of `call.join` leaves nothing behind: no member, peer
connection, UDP socket, recognizer thread or task."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

from server.app import SERVICES, create_app
from tests.support.peers import Peer, new_user, sign_in_once, token_for
from tests.support.raw_socket import RawSocket
from tests.support.sdp_samples import sample_offer

DELAYS = [0.0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8]


def udp_sockets() -> int:
    """UDP sockets this process holds open."""
    inodes = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with open(table) as f:
            inodes |= {line.split()[9] for line in list(f)[1:]}
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            count += 1
    return count


def caption_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("captions-")]


async def settled(check, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.1)
    return check()


async def test_sockets_dropped_during_call_join_leave_nothing(
    aiohttp_server, redis_server, settings, server_translator
) -> None:
    app = create_app(settings, redis_server.url, server_translator)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    calls = app[SERVICES]["realtime"].calls
    host, guest = new_user(), new_user(lang="ko")  # ko: the guest gets a real recognizer
    hosting = await Peer(host).connect(url)
    await sign_in_once(url, guest)
    try:
        created = await hosting.call("conversation.create", {"participants": [guest.id]})
        cid = created["conversation"]["id"]
        offer = await sample_offer()
        baseline = udp_sockets()
        for i, delay in enumerate(DELAYS):
            call = (await hosting.call("call.start", {"conversation_id": cid}))["call"]
            raw = await RawSocket.open(url, token_for(guest))
            join = {"call_id": call["id"], "sdp": offer, "type": "offer"}
            await raw.send(f"2{i}" + json.dumps(["call.join", join]))
            await asyncio.sleep(delay)
            if i % 2:  # a TCP reset, or a websocket closed without a goodbye
                raw.ws._response.connection.transport.abort()
            await raw.close()
            gone = await settled(lambda: calls.stats()["members"] == 0)
            assert gone, (delay, calls.stats())
            await hosting.call("call.end", {"call_id": call["id"]})
            assert await settled(
                lambda: (
                    calls.stats()
                    == {"calls": 0, "members": 0, "recognizers": 0, "pending_offers": 0, "tasks": 0}
                )
            ), (delay, calls.stats())
            assert await settled(lambda: udp_sockets() <= baseline), (delay, udp_sockets())
            assert await settled(lambda: caption_threads() == []), (delay, caption_threads())
    finally:
        await hosting.close()
