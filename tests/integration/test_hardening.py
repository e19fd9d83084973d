"""Hardening: raw and malformed packets, reserved event names, frame limits, caps, the per-user
rate limit, dev-mode parsing, static files, metrics — against a real server on a real Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import aiohttp
import jwt
import pytest
import socketio
from prometheus_client.parser import text_string_to_metric_families

from media.sdp_check import problem
from server.app import SERVICES, create_app
from server.config import Limits, SettingError, Settings, parse_flag
from tests.support.peers import SECRET, Peer, new_user, sign_in_once, token_for
from tests.support.raw_socket import RawSocket
from tests.support.sdp_samples import sample_offer

METRICS_TOKEN = "metrics-secret"


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Small caps, so tests reach them; /metrics behind a token."""
    limits = Limits(
        max_sockets_per_user=3,
        max_calls_per_user=1,
        conversations_per_hour=3,
        idle_end_s=0.6,
    )
    return Settings(data_dir=tmp_path, secret=SECRET, limits=limits, metrics_token=METRICS_TOKEN)


@pytest.fixture
async def served(aiohttp_server, redis_server, settings, server_translator):
    """(base url, the Realtime service) of an in-process server."""
    app = create_app(settings, redis_server.url, server_translator)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), app[SERVICES]["realtime"]


@pytest.fixture
def tracebacks(caplog):
    """Log records that carry a traceback (must stay empty)."""
    caplog.set_level(logging.INFO)
    return lambda: [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


async def conversation_of(peer: Peer, *others: Peer) -> str:
    """A conversation `peer` starts with `others` (signed in once first if they aren't now)."""
    await sign_in_once(peer.url, *(o.identity for o in others if not o.sio.connected))
    ack = await peer.call("conversation.create", {"participants": [o.id for o in others]})
    assert ack["ok"], ack
    return ack["conversation"]["id"]


# ---------------------------------------------------------------- malformed packets

MALFORMED = [
    "2[]",
    "2{}",
    "2null",
    '2["message.send", {"text": ',
    "2" + "[" * 5000 + "]" * 5000,
    '2[["list"], {}]',
    '2[{"a": 1}]',
    '2["\\ud800", {}]',
    "6",
    '51-["inbox.list",{"_placeholder":true,"num":0}]',
    "9",
]


@pytest.mark.parametrize("packet", MALFORMED)
async def test_a_malformed_packet_closes_cleanly_with_one_warning(
    served, caplog, tracebacks, packet
) -> None:
    url, realtime = served
    user = new_user()
    raw = await RawSocket.open(url, token_for(user))
    try:
        caplog.clear()
        await raw.send(packet)
        assert await raw.closed(), f"{packet[:40]!r} left the socket open"
        warnings = [r for r in caplog.records if r.name == "tradetalk.packets"]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING, warnings
        assert tracebacks() == []
        for _ in range(50):
            if not realtime.sessions:
                break
            await asyncio.sleep(0.02)
        assert realtime.sessions == {}
    finally:
        await raw.close()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (
            '{"conversation_id": "c_0123456789abcdef", "client_id": "a", "text": "\\ud800"}',
            "surrogate",
        ),
        ('{"limit": ' + "9" * 120 + "}", "digits"),
        ('{"x": ' + "[" * 40 + "]" * 40 + "}", "nest"),
        ('{"x": ' + "[" * 5000 + "]" * 5000 + "}", "nest"),
        ('{"x": NaN}', "NaN"),
    ],
)
async def test_bad_json_values_are_answered_invalid(served, tracebacks, payload, reason) -> None:
    url, _ = served
    raw = await RawSocket.open(url, token_for(new_user()))
    try:
        await raw.send(f'27["message.send",{payload}]')
        ack = await raw.ack(7)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid", ack
        assert reason in ack["error"]["message"]
        await raw.send('28["inbox.list",{}]')  # the socket still works
        assert (await raw.ack(8))["ok"] is True
        assert tracebacks() == []
    finally:
        await raw.close()


async def test_reserved_event_names_are_refused_and_change_nothing(served) -> None:
    url, realtime = served
    alice, bob = new_user(), new_user()
    watcher = await Peer(bob).connect(url)
    raw = await RawSocket.open(url, token_for(alice))
    try:
        await conversation_of(watcher, Peer(alice))
        sid_before = {s.identity.id for s in realtime.sessions.values()}
        mallory = token_for(new_user())
        for i, packet in enumerate(
            [
                '["disconnect"]',
                '["disconnect",{}]',
                f'["connect",{{"token":"{mallory}"}}]',
                '["connect_error",{}]',
                '["message",{}]',
                '["*",{}]',
            ]
        ):
            await raw.send(f"2{10 + i}{packet}")
            ack = await raw.ack(10 + i)
            assert ack["error"]["code"] == "invalid" and "reserved" in ack["error"]["message"]
        assert {s.identity.id for s in realtime.sessions.values()} == sid_before
        await raw.send('230["inbox.list",{}]')
        assert (await raw.ack(30))["ok"] is True  # still signed in, as alice
        online = await realtime.presence.online([alice.id])
        assert online == {alice.id: True}
    finally:
        await raw.close()
        await watcher.close()


# ---------------------------------------------------------------- frames


async def test_a_200kb_message_is_invalid_not_a_dropped_socket(served) -> None:
    url, _ = served
    alice, bob = new_user(), new_user()
    peer = await Peer(alice).connect(url)
    try:
        cid = await conversation_of(peer, Peer(bob))
        big = {"conversation_id": cid, "client_id": "big", "text": "x" * 200_000}
        ack = await peer.call("message.send", big)
        assert ack["error"]["code"] == "invalid" and "4000" in ack["error"]["message"]
        assert peer.sio.connected
        assert (await peer.call("inbox.list", {}))["ok"]
    finally:
        await peer.close()


async def test_a_polling_post_over_the_buffer_gets_413_at_once(served) -> None:
    url, _ = served
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/socket.io/?EIO=4&transport=polling") as resp:
            opened = json.loads((await resp.text())[1:])
        body = "4" + "x" * (Limits().max_payload_bytes + 10)
        started = time.monotonic()
        post = f"{url}/socket.io/?EIO=4&transport=polling&sid={opened['sid']}"
        async with http.post(post, data=body) as resp:
            assert resp.status == 413
        assert time.monotonic() - started < 3


# ---------------------------------------------------------------- validation


async def test_trailing_newlines_do_not_pass(served) -> None:
    url, _ = served
    peer = await Peer(new_user()).connect(url)
    try:
        assert (await peer.call("user.set_language", {"lang": "en\n"}))["error"][
            "code"
        ] == "invalid"
        ack = await peer.call("history.get", {"conversation_id": "c_0123456789abcdef\n"})
        assert ack["error"]["code"] == "invalid"
        ack = await peer.call("conversation.create", {"participants": ["bob\n"]})
        assert ack["error"]["code"] == "invalid"
    finally:
        await peer.close()


def break_mids(offer: str) -> str:
    return "\r\n".join(line for line in offer.split("\r\n") if not line.startswith("a=mid"))


def same_mids(offer: str) -> str:
    return "\r\n".join(
        "a=mid:0" if line.startswith("a=mid") else line for line in offer.split("\r\n")
    )


def without(prefix: str):
    return lambda offer: "\r\n".join(
        line for line in offer.split("\r\n") if not line.startswith(prefix)
    )


def bad_port(offer: str) -> str:
    out = []
    for line in offer.split("\r\n"):
        if line.startswith("a=candidate"):
            parts = line.split()
            parts[5] = "99999"
            line = " ".join(parts)
        out.append(line)
    return "\r\n".join(out)


BROKEN_OFFERS = {
    "no mids": break_mids,
    "equal mids": same_mids,
    "no fingerprint": without("a=fingerprint"),
    "no ice-pwd": without("a=ice-pwd"),
    "no ice-ufrag": without("a=ice-ufrag"),
    "port 99999": bad_port,
    "no media": without("m="),
}


async def test_broken_offers_are_refused_before_the_media_engine(served, tracebacks) -> None:
    url, realtime = served
    host, guest = new_user(), new_user()
    a, b = await Peer(host).connect(url), await Peer(guest).connect(url)
    try:
        cid = await conversation_of(a, b)
        call = (await a.call("call.start", {"conversation_id": cid}))["call"]
        offer = await sample_offer()
        assert problem(offer) is None
        for name, mutate in BROKEN_OFFERS.items():
            broken = mutate(offer)
            assert problem(broken) is not None, name
            ack = await b.call("call.join", {"call_id": call["id"], "sdp": broken, "type": "offer"})
            assert ack["error"]["code"] == "invalid", (name, ack)
        assert realtime.calls.stats()["members"] == 0
        await asyncio.sleep(0.3)
        assert tracebacks() == []
    finally:
        await a.close()
        await b.close()


# ---------------------------------------------------------------- bounds


async def test_socket_cap_per_user(served) -> None:
    url, _ = served
    user = new_user()
    peers = [await Peer(user).connect(url) for _ in range(3)]
    extra = Peer(user)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await extra.connect(url)
        assert extra.events["connect_error"][0]["data"]["code"] == "limit_reached"
        await peers[0].close()
        await asyncio.sleep(0.2)
        await Peer(user).connect(url)  # a freed slot can be used again
    finally:
        for peer in peers:
            await peer.close()


async def test_socket_cap_holds_for_sockets_connecting_at_once(served) -> None:
    """Ten sockets of one user connecting together: exactly the cap (3) get in."""
    url, _ = served
    user = new_user()
    peers = [Peer(user) for _ in range(10)]
    results = await asyncio.gather(*(p.connect(url) for p in peers), return_exceptions=True)
    try:
        refused = [r for r in results if isinstance(r, Exception)]
        assert len(refused) == 7, results
        assert all(isinstance(r, socketio.exceptions.ConnectionError) for r in refused)
        codes = [p.events["connect_error"][0]["data"]["code"] for p in peers if not p.sio.connected]
        assert codes == ["limit_reached"] * 7
    finally:
        for peer in peers:
            await peer.close()


async def test_conversation_and_call_caps(served) -> None:
    url, realtime = served
    me, other = new_user(), new_user()
    peer = await Peer(me).connect(url)
    try:
        cids = [await conversation_of(peer, Peer(other)) for _ in range(3)]
        ack = await peer.call("conversation.create", {"participants": [other.id]})
        assert ack["error"]["code"] == "limit_reached"
        assert (await peer.call("call.start", {"conversation_id": cids[0]}))["ok"]
        again = await peer.call("call.start", {"conversation_id": cids[0]})
        assert again["ok"]  # the running call, not a new one
        ack = await peer.call("call.start", {"conversation_id": cids[1]})
        assert ack["error"]["code"] == "limit_reached"
        assert len(realtime.calls.calls) == 1
    finally:
        await peer.close()


async def test_a_call_nobody_joins_ends_by_itself(served) -> None:
    url, realtime = served
    me, other = new_user(), new_user()
    peer = await Peer(me).connect(url)
    try:
        cid = await conversation_of(peer, Peer(other))
        call = (await peer.call("call.start", {"conversation_id": cid}))["call"]
        ended = await peer.wait_for("call.ended", lambda e: e["call_id"] == call["id"], 10)
        assert ended["reason"] == "idle"
        assert realtime.calls.calls == {}
    finally:
        await peer.close()


async def test_rate_limit_holds_per_user_across_sockets(served) -> None:
    url, _ = served
    user = new_user()
    peers = [await Peer(user).connect(url) for _ in range(3)]
    try:
        acks = await asyncio.gather(*(p.call("inbox.list", {}) for p in peers for _ in range(40)))
        ok = sum(a["ok"] for a in acks)
        limited = sum(1 for a in acks if not a["ok"] and a["error"]["code"] == "rate_limited")
        burst = Limits().rate_burst
        assert ok + limited == len(acks)
        assert burst <= ok < burst + 20, ok  # one bucket for the user, not one per socket
    finally:
        for peer in peers:
            await peer.close()


async def test_sends_from_one_socket_are_stored_in_order(served) -> None:
    url, _ = served
    me, other = new_user(), new_user()
    peer = await Peer(me).connect(url)
    try:
        cid = await conversation_of(peer, Peer(other))
        acks = await asyncio.gather(
            *(
                peer.call(
                    "message.send", {"conversation_id": cid, "client_id": f"m{i}", "text": f"n{i}"}
                )
                for i in range(30)
            )
        )
        assert all(a["ok"] for a in acks)
        history = await peer.call("history.get", {"conversation_id": cid, "limit": 100})
        assert [m["text"] for m in history["messages"]] == [f"n{i}" for i in range(30)]
    finally:
        await peer.close()


# ---------------------------------------------------------------- tokens over the socket


async def test_a_jwt_minted_by_pyjwt_connects(served) -> None:
    url, realtime = served
    now = int(time.time())
    claims = {"sub": "crm-user-7", "name": "Ana", "role": "buyer", "lang": "es"}
    token = jwt.encode({**claims, "iat": now, "exp": now + 300}, SECRET, algorithm="HS256")
    peer = Peer(new_user())
    try:
        await peer.connect(url, token)
        assert {s.identity.id for s in realtime.sessions.values()} == {"crm-user-7"}
    finally:
        await peer.close()
    for bad in [
        "eyJ.é",
        jwt.encode({**claims, "iat": now, "exp": now + 300}, None, algorithm="none"),
    ]:
        refused = Peer(new_user())
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(url, bad)
        assert refused.events["connect_error"][0]["data"]["code"] == "unauthorized"


async def test_transcript_route_refuses_a_non_ascii_token(served) -> None:
    url, _ = served
    async with aiohttp.ClientSession() as http:
        route = f"{url}/api/conversations/c_0123456789abcdef/transcript"
        async with http.get(route, params={"token": "eyJ.é"}) as resp:
            assert resp.status == 401
            assert "malformed token" in await resp.text()


# ---------------------------------------------------------------- settings, static, metrics


@pytest.mark.parametrize("word", ["1", "true", "YES", "on"])
def test_dev_flag_on(word) -> None:
    assert parse_flag("TRADETALK_DEV", word) is True


@pytest.mark.parametrize("word", ["", "0", "false", "No", "off"])
def test_dev_flag_off(word) -> None:
    assert parse_flag("TRADETALK_DEV", word) is False
    assert Settings.from_env({"TRADETALK_DEV": word, "TRADETALK_SECRET": "s"}).dev is False


def test_dev_flag_nonsense_stops_the_server(tmp_path) -> None:
    with pytest.raises(SettingError, match="TRADETALK_DEV"):
        Settings.from_env({"TRADETALK_DEV": "maybe", "TRADETALK_SECRET": "s"})


async def test_static_serves_only_the_clients_files(served) -> None:
    url, _ = served
    async with aiohttp.ClientSession() as http:
        for path in ["/static/js/main.js", "/static/css/app.css", "/vendor/socket.io.esm.min.js"]:
            async with http.get(url + path) as resp:
                assert resp.status == 200, path
        for path in [
            "/static/__init__.py",
            "/static/package.json",
            "/static/node_modules/.installed",
            "/static/node_modules/socket.io-client/package.json",
            "/static/js/../__init__.py",
            "/static/index.html",
        ]:
            async with http.get(url + path) as resp:
                assert resp.status == 404, path


async def test_metrics_behind_a_token_parse_with_prometheus_client(served) -> None:
    url, _ = served
    peer = await Peer(new_user()).connect(url)
    try:
        assert (await peer.call("inbox.list", {}))["ok"]
        await peer.call("no.such.event", {})
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/metrics") as resp:
                assert resp.status == 401
            headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
            async with http.get(url + "/metrics", headers=headers) as resp:
                assert resp.status == 200
                text = await resp.text()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        sockets = families["tradetalk_sockets"].samples[0].value
        assert sockets >= 1
        events = {
            (s.labels["event"], s.labels["code"]): s.value
            for s in families["tradetalk_events"].samples
            if s.name == "tradetalk_events_total"
        }
        assert events[("inbox.list", "ok")] >= 1
        assert events[("(unknown)", "unknown_event")] >= 1
        for name in [
            "tradetalk_event_seconds",
            "tradetalk_redis_errors",
            "tradetalk_calls",
            "tradetalk_tours",
            "tradetalk_call_members",
            "tradetalk_speakers_recognized",
            "tradetalk_recognizer_backlog_chunks",
            "tradetalk_recognizer_dropped_audio_bytes",
            "tradetalk_subtitle_latency_seconds",
            "tradetalk_translations_computed",
            "tradetalk_translation_cache_hits",
            "tradetalk_recognition_workers",
            "tradetalk_recognition_queue_depth",
            "tradetalk_recognition_utterances_node",
            "tradetalk_recognition_worker_active",
            "tradetalk_recognition_hop_seconds",
        ]:
            assert name in families, name
        assert families["tradetalk_recognition_workers"].samples[0].value == 0  # in-process
    finally:
        await peer.close()


async def test_rate_limit_holds_per_user_across_processes(
    aiohttp_server, redis_server, settings, server_translator
) -> None:
    urls = []
    for _ in range(2):  # two server instances (each its own sockets, sessions, presence id)
        server = await aiohttp_server(create_app(settings, redis_server.url, server_translator))
        urls.append(str(server.make_url("")).rstrip("/"))
    user = new_user()
    peers = [await Peer(user).connect(url) for url in urls]
    try:
        acks = await asyncio.gather(*(p.call("inbox.list", {}) for p in peers for _ in range(50)))
        ok = sum(a["ok"] for a in acks)
        burst = Limits().rate_burst
        assert burst <= ok < burst + 20, ok
        assert {a["error"]["code"] for a in acks if not a["ok"]} == {"rate_limited"}
    finally:
        for peer in peers:
            await peer.close()


async def test_a_send_takes_its_token_in_the_store_script_and_the_limit_still_holds(
    aiohttp_server, redis_server, settings, server_translator
) -> None:
    """A send with nothing to read or translate first (same-language conversation, at hand in
    the process) takes the sender's token in its store script, not in a round trip of its own;
    the bucket is still the user's one over every process and every event: sends beyond it
    are refused `rate_limited` and not stored, and malformed sends spend tokens too."""
    apps = [create_app(settings, redis_server.url, server_translator) for _ in range(2)]
    urls = [str((await aiohttp_server(app)).make_url("")).rstrip("/") for app in apps]
    alice, bob = new_user(), new_user()
    senders = [await Peer(alice).connect(url) for url in urls]
    partner = await Peer(bob).connect(urls[0])
    separate_tokens = 0
    for app in apps:
        limit = app[SERVICES]["realtime"].rate_limit
        allow = limit.allow

        async def counted(user: str, allow=allow) -> bool:
            nonlocal separate_tokens
            separate_tokens += user == alice.id
            return await allow(user)

        limit.allow = counted
    try:
        created = await senders[0].call("conversation.create", {"participants": [bob.id]})
        cid = created["conversation"]["id"]

        def send(n: int) -> dict:
            return {"conversation_id": cid, "client_id": f"m{n}", "text": f"line {n}"}

        for i, peer in enumerate(senders):  # the first send of a process reads the languages
            assert (await peer.call("message.send", send(i)))["ok"]
        await asyncio.sleep(Limits().rate_burst / Limits().rate_per_second)  # bucket full again
        separate_tokens = 0
        assert (await senders[0].call("message.send", send(2)))["ok"]
        assert separate_tokens == 0  # the token rode in the store script
        bucket = await apps[0][SERVICES]["realtime"].redis.hget(f"tt:rate:{alice.id}", "tokens")
        assert float(bucket) < Limits().rate_burst  # ... and was taken there

        await asyncio.sleep(Limits().rate_burst / Limits().rate_per_second)
        acks = await asyncio.gather(
            *(
                p.call("message.send", send(100 + 50 * i + n))
                for i, p in enumerate(senders)
                for n in range(50)
            )
        )
        ok = [a for a in acks if a["ok"]]
        burst = Limits().rate_burst
        assert burst <= len(ok) < burst + 20, len(ok)
        assert {a["error"]["code"] for a in acks if not a["ok"]} == {"rate_limited"}
        history = await partner.call(
            "history.get", {"conversation_id": cid, "limit": Limits().history_page_max}
        )
        stored = {m["client_id"] for m in history["messages"]}
        assert stored == {"m0", "m1", "m2"} | {a["message"]["client_id"] for a in ok}

        await asyncio.sleep(Limits().rate_burst / Limits().rate_per_second)
        bad = await asyncio.gather(
            *(senders[1].call("message.send", {"conversation_id": cid}) for _ in range(80))
        )
        codes = {a["error"]["code"] for a in bad}
        assert codes == {"invalid", "rate_limited"}, codes  # refused payloads spend tokens
    finally:
        for peer in [*senders, partner]:
            await peer.close()
