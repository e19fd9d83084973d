"""A process translates a conversation's sends for the languages and glossary it last read
(`Store.send_context`) without reading them again per message; the store refuses a message
translated for ones no longer in force. Changed on another process (two servers, one Redis),
they still reach the very next message."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.app import create_app
from tests.support.peers import Peer, new_user


@pytest.fixture
async def two_servers(aiohttp_server, redis_server, settings, server_translator) -> list[str]:
    """Two server instances (each its own caches) on the session's Redis."""
    urls = []
    for _ in range(2):
        server = await aiohttp_server(create_app(settings, redis_server.url, server_translator))
        urls.append(str(server.make_url("")).rstrip("/"))
    return urls


@pytest.fixture
async def peers() -> AsyncIterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        await peer.close()


async def across(urls: list[str], peers: list[Peer], a: str, b: str) -> tuple[Peer, Peer, str]:
    """A buyer (language a) on the first server, a supplier (b) on the second, and their
    conversation."""
    buyer = await Peer(new_user(lang=a)).connect(urls[0])
    supplier = await Peer(new_user(lang=b)).connect(urls[1])
    peers += [buyer, supplier]
    ack = await buyer.call("conversation.create", {"participants": [supplier.id]})
    return buyer, supplier, ack["conversation"]["id"]


async def send(peer: Peer, cid: str, text: str, client_id: str) -> dict:
    ack = await peer.call(
        "message.send", {"conversation_id": cid, "client_id": client_id, "text": text}
    )
    assert ack["ok"], ack
    return ack["message"]


async def test_a_language_changed_on_another_process_reaches_the_next_message(
    two_servers, peers
) -> None:
    buyer, supplier, cid = await across(two_servers, peers, "en", "en")
    first = await send(buyer, cid, "Thank you very much.", "1")
    assert first["translations"] == {}  # both read English: nothing to translate
    assert (await supplier.call("user.set_language", {"lang": "es"}))["ok"]
    second = await send(buyer, cid, "Thank you very much.", "2")
    assert set(second["translations"]) == {"es"}, second
    assert second["id"] == first["id"] + 1
    again = await buyer.call(
        "message.send", {"conversation_id": cid, "client_id": "2", "text": "Thank you very much."}
    )
    assert again["duplicate"] is True and again["message"] == second


async def test_a_glossary_set_on_another_process_reaches_the_next_message(
    two_servers, peers
) -> None:
    buyer, supplier, cid = await across(two_servers, peers, "en", "es")
    plain = await send(buyer, cid, "Acme sells bolts.", "1")
    assert "tornillería" not in plain["translations"]["es"]
    terms = {"bolts": "tornillería"}
    assert (await supplier.call("glossary.set", {"conversation_id": cid, "terms": terms}))["ok"]
    fixed = await send(buyer, cid, "Acme sells bolts.", "2")
    assert "tornillería" in fixed["translations"]["es"], fixed
