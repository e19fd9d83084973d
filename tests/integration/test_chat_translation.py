"""Chat that translates itself, on real engines (Apertium en<->es, test-built Argos en->zh)."""

from __future__ import annotations

import pytest

from server.app import SERVICES, create_app
from tests.support.peers import Peer, new_user
from translation.translator import Translator

TRADE = "We can ship 500 pcs of M8x40 bolts FOB Shenzhen at 2.35 USD/unit."
PROTECTED = ["500 pcs", "M8x40", "FOB Shenzhen", "2.35 USD/unit"]


@pytest.fixture
def server_translator(translator) -> Translator:
    """Argos (test-built packages) first, then Apertium: the server's real order."""
    return translator


async def pair(connect, a: str, b: str, title: str = "Bolts"):
    """Two connected users in languages a and b, and their conversation."""
    left, right = await connect(new_user(lang=a)), await connect(new_user(lang=b))
    ack = await left.call("conversation.create", {"participants": [right.id], "title": title})
    return left, right, ack["conversation"]["id"]


async def send(peer: Peer, cid: str, text: str, client_id: str) -> dict:
    ack = await peer.call(
        "message.send", {"conversation_id": cid, "client_id": client_id, "text": text}
    )
    assert ack["ok"], ack
    return ack["message"]


async def test_english_and_spanish_read_each_other(connect) -> None:
    buyer, supplier, cid = await pair(connect, "en", "es")
    sent = await send(buyer, cid, TRADE, "1")
    got = (await supplier.wait_for("message.new"))["message"]
    assert got == sent
    assert got["text"] == TRADE and got["lang"] == "en"
    assert "es" in got["translations"], got
    spanish = got["translations"]["es"]
    assert spanish != TRADE and "translation_error" not in got
    for term in PROTECTED:
        assert term in spanish, (term, spanish)
    assert any(w in spanish.lower().split() for w in ("podemos", "enviar", "pernos", "de"))

    reply = await send(supplier, cid, "El precio es demasiado alto.", "2")
    assert reply["lang"] == "es"
    english = (await buyer.wait_for("message.new", lambda e: e["message"]["id"] == 2))["message"]
    assert "price" in english["translations"]["en"].lower()

    # Stored with the message: history and replays carry the same translations.
    history = await buyer.call("history.get", {"conversation_id": cid})
    assert history["messages"] == [sent, reply]
    replay = await supplier.call("conversation.join", {"conversation_id": cid, "since": 0})
    assert replay["messages"] == [sent, reply]


async def test_argos_translates_english_to_chinese(connect) -> None:
    buyer, supplier, cid = await pair(connect, "en", "zh")
    message = await send(buyer, cid, "What is the price?", "p")
    assert message["translations"] == {"zh": "价格是多少？"}
    assert (await supplier.wait_for("message.new"))["message"]["translations"][
        "zh"
    ] == "价格是多少？"


async def test_missing_pair_is_delivered_at_once_with_translation_error(connect) -> None:
    buyer, supplier, cid = await pair(connect, "en", "fi")
    message = await send(buyer, cid, "Hello", "x")
    assert message["text"] == "Hello" and message["translations"] == {}
    assert message["translation_error"] == {"fi": {"code": "no_pair", "from": "en", "to": "fi"}}
    got = (await supplier.wait_for("message.new"))["message"]
    assert got == message


async def test_set_language_changes_what_a_user_reads(connect) -> None:
    buyer, supplier, cid = await pair(connect, "en", "es")
    other_tab = await connect(supplier.identity)
    ack = await supplier.call("user.set_language", {"lang": "zh"})
    assert ack == {"ok": True, "lang": "zh"}
    assert (await other_tab.wait_for("user.language")) == {"user_id": supplier.id, "lang": "zh"}
    message = await send(buyer, cid, "Hello", "h")
    assert message["translations"] == {"zh": "你好"}
    # The new language sticks across reconnects (a token's language is only the default).
    await supplier.close()
    again = await connect(supplier.identity)
    message = await send(again, cid, "你好", "z")
    assert message["lang"] == "zh"
    bad = await again.call("user.set_language", {"lang": "Chinese!"})
    assert bad["error"]["code"] == "invalid"


async def test_glossary_fixed_and_kept_terms(connect) -> None:
    buyer, supplier, cid = await pair(connect, "en", "es")
    terms = {"bolts": "tornillos", "Acme": None}
    ack = await buyer.call("glossary.set", {"conversation_id": cid, "terms": terms})
    assert ack == {"ok": True, "terms": terms}
    assert (await supplier.call("glossary.get", {"conversation_id": cid}))["terms"] == terms
    message = await send(buyer, cid, "Acme sells bolts.", "g")
    spanish = message["translations"]["es"]
    assert "tornillos" in spanish and "Acme" in spanish, spanish
    outsider = await connect(new_user())
    denied = await outsider.call("glossary.set", {"conversation_id": cid, "terms": {}})
    assert denied["error"]["code"] == "forbidden"
    bad = await buyer.call("glossary.set", {"conversation_id": cid, "terms": {"x": 5}})
    assert bad["error"]["code"] == "invalid"


async def test_one_message_to_many_people_costs_one_translation_per_language(
    aiohttp_server, redis_server, settings, translator
) -> None:
    app = create_app(settings, redis_server.url, translator)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    realtime = app[SERVICES]["realtime"]
    people = [new_user(lang="es") for _ in range(20)] + [new_user(lang="zh") for _ in range(20)]
    sender = await Peer(new_user(lang="en")).connect(url)
    peers = [sender] + [await Peer(p).connect(url) for p in people]
    try:
        ack = await sender.call("conversation.create", {"participants": [p.id for p in people]})
        cid = ack["conversation"]["id"]
        before = realtime.chat.translation.stats.computed
        message = await send(sender, cid, "Thank you", "t")
        assert set(message["translations"]) == {"es", "zh"}
        assert message["translations"]["zh"] == "谢谢"
        assert realtime.chat.translation.stats.computed - before == 2
        for peer in peers[1:]:
            got = await peer.wait_for("message.new")
            assert got["message"]["translations"] == message["translations"]
    finally:
        for peer in peers:
            await peer.close()


async def test_a_message_is_read_in_the_language_it_is_written_in(connect) -> None:
    """A Chinese agent types English to an English and a Korean lead: the message is English
    (no "Chinese→English" anything; translated en→ko for the Korean lead), and the same agent's
    Chinese is Chinese again (no engine serves zh→en/ko here: the notes say zh)."""
    agent = await connect(new_user(lang="zh"))
    english, korean = await connect(new_user(lang="en")), await connect(new_user(lang="ko"))
    ack = await agent.call(
        "conversation.create", {"participants": [english.id, korean.id], "title": "Bolts"}
    )
    cid = ack["conversation"]["id"]
    typed = await send(agent, cid, "What is the price?", "e1")
    assert typed["lang"] == "en", typed
    assert typed["translations"] == {"ko": "가격은 얼마입니까?"}, typed
    assert "translation_error" not in typed, typed
    assert (await english.wait_for("message.new"))["message"] == typed

    chinese = await send(agent, cid, "价格是多少？", "z1")
    assert chinese["lang"] == "zh" and chinese["translations"] == {}, chinese
    assert {n["from"] for n in chinese["translation_error"].values()} == {"zh"}, chinese
