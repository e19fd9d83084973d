"""Video calls with live translated subtitles: real aiortc peers, real Vosk and engines."""

from __future__ import annotations

import asyncio
import json
import os
import threading

import aiohttp
import pytest
from aiortc import AudioStreamTrack

from server.app import SERVICES, create_app
from server.config import Limits, Settings
from tests.support import finals, start_call, wait_until
from tests.support.call_clients import CallClient, call_entries, call_transcript, speech_with_pauses
from tests.support.peers import SECRET, SHARED, Peer, new_user, token_for
from translation.metrics import character_error_rate as cer
from translation.translator import Translator

SPEECH = SHARED / "testdata" / "speech"
REFERENCE = json.loads((SPEECH / "manifest.json").read_text())["files"]
KO_REFERENCE = next(f["reference"] for f in REFERENCE if f["file"] == "ko_test.wav")


@pytest.fixture
async def app_url(aiohttp_server, redis_server, tmp_path, translator):
    """A server whose calls time out unanswered renegotiations after 2 s (and whose rate
    limit leaves room for the 50-call test)."""
    settings = Settings(
        data_dir=tmp_path,
        secret=SECRET,
        limits=Limits(renegotiation_timeout_s=2.0, rate_per_second=500, rate_burst=500),
    )
    app = create_app(settings, redis_server.url, translator)
    server = await aiohttp_server(app)
    return app, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def people(app_url):
    """Connects users; closes their sockets and peer connections after the test."""
    _, url = app_url
    made: list[tuple[Peer, list[CallClient]]] = []

    async def make(lang: str) -> Peer:
        peer = await Peer(new_user(lang=lang)).connect(url)
        made.append((peer, []))
        return peer

    yield make
    for peer, _ in made:
        await peer.close()


async def test_two_party_call_with_translated_subtitles_and_transcript(
    app_url, people, tmp_path, translator: Translator
):
    app, url = app_url
    speaker, listener = await people("ko"), await people("en")
    cid, call_id = await start_call(speaker, listener)
    assert (await listener.wait_for("call.started"))["call"]["id"] == call_id
    wav = speech_with_pauses(SPEECH / "ko_test.wav", tmp_path / "ko.wav")
    a, b = CallClient(speaker, wav), CallClient(listener)
    try:
        joined = await b.join(call_id)
        assert joined["ok"] and joined["type"] == "answer"
        joined = await a.join(call_id)
        assert joined["captions"] == {"lang": "ko", "available": True}
        await wait_until(lambda: b.received("video") > 10 and b.received("audio") > 10)
        assert (320, 240) in b.rtc.video_sizes
        await wait_until(lambda: a.received("video") > 10)  # B's camera, in A's answer
        final = await listener.wait_for("subtitle", lambda s: s["final"], timeout=30)
        partials = [s for s in listener.events["subtitle"] if not s["final"]]
        assert partials and partials[0]["speaker"] == {
            "id": speaker.id,
            "name": speaker.identity.name,
        }
        assert final["lang"] == "ko" and final["call_id"] == call_id
        assert cer(final["text"], KO_REFERENCE) <= 0.5, final["text"]
        expected = await asyncio.to_thread(translator.translate, final["text"], "ko", "en")
        assert final["translations"] == {"en": expected}
        assert 0 <= final["start"] < final["end"] < 30
        assert not [s for s in speaker.events["subtitle"] if not s["final"]]

        history = await listener.call("history.get", {"conversation_id": cid})
        assert history["messages"] == []  # lines are the call's and the transcript's, not chat
        [line] = await call_transcript(listener, cid, call_id)
        assert line["text"] == final["text"] and line["translations"] == final["translations"]
        assert line["speaker"]["id"] == speaker.id and line["call_id"] == call_id
        assert (line["start"], line["end"]) == (final["start"], final["end"])

        async with aiohttp.ClientSession() as http:
            base = f"{url}/api/conversations/{cid}/transcript"
            headers = {"Authorization": f"Bearer {token_for(listener.identity)}"}
            async with http.get(base + "?format=srt", headers=headers) as resp:
                assert resp.status == 200
                srt = await resp.text()
            assert srt.startswith("1\n00:00:") and final["text"] in srt and expected in srt
            async with http.get(base + "?format=json", headers=headers) as resp:
                entries = await resp.json()
            assert entries["lines"][0]["translations"]["en"] == expected
            async with http.get(base + "?format=txt", headers=headers) as resp:
                assert final["text"] in await resp.text()
            outsider = {"Authorization": f"Bearer {token_for(new_user())}"}
            async with http.get(base, headers=outsider) as resp:
                assert resp.status == 403
            async with http.get(base) as resp:
                assert resp.status == 401
    finally:
        await a.close()
        await b.close()
    calls = app[SERVICES]["realtime"].calls
    await speaker.call("call.end", {"call_id": call_id})
    ended = await listener.wait_for("call.ended")
    assert ended["ended_by"] == {"id": speaker.id, "name": speaker.identity.name}
    assert calls.stats()["calls"] == 0


async def test_a_call_is_one_history_entry_and_the_inbox_shows_typed_messages(
    app_url, people, tmp_path
):
    """Subtitle lines stay out of the chat: after a call with speech the history holds the typed
    messages and one `kind: "call"` entry (duration, line count, transcript link), the inbox
    preview is the last typed message and unread counts only typed messages; replay after a
    reconnect brings the entry; the transcript still has every line; storing the entry again
    (a retry, a second node ending the call) changes nothing."""
    app, url = app_url
    speaker, listener = await people("ko"), await people("en")
    cid, call_id = await start_call(speaker, listener)
    hello = {"conversation_id": cid, "client_id": "m1", "text": "안녕하세요"}
    assert (await speaker.call("message.send", hello))["ok"]
    wav = speech_with_pauses(SPEECH / "ko_test.wav", tmp_path / "ko3.wav", repeats=3, pause_s=1)
    a, b = CallClient(speaker, wav, camera=False), CallClient(listener, camera=False)
    try:
        assert (await b.join(call_id))["ok"] and (await a.join(call_id))["ok"]
        await wait_until(lambda: len(finals(listener)) >= 2, timeout=60)
        typed = {"conversation_id": cid, "client_id": "m2", "text": "Can you hear me?"}
        sent = (await listener.call("message.send", typed))["message"]
        await wait_until(lambda: len(finals(listener)) >= 3, timeout=60)
        assert (await speaker.call("call.end", {"call_id": call_id}))["ok"]
    finally:
        await a.close()
        await b.close()
    began = (await listener.wait_for("call.started"))["call"]["started_at"]
    entry = (await listener.wait_for("message.new", lambda e: e["message"].get("kind")))["message"]
    await asyncio.sleep(0.5)
    heard = finals(listener)
    assert len(heard) >= 3

    # every participant got exactly one message.new for the call, none for its lines
    for peer in (speaker, listener):
        kinds = [e["message"].get("kind") for e in peer.events["message.new"]]
        assert kinds == [None, None, "call"], kinds
    assert entry["call_id"] == call_id and entry["sender"]["id"] == speaker.id
    assert entry["id"] == 3 and entry["conversation_id"] == cid
    details = entry["call"]
    assert details["id"] == call_id and details["started_at"] == began
    assert details["lines"] == len(heard)
    assert details["transcript"] == f"/api/conversations/{cid}/transcript?call_id={call_id}"
    assert 5 <= details["duration_s"] <= 120, details
    history = await listener.call("history.get", {"conversation_id": cid})
    assert [m.get("kind") for m in history["messages"]] == [None, None, "call"]
    assert call_entries(history["messages"]) == [entry]

    # the inbox: preview = the last typed message, unread = typed messages only
    for peer, unread in ((speaker, 1), (listener, 0)):
        [inbox] = (await peer.call("inbox.list", {}))["conversations"]
        assert inbox["last_message"] == sent and inbox["unread"] == unread, (peer.id, inbox)
        last_update = peer.events["inbox.update"][-1]["conversation"]
        assert last_update["last_message"] == sent, last_update
    read = await speaker.call("message.read", {"conversation_id": cid, "message_id": 3})
    assert read == {"ok": True, "message_id": 3, "unread": 0}
    after = {"conversation_id": cid, "client_id": "m3", "text": "네, 잘 들려요"}
    assert (await speaker.call("message.send", after))["message"]["id"] == 4
    [inbox] = (await listener.call("inbox.list", {}))["conversations"]
    assert inbox["unread"] == 1 and inbox["last_message"]["id"] == 4

    # replay after a reconnect brings the entry, in its place
    again = await Peer(listener.identity).connect(url)
    try:
        joined = await again.call("conversation.join", {"conversation_id": cid, "since": 2})
        assert [m["id"] for m in joined["messages"]] == [3, 4]
        assert joined["messages"][0] == entry
    finally:
        await again.close()

    # the transcript keeps every line, and opens from the entry's link
    lines = await call_transcript(listener, cid, call_id)
    assert [x["text"] for x in lines] == [s["text"] for s in heard]
    async with aiohttp.ClientSession() as http:
        link = f"{url}{details['transcript']}&format=txt"
        headers = {"Authorization": f"Bearer {token_for(listener.identity)}"}
        async with http.get(link, headers=headers) as resp:
            assert resp.status == 200
            txt = await resp.text()
    assert all(s["text"] in txt for s in heard)

    # asking again (a retry, or a node that also ended the call) stores nothing
    chat = app[SERVICES]["realtime"].chat
    conversation = await chat.store.get_conversation(cid)
    created, same = await chat.post_call_entry(conversation, call_id, {"call": {}}, speaker.id)
    assert not created and same == entry
    assert (await chat.store.last_id(cid)) == 4
    # a conversation whose only entry is a call has no preview and nothing unread
    quiet = await speaker.call("conversation.create", {"participants": [listener.id]})
    other = quiet["conversation"]
    created, _ = await chat.post_call_entry(other, "k_00000000000000aa", {"call": {}}, speaker.id)
    assert created
    listed = (await listener.call("inbox.list", {}))["conversations"]
    [fresh] = [c for c in listed if c["id"] == other["id"]]
    assert fresh["last_message"] is None and fresh["unread"] == 0, fresh


async def test_three_party_call_and_a_listener_who_switches_language(app_url, people, tmp_path):
    _, _url = app_url
    speaker, english, spanish = await people("ko"), await people("en"), await people("es")
    _, call_id = await start_call(speaker, english, spanish)
    wav = speech_with_pauses(SPEECH / "ko_test.wav", tmp_path / "ko2.wav", repeats=2)
    clients = [CallClient(english), CallClient(spanish), CallClient(speaker, wav)]
    try:
        for client in clients:
            assert (await client.join(call_id))["ok"]
        first = await spanish.wait_for("subtitle", lambda s: s["final"], timeout=30)
        assert set(first["translations"]) == {"en", "es"}
        assert first["translations"]["es"] and first["translations"]["en"]
        switched = await spanish.call("call.subtitles", {"call_id": call_id, "lang": "zh"})
        assert switched == {"ok": True, "lang": "zh"}
        await wait_until(lambda: len(finals(spanish)) >= 2, timeout=30)
        second = finals(spanish)[1]
        assert set(second["translations"]) == {"en", "zh"}  # ko->en->zh: pivot through English
        assert finals(english)[:2] == finals(spanish)[:2]
        for client in clients[:2]:
            assert client.received("video") > 0 and client.received("audio") > 0
    finally:
        for client in clients:
            await client.close()


async def test_bad_input_and_permissions(app_url, people):
    _, _url = app_url
    host, guest, outsider = await people("en"), await people("es"), await people("en")
    cid, call_id = await start_call(host, guest)
    client = CallClient(guest, camera=True)
    try:
        offer = await client.rtc.offer()
        cases = [
            (outsider, "call.start", {"conversation_id": cid}, "forbidden"),
            (
                outsider,
                "call.join",
                {"call_id": call_id, "sdp": offer, "type": "offer"},
                "forbidden",
            ),
            (guest, "call.join", {"call_id": "k_0000000000000000", "sdp": offer}, "not_found"),
            (guest, "call.join", {"call_id": call_id, "sdp": "v=0\r\ngarbage"}, "invalid"),
            (guest, "call.join", {"call_id": call_id, "sdp": "hello"}, "invalid"),
            (guest, "call.join", {"call_id": call_id, "sdp": offer, "type": "answer"}, "invalid"),
            (guest, "call.join", {"call_id": "nope", "sdp": offer}, "invalid"),
            (
                guest,
                "rtc.answer",
                {"call_id": call_id, "sdp": offer, "type": "answer"},
                "not_found",
            ),
            (guest, "call.leave", {"call_id": call_id}, "not_found"),
            (guest, "call.subtitles", {"call_id": call_id, "lang": "en"}, "not_found"),
            (outsider, "call.end", {"call_id": call_id}, "forbidden"),
        ]
        for peer, event, data, code in cases:
            ack = await peer.call(event, data)
            assert ack["ok"] is False and ack["error"]["code"] == code, (event, data, ack)
        again = await host.call("call.start", {"conversation_id": cid})
        assert again["call"]["id"] == call_id  # one running call per conversation
        running = await guest.call("call.get", {"conversation_id": cid})
        assert running["call"]["id"] == call_id
        denied = await outsider.call("call.get", {"conversation_id": cid})
        assert denied["error"]["code"] == "forbidden"
        await host.call("call.end", {"call_id": call_id})
        assert (await guest.call("call.get", {"conversation_id": cid}))["call"] is None
    finally:
        await client.close()


async def test_a_peer_that_never_answers_is_removed(app_url, people):
    app, _url = app_url
    calls = app[SERVICES]["realtime"].calls
    first, second = await people("en"), await people("es")
    _, call_id = await start_call(first, second)
    silent = CallClient(first)
    silent.rtc.answering = False  # never answers the server's rtc.offer
    other = CallClient(second)
    try:
        assert (await silent.join(call_id))["ok"]
        await wait_until(lambda: calls.stats()["members"] == 1)
        assert (await other.join(call_id))["ok"]  # publishes: the server must re-offer to first
        left = await first.wait_for("call.left", timeout=15)
        assert left["call_id"] == call_id
        update = await second.wait_for(
            "call.participants", lambda u: [p["id"] for p in u["participants"]] == [second.id]
        )
        assert update["call_id"] == call_id
        # The remaining member is re-offered (the leaver's tracks go inactive) and answers.
        await wait_until(lambda: calls.stats()["pending_offers"] == 0, timeout=5)
        assert calls.stats()["members"] == 1
    finally:
        await silent.close()
        await other.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def own_threads() -> int:
    """Threads other than the pooled executor workers (asyncio's and the translators')."""
    return sum(1 for t in threading.enumerate() if not t.name.startswith(("asyncio_", "mt_", "mt")))


async def test_fifty_calls_leave_nothing_behind(app_url, people):
    app, _url = app_url
    calls = app[SERVICES]["realtime"].calls
    host, guest = await people("ko"), await people("en")
    cid, first = await start_call(host, guest)
    await host.call("call.end", {"call_id": first})
    await asyncio.sleep(0.5)
    baseline = (open_fds(), own_threads(), len(asyncio.all_tasks()))
    for i in range(50):
        call_id = (await host.call("call.start", {"conversation_id": cid}))["call"]["id"]
        a, b = CallClient(host, camera=False), CallClient(guest, camera=True)
        a.rtc.tracks = [AudioStreamTrack()]  # silence: the speaker's recognizer runs too
        assert (await a.join(call_id))["ok"]
        assert (await b.join(call_id))["ok"]
        if i % 5 != 4:  # mostly after the media connects; now and then before
            await wait_until(lambda b=b: b.rtc.pc.connectionState == "connected", timeout=10)
        if i % 2:
            await host.call("call.end", {"call_id": call_id})  # ended by a participant
        else:
            await host.call("call.leave", {"call_id": call_id})  # or everyone leaves
            await guest.call("call.leave", {"call_id": call_id})
        await a.close()
        await b.close()
    await wait_until(
        lambda: (
            calls.stats()
            == {"calls": 0, "members": 0, "recognizers": 0, "pending_offers": 0, "tasks": 0}
        ),
        timeout=15,
    )
    await asyncio.sleep(1.0)
    fds, threads, tasks = open_fds(), own_threads(), len(asyncio.all_tasks())
    assert fds <= baseline[0] + 5, (baseline, fds)
    assert threads <= baseline[1], (baseline, threads)
    assert not [t for t in threading.enumerate() if t.name.startswith("captions-")]
    assert tasks <= baseline[2] + 3, (baseline, tasks)


async def test_a_socket_that_drops_mid_call_leaves_cleanly(app_url, people):
    app, _url = app_url
    calls = app[SERVICES]["realtime"].calls
    first, second = await people("en"), await people("es")
    _, call_id = await start_call(first, second)
    a, b = CallClient(first), CallClient(second)
    try:
        assert (await a.join(call_id))["ok"] and (await b.join(call_id))["ok"]
        await wait_until(lambda: b.received("video") > 0)
        await first.sio.eio.disconnect(abort=True)  # the socket drops, no call.leave
        update = await second.wait_for(
            "call.participants", lambda u: [p["id"] for p in u["participants"]] == [second.id]
        )
        assert update["call_id"] == call_id
        assert calls.stats()["members"] == 1 and calls.stats()["calls"] == 1
    finally:
        await a.close()
        await b.close()
