"""Default trade glossaries on real Apertium (en<->es), the deployer's overrides, the
conversation's glossary above them, pivot hops, and the shared cache (real Redis)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from server.storage.translation_cache import RedisTranslationCache
from tests.integration.test_chat_translation import pair, send
from translation.glossary import SHIPPED_DIR, TradeGlossaries
from translation.service import TranslationService
from translation.translator import Translator

BUYER = "We need 500 stainless steel bolts, please send a quote FOB Shenzhen."
SUPPLIER = (
    "Necesitamos 500 pernos de acero inoxidable, por favor envíe una cotización FOB Shenzhen. "
    "El precio es 12 dólares por unidad."
)


@pytest.fixture(scope="module")
def shipped() -> TradeGlossaries:
    return TradeGlossaries()


@pytest.fixture
def server_translator(apertium_engine, shipped) -> Translator:
    """The server translates with the shipped glossaries, as build_translator sets it up."""
    return Translator([apertium_engine], shipped)


def deployer_dir(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "glossaries"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_matching_forms_case_and_boundaries(tmp_path) -> None:
    data = deployer_dir(
        tmp_path,
        "en-zh.tsv",
        "bolt\t螺栓\tn\nstainless steel\t不锈钢\tmod\nABS\t=\tmod\nbill of lading\t提单\tn\n",
    )
    deployer_dir(data, "zh-en.tsv", "螺栓\tbolt\tn\n")
    glossaries = TradeGlossaries(data, shipped=tmp_path / "none")
    en_zh, zh_en = glossaries.get("en", "zh"), glossaries.get("zh", "en")
    hits = en_zh.find("STAINLESS STEEL BOLTS, abs, ABS housing, bills of lading; boltsmith")
    assert [(h.source, h.output, h.plural) for h in hits] == [
        ("STAINLESS STEEL BOLTS", "不锈钢螺栓", True),  # one compound, in Chinese order
        ("bills of lading", "提单", True),  # "abs" is not "ABS"; ABS before a non-term: left
    ], hits
    # No word boundaries needed beside CJK characters.
    assert [h.output for h in zh_en.find("我们需要500个不锈钢螺栓")] == ["bolt"]


def test_shipped_compounds_in_each_targets_order(shipped) -> None:
    optional = TradeGlossaries(shipped=SHIPPED_DIR / "optional")  # en-zh, en-ko: opt-in
    text = "500 zinc-plated carbon steel hex bolts and brass nuts"
    expected = {
        ("en", "es"): ["pernos hexagonales de acero al carbono zincados", "tuercas de latón"],
        ("en", "zh"): ["镀锌碳钢六角螺栓", "黄铜螺母"],
        ("en", "ko"): ["아연도금 탄소강 육각 볼트", "황동 너트"],
    }
    for (src, dst), outputs in expected.items():
        glossary = shipped.get(src, dst) or optional.get(src, dst)
        assert [h.output for h in glossary.find(text)] == outputs, dst
    back = shipped.get("es", "en").find("Pernos hexagonales de acero inoxidable zincados")
    assert [h.output for h in back] == ["Zinc-plated stainless steel hex bolts"]


def test_en_es_trade_words_are_a_trade_professionals(apertium_engine, shipped) -> None:
    plain = Translator([apertium_engine]).translate(BUYER, "en", "es")
    assert "rayos" in plain and "citar" in plain, plain  # what Apertium alone writes
    spanish = Translator([apertium_engine], shipped).translate(BUYER, "en", "es")
    assert "500 pernos de acero inoxidable" in spanish, spanish
    assert "una cotización" in spanish and "FOB Shenzhen" in spanish, spanish
    assert "rayos" not in spanish and "citar" not in spanish, spanish


def test_es_en_trade_words_and_per_unit(apertium_engine, shipped) -> None:
    plain = Translator([apertium_engine]).translate(SUPPLIER, "es", "en")
    assert "by unit" in plain and "cotización" in plain, plain
    english = Translator([apertium_engine], shipped).translate(SUPPLIER, "es", "en")
    assert "500 stainless steel bolts" in english, english
    assert "a quotation FOB Shenzhen" in english, english
    assert "12 dollars per unit" in english and "by unit" not in english, english


def test_plurals_case_articles_and_compounds(apertium_engine, shipped) -> None:
    translator = Translator([apertium_engine], shipped)
    [ready, washers, invoice, lead] = translator.translate_batch(
        [
            "The bolts are ready.",
            "Bolts in carbon steel, zinc-plated washers and an invoice.",
            "Send the proforma invoice and the bill of lading.",
            "The lead time is 30 days after the deposit, balance by T/T.",
        ],
        "en",
        "es",
    )
    assert ready.startswith("Los pernos"), ready  # plural, capital, article agrees
    assert washers.startswith("Pernos en acero al carbono"), washers
    assert "arandelas zincadas" in washers and "una factura" in washers, washers
    assert "la factura proforma" in invoice and "el conocimiento de embarque" in invoice
    assert "plazo de entrega" in lead and "anticipo" in lead, lead
    assert "transferencia bancaria (T/T)" in lead, lead
    # A noun that is also a verb is left to the engine as a verb...
    assert "cotización" not in translator.translate("We need to quote it.", "en", "es")
    # ...and a term inside a host name is not a term.
    assert "www.bolts.com" in translator.translate("See www.bolts.com for bolts.", "en", "es")


def test_conversation_glossary_wins_over_the_default(apertium_engine, shipped) -> None:
    translator = Translator([apertium_engine], shipped)
    spanish = translator.translate(BUYER, "en", "es", {"bolts": "tornillos"})
    assert "tornillos" in spanish and "pernos" not in spanish, spanish
    assert "cotización" in spanish, spanish  # the rest of the default still applies


def test_deployer_file_extends_overrides_and_removes(apertium_engine, tmp_path) -> None:
    data = deployer_dir(
        tmp_path,
        "en-es.tsv",
        "# deployer\nbolt\tbulón\tn m  # ours\nquote\t-\nflurbix\tchisme\tn m\n"
        "bad line without tab\n",
    )
    glossaries = TradeGlossaries(data)
    spanish = Translator([apertium_engine], glossaries).translate(
        "We need 500 stainless steel bolts, washers and a flurbix; please send a quote.",
        "en",
        "es",
    )
    assert "bulones de acero inoxidable" in spanish and "pernos" not in spanish, spanish
    assert "un chisme" in spanish, spanish  # a new entry
    assert "arandelas" in spanish, spanish  # shipped entries not overridden remain
    assert "cotización" not in spanish, spanish  # removed by "-"
    assert glossaries.get("en", "es").version != TradeGlossaries().get("en", "es").version


def test_pivot_applies_each_hops_glossary(argos_engine, apertium_engine, tmp_path) -> None:
    data = deployer_dir(tmp_path, "en-es.tsv", "price\ttarifa\tn f\n")
    translator = Translator([argos_engine, apertium_engine], TradeGlossaries(data))
    assert translator.route_key("ko", "es").startswith("argos:ko-en>apertium:en-es#")
    spanish = translator.translate("가격은 얼마입니까", "ko", "es")  # "What is the price"
    assert "la tarifa" in spanish and "ZXG" not in spanish, spanish


async def test_shared_cache_never_serves_another_glossarys_translation(
    apertium_engine, redis_server, tmp_path
) -> None:
    client = aioredis.from_url(redis_server.url)
    cache = RedisTranslationCache(client)
    text = f"Please send the bolts and the quote today ({uuid.uuid4().hex[:6]})."
    try:
        first = TranslationService(
            Translator([apertium_engine], TradeGlossaries(tmp_path)), 1, 10, cache
        )
        before = await first.translate(text, "en", "es")
        assert "pernos" in before and first.stats.computed == 1, before
        # Another process, same glossary: served from the shared cache.
        same = TranslationService(
            Translator([apertium_engine], TradeGlossaries(tmp_path)), 1, 10, cache
        )
        assert await same.translate(text, "en", "es") == before
        assert same.stats.shared_hits == 1 and same.stats.computed == 0
        # The deployer changes the glossary: a fresh translation, not the cached one.
        deployer_dir(tmp_path, "en-es.tsv", "bolt\tbulón\tn m\n")
        changed = TranslationService(
            Translator([apertium_engine], TradeGlossaries(tmp_path)), 1, 10, cache
        )
        after = await changed.translate(text, "en", "es")
        assert changed.stats.computed == 1 and changed.stats.shared_hits == 0
        assert "bulones" in after and "pernos" not in after, after
        for service in (first, same, changed):
            service.close()
    finally:
        await client.aclose()


async def test_chat_uses_the_default_under_the_conversations_glossary(connect) -> None:
    buyer, supplier, cid = await pair(connect, "en", "es")
    spanish = (await send(buyer, cid, BUYER, "1"))["translations"]["es"]
    assert "pernos" in spanish and "cotización" in spanish, spanish
    english = (await send(supplier, cid, SUPPLIER, "2"))["translations"]["en"]
    assert "stainless steel bolts" in english and "per unit" in english, english
    ack = await buyer.call(
        "glossary.set", {"conversation_id": cid, "terms": {"bolts": "tornillos"}}
    )
    assert ack["ok"], ack
    spanish = (await send(buyer, cid, BUYER, "3"))["translations"]["es"]
    assert "tornillos" in spanish and "pernos" not in spanish, spanish
