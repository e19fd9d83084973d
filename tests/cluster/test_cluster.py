"""Calls and tours shared by several server nodes in one process on one real Redis: placement,
events forwarded to the owner, subtitles across nodes, drain on shutdown. (Real processes on
several hosts, kill -9 included: tests/cluster/test_cluster_hosts.py.)"""

from __future__ import annotations

import secrets

import pytest

from server.app import SERVICES, create_app
from server.config import Limits, Settings
from tests.support import finals, wait_until
from tests.support.call_clients import CallClient, call_entries, call_transcript, speech_with_pauses
from tests.support.peers import SECRET, SHARED, Peer, new_user, sign_in_once

SPEECH = SHARED / "testdata" / "speech"


@pytest.fixture
async def nodes(aiohttp_server, redis_server, tmp_path, translator):
    """`await nodes(media=True)` → (server, realtime, url) of one more node on the test Redis."""
    made = []
    cluster = "t" + secrets.token_hex(4)

    async def make(media: bool = True, ttl: float = 3.0):
        settings = Settings(
            data_dir=tmp_path,
            secret=SECRET,
            node_id=f"{'m' if media else 's'}{len(made)}-{secrets.token_hex(3)}",
            media=media,
            cluster=cluster,
            node_ttl_s=ttl,
            limits=Limits(renegotiation_timeout_s=5.0, rate_per_second=500, rate_burst=500),
        )
        server = await aiohttp_server(create_app(settings, redis_server.url, translator))
        made.append(server)
        return server, server.app[SERVICES]["realtime"], str(server.make_url("")).rstrip("/")

    yield make


async def test_call_between_sockets_on_two_nodes_runs_on_the_media_node(nodes, tmp_path):
    """The buyer's socket is on a signalling-only node, the supplier's on the media node: the
    call is placed on the media node, every event of the buyer is forwarded there, media and
    translated subtitles flow, `call.get` answers from either node."""
    _, front, front_url = await nodes(media=False)
    _, media, media_url = await nodes(media=True)
    speaker_id, listener_id = new_user("buyer", "ko"), new_user("supplier", "en")
    await sign_in_once(media_url, listener_id)
    speaker = await Peer(speaker_id).connect(front_url)
    listener = await Peer(listener_id).connect(media_url)
    wav = speech_with_pauses(SPEECH / "ko_test.wav", tmp_path / "ko.wav", repeats=2)
    talk, hear = CallClient(speaker, wav), CallClient(listener)
    try:
        created = await speaker.call("conversation.create", {"participants": [listener.id]})
        cid = created["conversation"]["id"]
        started = await speaker.call("call.start", {"conversation_id": cid})
        assert started["ok"], started
        call_id = started["call"]["id"]
        assert call_id in media.calls.calls and call_id not in front.calls.calls
        record = await media.records.get(call_id)
        assert record["owner"] == media.node_id and record["kind"] == "call"
        for peer in (speaker, listener):
            got = await peer.call("call.get", {"conversation_id": cid})
            assert got["ok"] and got["call"]["id"] == call_id, got
        assert (await talk.join(call_id))["ok"]
        assert (await hear.join(call_id))["ok"]
        assert front.router.forwarded >= 3  # call.start, call.get, call.join from the front
        await wait_until(
            lambda: hear.received("audio") > 50 and talk.received("video") > 10, timeout=20
        )
        line = await listener.wait_for("subtitle", lambda s: s["final"], timeout=30)
        assert line["lang"] == "ko" and line["speaker"]["id"] == speaker.id
        assert "en" in line["translations"] or "en" in line.get("translation_error", {}), line
        # a forwarded event with a bad payload gets the owner's validation error
        bad = await speaker.call("call.subtitles", {"call_id": call_id, "lang": 7})
        assert bad["error"]["code"] == "invalid", bad
        left = await speaker.call("call.leave", {"call_id": call_id})
        assert left == {"ok": True}
        await wait_until(lambda: len(media.calls.calls[call_id].members) == 1, timeout=20)
    finally:
        await talk.close()
        await hear.close()
        await speaker.close()
        await listener.close()


async def test_drain_hands_the_call_to_another_node_and_no_line_is_lost(nodes, tmp_path):
    """Shutting the owner down moves its call: members hear `call.moved` ("media server
    restarting"), re-join the other node with fresh offers, media and subtitles continue, and
    the transcript has every line once."""
    _, _, front_url = await nodes(media=False)
    first_server, first, _ = await nodes(media=True)
    speaker_id, listener_id = new_user("buyer", "ko"), new_user("supplier", "en")
    speaker = await Peer(speaker_id).connect(front_url)
    listener = await Peer(listener_id).connect(front_url)
    wav = speech_with_pauses(SPEECH / "ko_test.wav", tmp_path / "ko.wav", repeats=6, pause_s=1)
    talk, hear = CallClient(speaker, wav), CallClient(listener)
    clients = [talk, hear]
    try:
        created = await speaker.call("conversation.create", {"participants": [listener.id]})
        cid = created["conversation"]["id"]
        call_id = (await speaker.call("call.start", {"conversation_id": cid}))["call"]["id"]
        assert call_id in first.calls.calls
        _, second, _ = await nodes(media=True)  # the node the call will move to
        assert (await talk.join(call_id))["ok"] and (await hear.join(call_id))["ok"]
        await listener.wait_for("subtitle", lambda s: s["final"], timeout=30)
        await first_server.close()  # SIGTERM's path: on_shutdown drains first
        for peer in (speaker, listener):
            moved = await peer.wait_for("call.moved", timeout=10)
            assert moved["call_id"] == call_id and moved["reason"] == "media server restarting"
        assert call_id in second.calls.calls
        assert (await second.records.get(call_id))["owner"] == second.node_id
        before = len(finals(listener))
        await talk.close()
        await hear.close()
        wav2 = speech_with_pauses(SPEECH / "ko_test.wav", tmp_path / "ko2.wav", repeats=2)
        talk, hear = CallClient(speaker, wav2), CallClient(listener)
        clients = [talk, hear]
        assert (await talk.join(call_id))["ok"] and (await hear.join(call_id))["ok"]
        await wait_until(lambda: hear.received("audio") > 50, timeout=20)
        await listener.wait_for(
            "subtitle", lambda s: s["final"] and s not in finals(listener)[:before], timeout=30
        )
        await speaker.call("call.end", {"call_id": call_id})
        entry = await listener.wait_for("message.new", lambda e: e["message"].get("kind") == "call")
        lines = await call_transcript(listener, cid, call_id)
        sent = finals(listener)
        assert [x["text"] for x in lines] == [s["text"] for s in sent]
        assert len({(x["start"], x["text"]) for x in lines}) == len(lines)
        # the call moved once and ended once: one entry in the history, counting every line
        history = await listener.call("history.get", {"conversation_id": cid})
        assert call_entries(history["messages"]) == [entry["message"]]
        assert entry["message"]["call"]["lines"] == len(sent)
        assert not [m for m in history["messages"] if m.get("kind") == "transcript"]
    finally:
        for client in clients:
            await client.close()
        await speaker.close()
        await listener.close()


def test_answers_carry_only_the_media_address_candidates_when_it_is_ours() -> None:
    """`TRADETALK_MEDIA_ADDRESS` keeps only its candidates; an address no candidate is on (not one
    of this host's interfaces) changes nothing rather than leaving the answer without any."""
    from media.negotiation import keep_candidates

    sdp = "\r\n".join(
        [
            "v=0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 96",
            "a=candidate:1 1 udp 2130706431 10.77.1.13 40000 typ host",
            "a=candidate:2 1 udp 2130706431 172.17.0.2 40000 typ host",
            "a=candidate:3 1 udp 2130706431 fd00::2 40001 typ host",
            "a=end-of-candidates",
            "",
        ]
    )
    kept = keep_candidates(sdp, "10.77.1.13")
    candidates = [line for line in kept.split("\r\n") if line.startswith("a=candidate:")]
    assert candidates == ["a=candidate:1 1 udp 2130706431 10.77.1.13 40000 typ host"]
    assert "a=end-of-candidates" in kept and kept.startswith("v=0\r\nm=audio")
    assert keep_candidates(sdp, "192.0.2.99") == sdp


async def test_a_node_restarted_under_its_old_id_ends_the_calls_its_earlier_run_left(
    aiohttp_server, redis_server, tmp_path, translator
):
    """A record naming this node id but no call it runs (its earlier run died and came back
    before anyone re-placed it) is re-placed at start; alone, the node ends it honestly."""
    from server.storage.media_records import MediaRecords

    node_id, cluster = f"r-{secrets.token_hex(3)}", f"t{secrets.token_hex(4)}"
    settings = Settings(data_dir=tmp_path, secret=SECRET, node_id=node_id, cluster=cluster)
    first = await aiohttp_server(create_app(settings, redis_server.url, translator))
    url = str(first.make_url("")).rstrip("/")
    buyer, supplier = new_user("buyer", "en"), new_user("supplier", "es")
    await sign_in_once(url, supplier)
    peer = await Peer(buyer).connect(url)
    created = await peer.call("conversation.create", {"participants": [supplier.id]})
    conversation = created["conversation"]
    await peer.close()
    await first.close()
    call_id = "k_" + secrets.token_hex(8)
    left = {
        "id": call_id,
        "kind": "call",
        "cluster": cluster,
        "owner": node_id,
        "epoch": 0,
        "started_wall": 0.0,
        "conversation_id": conversation["id"],
        "conversation": conversation,
        "started_by": buyer.id,
        "started_at": "2026-12-02T00:00:00.000Z",
    }
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_server.url)
    records = MediaRecords(client)
    await records.put(left)
    await records.claim_conversation(conversation["id"], call_id)
    # the supplier watches from another server on the same Redis while the node comes back
    other = await aiohttp_server(
        create_app(Settings(data_dir=tmp_path, secret=SECRET), redis_server.url, translator)
    )
    watcher = await Peer(supplier).connect(str(other.make_url("")).rstrip("/"))
    await aiohttp_server(create_app(settings, redis_server.url, translator))
    ended = await watcher.wait_for("call.ended", lambda e: e["call_id"] == call_id, timeout=10)
    assert ended["reason"] == "media server lost"
    assert await records.get(call_id) is None
    assert await records.by_conversation(conversation["id"]) is None
    got = await watcher.call("call.get", {"conversation_id": conversation["id"]})
    assert got == {"ok": True, "call": None}
    await watcher.close()
    await client.aclose()
