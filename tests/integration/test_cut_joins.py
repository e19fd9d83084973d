"""Issue 17.10: `call.join`s cut by their socket going away (a graceful disconnect, a TCP
abort) must never wedge `call.start` on a server that is the only node.

One `tradetalk serve` process (embedded Redis), one conversation: clean join/leave cycles
with a real aiortc peer, then joins cut at 0-1 s, a fresh `call.start` right before each.
Every `call.start` must be answered `ok` (it was `node_unavailable`: the conversation's call
key still named the call being torn down after the cut join emptied it, so the new start
"lost" to it and asked a node that did not hold it).
"""

from __future__ import annotations

import asyncio
import json
import time

from aiortc import AudioStreamTrack

from server.storage.embedded_redis import free_port
from tests.support.call_clients import CallClient
from tests.support.peers import Peer, ServerProcess, new_user, sign_in_once, token_for
from tests.support.raw_socket import RawSocket
from tests.support.sdp_samples import sample_offer

CLEAN_CYCLES = 3
DELAYS = [0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0]


async def start(host: Peer, cid: str, log: list) -> dict:
    """call.start, which must be answered ok."""
    ack = await host.call("call.start", {"conversation_id": cid}, timeout=15)
    log.append(ack)
    assert ack["ok"], (len(log), ack)
    return ack["call"]


async def clean_cycle(host: Peer, guest: Peer, cid: str, log: list) -> None:
    """call.start, a real peer joins and leaves (the call ends: everyone left).

    A call.start may answer a call whose last member is being removed (a cut join's socket
    went away): the call then ends before the join, which is answered `not_found`. The
    protocol's answer is to ask call.start again (docs/protocol.md, `call.join`); that new
    call must be joinable, and the one refused must really be gone."""
    call = await start(host, cid, log)
    client = CallClient(guest, None, camera=False)
    client.rtc.tracks.insert(0, AudioStreamTrack())
    client.rtc.recv_only = ()
    try:
        joined = await client.join(call["id"])
        if not joined["ok"] and joined["error"]["code"] == "not_found":
            running = (await host.call("call.get", {"conversation_id": cid}))["call"]
            assert running is None or running["id"] != call["id"], (len(log), joined, running)
            print(f"[cut joins] {call['id']} ended before the join: call.start again")
            await client.close()
            client = CallClient(guest, None, camera=False)
            client.rtc.tracks.insert(0, AudioStreamTrack())
            client.rtc.recv_only = ()
            call = await start(host, cid, log)
            joined = await client.join(call["id"])
        assert joined["ok"], (len(log), joined)
        left = await guest.call("call.leave", {"call_id": call["id"]})
        assert left["ok"], (len(log), left)
    finally:
        await client.close()


async def cut_join(url: str, guest_token: str, call_id: str, offer: str, delay: float, abort: bool):
    """A socket sends call.join and goes away `delay` s later (TCP abort or websocket close)."""
    raw = await RawSocket.open(url, guest_token)
    join = {"call_id": call_id, "sdp": offer, "type": "offer"}
    await raw.send("21" + json.dumps(["call.join", join]))
    await asyncio.sleep(delay)
    if abort:
        raw.ws._response.connection.transport.abort()
    await raw.close()


async def test_cut_joins_never_wedge_call_start_on_a_lone_server(tmp_path) -> None:
    server = await ServerProcess(tmp_path, None, free_port()).start(120, ready=True)
    host_id, guest_id = new_user(), new_user(lang="ko")  # ko: the guest gets a recognizer
    try:
        await sign_in_once(server.url, guest_id)
        host = await Peer(host_id).connect(server.url)
        guest = await Peer(guest_id).connect(server.url)
        created = await host.call("conversation.create", {"participants": [guest_id.id]})
        cid = created["conversation"]["id"]
        log: list[dict] = []
        for _ in range(CLEAN_CYCLES):
            await clean_cycle(host, guest, cid, log)
        offer = await sample_offer()
        began = time.monotonic()
        for round_ in range(2):
            for i, delay in enumerate(DELAYS):
                call = await start(host, cid, log)
                abort = (i + round_) % 2 == 1
                await cut_join(server.url, token_for(guest_id), call["id"], offer, delay, abort)
        took = time.monotonic() - began
        print(f"[cut joins] {len(log)} call.start all ok; the cut joins took {took:.1f} s")
        # the last cut call empties and ends by itself; a clean cycle still works after all that
        await clean_cycle(host, guest, cid, log)
        deadline = time.monotonic() + 30
        while (await host.call("call.get", {"conversation_id": cid}))["call"] is not None:
            assert time.monotonic() < deadline, "the last call never ended"
            await asyncio.sleep(0.2)
        await host.close()
        await guest.close()
    finally:
        server.kill()
    log_text = server.log.read_text(errors="replace")
    assert "node_unavailable" not in log_text and "did not answer" not in log_text
