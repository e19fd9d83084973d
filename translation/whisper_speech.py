"""Live speech recognition with Whisper (faster-whisper's CTranslate2 model).

Whisper is not a streaming model. The server's endpointing (``translation.endpointing``)
opens and closes utterances; this recognizer keeps the open utterance's audio and:

- **hears whether it is speech**: Silero VAD (``translation.voice_presence``) scores the audio
  as it arrives; an utterance with less than ``MIN_SPEECH_S`` of speech gets no decode and no
  line (Whisper writes "I'm sorry." for Chromium's fake-microphone beep, "BEEP!" for a tone);
- **partials**: re-decodes the growing utterance on its own decode thread (one decode at a
  time per speaker, the newest audio wins; greedy, on a short window) and shows only the
  prefix two successive decodes agree on (``translation.agreement.LocalAgreement``), at a
  bounded rate (``partial_due``): back to back (at least 0.25 s apart) until a first word is
  agreed, then every 0.5 s and never more than half of one speaker's time busy;
- **finals**: at the first moment of silence (the endpointer's ``Pause``) a beam-5 decode of
  the whole utterance starts at once on a thread of its own (a partial not yet past its
  encoder is dropped; one already decoding shares the cores with it); if the
  silence holds until the utterance closes, that decode *is* the final, so the final arrives
  a decode after the speech ended, not a decode after the endpoint. It is voided only when
  Silero hears more speech: a knock or a breath after the last word (``Resume`` from the
  WebRTC VAD) leaves it standing.

The encoder runs on a window just longer than the utterance (``window_for``), not Whisper's
fixed 30 s: CTranslate2 accepts shorter mel inputs, and the cost falls with the window (beam 5,
3.9-8.7 s clips: 2.1-2.4 s CPU at 30 s, 0.7-1.0 s at 9-14 s; same text). Mandarin is written in
the script its readers expect (``translation.chinese_script``).

**What language a line is in**: a speaker is decoded in their own language, but a final is
decoded in English instead when Whisper's language probabilities, read from the encoder output
the decode computes anyway (one decoder step, 30-60 ms), say English is likelier (``spoken_in``):
a Chinese supplier who answers an American buyer in English gets an English line, translated
from English, as a chat message typed in English is (``translation.written_language``). Only
between the two, and only on the whole utterance (after 1-2 s of speech the probabilities are
unreliable: a Spanish clip read "en 0.23, am 0.32"); partials stay in the speaker's language.

The interface is ``translation.speech.StreamingRecognizer``'s: ``feed``/``skip``/``pause``/
``resume``/``end_utterance``/``finish``/``close``, times in seconds from the stream start.
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

from .agreement import CHARACTER_LANGS, LocalAgreement, collapse_repeats, join_units
from .chinese_script import to_script
from .speech import SpeechResult
from .voice_presence import SpeechMeter
from .written_language import LINGUA_FRANCA

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

SAMPLE_RATE = 16000
BYTES_PER_SECOND = 2 * SAMPLE_RATE
#: Silence after the speech inside the encoder window (``decode``'s default).
WINDOW_PAD_S = 5.0
MIN_WINDOW_S = 8.0
#: The final's window: speech + FINAL_PAD_S (at least MIN_WINDOW_S). On beam-5 decodes of
#: prefixes every 0.75 s of six test clips, 3 s looped no more than 5 s (twice, both on digits
#: cut mid-number; 2 s once more), and the encoder and the decoder's cross-attention cost less
#: (an 8.7 s utterance: 12 s window instead of 14 s).
FINAL_PAD_S = 3.0
#: Partials (greedy, shown only where two agree) take a shorter window: cheaper, so they
#: rarely hold up a final.
PARTIAL_PAD_S = 2.0
PARTIAL_MIN_WINDOW_S = 4.0
PARTIAL_INTERVAL_S = 0.5
#: Until two decodes agree on a first word, partial decodes follow each other back to back,
#: but at least this far apart (``partial_due``): the first partial comes ~1 s into the speech,
#: not at the third decode 1.5-2 s in. After that, at least PARTIAL_INTERVAL_S apart.
FIRST_INTERVAL_S = 0.25
#: Less speech than this (Silero VAD, ``translation.voice_presence``) in an utterance: no
#: line, no decode (a beep, a click, a tone, noise).
MIN_SPEECH_S = 0.2
#: Speech heard after a speculative final decode started that voids it (Silero's probability
#: trails the voice by a chunk or two, so less does not count).
NEW_SPEECH = 5  # Silero chunks of 32 ms
MAX_WINDOW_S = 30.0
#: A final is decoded in another language than the speaker's only when Whisper gives it at least
#: this probability (and more than the speaker's): read digits in English scored en 0.52, zh 0.27.
SWITCH_PROBABILITY = 0.5
#: Whisper's own language code for ours where they differ.
_WHISPER_CODE = {"zh-tw": "zh", "zh-hant": "zh", "zh-hk": "zh", "zh-cn": "zh", "he": "he"}


def window_for(seconds: float, pad_s: float = WINDOW_PAD_S, min_s: float = MIN_WINDOW_S) -> float:
    """The encoder window for an utterance of ``seconds``: speech + ``pad_s``, whole seconds,
    between ``min_s`` and 30 s."""
    return float(min(MAX_WINDOW_S, max(min_s, math.ceil(seconds + pad_s))))


def partial_due(
    last_at: float,
    last_s: float,
    agreed: bool,
    interval_s: float = PARTIAL_INTERVAL_S,
    first_busy: float = 1.0,
) -> float:
    """When the next partial decode may start, given when the last one started (`last_at`)
    and how long it took (`last_s`). Once a first word is agreed: `interval_s` after it, and
    never sooner than twice its duration (at most half of the time busy). Until then the
    decodes follow each other `first_busy` x their duration apart (1: back to back), at
    least `FIRST_INTERVAL_S`: the first partial needs two decodes that agree, and each one
    sooner is one that hears less."""
    if agreed:
        return last_at + max(interval_s, 2 * last_s)
    return last_at + max(FIRST_INTERVAL_S, first_busy * last_s)


def whisper_languages() -> frozenset[str]:
    """Every language code the multilingual Whisper model transcribes."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


def spoken_in(probabilities: dict[str, float], lang: str, others: tuple[str, ...]) -> str:
    """Which of ``lang`` (the speaker's) and ``others`` an utterance is in, from Whisper's
    language probabilities (Whisper codes -> probability): another only when it is likelier
    than the speaker's and at least ``SWITCH_PROBABILITY``."""
    best, best_p = lang, probabilities.get(whisper_code(lang), 0.0)
    for other in others:
        p = probabilities.get(whisper_code(other), 0.0)
        if p > best_p and p >= SWITCH_PROBABILITY:
            best, best_p = other, p
    return best


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
    lang: str = ""  # the language it was decoded in (ours, e.g. "zh-TW"); "" = as asked


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

    def decode(
        self,
        audio: np.ndarray,
        lang: str,
        beam_size: int | None = None,
        *,
        pad_s: float = WINDOW_PAD_S,
        min_window_s: float = MIN_WINDOW_S,
        cancelled: threading.Event | None = None,
        prefix: str = "",
        or_in: tuple[str, ...] = (),
    ) -> Decoded | None:
        """Transcribe float32 16 kHz ``audio`` (one utterance) spoken in ``lang`` with an
        encoder window of the speech + ``pad_s`` (``window_for``); the text begins with
        ``prefix`` (the decoder continues it). ``or_in``: languages it may be in instead
        (``spoken_in`` picks; ``Decoded.lang`` says which). None when ``cancelled`` was set
        before the decoder started (the encoder's work is then all that was spent)."""
        import ctranslate2

        began = time.monotonic()
        seconds = len(audio) / SAMPLE_RATE
        window = window_for(seconds, pad_s, min_window_s)
        padded = np.zeros(int(window * SAMPLE_RATE), dtype=np.float32)
        padded[: min(len(audio), len(padded))] = audio[: len(padded)]
        if cancelled is not None and cancelled.is_set():
            return None
        features = self.model.feature_extractor(padded)
        frames = int(window * 100)
        features = np.ascontiguousarray(features[:, :frames], dtype=np.float32)
        encoded = self.model.model.encode(
            ctranslate2.StorageView.from_array(features[None]), to_cpu=False
        )
        if cancelled is not None and cancelled.is_set():
            return None
        if or_in:
            found = self.model.model.detect_language(encoded)[0]
            lang = spoken_in({code[2:-2]: p for code, p in found}, lang, or_in)
        tokenizer = self._tokenizer(whisper_code(lang))
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        if prefix:
            spaced = prefix if whisper_code(lang) in CHARACTER_LANGS else " " + prefix
            prompt += tokenizer.encode(spaced)
        # about 12 tokens a second of speech is generous for every language; a loop stops there
        result = self.model.model.generate(
            encoded,
            [prompt],
            beam_size=beam_size or self.beam_size,
            max_length=min(224, int(10 * seconds) + 10 + len(prompt)),
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
            lang,
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


@dataclass
class _Job:
    """One decode on one of the speaker's decode threads, cancellable until its decoder
    starts."""

    future: concurrent.futures.Future[Decoded | None]
    cancel: threading.Event
    speech_chunks: int = 0  # what Silero had heard when it started
    position: float = 0.0  # the stream position its audio ends at


class WhisperStreamingRecognizer:
    """One speaker's audio recognized utterance by utterance (see the module docstring).

    Used from one thread (the speaker's captions thread); decodes run on two threads of its
    own, one for partials and one for finals.
    """

    def __init__(
        self,
        decoder: WhisperDecoder,
        lang: str,
        sample_rate: int = SAMPLE_RATE,
        partial_interval_s: float = PARTIAL_INTERVAL_S,
        first_partial_s: float = 0.5,
        final_beam_size: int = 5,
        min_speech_s: float = MIN_SPEECH_S,
        final_pad_s: float = FINAL_PAD_S,
        first_busy: float = 1.0,
    ) -> None:
        if sample_rate != SAMPLE_RATE:
            raise ValueError("the Whisper recognizer takes 16 kHz audio")
        self.sample_rate = sample_rate
        self.lang = lang
        #: what a final may be decoded in instead of `lang` (see the module)
        self.or_in = () if whisper_code(lang) == LINGUA_FRANCA else (LINGUA_FRANCA,)
        self.partial_interval_s = partial_interval_s
        self.first_partial_s = first_partial_s
        self.final_beam_size = final_beam_size
        self.min_speech_s = min_speech_s
        self.final_pad_s = final_pad_s
        self.first_busy = first_busy
        self._decoder = decoder
        # partials and finals on threads of their own: a final never queues behind a partial
        # (on an idle machine the two share the cores, the final done when it would have been
        # after the partial; on a busy one it is not held up by it)
        self._partials = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="whisper")
        self._finals = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="whisper-final")
        self._audio = bytearray()
        self._odd_byte = b""
        self._bytes_fed = 0
        self._bytes_skipped = 0
        self._utterance_start = 0.0
        self._agreement = LocalAgreement(lang)
        self._meter = SpeechMeter()
        self._partial: _Job | None = None
        self._last_decode_at = 0.0
        self._last_decode_s = 0.0
        self._speculative: _Job | None = None
        self._paused_at: float | None = None
        #: decodes started, finals that reused a speculative decode, utterances dropped as
        #: non-speech
        self.decodes = 0
        self.speculative_hits = 0
        self.non_speech = 0

    @property
    def position(self) -> float:
        """Seconds of stream so far: audio fed plus audio skipped."""
        return (self._bytes_fed + self._bytes_skipped) / BYTES_PER_SECOND

    @property
    def pending(self) -> bool:
        """Whether an utterance holds audio."""
        return bool(self._audio)

    @property
    def speech_s(self) -> float:
        """Seconds of the open utterance that Silero VAD calls speech."""
        return self._meter.speech_s

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
            self._meter.feed(np.frombuffer(data, dtype=np.int16).astype(np.float32) / 32768.0)
            job = self._speculative
            if job is not None and self._meter.speech_chunks - job.speech_chunks >= NEW_SPEECH:
                self._drop(job)  # the speaker went on: the speculative decode misses words
                self._speculative = None
        results = self._collect()
        self._maybe_partial()
        return results

    def pause(self) -> None:
        """The speaker fell silent: decode the whole utterance now (it may be the final). A
        partial decode not yet past its encoder is dropped: the final goes first."""
        if not self._audio:
            return
        self._paused_at = self.position
        if self._speculative is not None:
            return  # no speech since the last pause (a breath, a click): it still holds
        if self._meter.speech_s < self.min_speech_s:
            return  # nothing said yet (the onset's flicker): no final to prepare
        if self._partial is not None:
            self._partial.cancel.set()
        self._speculative = self._submit(self.final_beam_size, self.final_pad_s, MIN_WINDOW_S)

    def resume(self) -> None:
        """Sound came back after a pause. The speculative decode is kept until Silero hears
        `NEW_SPEECH` chunks of speech (a knock or a breath does not void it; a word does)."""
        self._paused_at = None

    def end_utterance(self, max_silence_s: float = 1.5) -> SpeechResult | None:
        """Close the open utterance: its final result, or None if nothing was said."""
        del max_silence_s  # Vosk's parameter; Whisper needs no flushing silence
        if not self._audio:
            self._reset()
            return None
        if self._meter.speech_s < self.min_speech_s:
            self.non_speech += 1
            self._reset()
            return None
        job = self._speculative
        if job is not None:
            self.speculative_hits += 1
        else:
            if self._partial is not None:
                self._partial.cancel.set()
            job = self._submit(self.final_beam_size, self.final_pad_s, MIN_WINDOW_S)
        decoded = job.future.result()
        end = job.position if job is self._speculative else (self._paused_at or job.position)
        start = self._utterance_start
        self._reset()
        if decoded is None or not plausible(decoded):
            return None
        return SpeechResult(
            decoded.text, True, [], round(start, 3), round(end, 3), lang=decoded.lang or None
        )

    def finish(self) -> SpeechResult | None:
        """Flush the current utterance (same as ``end_utterance``)."""
        self._odd_byte = b""
        return self.end_utterance()

    def close(self) -> None:
        """Stop the decode threads (a decode running finishes; nothing more is started)."""
        self._partials.shutdown(wait=False, cancel_futures=True)
        self._finals.shutdown(wait=False, cancel_futures=True)

    def _samples(self) -> np.ndarray:
        return np.frombuffer(bytes(self._audio), dtype=np.int16).astype(np.float32) / 32768.0

    def _submit(self, beam: int, pad_s: float, min_window_s: float, prefix: str = "") -> _Job:
        cancel = threading.Event()
        executor = self._partials if beam == 1 else self._finals
        future = executor.submit(
            self._decoder.decode,
            self._samples(),
            self.lang,
            beam,
            pad_s=pad_s,
            min_window_s=min_window_s,
            cancelled=cancel,
            prefix=prefix,
            or_in=self.or_in if beam != 1 else (),  # finals only (see the module)
        )
        self.decodes += 1
        return _Job(future, cancel, self._meter.speech_chunks, self.position)

    @staticmethod
    def _drop(job: _Job | None) -> None:
        if job is not None:
            job.cancel.set()
            job.future.cancel()

    def _collect(self) -> list[SpeechResult]:
        """A finished partial decode's contribution: the agreed text when it grew."""
        job = self._partial
        if job is None or not job.future.done():
            return []
        self._partial = None
        try:
            decoded = job.future.result()
        except (Exception, concurrent.futures.CancelledError):
            return []
        if decoded is None:
            return []
        self._last_decode_s = decoded.seconds
        if not plausible(decoded):
            return []
        agreed = self._agreement.update(decoded.text)
        if agreed is None:
            return []
        return [SpeechResult(agreed, False, [], self._utterance_start, self.position)]

    def _maybe_partial(self) -> None:
        """Start a partial decode when none runs, the speaker is talking (no pause), speech
        was heard, and at the bounded rate: at least `partial_interval_s` apart (before the
        first agreement `FIRST_INTERVAL_S`), and never more often than a decode takes (at
        most half of the time busy per speaker)."""
        if self._partial is not None or self._paused_at is not None:
            return
        if self._speculative is not None and not self._speculative.future.done():
            return
        seconds = len(self._audio) / BYTES_PER_SECOND
        if seconds < self.first_partial_s or self._meter.speech_s < self.min_speech_s:
            return
        now = time.monotonic()
        if now < partial_due(
            self._last_decode_at,
            self._last_decode_s,
            bool(self._agreement.committed),
            self.partial_interval_s,
            self.first_busy,
        ):
            return
        # what was shown is the decoder's prefix (as in whisper_streaming): later hypotheses
        # extend it, so one early wrong word does not stop the partials for the utterance
        committed = join_units(self._agreement.committed, self.lang)
        self._partial = self._submit(1, PARTIAL_PAD_S, PARTIAL_MIN_WINDOW_S, committed)
        self._last_decode_at = now

    def _reset(self) -> None:
        self._audio = bytearray()
        self._last_decode_s = 0.0
        self._agreement.reset()
        self._meter.reset()
        self._drop(self._partial)
        self._partial = None
        self._speculative = None
        self._paused_at = None


def transcribe_whole(audio: np.ndarray | str, lang: str, model: WhisperModel) -> str:
    """faster-whisper's own whole-file transcription (30 s windows, beam 5), in the script
    readers of ``lang`` expect: the baseline the live path is measured against, and what
    ``tradetalk transcribe`` prints."""
    segments, _ = model.transcribe(
        audio, language=whisper_code(lang), beam_size=5, condition_on_previous_text=False
    )
    return to_script(" ".join(s.text.strip() for s in segments).strip(), lang)
