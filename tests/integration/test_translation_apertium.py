"""Apertium en<->es through warm null-flush pipelines (Debian's apertium-eng-spa, real)."""

from __future__ import annotations

import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from translation.engines.apertium import ApertiumEngine
from translation.translator import Translator

TRADE_EN = "We can ship 500 pcs of M8x40 bolts FOB Shenzhen at 2.35 USD/unit."
TRADE_TERMS = ["500 pcs", "M8x40", "FOB Shenzhen", "2.35 USD/unit"]
SPANISH_WORDS = {"podemos", "de", "en", "el", "los", "precio", "embarcar", "enviar"}


def words(text: str) -> set[str]:
    return {w.strip(".,;:!?¡¿").lower() for w in text.split()}


def test_en_es_trade_sentence_keeps_terms_and_reads_spanish(apertium_engine):
    spanish = Translator([apertium_engine]).translate(TRADE_EN, "en", "es")
    for term in TRADE_TERMS:
        assert term in spanish, spanish
    assert len(words(spanish) & SPANISH_WORDS) >= 2, spanish
    assert "ship" not in words(spanish) and "*" not in spanish, spanish


def test_es_en_keeps_terms_and_reads_english(apertium_engine):
    english = Translator([apertium_engine]).translate(
        "Podemos enviar 500 pcs de tornillos M8x40 mañana con precio FOB Ningbo.", "es", "en"
    )
    for term in ["500 pcs", "M8x40", "FOB Ningbo"]:
        assert term in english, english
    assert {"we", "can", "send"} <= words(english), english


def test_unknown_words_are_not_marked_and_syntax_characters_survive(apertium_engine):
    [out] = apertium_engine.translate_batch(
        ["The flurbix is ready [zq] ^b$ c/d <e> @f"], "en", "es"
    )
    assert "*" not in out and "flurbix" in out, out
    for piece in ["[zq]", "^b$", "c/d", "<e>", "@f"]:
        assert piece in out, out
    assert "está" in out or "listo" in out, out


def test_pipeline_stays_warm_and_is_reused():
    engine = ApertiumEngine()
    try:
        started = time.perf_counter()
        first = engine.translate_batch(["The price is good."], "en", "es")
        cold = time.perf_counter() - started
        [pid] = engine.pipeline_pids("en", "es")
        warm = []
        for i in range(20):
            started = time.perf_counter()
            out = engine.translate_batch([f"The price is good for {i} days."], "en", "es")
            warm.append(time.perf_counter() - started)
            assert "precio" in out[0], out
        assert engine.pipeline_pids("en", "es") == [pid]
        os.kill(pid, 0)  # still running
        assert first[0].startswith("El precio es"), first
        assert statistics.median(warm) < cold / 5, (cold, warm)
        assert statistics.median(warm) < 0.05, warm
    finally:
        engine.close()
    assert engine.pipeline_pids("en", "es") == []


def test_concurrent_threads_get_their_own_translations(apertium_engine):
    texts = [f"The factory has {n} workers." for n in range(40)]
    expected = [apertium_engine.translate_batch([t], "en", "es")[0] for t in texts]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda t: apertium_engine.translate_batch([t], "en", "es")[0], texts))
    assert got == expected
    assert all(f" {n} " in out for n, out in enumerate(got)), got
