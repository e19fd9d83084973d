"""Streaming speech recognition with Vosk.

Feed 16-bit mono PCM in chunks of any size to a ``StreamingRecognizer``; it returns partial
results while words arrive (only when the partial text changed) and a final result with word
timings at the end of each utterance (Vosk's endpoint: trailing silence, see the model's
``conf/model.conf``). Times are seconds from the start of the stream.

Models: see ``translation.speech_models`` (re-exported here).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .speech_models import (
    SpeechModelMissing,
    find_speech_model,
    import_vosk,
    load_speech_model,
    speech_models,
    unload_speech_model,
)
from .wav_audio import AudioFormatError, read_wav_pcm16

if TYPE_CHECKING:
    import vosk

__all__ = [
    "AudioFormatError",
    "SpeechModelMissing",
    "SpeechResult",
    "StreamingRecognizer",
    "Word",
    "find_speech_model",
    "load_speech_model",
    "speech_models",
    "transcribe_wav",
    "unload_speech_model",
]


@dataclass
class Word:
    """One recognised word; ``start``/``end`` in seconds from the stream start."""

    word: str
    start: float
    end: float
    conf: float


@dataclass
class SpeechResult:
    """A partial (``final=False``, no words) or final result of one utterance.

    ``start``/``end``: seconds from the stream start. For a final result they are the first
    word's start and the last word's end; for a partial, the utterance's beginning (the end
    of the previous final) and the audio fed so far.
    """

    text: str
    final: bool
    words: list[Word] = field(default_factory=list)
    start: float | None = None
    end: float | None = None


class StreamingRecognizer:
    """One audio stream decoded incrementally.

    Not thread-safe: one recognizer must be used by one thread at a time (a decoder thread
    per stream is the intended use; the shared ``vosk.Model`` itself is safe to share).
    Each recognizer keeps about one CPU core busy while audio arrives in real time.
    """

    def __init__(self, model: vosk.Model, sample_rate: int = 16000) -> None:
        vosk = import_vosk()
        self.sample_rate = sample_rate
        self._recognizer = vosk.KaldiRecognizer(model, sample_rate)
        self._recognizer.SetWords(True)
        self._bytes_fed = 0
        self._odd_byte = b""
        self._utterance_start = 0.0
        self._last_partial = ""

    @property
    def position(self) -> float:
        """Seconds of audio fed so far."""
        return self._bytes_fed / (2 * self.sample_rate)

    def feed(self, pcm: bytes) -> list[SpeechResult]:
        """Decode a chunk of 16-bit little-endian mono PCM; return new results (often none)."""
        data = self._odd_byte + pcm
        if len(data) % 2:
            data, self._odd_byte = data[:-1], data[-1:]
        else:
            self._odd_byte = b""
        if not data:
            return []
        self._bytes_fed += len(data)
        if self._recognizer.AcceptWaveform(data):
            final = self._final(self._recognizer.Result())
            return [final] if final is not None else []
        raw = self._recognizer.PartialResult()
        # Cheap path: compare the raw JSON before parsing it.
        if raw == self._last_partial:
            return []
        self._last_partial = raw
        text = json.loads(raw).get("partial", "")
        if not text:
            return []
        return [SpeechResult(text, False, [], self._utterance_start, self.position)]

    def finish(self) -> SpeechResult | None:
        """Flush the current utterance: its final result, or None if nothing was said."""
        self._odd_byte = b""
        return self._final(self._recognizer.FinalResult())

    def _final(self, raw: str) -> SpeechResult | None:
        """Turn Vosk's final JSON into a result; empty utterances (silence) give None."""
        result = json.loads(raw)
        boundary, self._utterance_start = self._utterance_start, self.position
        self._last_partial = ""
        text = result.get("text", "")
        if not text:
            return None
        words = [
            Word(w["word"], float(w["start"]), float(w["end"]), float(w.get("conf", 1.0)))
            for w in result.get("result", [])
        ]
        if words:
            return SpeechResult(text, True, words, words[0].start, words[-1].end)
        return SpeechResult(text, True, [], boundary, self.position)


def default_data_dir() -> Path:
    """The server's data dir: ``TRADETALK_DATA``, default ``./var``."""
    return Path(os.environ.get("TRADETALK_DATA", "var"))


def transcribe_wav(
    path: Path | str,
    lang_or_model: str | Path | vosk.Model,
    data_dir: Path | str | None = None,
    chunk_ms: int | None = None,
) -> list[SpeechResult]:
    """The final results of a WAV file.

    ``lang_or_model``: a language code (model found in ``data_dir`` or an installed
    package), a Vosk model folder, or a loaded ``vosk.Model``. ``chunk_ms`` feeds the audio
    in chunks of that many milliseconds (streaming); None feeds it whole.
    """
    if isinstance(lang_or_model, Path):
        model = load_speech_model(lang_or_model)
    elif isinstance(lang_or_model, str):
        folder = find_speech_model(lang_or_model, data_dir or default_data_dir())
        model = load_speech_model(folder)
    else:
        model = lang_or_model
    pcm = read_wav_pcm16(path, 16000)
    recognizer = StreamingRecognizer(model, 16000)
    step = len(pcm) if not chunk_ms else 32 * chunk_ms  # 16 kHz * 2 bytes = 32 bytes/ms
    results: list[SpeechResult] = []
    for offset in range(0, len(pcm), max(step, 2)):
        results.extend(r for r in recognizer.feed(pcm[offset : offset + step]) if r.final)
    last = recognizer.finish()
    if last is not None:
        results.append(last)
    return results
