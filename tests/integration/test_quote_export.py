"""The quote export over HTTP: JSON, and a PDF in the reader's language with the original beside
it, parsed back with pypdf; participants only. Real Redis, real Apertium en<->es."""

from __future__ import annotations

import io
import json

import aiohttp
import pytest
from pypdf import PdfReader

from server.trade.quote_labels import LABELS
from server.trade.quote_pdf import render
from tests.integration.test_quotes import VALID, spanish_quote
from tests.support.peers import Peer, new_user, token_for
from translation.glossary import TradeGlossaries
from translation.translator import Translator


@pytest.fixture(scope="module")
def server_translator(apertium_engine) -> Translator:
    return Translator([apertium_engine], TradeGlossaries())


async def fetch(url: str, peer: Peer | None, **query: str) -> tuple[int, bytes, dict]:
    headers = {"Authorization": f"Bearer {token_for(peer.identity)}"} if peer else {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers=headers, params=query) as response,
    ):
        return response.status, await response.read(), dict(response.headers)


def pdf_text(body: bytes) -> str:
    reader = PdfReader(io.BytesIO(body))
    return "\n".join(page.extract_text() for page in reader.pages)


def fonts(body: bytes) -> set[str]:
    reader = PdfReader(io.BytesIO(body))
    names = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]))
    return names


async def test_each_side_downloads_the_quote_in_their_language(connect, server_url) -> None:
    buyer = await connect(new_user("buyer", "en", "Ann"))
    supplier = await connect(new_user("supplier", "es", "Luis"))
    cid = (await buyer.call("conversation.create", {"participants": [supplier.id]}))[
        "conversation"
    ]["id"]
    sent = await supplier.call("quote.send", spanish_quote(cid))
    qid = sent["quote_id"]
    accept = {"conversation_id": cid, "client_id": "a", "quote_id": qid, "action": "accept"}
    assert (await buyer.call("quote.respond", accept))["ok"]
    url = f"{server_url}/api/conversations/{cid}/quotes/{qid}"

    status, body, headers = await fetch(url, buyer, format="pdf")
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert f"quote-{qid}-v1-en.pdf" in headers["Content-Disposition"]
    english = pdf_text(body)
    # English labels and products, the Spanish originals beside them, numbers as stored.
    for text in ("Quote", "Accepted by Ann", "Original (es)", "Unit price", "Payment terms"):
        assert text in english, (text, english)
    assert "bolts" in english.lower() and "pernos de acero inoxidable" in english, english
    for number in ("175.00 USD", "15.00 USD", "0.0125 USD", "Total: 190.00 USD", "FOB Shenzhen"):
        assert number in english, (number, english)
    assert "El precio incluye el embalaje." in english and "price" in english.lower()

    status, body, _ = await fetch(url, supplier, format="pdf")
    spanish = pdf_text(body)
    assert status == 200 and "Cotización" in spanish and "Aceptada por Ann" in spanish
    assert "pernos de acero inoxidable" in spanish and "Original (" not in spanish
    assert "Total: 190.00 USD" in spanish and "Precio unitario" in spanish

    status, body, _ = await fetch(url, buyer)  # json by default
    quote = (await buyer.call("quote.get", {"conversation_id": cid, "quote_id": qid}))["quote"]
    assert status == 200
    assert json.loads(body) == {"quote": quote, "lang": "en"}


async def test_a_reader_who_changed_language_gets_it_translated_at_export(connect, server_url):
    buyer = await connect(new_user("buyer", "en", "Ann"))
    supplier = await connect(new_user("supplier", "fr", "Luis"))  # no en->fr here
    cid = (await buyer.call("conversation.create", {"participants": [supplier.id]}))[
        "conversation"
    ]["id"]
    english = spanish_quote(cid)
    english["items"][0]["product"] = "stainless steel bolts"
    english["notes"] = "The price includes the packaging."
    sent = await buyer.call("quote.send", english)
    assert sent["message"]["quote"]["translation_error"]["fr"]["code"] == "no_pair"
    assert (await supplier.call("user.set_language", {"lang": "es"}))["ok"]
    url = f"{server_url}/api/conversations/{cid}/quotes/{sent['quote_id']}"
    status, body, _ = await fetch(url, supplier, format="pdf")
    text = pdf_text(body)
    assert status == 200 and "Cotización" in text and "Original (en)" in text
    assert "pernos de acero inoxidable" in text and "stainless steel bolts" in text, text


async def test_only_participants_export(connect, server_url) -> None:
    buyer = await connect(new_user("buyer", "en"))
    supplier = await connect(new_user("supplier", "es"))
    cid = (await buyer.call("conversation.create", {"participants": [supplier.id]}))[
        "conversation"
    ]["id"]
    qid = (await supplier.call("quote.send", spanish_quote(cid)))["quote_id"]
    url = f"{server_url}/api/conversations/{cid}/quotes/{qid}"
    outsider = await connect(new_user("buyer", "en"))
    assert (await fetch(url, None, format="pdf"))[0] == 401
    assert (await fetch(url, outsider, format="pdf"))[0] == 403
    assert (await fetch(url, outsider))[0] == 403
    assert (await fetch(url, buyer, format="docx"))[0] == 400
    assert (await fetch(url[:-3] + "xyz", buyer))[0] == 400
    missing = f"{server_url}/api/conversations/{cid}/quotes/q_{'0' * 16}"
    assert (await fetch(missing, buyer, format="pdf"))[0] == 404
    other = f"{server_url}/api/conversations/c_{'0' * 16}/quotes/{qid}"
    assert (await fetch(other, buyer, format="pdf"))[0] == 404


def sample_quote(product: str, lang: str) -> dict:
    version = {
        "quote_id": "q_0123456789abcdef",
        "kind": "quote",
        "version": 1,
        "answers": None,
        "in_reply_to": None,
        "by": {"id": "li", "name": "李伟", "role": "supplier", "lang": lang},
        "at": "2026-12-03T13:22:27.123Z",
        "lang": lang,
        "items": [
            {
                "product": product,
                "quantity": "500",
                "unit": "pcs",
                "unit_price": "2.35",
                "currency": "CNY",
                "amount": "1175.00",
            }
        ],
        "totals": {"CNY": "1175.00"},
        "incoterm": "FOB",
        "place": "Ningbo",
        "lead_time_days": 20,
        "valid_until": VALID,
        "payment_terms": None,
        "notes": None,
        "translations": {},
    }
    return {
        "id": "q_0123456789abcdef",
        "conversation_id": "c_0123456789abcdef",
        "kind": "quote",
        "status": "open",
        "version": 1,
        "created_by": "li",
        "created_at": version["at"],
        "in_reply_to": None,
        "closed": None,
        "replies": [],
        "versions": [version],
    }


def test_chinese_pdf_embeds_a_cjk_font_and_reads_back() -> None:
    view = {"items": ["stainless steel bolts M8"]}
    body = render(sample_quote("不锈钢螺栓 M8", "zh"), "en", view)
    text = pdf_text(body)
    assert "不锈钢螺栓 M8" in text and "stainless steel bolts M8" in text and "李伟" in text
    assert "1175.00 CNY" in text and "Original (zh)" in text
    assert any("WenQuanYi" in f or "Noto" in f for f in fonts(body)), fonts(body)
    chinese = pdf_text(render(sample_quote("不锈钢螺栓 M8", "zh"), "zh", None))
    assert "报价单" in chinese and "单价" in chinese and "合计: 1175.00 CNY" in chinese


def test_a_reader_with_no_translation_gets_the_original_said_so_once() -> None:
    """No engine from Chinese to Japanese: the PDF prints the original once and says it is not
    translated, never a "machine translation" line over identical texts."""
    text = pdf_text(render(sample_quote("不锈钢螺栓 M8", "zh"), "ja", {"items": [None]}))
    assert text.count("不锈钢螺栓 M8") == 1, text
    assert LABELS["ja"]["machine"].format(lang="zh") not in text, text
    assert LABELS["ja"]["untranslated"] in text, text


@pytest.mark.parametrize("lang", sorted(LABELS))
def test_every_interface_language_renders(lang) -> None:
    body = render(sample_quote("stainless steel bolts", "en"), lang, {"items": ["x"]})
    assert PdfReader(io.BytesIO(body)).pages, lang
    if lang in ("en", "es", "de", "fr", "ru", "zh", "ja", "ko", "vi", "tr", "pt", "it", "id"):
        assert LABELS[lang]["quote"] in pdf_text(body), lang
