"""Which speech engine recognizes which language, behind one interface.

Two engines: **Vosk** (streaming Kaldi models, one per language: ``translation.speech``) and
**Whisper** (one multilingual model, decoded per utterance: ``translation.whisper_speech``).
For a language both serve, the preferred engine is the one measured better on this
project's benchmark (``bench/languages.py``; the choice and numbers are in
docs/architecture.md): ``PREFERRED``. A deployer overrides it per language with
``TRADETALK_SPEECH_ENGINES`` (``ko=whisper,en=vosk``).

``open_recognizer`` loads what a language needs (seconds, the first time: call it off the
event loop) and returns a fresh recognizer with the ``StreamingRecognizer`` interface.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from .endpointing import EndpointConfig
from .speech import RECOGNIZERS, SpeechResult, StreamingRecognizer
from .speech_models import SpeechModelMissing, find_speech_model, load_speech_model, speech_models
from .whisper_models import (
    WhisperModelMissing,
    find_whisper_model,
    load_whisper_model,
    whisper_installed,
)

VOSK = "vosk"
WHISPER = "whisper"
ENGINES = (VOSK, WHISPER)

#: Where both engines serve a language, the one chosen by measurement (bench/languages.py).
PREFERRED: dict[str, str] = {"ko": VOSK}
#: The shortest silence that ends a Whisper utterance in a language not in
#: ``WHISPER_SILENCE_BY_LANG``. Whisper decodes each utterance on its own, so cutting a sentence
#: at a breath loses its context: a Spanish clip split at a 0.5 s pause came out "las harinas …
#: pocas estésias" (WER 0.25), whole "las arenas … poca asistencia" (0). Its final is decoded
#: from the first 0.09 s of silence on, so a longer endpoint costs less latency than it seems.
WHISPER_SILENCE_S = 0.7
#: Per language, where measured (``bench/whisper_silence.py``: each test clip through the
#: server's endpointing at 0.3-0.7 s; numbers in docs/architecture.md): the shortest silence
#: that kept every clip's text what it is at 0.7 s, with a margin over the longest pause the
#: clips hold inside a sentence.
WHISPER_SILENCE_BY_LANG: dict[str, float] = {
    # en_jfk_ask_not pauses 0.55-0.57 s at its commas: 0.5 split it ("asked not", WER 0.045),
    # 0.55 and 0.6 kept it whole (WER 0); en_mr_quilter and en_digits: same text 0.3-0.7
    "en": 0.6,
    # the AISHELL clip: same text 0.3-0.7, but it holds no pause to test a split; no Mandarin
    # evidence for less than English's value
    "zh": 0.6,
    # es_arenas_blanquecinas pauses 0.69 s inside its sentence: 0.3-0.6 split it ("las
    # harinas", WER 0.083), 0.7 kept it whole (WER 0)
    "es": 0.7,
}


class Recognizer(Protocol):
    """What `server/media_sessions/captions.py` drives (``StreamingRecognizer``'s methods)."""

    @property
    def position(self) -> float: ...

    @property
    def pending(self) -> bool: ...

    def feed(self, pcm: bytes) -> list[SpeechResult]: ...

    def skip(self, nbytes: int) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def end_utterance(self, max_silence_s: float = 1.5) -> SpeechResult | None: ...

    def finish(self) -> SpeechResult | None: ...

    def close(self) -> None: ...


class NoSpeechEngine(SpeechModelMissing):
    """No engine recognizes a language on this server."""


def engine_overrides(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``TRADETALK_SPEECH_ENGINES`` (``ko=whisper,en=vosk``) as a dict; bad entries raise."""
    env = os.environ if env is None else env
    raw = (env.get("TRADETALK_SPEECH_ENGINES") or "").strip()
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        lang, _, engine = item.partition("=")
        if engine.strip() not in ENGINES or not lang.strip():
            raise ValueError(f"TRADETALK_SPEECH_ENGINES: {item!r} is not lang=vosk or lang=whisper")
        out[lang.strip()] = engine.strip()
    return out


def _whisper_langs(data_dir: Path | str) -> frozenset[str]:
    if not whisper_installed(data_dir):
        return frozenset()
    from .whisper_speech import whisper_languages

    return whisper_languages()


def speech_languages(data_dir: Path | str) -> dict[str, str]:
    """Every language recognized on this server -> the engine that recognizes it."""
    vosk = set(speech_models(data_dir))
    whisper = _whisper_langs(data_dir)
    overrides = engine_overrides()
    chosen: dict[str, str] = {}
    for lang in sorted(vosk | whisper):
        serving = [e for e, langs in ((VOSK, vosk), (WHISPER, whisper)) if lang in langs]
        wanted = overrides.get(lang) or PREFERRED.get(lang) or WHISPER
        chosen[lang] = wanted if wanted in serving else serving[0]
    return chosen


def engine_for(lang: str, data_dir: Path | str) -> str:
    """The engine that recognizes ``lang`` (``zh-TW`` is served as ``zh``); raises
    ``NoSpeechEngine`` when none does."""
    languages = speech_languages(data_dir)
    for code in (lang, lang.split("-")[0]):
        if code in languages:
            return languages[code]
    raise NoSpeechEngine(lang, data_dir)


def load_engine(lang: str, data_dir: Path | str) -> tuple[str, Any]:
    """Load (cached per process) what recognizing ``lang`` needs: (engine, model)."""
    engine = engine_for(lang, data_dir)
    if engine == VOSK:
        code = lang if lang in speech_models(data_dir) else lang.split("-")[0]
        return engine, load_speech_model(find_speech_model(code, data_dir))
    try:
        return engine, load_whisper_model(find_whisper_model(data_dir))
    except WhisperModelMissing as exc:
        raise NoSpeechEngine(lang, data_dir) from exc


def whisper_silence_s(lang: str, env: Mapping[str, str] | None = None) -> float:
    """The silence that ends a Whisper utterance in ``lang`` (``zh-TW`` as ``zh``):
    ``TRADETALK_WHISPER_SILENCE_S`` if set — one number for every language, or entries
    ``en=0.6,es=0.7`` (the rest keep the table) — else ``WHISPER_SILENCE_BY_LANG``, else
    ``WHISPER_SILENCE_S``. A bad value raises ``ValueError``."""
    env = os.environ if env is None else env
    raw = (env.get("TRADETALK_WHISPER_SILENCE_S") or "").strip()
    table = dict(WHISPER_SILENCE_BY_LANG)
    if raw and "=" not in raw:
        return _seconds(raw)
    for item in filter(None, (part.strip() for part in raw.split(","))):
        code, _, value = item.partition("=")
        if not code.strip():
            raise ValueError(f"TRADETALK_WHISPER_SILENCE_S: {item!r} is not lang=seconds")
        table[code.strip()] = _seconds(value)
    for code in (lang, lang.split("-")[0]):
        if code in table:
            return table[code]
    return WHISPER_SILENCE_S


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.03 <= value <= 5.0:
        raise ValueError(f"TRADETALK_WHISPER_SILENCE_S: {raw!r} is not 0.03-5 seconds")
    return value


def endpoint_for(
    engine: str, config: EndpointConfig | None, lang: str = ""
) -> EndpointConfig | None:
    """The endpointing an engine's speaker of ``lang`` gets: Whisper utterances end after at
    least ``whisper_silence_s(lang)`` of silence; Vosk's as configured."""
    if engine != WHISPER or config is None:
        return config
    return replace(config, silence_s=max(config.silence_s, whisper_silence_s(lang)))


_decoders: dict[int, Any] = {}


def open_recognizer(lang: str, data_dir: Path | str) -> tuple[str, Recognizer]:
    """A fresh recognizer for one speaker of ``lang``: (engine name, recognizer)."""
    engine, model = load_engine(lang, data_dir)
    return engine, recognizer_for(engine, model, lang)


def recognizer_for(engine: str, model: Any, lang: str) -> Recognizer:
    """A fresh recognizer on an engine's loaded model (``load_engine``'s result: finding the
    engine scans the data dir, which a caller opening many recognizers does once)."""
    if engine == VOSK:
        return StreamingRecognizer(model, pool=RECOGNIZERS)
    from .whisper_speech import WhisperDecoder, WhisperStreamingRecognizer

    decoder = _decoders.get(id(model))
    if decoder is None:
        decoder = _decoders.setdefault(id(model), WhisperDecoder(model))
    return WhisperStreamingRecognizer(decoder, lang)


def preload(data_dir: Path | str) -> dict[str, str]:
    """Load every engine's models now (a first call must not wait for them; Whisper's with
    the Silero VAD that guards it) and run one decode of silence through Whisper (its first
    decode is slower); returns lang -> engine."""
    languages = speech_languages(data_dir)
    for lang, engine in languages.items():
        if engine == VOSK:
            load_engine(lang, data_dir)
    if WHISPER in languages.values():
        import numpy as np

        from . import voice_presence
        from .whisper_speech import WhisperDecoder

        voice_presence.preload()

        model = load_whisper_model(find_whisper_model(data_dir))
        decoder = _decoders.setdefault(id(model), WhisperDecoder(model))
        decoder.decode(np.zeros(16000, dtype=np.float32), "en")
    return languages
