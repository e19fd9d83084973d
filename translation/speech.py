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
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    #: where a final's time went (monotonic stamps by stage; `server/media_sessions/captions.py`)
    timing: dict[str, float] = field(default_factory=dict, compare=False, repr=False)
    #: the language a final is in when the recognizer heard it (None: the speaker's)
    lang: str | None = None


class RecognizerPool:
    """Reuses Kaldi recognizers per model across streams.

    A new recognizer spends about four times the CPU on its first utterance (measured with the
    Korean model: 1.8-1.9 s vs 0.4-0.5 s for `ko_test.wav`), because its decoding-graph cache
    starts empty; `Reset()` keeps that cache. Vosk's word times keep counting across resets,
    so each recognizer comes with the seconds it has already been fed.
    """

    def __init__(self, max_idle_per_model: int = 8) -> None:
        self.max_idle = max_idle_per_model
        self._idle: dict[int, list[tuple[Any, float, int]]] = {}
        self._lock = threading.Lock()

    def acquire(self, model: vosk.Model, sample_rate: int) -> tuple[Any, float]:
        """A recognizer for `model` and the seconds of audio it was fed before."""
        with self._lock:
            idle = self._idle.get(id(model), [])
            while idle:
                recognizer, fed, rate = idle.pop()
                if rate == sample_rate:
                    return recognizer, fed
        recognizer = import_vosk().KaldiRecognizer(model, sample_rate)
        recognizer.SetWords(True)
        return recognizer, 0.0

    def release(self, model: vosk.Model, recognizer: Any, fed: float, sample_rate: int) -> None:
        """Return a recognizer (after a reset) for the next stream."""
        recognizer.Reset()
        with self._lock:
            idle = self._idle.setdefault(id(model), [])
            if len(idle) < self.max_idle:
                idle.append((recognizer, fed, sample_rate))

    def idle(self) -> int:
        """Recognizers waiting to be reused."""
        with self._lock:
            return sum(len(v) for v in self._idle.values())


#: The process's pool (models are cached per process too).
RECOGNIZERS = RecognizerPool()


class StreamingRecognizer:
    """One audio stream decoded incrementally.

    Not thread-safe: one recognizer must be used by one thread at a time (a decoder thread
    per stream is the intended use; the shared ``vosk.Model`` itself is safe to share).
    Each recognizer keeps about one CPU core busy while audio arrives in real time.
    """

    def __init__(
        self, model: vosk.Model, sample_rate: int = 16000, pool: RecognizerPool | None = None
    ) -> None:
        """With a `pool`, a warm recognizer is reused; `close()` gives it back."""
        self.sample_rate = sample_rate
        self._model = model
        self._pool = pool
        if pool is not None:
            self._recognizer, self._base = pool.acquire(model, sample_rate)
        else:
            self._recognizer, self._base = import_vosk().KaldiRecognizer(model, sample_rate), 0.0
            self._recognizer.SetWords(True)
        self._bytes_fed = 0
        self._bytes_skipped = 0
        #: skips since the last final: (bytes fed when it happened, bytes skipped); words fed
        #: before a skip keep their time (a skip inside an open Vosk utterance: audio dropped,
        #: or gated after a noise that gave no words), those after it move on
        self._skips: list[tuple[int, int]] = []
        self._skipped_before = 0  # bytes skipped before the last final
        self._odd_byte = b""
        self._utterance_start = 0.0
        self._last_partial = ""

    @property
    def position(self) -> float:
        """Seconds of stream so far: audio fed plus audio skipped (see `skip`)."""
        return (self._bytes_fed + self._bytes_skipped) / (2 * self.sample_rate)

    def skip(self, nbytes: int) -> None:
        """Audio that is not decoded (gated silence, audio dropped when behind): only the
        clock moves on, so later results keep stream times."""
        self._shift(nbytes)

    def _shift(self, nbytes: int) -> None:
        self._bytes_skipped += nbytes
        self._skips.append((self._bytes_fed, nbytes))

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

    def pause(self) -> None:
        """The endpointer heard a short silence: nothing to do for a streaming decoder."""

    def resume(self) -> None:
        """Speech went on after a pause: nothing to do for a streaming decoder."""

    @property
    def pending(self) -> bool:
        """Whether words were heard since the last final (a partial is showing)."""
        return bool(self._last_partial) and '""' not in self._last_partial

    def end_utterance(self, max_silence_s: float = 1.5) -> SpeechResult | None:
        """Close the current utterance now; its final result, or None if nothing was said.

        Digital silence is decoded (0.1 s at a time, faster than real time: ~20-60 ms in all
        for the Korean model) until Vosk's own endpoint closes the utterance, which keeps the
        recognizer's speaker adaptation for the next one (`FinalResult()` resets it: measured
        CER 0.316 vs 0.175 on ko_test.wav x3). If that has not happened after
        `max_silence_s`, `finish()` closes it. The added silence does not move the clock.
        """
        if not self.pending:
            return None
        step = b"\0" * (self.sample_rate // 5)  # 0.1 s of s16 samples
        added, final = 0, None
        while final is None and added < max_silence_s * 2 * self.sample_rate:
            added += len(step)
            final = next((r for r in self.feed(step) if r.final), None)
        if final is None:
            final = self.finish()
        self._shift(-added)
        if final is not None and final.words:
            final.end = min(final.end or 0.0, self.position)
        return final

    def finish(self) -> SpeechResult | None:
        """Flush the current utterance: its final result, or None if nothing was said."""
        self._odd_byte = b""
        return self._final(self._recognizer.FinalResult())

    def close(self) -> None:
        """Give the recognizer back to the pool (if any); the stream can't be fed after."""
        if self._pool is not None and self._recognizer is not None:
            fed = self._base + self._bytes_fed / (2 * self.sample_rate)
            self._pool.release(self._model, self._recognizer, fed, self.sample_rate)
        self._recognizer = None

    def _stream_word(self, word: dict[str, Any]) -> Word:
        """A Vosk word on the stream's clock: a reused recognizer's times count on from its
        earlier streams, and skipped audio was never seen by Vosk."""
        bps = 2 * self.sample_rate
        start, end = float(word["start"]) - self._base, float(word["end"]) - self._base
        fed_at = start * bps + 0.01 * bps  # its first frame (10 ms frames)
        skipped = self._skipped_before + sum(n for at, n in self._skips if at <= fed_at)
        shift = skipped / bps
        return Word(
            word["word"],
            round(start + shift, 3),
            round(end + shift, 3),
            float(word.get("conf", 1.0)),
        )

    def _final(self, raw: str) -> SpeechResult | None:
        """Turn Vosk's final JSON into a result; empty utterances (silence) give None."""
        result = json.loads(raw)
        boundary, self._utterance_start = self._utterance_start, self.position
        self._last_partial = ""
        text = result.get("text", "")
        if not text:
            return None
        words = [self._stream_word(w) for w in result.get("result", [])]
        self._skipped_before, self._skips = self._bytes_skipped, []
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
