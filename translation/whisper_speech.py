"""Live speech recognition with Whisper (faster-whisper's CTranslate2 model).

Whisper is not a streaming model. The server's endpointing (``translation.endpointing``)
opens and closes utterances; this recognizer keeps the open utterance's audio and:

- **partials**: re-decodes the growing utterance at a bounded rate on its own decode thread
  (one decode at a time per speaker, the newest audio wins) and shows only the prefix two
  successive decodes agree on (``translation.agreement.LocalAgreement``);
- **finals**: at the first moment of silence (the endpointer's ``Pause``) a decode of the
  whole utterance starts at once; if the silence holds until the utterance closes, that
  decode *is* the final, so the final arrives a decode after the speech ended, not a decode
  after the endpoint. Speech that resumes (``Resume``) voids it.

The encoder runs on a window just longer than the utterance (``window_for``), not Whisper's
fixed 30 s: CTranslate2 accepts shorter mel inputs, and the cost falls with the window (beam 5,
3.9-8.7 s clips: 2.1-2.4 s CPU at 30 s, 0.7-1.0 s at 9-14 s; same text). Mandarin is written in
the script its readers expect (``translation.chinese_script``).

The interface is ``translation.speech.StreamingRecognizer``'s: ``feed``/``skip``/
``end_utterance``/``finish``/``close``, times in seconds from the stream start.
"""

from __future__ import annotations

import concurrent.futures
import math
import threading
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .agreement import LocalAgreement, collapse_repeats
from .chinese_script import to_script
from .speech import SpeechResult

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

SAMPLE_RATE = 16000
BYTES_PER_SECOND = 2 * SAMPLE_RATE
#: Silence after the speech inside the encoder window: with less (1.5-3 s) the decoder often
#: repeats a short utterance ("las arenas son blanquecinas las arenas son…"); with 5 s it did not.
WINDOW_PAD_S = 5.0
MIN_WINDOW_S = 8.0
MAX_WINDOW_S = 30.0
#: Whisper's own language code for ours where they differ.
_WHISPER_CODE = {"zh-tw": "zh", "zh-hant": "zh", "zh-hk": "zh", "zh-cn": "zh", "he": "he"}


def window_for(seconds: float) -> float:
    """The encoder window for an utterance of ``seconds``: speech + 5 s, whole seconds,
    between 8 and 30 s."""
    return float(min(MAX_WINDOW_S, max(MIN_WINDOW_S, math.ceil(seconds + WINDOW_PAD_S))))


def whisper_languages() -> frozenset[str]:
    """Every language code the multilingual Whisper model transcribes."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


def whisper_code(lang: str) -> str:
    """Whisper's code for one of ours (``zh-TW`` -> ``zh``)."""
    lowered = lang.lower()
    return _WHISPER_CODE.get(lowered, lowered.split("-")[0])


@dataclass(frozen=True)
class Decoded:
    """One decode of some audio."""

    text: str
    no_speech_prob: float
    avg_logprob: float
    seconds: float  # wall time the decode took


class WhisperDecoder:
    """Decodes one piece of audio with a loaded model: thread-safe, stateless per call."""

    def __init__(self, model: WhisperModel, beam_size: int = 1) -> None:
        from faster_whisper.tokenizer import Tokenizer

        self.model = model
        self.beam_size = beam_size
        self._tokenizers: dict[str, Any] = {}
        self._tokenizer_class = Tokenizer
        self._lock = threading.Lock()

    def _tokenizer(self, lang: str) -> Any:
        with self._lock:
            tokenizer = self._tokenizers.get(lang)
            if tokenizer is None:
                tokenizer = self._tokenizer_class(
                    self.model.hf_tokenizer, True, task="transcribe", language=lang
                )
                self._tokenizers[lang] = tokenizer
            return tokenizer

    def decode(self, audio: np.ndarray, lang: str, beam_size: int | None = None) -> Decoded:
        """Transcribe float32 16 kHz ``audio`` (one utterance) spoken in ``lang``."""
        import ctranslate2

        began = time.monotonic()
        seconds = len(audio) / SAMPLE_RATE
        window = window_for(seconds)
        padded = np.zeros(int(window * SAMPLE_RATE), dtype=np.float32)
        padded[: min(len(audio), len(padded))] = audio[: len(padded)]
        features = self.model.feature_extractor(padded)
        frames = int(window * 100)
        features = np.ascontiguousarray(features[:, :frames], dtype=np.float32)
        tokenizer = self._tokenizer(whisper_code(lang))
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        encoded = self.model.model.encode(
            ctranslate2.StorageView.from_array(features[None]), to_cpu=False
        )
        # about 12 tokens a second of speech is generous for every language; a loop stops there
        result = self.model.model.generate(
            encoded,
            [prompt],
            beam_size=beam_size or self.beam_size,
            max_length=min(224, int(10 * seconds) + 10),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        text = collapse_repeats(tokenizer.decode(tokens).strip())
        length = max(1, len(tokens))
        return Decoded(
            to_script(text, lang),
            float(result.no_speech_prob),
            float(result.scores[0]) / length if result.scores else 0.0,
            time.monotonic() - began,
        )


def _compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / max(1, len(zlib.compress(data)))


def plausible(decoded: Decoded) -> bool:
    """Whisper's own guards against hallucinated text on non-speech: a likely no-speech
    window with a low-confidence text, or a text that repeats itself, is dropped."""
    if not decoded.text:
        return False
    if decoded.no_speech_prob > 0.6 and decoded.avg_logprob < -1.0:
        return False
    return _compression_ratio(decoded.text) <= 2.4


class WhisperStreamingRecognizer:
    """One speaker's audio recognized utterance by utterance (see the module docstring).

    Used from one thread (the speaker's captions thread); decodes run on a thread of its own.
    """

    def __init__(
        self,
        decoder: WhisperDecoder,
        lang: str,
        sample_rate: int = SAMPLE_RATE,
        partial_interval_s: float = 0.5,
        first_partial_s: float = 0.5,
        final_beam_size: int = 5,
    ) -> None:
        if sample_rate != SAMPLE_RATE:
            raise ValueError("the Whisper recognizer takes 16 kHz audio")
        self.sample_rate = sample_rate
        self.lang = lang
        self.partial_interval_s = partial_interval_s
        self.first_partial_s = first_partial_s
        self.final_beam_size = final_beam_size
        self._decoder = decoder
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="whisper")
        self._audio = bytearray()
        self._odd_byte = b""
        self._bytes_fed = 0
        self._bytes_skipped = 0
        self._utterance_start = 0.0
        self._agreement = LocalAgreement(lang)
        self._inflight: concurrent.futures.Future[Decoded] | None = None
        self._inflight_bytes = 0
        self._last_decode_at = 0.0
        self._last_decode_s = 0.0
        self._speculative: concurrent.futures.Future[Decoded] | None = None
        self._speech_end: float | None = None
        self._pause_wanted = False
        #: decodes run (partial and speculative) and how many finals reused a speculative one
        self.decodes = 0
        self.speculative_hits = 0

    @property
    def position(self) -> float:
        """Seconds of stream so far: audio fed plus audio skipped."""
        return (self._bytes_fed + self._bytes_skipped) / BYTES_PER_SECOND

    @property
    def pending(self) -> bool:
        """Whether an utterance holds audio."""
        return bool(self._audio)

    def skip(self, nbytes: int) -> None:
        """Audio between utterances that is not decoded: only the clock moves on."""
        self._bytes_skipped += nbytes

    def feed(self, pcm: bytes) -> list[SpeechResult]:
        """Add 16-bit mono PCM to the open utterance; returns a partial when the agreed text
        grew (from a decode that finished meanwhile)."""
        data = self._odd_byte + pcm
        if len(data) % 2:
            data, self._odd_byte = data[:-1], data[-1:]
        else:
            self._odd_byte = b""
        if data:
            if not self._audio:
                self._utterance_start = self.position
            self._audio += data
            self._bytes_fed += len(data)
        results = self._collect()
        self._maybe_decode()
        return results

    def pause(self) -> None:
        """The speaker fell silent: decode the whole utterance now (it may be the final)."""
        if not self._audio:
            return
        self._speech_end = self.position
        self._speculative = None
        self._pause_wanted = True
        self._maybe_decode()

    def resume(self) -> None:
        """Speech went on after a pause: a speculative decode no longer covers it."""
        self._speculative = None
        self._pause_wanted = False
        self._speech_end = None

    def end_utterance(self, max_silence_s: float = 1.5) -> SpeechResult | None:
        """Close the open utterance: its final result, or None if nothing was said."""
        del max_silence_s  # Vosk's parameter; Whisper needs no flushing silence
        if not self._audio:
            self._reset()
            return None
        future = self._speculative
        if future is not None:
            self.speculative_hits += 1
        else:
            if self._inflight is not None:
                concurrent.futures.wait([self._inflight])
            future = self._executor.submit(
                self._decoder.decode, self._samples(), self.lang, self.final_beam_size
            )
            self.decodes += 1
        decoded = future.result()
        end = self._speech_end if self._speech_end is not None else self.position
        start = self._utterance_start
        self._reset()
        if not plausible(decoded):
            return None
        return SpeechResult(decoded.text, True, [], round(start, 3), round(end, 3))

    def finish(self) -> SpeechResult | None:
        """Flush the current utterance (same as ``end_utterance``)."""
        self._odd_byte = b""
        return self.end_utterance()

    def close(self) -> None:
        """Stop the decode thread (a decode running finishes; nothing more is started)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _samples(self) -> np.ndarray:
        return np.frombuffer(bytes(self._audio), dtype=np.int16).astype(np.float32) / 32768.0

    def _collect(self) -> list[SpeechResult]:
        """A finished partial decode's contribution: the agreed text when it grew."""
        inflight = self._inflight
        if inflight is None or not inflight.done():
            return []
        self._inflight = None
        try:
            decoded = inflight.result()
        except Exception:
            return []
        self._last_decode_s = decoded.seconds
        if not plausible(decoded):
            return []
        agreed = self._agreement.update(decoded.text)
        if agreed is None:
            return []
        return [SpeechResult(agreed, False, [], self._utterance_start, self.position)]

    def _maybe_decode(self) -> None:
        """Start a decode when none runs: the speculative one first, else a partial at the
        bounded rate (at least `partial_interval_s`, and never more often than a decode
        takes: at most half of the time busy per speaker)."""
        if self._inflight is not None:
            return
        now = time.monotonic()
        seconds = len(self._audio) / BYTES_PER_SECOND
        if self._pause_wanted:
            self._pause_wanted = False
        elif seconds < self.first_partial_s:
            return
        elif now - self._last_decode_at < max(self.partial_interval_s, 2 * self._last_decode_s):
            return
        else:
            self._submit(speculative=False)
            return
        self._submit(speculative=True)

    def _submit(self, speculative: bool) -> None:
        beam = self.final_beam_size if speculative else 1
        future = self._executor.submit(self._decoder.decode, self._samples(), self.lang, beam)
        self.decodes += 1
        self._inflight = future
        self._inflight_bytes = len(self._audio)
        self._last_decode_at = time.monotonic()
        if speculative:
            self._speculative = future

    def _reset(self) -> None:
        self._audio = bytearray()
        self._agreement.reset()
        self._speculative = None
        self._speech_end = None
        self._pause_wanted = False
        if self._inflight is not None and not self._inflight.done():
            self._inflight.cancel()
        self._inflight = None


def transcribe_whole(audio: np.ndarray | str, lang: str, model: WhisperModel) -> str:
    """faster-whisper's own whole-file transcription (30 s windows, beam 5), in the script
    readers of ``lang`` expect: the baseline the live path is measured against, and what
    ``tradetalk transcribe`` prints."""
    segments, _ = model.transcribe(
        audio, language=whisper_code(lang), beam_size=5, condition_on_previous_text=False
    )
    return to_script(" ".join(s.text.strip() for s in segments).strip(), lang)
