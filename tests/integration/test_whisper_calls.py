# ruff: noqa: F811  (the fixtures imported from tests.integration.test_calls are parameters here)
"""Calls in the languages Whisper recognizes: real aiortc peers, the real Whisper weights, real
speech, Apertium. A Mandarin supplier's call gives Mandarin lines close to a direct decode of
the same file; a Spanish speaker's line reaches an English listener translated."""

from __future__ import annotations

import asyncio
import json

from tests.integration.test_calls import (  # noqa: F401  (fixtures)
    REFERENCE,
    SPEECH,
    app_url,
    finals,
    people,
    start_call,
    wait_until,
)
from tests.support.call_clients import CallClient, speech_with_pauses
from translation.metrics import error_rate
from translation.speech_engines import load_engine
from translation.translator import Translator
from translation.whisper_speech import transcribe_whole

TEXT = {f["file"]: f["reference"] for f in REFERENCE}


async def call_lines(
    people, tmp_path, clip: str, speaker_lang: str, listener_lang: str, last_word: str = ""
):
    """`clip` spoken once (then silence) by a `speaker_lang` speaker to a listener: the
    listener's final lines and the speaker's join ack. `last_word`: wait for the line that
    holds it (a clip with pauses gives several lines), else 2 s after the first line."""
    speaker, listener = await people(speaker_lang), await people(listener_lang)
    _, call_id = await start_call(speaker, listener)
    await listener.wait_for("call.started")
    wav = speech_with_pauses(SPEECH / clip, tmp_path / clip, pause_s=3.0)
    a, b = CallClient(speaker, wav, camera=False), CallClient(listener, camera=False)
    try:
        assert (await b.join(call_id))["ok"]
        joined = await a.join(call_id)
        assert joined["ok"], joined
        await listener.wait_for("subtitle", lambda s: s["final"], timeout=60)
        if last_word:  # every line of the clip: its last word ends the last line

            def said() -> bool:
                text = " ".join(line["text"] for line in finals(listener)).lower()
                return text.rstrip(" .!?,").endswith(last_word)

            await wait_until(said, timeout=60)
        else:
            await asyncio.sleep(2.0)  # a second line, if the clip was split
        return finals(listener), joined, listener
    finally:
        await a.close()
        await b.close()


def direct(clip: str, lang: str) -> str:
    _, model = load_engine(lang, "/nonexistent")
    return transcribe_whole(str(SPEECH / clip), lang, model)


async def test_a_mandarin_speakers_call_gives_mandarin_lines_like_a_direct_decode(
    app_url, people, tmp_path
):
    clip = "zh_aishell1_BAC009S0764W0121.wav"
    lines, joined, _ = await call_lines(people, tmp_path, clip, "zh", "en")
    assert joined["captions"] == {"lang": "zh", "available": True}
    text = "".join(line["text"] for line in lines)
    baseline = await asyncio.to_thread(direct, clip, "zh")
    ours, theirs = error_rate(text, TEXT[clip], "zh"), error_rate(baseline, TEXT[clip], "zh")
    print(f"call {text!r} CER {ours:.3f}; direct {baseline!r} CER {theirs:.3f}")
    assert ours <= max(1.1 * theirs, theirs + 0.1), (text, baseline)
    assert all(line["lang"] == "zh" for line in lines)
    # no zh->en engine here: the reader gets the original and a reason, never an install command
    assert all("en" in line.get("translation_error", {}) for line in lines), lines
    assert "models install" not in json.dumps(lines)


async def test_an_english_speakers_call_gives_english_lines_like_a_direct_decode(
    app_url, people, tmp_path, translator: Translator
):
    clip = "en_mr_quilter.wav"
    lines, _, _ = await call_lines(people, tmp_path, clip, "en", "es")
    text = " ".join(line["text"] for line in lines)
    baseline = await asyncio.to_thread(direct, clip, "en")
    ours, theirs = error_rate(text, TEXT[clip], "en"), error_rate(baseline, TEXT[clip], "en")
    print(f"call {text!r} WER {ours:.3f}; direct {baseline!r} WER {theirs:.3f}")
    assert ours <= max(1.1 * theirs, theirs + 0.1), (text, baseline)
    for line in lines:  # English -> Spanish by Apertium
        expected = await asyncio.to_thread(translator.translate, line["text"], "en", "es")
        assert line["translations"] == {"es": expected}


async def test_a_spanish_speakers_line_reaches_an_english_listener_translated(
    app_url, people, tmp_path, translator: Translator
):
    clip = "es_arenas_blanquecinas.wav"
    lines, _, _ = await call_lines(people, tmp_path, clip, "es", "en")
    text = " ".join(line["text"] for line in lines)
    assert error_rate(text, TEXT[clip], "es") <= 0.25, text
    for line in lines:
        expected = await asyncio.to_thread(translator.translate, line["text"], "es", "en")
        assert line["translations"] == {"en": expected} and expected.strip()
    assert "sand" in " ".join(line["translations"]["en"] for line in lines).lower()


async def test_a_chinese_supplier_answering_in_english_gets_english_lines_translated_from_english(
    app_url, people, tmp_path, translator: Translator
):
    """A speaker whose language is Chinese says an English sentence: the line is English (as
    Whisper's language probabilities say), close to a direct English decode, and reaches a
    Spanish listener translated from English (Apertium), not from Chinese (no engine here)."""
    clip = "en_jfk_ask_not.wav"
    lines, joined, _ = await call_lines(people, tmp_path, clip, "zh", "es", "country")
    assert joined["captions"] == {"lang": "zh", "available": True}
    assert lines and all(line["lang"] == "en" for line in lines), lines
    text = " ".join(line["text"] for line in lines)
    baseline = await asyncio.to_thread(direct, clip, "en")
    ours, theirs = error_rate(text, TEXT[clip], "en"), error_rate(baseline, TEXT[clip], "en")
    print(f"call {text!r} WER {ours:.3f}; direct {baseline!r} WER {theirs:.3f}")
    assert ours <= max(1.1 * theirs, theirs + 0.1), (text, baseline)
    for line in lines:
        expected = await asyncio.to_thread(translator.translate, line["text"], "en", "es")
        assert line["translations"] == {"es": expected} and "translation_error" not in line
