"""Property-based fuzz (hypothesis, seeded) over every event's payload: each emit gets an ack with
a code documented in docs/protocol.md, never `internal`, never silence, no traceback in the log,
and an event that fails leaves the stored conversation exactly as it was."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.app import SERVICES, create_app
from server.config import Limits, Settings
from server.storage.store import LANG_KEY, Store
from tests.integration.test_hardening import BROKEN_OFFERS
from tests.support.peers import REPO, SECRET, Peer, new_user
from tests.support.sdp_samples import sample_offer

EXAMPLES = 1000
ACK_TIMEOUT = 5.0

# The payload fields each event reads (events not listed get generic payloads).
FIELDS: dict[str, tuple[str, ...]] = {
    "conversation.create": ("participants", "title"),
    "conversation.join": ("conversation_id", "since"),
    "message.send": ("conversation_id", "client_id", "text"),
    "history.get": ("conversation_id", "before", "limit"),
    "typing": ("conversation_id", "active"),
    "message.read": ("conversation_id", "message_id"),
    "inbox.list": (),
    "user.set_language": ("lang",),
    "glossary.get": ("conversation_id",),
    "glossary.set": ("conversation_id", "terms"),
    "call.start": ("conversation_id",),
    "call.get": ("conversation_id",),
    "call.join": ("call_id", "sdp", "type", "subtitle_lang"),
    "call.leave": ("call_id",),
    "call.end": ("call_id",),
    "call.subtitles": ("call_id", "lang"),
    "rtc.answer": ("call_id", "sdp", "type"),
    "tour.start": ("title", "lang", "invite"),
    "tour.publish": ("tour_id", "sdp", "type"),
    "tour.join": ("tour_id", "sdp", "type", "subtitle_lang"),
    "tour.answer": ("tour_id", "sdp", "type"),
    "tour.subtitles": ("tour_id", "lang"),
    "tour.ask": ("tour_id", "text"),
    "tour.leave": ("tour_id",),
    "tour.end": ("tour_id",),
    "quote.send": ("conversation_id", "client_id", "items", "incoterm", "lead_time_days",
                   "valid_until", "in_reply_to"),
    "quote.request": ("conversation_id", "client_id", "items", "incoterm", "valid_until"),
    "quote.respond": ("conversation_id", "client_id", "quote_id", "action", "version"),
    "quote.get": ("conversation_id", "quote_id"),
}  # fmt: skip


def documented_codes() -> set[str]:
    """The ack codes in docs/protocol.md's table."""
    text = (REPO / "docs" / "protocol.md").read_text()
    section = text.split("## Acks", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))


def payloads(
    event: str, specials: list[Any], bases: dict[str, dict[str, Any]]
) -> st.SearchStrategy[Any]:
    """Payloads for `event`: a valid one with one field changed, dropped or added; its own
    fields with good, bad and hostile values; or junk."""
    leaf = (
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=40)
        | st.sampled_from(specials)
    )
    value = st.recursive(
        leaf,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=8,
    )
    fields = FIELDS.get(event, ("id", "conversation_id", "text"))
    shaped = st.fixed_dictionaries(
        {}, optional={name: st.sampled_from(specials) | value for name in fields}
    )
    extra = st.dictionaries(st.sampled_from(["x", "sdp", "__proto__", "\ud800"]), value, max_size=2)
    base = bases.get(event, {})
    hostile = st.sampled_from(specials) | value
    near = st.one_of(
        st.just(base),
        st.builds(lambda k, v: {**base, k: v}, st.sampled_from([*fields, "x"] or ["x"]), hostile),
        st.builds(
            lambda k: {f: v for f, v in base.items() if f != k}, st.sampled_from([*base] or ["x"])
        ),
    )
    return near | near | shaped | st.builds(lambda a, b: {**a, **b}, shaped, extra) | value


async def snapshot(store: Store, cid: str, user: str) -> tuple:
    """Everything stored about the conversation and the user's language."""
    r = store.redis
    keys = [store.key("conv", cid, part) for part in ("msgs", "cids", "reads")]
    return (
        await r.hgetall(store.key("conv", cid)),
        await r.get(store.key("conv", cid, "seq")),
        await r.get(store.key("conv", cid, "glossary")),
        *[await r.hgetall(k) for k in keys],
        await r.hget(LANG_KEY, user),
    )


@pytest.fixture
def settings_(tmp_path) -> Settings:
    limits = Limits(rate_per_second=10_000, rate_burst=10_000, conversations_per_hour=10_000)
    return Settings(data_dir=tmp_path, secret=SECRET, limits=limits)


async def test_fuzz_every_event(aiohttp_server, redis_server, settings_, server_translator, caplog):
    caplog.set_level(logging.INFO)
    app = create_app(settings_, redis_server.url, server_translator)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    realtime = app[SERVICES]["realtime"]
    me, other = new_user(role="supplier"), new_user(lang="es")
    peer = await Peer(me).connect(url)
    partner = await Peer(other).connect(url)
    cid = (await peer.call("conversation.create", {"participants": [other.id]}))["conversation"][
        "id"
    ]
    sent = {"conversation_id": cid, "client_id": "seed", "text": "hello"}
    assert (await peer.call("message.send", sent))["ok"]
    call_id = (await peer.call("call.start", {"conversation_id": cid}))["call"]["id"]
    tour_id = (await peer.call("tour.start", {"title": "Line 3", "lang": "en"}))["tour"]["id"]
    offer = await sample_offer()
    item = {"product": "bolt", "quantity": "5", "unit": "pcs", "currency": "USD"}
    priced = {**item, "unit_price": "1.5"}
    valid = (datetime.now(UTC).date() + timedelta(days=9)).isoformat()
    terms = {"items": [priced], "incoterm": "FOB", "lead_time_days": 9, "valid_until": valid}
    quote = {"conversation_id": cid, "client_id": "q0", **terms}
    quote_id = (await partner.call("quote.send", quote))["quote_id"]
    bases: dict[str, dict[str, Any]] = {
        "conversation.create": {"participants": [other.id], "title": "t"},
        "conversation.join": {"conversation_id": cid, "since": 0},
        "message.send": {"conversation_id": cid, "client_id": "f1", "text": "hi"},
        "history.get": {"conversation_id": cid, "limit": 5},
        "typing": {"conversation_id": cid, "active": True},
        "message.read": {"conversation_id": cid, "message_id": 1},
        "user.set_language": {"lang": "en"},
        "glossary.get": {"conversation_id": cid},
        "glossary.set": {"conversation_id": cid, "terms": {"bolt": "perno"}},
        "call.start": {"conversation_id": cid},
        "call.get": {"conversation_id": cid},
        "call.join": {"call_id": call_id, "sdp": offer, "type": "offer"},
        "call.leave": {"call_id": call_id},
        "call.end": {"call_id": call_id},
        "call.subtitles": {"call_id": call_id, "lang": "es"},
        "rtc.answer": {"call_id": call_id, "sdp": offer, "type": "answer"},
        "tour.start": {"title": "Line 4", "lang": "en"},
        "tour.publish": {"tour_id": tour_id, "sdp": offer, "type": "offer"},
        "tour.join": {"tour_id": tour_id, "sdp": offer, "type": "offer"},
        "tour.answer": {"tour_id": tour_id, "sdp": offer, "type": "answer"},
        "tour.subtitles": {"tour_id": tour_id, "lang": "es"},
        "tour.ask": {"tour_id": tour_id, "text": "How many per day?"},
        "tour.leave": {"tour_id": tour_id},
        "tour.end": {"tour_id": tour_id},
        "quote.send": {**quote, "client_id": "q1"},
        "quote.request": {**quote, "client_id": "q2", "items": [item]},
        "quote.respond": {"conversation_id": cid, "client_id": "q3", "quote_id": quote_id,
                          "action": "decline"},
        "quote.get": {"conversation_id": cid, "quote_id": quote_id},
    }  # fmt: skip
    specials: list[Any] = [
        cid,
        "c_0123456789abcdef",
        call_id,
        tour_id,
        "k_0123456789abcdef",
        "t_0123456789abcdef",
        quote_id,
        "q_0123456789abcdef",
        "accept",
        "counter",
        "2.35",
        other.id,
        "seed",
        "en",
        "es",
        "en\n",
        "offer",
        "answer",
        offer,
        *(mutate(offer) for mutate in BROKEN_OFFERS.values()),
        "v=0\r\n",
        "\ud800",
        "a\udfffb",
        "x" * 5000,
        10**30,
        2**53 + 1,
        -1,
        0,
        1,
        [other.id],
        [other.id + "\n"],
        {"bolt": "perno"},
        {"\ud800": None},
        [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
    ]
    events = sorted(set(realtime.dispatcher.events) | set(FIELDS))
    emits: list[tuple[str, Any]] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        st.sampled_from([*events, "no.such.event", "Message.Send", ""]).flatmap(
            lambda e: st.tuples(st.just(e), payloads(e, specials, bases))
        )
    )
    def collect(emit: tuple[str, Any]) -> None:
        emits.append(emit)

    # Generating takes seconds of CPU: off the event loop, so the sockets keep their pings.
    await asyncio.to_thread(collect)
    codes = documented_codes()
    assert {"invalid", "unavailable", "limit_reached"} <= codes
    counts = {"emits": 0, "ok": 0, "internal": 0, "unanswered": 0, "undocumented": 0}
    by_event: dict[str, set[str]] = {}
    before = await snapshot(realtime.store, cid, me.id)
    started = time.monotonic()
    for event, data in emits:
        counts["emits"] += 1
        try:
            ack = await peer.sio.call(event, data, timeout=ACK_TIMEOUT)
        except socketio.exceptions.TimeoutError:
            counts["unanswered"] += 1
            continue
        assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), (event, data, ack)
        if ack["ok"]:
            counts["ok"] += 1
            by_event.setdefault(event, set()).add("ok")
            before = await snapshot(realtime.store, cid, me.id)
            continue
        code = ack["error"]["code"]
        by_event.setdefault(event, set()).add(code)
        counts["internal"] += code == "internal"
        counts["undocumented"] += code not in codes
        after = await snapshot(realtime.store, cid, me.id)
        assert after == before, (event, data, ack)
        assert peer.sio.connected, (event, data)
    tracebacks = [r for r in caplog.records if r.exc_info]
    counts["tracebacks"] = len(tracebacks)
    seconds = time.monotonic() - started
    print(f"\nfuzz: {counts} in {seconds:.1f} s; codes by event: {by_event}")
    assert counts["internal"] == 0 and counts["unanswered"] == 0
    assert counts["undocumented"] == 0 and tracebacks == [], tracebacks[:3]
    assert counts["emits"] == EXAMPLES and counts["ok"] > 0
    await partner.close()
    await peer.close()
