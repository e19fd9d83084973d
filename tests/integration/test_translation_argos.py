"""The Argos engine on test-built packages, installed through argostranslate's own API."""

from __future__ import annotations

import pytest

from tests.support.argos_phrases import EN_KO, EN_ZH, KO_EN
from translation.engines.argos import ArgosEngine
from translation.registry import build_translator, discover_engines

TRADE_EN = "We can ship 500 pcs of M8x40 bolts FOB Shenzhen at 2.35 USD/unit."
TRADE_TERMS = ["500 pcs", "M8x40", "FOB Shenzhen", "2.35 USD/unit"]


def test_no_package_installed_means_no_pairs(tmp_path):
    engine = ArgosEngine(tmp_path)
    assert engine.pairs() == set()
    with pytest.raises(KeyError, match="no Argos package installed for en->es"):
        engine.translate_batch(["Hello"], "en", "es")
    assert discover_engines(tmp_path)[0].name != "argos"


@pytest.mark.parametrize(
    ("src", "dst", "phrases"), [("ko", "en", KO_EN), ("en", "zh", EN_ZH), ("en", "ko", EN_KO)]
)
def test_engine_reproduces_every_trained_phrase(argos_engine, src, dst, phrases):
    sources = [source for source, _ in phrases]
    assert argos_engine.translate_batch(sources, src, dst) == [target for _, target in phrases]


def test_discovered_through_the_data_dir_and_translates(argos_data_dir):
    engines = discover_engines(argos_data_dir)
    assert [e.name for e in engines] == ["argos", "apertium"]
    translator = build_translator(argos_data_dir)
    try:
        assert translator.pairs()[("ko", "en")] == "argos"
        assert translator.pairs()[("en", "es")] == "apertium"
        assert translator.translate("가격은 얼마입니까", "ko", "en") == "What is the price"
        assert translator.translate("What is the price?", "en", "zh") == "价格是多少？"
        assert (
            translator.translate("Please send a quotation.", "en", "ko") == "견적서를 보내 주세요."
        )
    finally:
        translator.close()


def test_long_text_is_split_offline_and_each_sentence_translated(translator):
    sentences = [
        source
        for source, _ in EN_ZH
        if source.endswith((".", "?")) and not any(c.isdigit() for c in source)
    ][:12]
    text = " ".join(sentences)
    assert len(text) > 200
    expected = "".join(dict(EN_ZH)[s] for s in sentences)
    assert translator.translate(text, "en", "zh") == expected


@pytest.mark.parametrize("dst", ["zh", "ko"])
def test_protected_terms_survive_the_neural_engine(translator, dst):
    out = translator.translate(TRADE_EN, "en", dst)
    for term in TRADE_TERMS:
        assert out.count(term) == 1, out
    assert "ZXQ" not in out, out


def test_glossary_on_the_neural_engine(translator):
    out = translator.translate(
        "Please send a quotation to Acme Corp today.",
        "en",
        "zh",
        glossary={"Acme Corp": "爱克美公司", "today": None},
    )
    assert "爱克美公司" in out and "today" in out and "Acme" not in out, out
