"""Chat over real Socket.IO clients against a server on a real Redis."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import jwt
import pytest
import socketio

from server.tokens import issue_token
from tests.support.peers import SECRET, Peer, new_user


async def converse(connect, *langs: str):
    """Connect one peer per language and create a conversation between them."""
    peers = [await connect(new_user(lang=lang)) for lang in langs]
    ack = await peers[0].call(
        "conversation.create", {"participants": [p.id for p in peers[1:]], "title": "Bolts"}
    )
    assert ack["ok"], ack
    return peers, ack["conversation"]


async def test_healthz_reports_redis(server_url) -> None:
    """503 with the step in progress while the node warms up (docs/protocol.md), then 200."""
    deadline = time.monotonic() + 120
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(server_url + "/healthz") as resp:
                health = await resp.json()
                if resp.status == 200:
                    break
                assert resp.status == 503 and health["ok"] is False, (resp.status, health)
                assert health["ready"] is False and health["reason"].startswith("warming up")
                assert health["redis"] is True
            assert time.monotonic() < deadline, health
            await asyncio.sleep(0.1)
    assert health["redis"] is True and health["ok"] is True and health["ready"] is True
    assert health["media"] is True and health["draining"] is False and health["node"]
    assert "reason" not in health


@pytest.mark.parametrize(
    "auth",
    [None, {}, {"token": "garbage"}, {"token": issue_token(b"wrong", new_user())}],
)
async def test_connect_refused_without_valid_token(server_url, auth) -> None:
    reasons = []
    client = socketio.AsyncClient(reconnection=False)
    client.on("connect_error", reasons.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(server_url, auth=auth, transports=["websocket"], wait_timeout=5)
    assert reasons[0]["message"].startswith("unauthorized: ")
    assert reasons[0]["data"]["code"] == "unauthorized"


async def test_expired_token_refused_with_reason(server_url) -> None:
    user = new_user()
    peer = Peer(user)
    now = int(time.time())
    claims = {"sub": user.id, "name": user.name, "role": user.role, "lang": user.lang}
    token = jwt.encode({**claims, "iat": now - 600, "exp": now - 120}, SECRET, algorithm="HS256")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await peer.connect(server_url, token)
    assert peer.events["connect_error"][0]["data"]["message"] == "token expired"


async def test_create_join_send_and_fan_out(connect) -> None:
    (buyer, supplier), conv = await converse(connect, "en", "zh")
    assert conv["participants"] == [buyer.id, supplier.id]
    assert conv["title"] == "Bolts" and conv["id"].startswith("c_") and conv["created_at"]

    second_tab = await connect(supplier.identity)
    joined = await supplier.call("conversation.join", {"conversation_id": conv["id"]})
    # the create ack also carries each participant's presence (`online`), as join does beside it
    created = {k: v for k, v in conv.items() if k != "online"}
    assert joined["ok"] and joined["messages"] == [] and joined["conversation"] == created
    assert joined["online"] == {buyer.id: True, supplier.id: True}

    ack = await buyer.call(
        "message.send", {"conversation_id": conv["id"], "client_id": "m1", "text": "Hello 你好"}
    )
    assert ack["ok"], ack
    message = ack["message"]
    assert message["id"] == 1 and message["text"] == "Hello 你好" and message["lang"] == "en"
    assert message["sender"] == buyer.identity.public()
    assert message["client_id"] == "m1" and message["conversation_id"] == conv["id"]
    for peer in (buyer, supplier, second_tab):
        got = await peer.wait_for("message.new")
        assert got["message"] == message
    await asyncio.sleep(0.2)
    assert [len(p.events["message.new"]) for p in (buyer, supplier, second_tab)] == [1, 1, 1]


async def test_duplicate_client_id_is_stored_once(connect) -> None:
    (buyer, supplier), conv = await converse(connect, "en", "es")
    send = {"conversation_id": conv["id"], "client_id": "retry-1", "text": "500 pcs"}
    first = await buyer.call("message.send", send)
    again = await buyer.call("message.send", {**send, "text": "changed on retry"})
    assert again["ok"] and again["message"] == first["message"] and again["duplicate"] is True
    history = await buyer.call("history.get", {"conversation_id": conv["id"]})
    assert [m["text"] for m in history["messages"]] == ["500 pcs"]
    await supplier.wait_for("message.new")
    await asyncio.sleep(0.2)
    assert len(supplier.events["message.new"]) == 1
    # The same client_id from another sender is a different message.
    other = await supplier.call("message.send", send)
    assert other["message"]["id"] == 2 and other["duplicate"] is False


async def test_ids_order_history_paging_and_since(connect) -> None:
    (buyer, supplier), conv = await converse(connect, "en", "es")
    cid = conv["id"]
    for i in range(1, 8):
        ack = await buyer.call(
            "message.send", {"conversation_id": cid, "client_id": f"c{i}", "text": f"m{i}"}
        )
        assert ack["message"]["id"] == i
    page = await supplier.call("history.get", {"conversation_id": cid, "limit": 3})
    assert [m["text"] for m in page["messages"]] == ["m5", "m6", "m7"] and page["has_more"]
    older = await supplier.call("history.get", {"conversation_id": cid, "before": 5, "limit": 3})
    assert [m["id"] for m in older["messages"]] == [2, 3, 4] and older["has_more"]
    first = await supplier.call("history.get", {"conversation_id": cid, "before": 2})
    assert [m["id"] for m in first["messages"]] == [1] and not first["has_more"]
    replay = await supplier.call("conversation.join", {"conversation_id": cid, "since": 4})
    assert [m["id"] for m in replay["messages"]] == [5, 6, 7]
    latest = await supplier.call("conversation.join", {"conversation_id": cid})
    assert [m["id"] for m in latest["messages"]] == list(range(1, 8))


async def test_non_participant_can_neither_join_read_nor_send(connect) -> None:
    (buyer, _supplier), conv = await converse(connect, "en", "es")
    await buyer.call("message.send", {"conversation_id": conv["id"], "client_id": "a", "text": "x"})
    outsider = await connect(new_user())
    cid = conv["id"]
    for event, data in [
        ("conversation.join", {"conversation_id": cid}),
        ("history.get", {"conversation_id": cid}),
        ("message.send", {"conversation_id": cid, "client_id": "z", "text": "hi"}),
        ("message.read", {"conversation_id": cid, "message_id": 1}),
        ("typing", {"conversation_id": cid, "active": True}),
    ]:
        ack = await outsider.call(event, data)
        assert ack == {
            "ok": False,
            "error": {"code": "forbidden", "message": ack["error"]["message"]},
        }
    history = await buyer.call("history.get", {"conversation_id": cid})
    assert len(history["messages"]) == 1
    assert not outsider.events["message.new"]
    missing = await outsider.call("conversation.join", {"conversation_id": "c_0000000000000000"})
    assert missing["error"]["code"] == "not_found"


async def test_typing_and_read_receipts_and_unread(connect) -> None:
    (buyer, supplier), conv = await converse(connect, "en", "es")
    cid = conv["id"]
    assert (await buyer.call("typing", {"conversation_id": cid, "active": True}))["ok"]
    typing = await supplier.wait_for("typing")
    assert typing == {"conversation_id": cid, "user_id": buyer.id, "active": True}
    assert not buyer.events["typing"]

    for i in range(3):
        await buyer.call(
            "message.send", {"conversation_id": cid, "client_id": f"r{i}", "text": "q"}
        )
    inbox = await supplier.call("inbox.list", {})
    assert inbox["conversations"][0]["id"] == cid and inbox["conversations"][0]["unread"] == 3
    assert (await buyer.call("inbox.list"))["conversations"][0]["unread"] == 0

    await asyncio.sleep(0.2)
    supplier.events["inbox.update"].clear()
    ack = await supplier.call("message.read", {"conversation_id": cid, "message_id": 2})
    assert ack["ok"] and ack["unread"] == 1
    read = await buyer.wait_for("read")
    assert read == {"conversation_id": cid, "user_id": supplier.id, "message_id": 2}
    update = supplier.events["inbox.update"][-1]
    assert update["conversation"]["unread"] == 1
    assert update["conversation"]["last_message"]["id"] == 3
    # Read markers never move backwards; unknown message ids are refused.
    back = await supplier.call("message.read", {"conversation_id": cid, "message_id": 1})
    assert back["message_id"] == 2
    joined = await buyer.call("conversation.join", {"conversation_id": cid})
    assert joined["read"] == {buyer.id: 3, supplier.id: 2}
    beyond = await supplier.call("message.read", {"conversation_id": cid, "message_id": 99})
    assert beyond["error"]["code"] == "not_found"


async def test_presence_first_and_last_socket(connect) -> None:
    (buyer, supplier), _conv = await converse(connect, "en", "es")
    tab1 = supplier
    tab2 = await connect(supplier.identity)
    await tab1.close()
    await asyncio.sleep(0.3)
    assert not [e for e in buyer.events["presence"] if e["user_id"] == supplier.id]
    await tab2.close()
    gone = await buyer.wait_for("presence", lambda e: e["user_id"] == supplier.id)
    assert gone == {"user_id": supplier.id, "online": False}
    await connect(supplier.identity)
    back = await buyer.wait_for("presence", lambda e: e["online"] and e["user_id"] == supplier.id)
    assert back == {"user_id": supplier.id, "online": True}


async def test_agent_inbox_with_50_leads_updates_live(connect) -> None:
    agent = await connect(new_user(role="agent"))
    leads = [await connect(new_user(lang="es")) for _ in range(50)]
    conversations = []
    for lead in leads:
        ack = await lead.call("conversation.create", {"participants": [agent.id]})
        conversations.append(ack["conversation"])
    inbox = await agent.call("inbox.list", {})
    assert {c["id"] for c in inbox["conversations"]} == {c["id"] for c in conversations}
    agent.events["inbox.update"].clear()
    await asyncio.gather(
        *(
            lead.call(
                "message.send", {"conversation_id": c["id"], "client_id": "1", "text": "hola"}
            )
            for lead, c in zip(leads, conversations, strict=True)
        )
    )
    for conv in conversations:
        update = await agent.wait_for(
            "inbox.update", lambda u, c=conv: u["conversation"]["id"] == c["id"]
        )
        assert update["conversation"]["unread"] == 1
        assert update["conversation"]["last_message"]["text"] == "hola"
    assert not agent.events["message.new"] or len(agent.events["message.new"]) == 50
    inbox = await agent.call("inbox.list", {})
    newest = await leads[-1].call(
        "message.send", {"conversation_id": conversations[0]["id"], "client_id": "2", "text": "x"}
    )
    assert newest["error"]["code"] == "forbidden"
    await leads[0].call(
        "message.send", {"conversation_id": conversations[0]["id"], "client_id": "3", "text": "new"}
    )
    inbox = await agent.call("inbox.list", {})
    assert inbox["conversations"][0]["id"] == conversations[0]["id"]
    assert inbox["conversations"][0]["unread"] == 2


async def test_inbox_carries_each_participants_presence(connect) -> None:
    """An agent whose leads were online before any conversation existed learns their presence
    from `inbox.list` and from the creation `inbox.update`, not only from later `presence`."""
    agent = await connect(new_user(role="agent"))
    leads = [await connect(new_user(lang="es")) for _ in range(3)]
    offline = await connect(new_user(lang="ko"))
    for lead in [*leads, offline]:
        ack = await lead.call("conversation.create", {"participants": [agent.id]})
        assert ack["conversation"]["online"] == {lead.id: True, agent.id: True}, ack
        created = await agent.wait_for(
            "inbox.update", lambda u, lead=lead: lead.id in u["conversation"]["participants"]
        )
        assert created["conversation"]["online"] == {lead.id: True, agent.id: True}, created
    await offline.close()
    await agent.wait_for("presence", lambda e: e["user_id"] == offline.id and not e["online"])
    inbox = await agent.call("inbox.list", {})
    seen = {
        p: entry["online"][p]
        for entry in inbox["conversations"]
        for p in entry["participants"]
        if p != agent.id
    }
    assert seen == {**{lead.id: True for lead in leads}, offline.id: False}, inbox


BAD_PAYLOADS = [
    ("conversation.create", None),
    ("conversation.create", "text"),
    ("conversation.create", {"participants": []}),
    ("conversation.create", {"participants": "bob"}),
    ("conversation.create", {"participants": ["ok", 5]}),
    ("conversation.create", {"participants": ["bad id!"]}),
    ("conversation.create", {"participants": [f"u{i}" for i in range(51)]}),
    ("conversation.create", {"participants": ["bob"], "title": "t" * 201}),
    ("conversation.create", {"participants": ["bob"], "extra": 1}),
    ("conversation.join", {"conversation_id": "../etc"}),
    ("conversation.join", {"conversation_id": "CONV", "since": -1}),
    ("message.send", {"conversation_id": "CONV", "client_id": "x", "text": "a" * 4001}),
    ("message.send", {"conversation_id": "CONV", "client_id": "x", "text": "   "}),
    ("message.send", {"conversation_id": "CONV", "client_id": "x", "text": ["a"]}),
    ("message.send", {"conversation_id": "CONV", "client_id": "", "text": "a"}),
    ("message.send", {"conversation_id": "CONV", "client_id": "x" * 65, "text": "a"}),
    ("message.send", {"conversation_id": "CONV", "text": "a"}),
    ("history.get", {"conversation_id": "CONV", "limit": 0}),
    ("history.get", {"conversation_id": "CONV", "limit": 101}),
    ("history.get", {"conversation_id": "CONV", "before": "5"}),
    ("typing", {"conversation_id": "CONV", "active": "yes"}),
    ("message.read", {"conversation_id": "CONV"}),
    ("message.read", {"conversation_id": "CONV", "message_id": True}),
    ("inbox.list", {"unexpected": True}),
]


@pytest.mark.parametrize(("event", "data"), BAD_PAYLOADS)
async def test_bad_payloads_get_invalid_and_change_nothing(connect, event, data) -> None:
    (buyer, _supplier), conv = await converse(connect, "en", "es")
    await buyer.call(
        "message.send", {"conversation_id": conv["id"], "client_id": "k", "text": "ok"}
    )
    if isinstance(data, dict) and data.get("conversation_id") == "CONV":
        data = {**data, "conversation_id": conv["id"]}
    ack = await buyer.call(event, data)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid", ack
    assert ack["error"]["message"]
    history = await buyer.call("history.get", {"conversation_id": conv["id"]})
    assert [m["text"] for m in history["messages"]] == ["ok"]
    assert (await buyer.call("inbox.list", {}))["ok"]


async def test_text_of_exactly_the_limit_is_accepted(connect) -> None:
    (buyer, _), conv = await converse(connect, "en", "es")
    ack = await buyer.call(
        "message.send", {"conversation_id": conv["id"], "client_id": "big", "text": "字" * 4000}
    )
    assert ack["ok"] and len(ack["message"]["text"]) == 4000


async def test_unknown_event_and_extra_args_get_error_acks(connect) -> None:
    peer = await connect(new_user())
    ack = await peer.call("message.delete", {"id": 1})
    assert ack["error"]["code"] == "unknown_event"
    ack = await peer.sio.call("inbox.list", ({}, {}), timeout=5)
    assert ack["error"]["code"] == "invalid"


async def test_rate_limit(connect) -> None:
    peer = await connect(new_user())
    acks = await asyncio.gather(*(peer.call("inbox.list", {}) for _ in range(80)))
    codes = [a["error"]["code"] for a in acks if not a["ok"]]
    assert codes and set(codes) == {"rate_limited"}
    assert sum(a["ok"] for a in acks) >= 40
    await asyncio.sleep(1.0)
    assert (await peer.call("inbox.list", {}))["ok"]


async def test_identity_comes_only_from_the_token(connect) -> None:
    (buyer, supplier), conv = await converse(connect, "en", "es")
    ack = await buyer.call(
        "message.send", {"conversation_id": conv["id"], "client_id": "s", "text": "hi"}
    )
    assert ack["message"]["sender"]["id"] == buyer.id
    spoof = await buyer.call(
        "message.send",
        {"conversation_id": conv["id"], "client_id": "t", "text": "hi", "sender": supplier.id},
    )
    assert spoof["error"]["code"] == "invalid"


async def test_unknown_user_refused_and_people_carry_names_and_languages(connect) -> None:
    agent = await connect(new_user(role="agent", lang="en"))
    lead = await connect(new_user(role="buyer", lang="es"))
    typo = agent.id[:-1] + ("0" if agent.id[-1] != "0" else "1")
    refused = await lead.call("conversation.create", {"participants": [typo]})
    assert refused["ok"] is False and refused["error"]["code"] == "unknown_user"
    assert typo in refused["error"]["message"]
    assert not (await lead.call("inbox.list", {}))["conversations"]

    ack = await lead.call("conversation.create", {"participants": [agent.id]})
    people = ack["conversation"]["people"]
    assert people[lead.id] == {"name": lead.identity.name, "role": "buyer", "lang": "es"}
    assert people[agent.id]["name"] == agent.identity.name
    update = await agent.wait_for(
        "inbox.update", lambda u: u["conversation"]["id"] == ack["conversation"]["id"]
    )
    assert update["conversation"]["people"][lead.id]["lang"] == "es"
    entry = (await agent.call("inbox.list", {}))["conversations"][0]
    assert entry["people"][lead.id]["lang"] == "es"
    await lead.call("user.set_language", {"lang": "ko"})
    joined = await agent.call("conversation.join", {"conversation_id": entry["id"]})
    assert joined["conversation"]["people"][lead.id]["lang"] == "ko"
