"""Which silence ends a Whisper utterance, per language (`speech_engines.whisper_silence_s`)."""

from __future__ import annotations

import pytest

from translation.endpointing import EndpointConfig
from translation.speech_engines import (
    VOSK,
    WHISPER,
    WHISPER_SILENCE_BY_LANG,
    WHISPER_SILENCE_S,
    endpoint_for,
    whisper_silence_s,
)

ENV = "TRADETALK_WHISPER_SILENCE_S"


def test_measured_languages_get_their_own_silence_and_spanish_keeps_the_long_one() -> None:
    assert whisper_silence_s("es", {}) == 0.7  # a 0.69 s pause inside a Spanish sentence
    assert whisper_silence_s("en", {}) < WHISPER_SILENCE_S
    assert whisper_silence_s("zh-TW", {}) == WHISPER_SILENCE_BY_LANG["zh"]
    assert whisper_silence_s("de", {}) == WHISPER_SILENCE_S  # not measured: the default


def test_the_server_endpointing_uses_the_speaker_language(monkeypatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    config = EndpointConfig()
    en, es = endpoint_for(WHISPER, config, "en"), endpoint_for(WHISPER, config, "es")
    assert en is not None and es is not None
    assert (en.silence_s, es.silence_s) == (WHISPER_SILENCE_BY_LANG["en"], 0.7)
    assert endpoint_for(VOSK, config, "en") == config  # Vosk keeps its own


def test_the_environment_overrides_every_language_or_some() -> None:
    assert whisper_silence_s("en", {ENV: "0.9"}) == 0.9
    assert whisper_silence_s("es", {ENV: "0.9"}) == 0.9
    some = {ENV: "en=0.45, de=0.5"}
    assert (whisper_silence_s("en", some), whisper_silence_s("de-AT", some)) == (0.45, 0.5)
    assert whisper_silence_s("es", some) == 0.7  # the rest keep the table


@pytest.mark.parametrize("raw", ["fast", "0", "9", "en=", "=0.5", "en=x"])
def test_a_bad_override_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=ENV):
        whisper_silence_s("en", {ENV: raw})
