"""A reader whose language has no engine gets a note (a code and the pair, which their client
words in their own language), never the operator's install advice: chat, tour questions and
exports, on real Apertium (en<->es installed, nothing serves ko)."""

from __future__ import annotations

import json

import aiohttp

from server.config import Limits, Settings
from tests.support.peers import SECRET, Peer, new_user, token_for
from tests.support.tour_clients import TourClient
from translation.service import TranslationService

NO_EN_KO = {"code": "no_pair", "from": "en", "to": "ko"}


def plain(payload: object) -> str:
    return json.dumps(payload, ensure_ascii=False)


async def test_translate_many_gives_notes_not_operator_text(chat_translator) -> None:
    service = TranslationService(chat_translator)
    try:
        translations, errors = await service.translate_many("The bolts.", "EN", ["es", "ko"])
    finally:
        service.close()
    assert set(translations) == {"es"}
    assert errors == {"ko": NO_EN_KO}


async def test_a_korean_reader_gets_a_code_not_install_advice(connect) -> None:
    buyer, spanish, korean = [await connect(new_user(lang=x)) for x in ("en", "es", "ko")]
    ack = await buyer.call("conversation.create", {"participants": [spanish.id, korean.id]})
    cid = ack["conversation"]["id"]
    sent = (
        await buyer.call(
            "message.send", {"conversation_id": cid, "client_id": "k1", "text": "The bolts."}
        )
    )["message"]
    got = (await korean.wait_for("message.new"))["message"]
    assert got == sent
    assert set(got["translations"]) == {"es"}
    assert got["translation_error"] == {"ko": NO_EN_KO}
    replay = await korean.call("conversation.join", {"conversation_id": cid, "since": 0})
    history = await korean.call("history.get", {"conversation_id": cid})
    assert replay["messages"] == history["messages"] == [sent]
    for payload in (got, replay, history):
        assert "install" not in plain(payload), payload


async def test_a_tour_question_and_the_export_carry_the_note(
    aiohttp_server, redis_server, tmp_path, chat_translator
) -> None:
    from server.app import create_app

    settings = Settings(
        data_dir=tmp_path, secret=SECRET, limits=Limits(rate_per_second=500, rate_burst=500)
    )
    server = await aiohttp_server(create_app(settings, redis_server.url, chat_translator))
    url = str(server.make_url("")).rstrip("/")
    host = await Peer(new_user(role="supplier", lang="ko")).connect(url)
    viewer = await Peer(new_user(lang="en")).connect(url)
    client = TourClient(viewer)
    try:
        tid = (await host.call("tour.start", {"title": "Line 3", "lang": "ko"}))["tour"]["id"]
        assert (await client.join(tid))["ok"]
        asked = await viewer.call("tour.ask", {"tour_id": tid, "text": "What is the price?"})
        question = (await host.wait_for("tour.question"))["question"]
        assert question == asked["question"]
        assert question["translation"] is None
        assert question["translation_error"] == NO_EN_KO
        assert "install" not in plain(question)
        assert (await host.call("tour.end", {"tour_id": tid})) == {"ok": True}
        headers = {"Authorization": f"Bearer {token_for(viewer.identity)}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            base = f"{url}/api/tours/{tid}/transcript"
            async with http.get(f"{base}?format=json") as response:
                body = await response.json()
            async with http.get(f"{base}?format=txt") as response:
                text = await response.text()
        assert body["questions"][0]["translation_error"] == NO_EN_KO
        assert "(번역되지 않음 (이 서버에는 en→ko 번역이 없습니다))" in text, text
        assert "install" not in plain(body) + text
    finally:
        await client.close()
        await viewer.close()
        await host.close()
