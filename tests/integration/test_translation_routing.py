"""Routing over real engines: direct pairs, pivots through English, unavailable pairs."""

from __future__ import annotations

import pytest

from translation.errors import TranslationUnavailable
from translation.translator import Translator


def test_pairs_name_the_best_engine(translator, argos_engine, apertium_engine):
    assert translator.pairs() == {
        ("ko", "en"): "argos",
        ("en", "zh"): "argos",
        ("en", "ko"): "argos",
        ("en", "es"): "apertium",
        ("es", "en"): "apertium",
    }
    # With Apertium listed first, it is the best engine for its pairs.
    assert Translator([apertium_engine, argos_engine]).pairs()[("en", "es")] == "apertium"


def test_direct_routes(translator):
    assert [str(h) for h in translator.route("en", "es")] == ["apertium:en-es"]
    assert [str(h) for h in translator.route("KO", "en-US")] == ["argos:ko-en"]
    assert translator.route("es", "es") == []


def test_pivot_across_two_engines(translator, apertium_engine):
    assert translator.route_key("ko", "es") == "argos:ko-en>apertium:en-es"
    spanish = translator.translate("가격은 얼마입니까", "ko", "es")
    assert spanish == apertium_engine.translate_batch(["What is the price"], "en", "es")[0]
    assert "precio" in spanish, spanish


def test_pivot_from_apertium_into_argos(translator):
    assert translator.route_key("es", "ko") == "apertium:es-en>argos:en-ko"
    assert translator.route_key("ko", "zh") == "argos:ko-en>argos:en-zh"
    assert translator.translate("가격은 얼마입니까", "ko", "zh") == "价格是多少？"


def test_pivot_keeps_protected_terms(translator):
    out = translator.translate("Podemos enviar 500 pcs de M8x40 FOB Ningbo.", "es", "ko")
    for term in ["500 pcs", "M8x40", "FOB Ningbo"]:
        assert term in out, out


def test_unavailable_pair_raises_one_clear_error(translator):
    with pytest.raises(TranslationUnavailable, match=r"zh->es.*zh->en is missing") as info:
        translator.translate("你好", "zh", "es")
    assert "tradetalk models install translate-zh_en" in str(info.value)
    with pytest.raises(TranslationUnavailable, match="fr->en"):
        translator.translate("Bonjour", "fr", "en")
    assert Translator([]).pairs() == {}
    with pytest.raises(TranslationUnavailable, match="installed pairs: none"):
        Translator([]).translate("Hello", "en", "es")


def test_same_language_returns_text_unchanged(translator):
    text = "The widget ships FOB Ningbo.\nSecond line."
    assert translator.translate(text, "en", "en", glossary={"widget": "gadget"}) == text
    assert Translator([]).translate(text, "xx", "xx") == text


def test_lines_are_kept(translator):
    out = translator.translate("Hello\n\nThe price is good.", "en", "es")
    first, empty, last = out.split("\n")
    assert first == "Hola" and empty == "" and "precio" in last, out
