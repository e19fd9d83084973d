"""One speaker's live subtitles, shared by calls and tours: the speaker's audio is recognized
once (a `SpeakerCaptions` thread), partials and finals are handed to the owner's callbacks,
and each final is translated once per listener language (`translate_line`).

The owner (a call or a tour) decides who receives what and where a final line is kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.media_sessions.captions import (
    BYTES_PER_SECOND,
    MAX_BATCH_BYTES,
    SpeakerCaptions,
    audio_gap_from_env,
    endpoint_config_from_env,
)
from translation.endpointing import EndpointConfig
from translation.errors import TranslationNote
from translation.speech import SpeechResult
from translation.speech_engines import (
    NoSpeechEngine,
    Recognizer,
    endpoint_for,
    engine_for,
    open_recognizer,
)
from translation.speech_models import SpeechModelMissing

log = logging.getLogger("tradetalk.subtitles")

EARLY_AUDIO_MAX_S = 20.0

Spawn = Callable[[Coroutine[Any, Any, Any]], None]
#: Where a speaker's recognizer comes from: (lang, data_dir) -> (engine, recognizer). The
#: default recognizes in this process; `server.recognition.hub` may hand utterances to workers.
OpenRecognizer = Callable[[str, Path], tuple[str, Recognizer]]


@dataclass(frozen=True)
class FinalLine:
    """A finished utterance; `start`/`end` in seconds since the owner's origin (call start) on
    the wall clock: a stretch with no audio arriving (muted sender, silence suppression, lost
    network) counts, though no audio of it was ever recognized."""

    text: str
    lang: str
    start: float
    end: float
    utterance: int = 0  # the speaker's utterances count from 0; its partials carry the same
    #: monotonic stamps of where its time went (`SpeechResult.timing`, then the delivery's)
    timing: dict[str, float] = field(default_factory=dict, compare=False, repr=False)


class WallClock:
    """Seconds of a speaker's audio (the recognizer's clock: what it was given) as seconds of
    the wall clock since the owner's origin. Audio that never arrived (a sender that stops
    packets when muted or silent, a network outage) is not in the recognizer's clock; when the
    wall clock has run ahead of the audio by more than `gap_s`, the difference is booked at
    that point of the stream. Audio cannot arrive before it was said: audio that arrives sooner
    than the clock expects books back what was booked (a burst that makes up for a stall of the
    event loop) or, with nothing booked, says the first audio was late (a busy start, a delayed
    first packet) and moves the origin back. So jitter never moves the clock for long."""

    def __init__(self, gap_s: float) -> None:
        self.gap_s = gap_s
        self.offset: float | None = None  # when the first audio arrived
        self.fed_s = 0.0
        self.ahead_s = 0.0
        self._ahead: list[tuple[float, float]] = []  # (stream second, seconds ahead there)

    def arrived(self, now: float, seconds: float) -> None:
        """`seconds` of audio arrived at `now` (seconds since the origin)."""
        if self.offset is None:
            self.offset = now
        lag = now - self.offset - self.fed_s - self.ahead_s
        if lag > self.gap_s:
            self._book(lag)
        elif lag < 0:  # sooner than the clock expects: booked too much, or began late
            back = max(lag, -self.ahead_s)
            if back < 0:
                self._book(back)
            self.offset += lag - back
        self.fed_s += seconds

    def _book(self, seconds: float) -> None:
        self._ahead.append((self.fed_s, seconds))
        self.ahead_s += seconds

    def wall(self, stream_s: float) -> float:
        """Seconds since the origin of the moment `stream_s` seconds into the audio."""
        ahead = sum(s for at, s in self._ahead if at <= stream_s + 1e-6)
        return (self.offset or 0.0) + stream_s + ahead


class SpeakerSubtitles:
    """Recognizes one speaker's audio in `lang` and reports partials and finals in order.

    `feed(pcm)` takes 16 kHz mono s16 audio on the event loop (never blocks); `feed(b"")`
    says the speaker's track ended (the open utterance is closed at once). Audio that
    arrives while the model loads is kept (up to 20 s). `on_partial(text, utterance)` and
    `on_final(line)` run as tasks through `spawn`; finals run one at a time, in order; a
    partial and the final of the same utterance carry the same `utterance` number;
    `on_closing(text, utterance)` (optional) runs when the endpointer closes an utterance,
    with its latest partial, before the recognizer's final.
    `stop()` closes the open utterance and waits until its final has been delivered; after
    it nothing more is reported. Endpointing settings come from the environment
    (`server.media_sessions.captions.endpoint_config_from_env`) unless `endpoint` is given;
    the recognizer from `recognizers` (default: this process's own).
    """

    def __init__(
        self,
        lang: str,
        data_dir: Path,
        *,
        spawn: Spawn,
        on_partial: Callable[[str, int], Coroutine[Any, Any, Any]],
        on_final: Callable[[FinalLine], Awaitable[Any]],
        origin: float | None = None,
        name: str = "captions",
        endpoint: EndpointConfig | str | None = "env",
        recognizers: OpenRecognizer | None = None,
        on_closing: Callable[[str, int], Coroutine[Any, Any, Any]] | None = None,
    ) -> None:
        self.lang = lang
        self._open_recognizer = recognizers or open_recognizer
        self.data_dir = data_dir
        self.name = name
        self.origin = time.monotonic() if origin is None else origin
        self.captions: SpeakerCaptions | None = None
        #: the speech engine recognizing this speaker (once started)
        self.engine: str | None = None
        #: why this speaker gets no subtitles (no model for the language), else None
        self.note: str | None = None
        self._spawn = spawn
        self._on_partial = on_partial
        self._on_final = on_final
        self._on_closing = on_closing
        self._early: list[bytes] = []
        self._early_bytes = 0
        self._finals = asyncio.Lock()
        self._delivering: set[asyncio.Future[None]] = set()
        self._stopped = False
        self._closing = False
        #: the open utterance's number (a final closes it: the next one is +1)
        self.utterance = 0
        self.endpoint = endpoint_config_from_env() if endpoint == "env" else endpoint
        self.gap_s = audio_gap_from_env()
        self.clock = WallClock(self.gap_s)

    def status(self) -> dict[str, Any]:
        """`{lang, available, code?, reason?}`: whether an engine recognizes the
        language. The reason is short and for readers; how to install a model is for the
        operator only (`tradetalk models list`, the server log)."""
        status: dict[str, Any] = {"lang": self.lang, "available": True}
        try:
            engine_for(self.lang, self.data_dir)
        except SpeechModelMissing:
            status.update(
                available=False,
                code="no_speech_model",
                reason=f"{self.lang} speech is not recognized on this server",
            )
        return status

    @property
    def alive(self) -> bool:
        """Whether the recognizer thread runs."""
        return self.captions is not None and self.captions.alive

    async def start(self) -> None:
        """Load the model off the event loop, then recognize (the early audio first)."""
        try:
            self.engine, recognizer = await asyncio.to_thread(
                self._open_recognizer, self.lang, self.data_dir
            )
        except (SpeechModelMissing, NoSpeechEngine) as exc:
            log.warning("no subtitles for a %s speaker: %s", self.lang, exc)
            self.note = f"{self.lang} speech is not recognized on this server"
            self._early.clear()
            return
        except Exception:
            log.exception("could not load the speech model for %s", self.lang)
            self.note = f"the speech model for {self.lang} failed to load"
            self._early.clear()
            return
        if self._stopped or self._closing:
            recognizer.close()
            return
        self.captions = SpeakerCaptions(
            recognizer,
            asyncio.get_running_loop(),
            self._on_result,
            name=self.name,
            endpoint=endpoint_for(self.engine, self.endpoint, self.lang),  # type: ignore[arg-type]
            gap_s=self.gap_s,
            lang=self.lang,
            on_closing=self._utterance_closing if self._on_closing is not None else None,
        )
        # in batch-sized pieces: the backlog counts chunks, and 20 s of 20-ms chunks would
        # overflow it and lose the first words
        early, self._early = b"".join(self._early), []
        for offset in range(0, len(early), MAX_BATCH_BYTES):
            self.captions.feed(early[offset : offset + MAX_BATCH_BYTES])

    def feed(self, pcm: bytes) -> None:
        """Audio from the media room (event loop; returns at once)."""
        if self._stopped or self._closing or self.note is not None:
            return
        if not pcm:  # the track ended
            if self.captions is not None:
                self.captions.flush()
            return
        self.clock.arrived(time.monotonic() - self.origin, len(pcm) / BYTES_PER_SECOND)
        if self.captions is not None:
            self.captions.feed(pcm)
        elif self._early_bytes < EARLY_AUDIO_MAX_S * BYTES_PER_SECOND:
            self._early.append(pcm)
            self._early_bytes += len(pcm)

    @property
    def audio_offset(self) -> float | None:
        """When the speaker's first audio arrived, in seconds since the origin."""
        return self.clock.offset

    async def stop(self) -> None:
        """Close the open utterance (its final line is delivered before this returns), then
        stop recognizing and reporting; joins the recognizer thread. Idempotent."""
        self._closing = True
        self._early.clear()
        if self.captions is not None:
            captions, self.captions = self.captions, None
            await asyncio.to_thread(captions.close)
            await asyncio.sleep(0)  # results the thread posted last run now
            if self._delivering:
                await asyncio.wait(set(self._delivering), timeout=30)
        self._stopped = True

    async def drain(self) -> None:
        """Wait until the final line being delivered (if any) has gone out."""
        async with self._finals:
            pass

    def _utterance_closing(self, text: str) -> None:
        if self._on_closing is not None and not self._stopped and text.strip():
            self._spawn(self._on_closing(text, self.utterance))

    def _on_result(self, result: SpeechResult) -> None:
        if self._stopped or not result.text.strip():
            return
        if result.final:
            result.timing["loop"] = time.monotonic()
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._delivering.add(done)
            self._spawn(self._final(result, self.utterance, done))
            self.utterance += 1
        else:
            self._spawn(self._on_partial(result.text, self.utterance))

    async def _final(
        self, result: SpeechResult, utterance: int, done: asyncio.Future[None]
    ) -> None:
        try:
            await self._deliver(result, utterance)
        finally:
            self._delivering.discard(done)
            if not done.done():
                done.set_result(None)

    async def _deliver(self, result: SpeechResult, utterance: int) -> None:
        async with self._finals:  # one speaker's lines go out in order
            if self._stopped:
                return
            line = FinalLine(
                result.text,
                result.lang or self.lang,  # the recognizer may hear English from anyone
                round(self.clock.wall(result.start or 0.0), 2),
                round(self.clock.wall(result.end or 0.0), 2),
                utterance,
                {**result.timing, "delivering": time.monotonic()},
            )
            try:
                await self._on_final(line)
            except Exception:
                log.exception("a subtitle line of %s could not be delivered", self.name)


async def translate_line(
    translation: Any,
    text: str,
    src: str,
    targets: Iterable[str],
    glossary: dict[str, str | None] | None = None,
) -> tuple[dict[str, str], dict[str, TranslationNote]]:
    """One translation per target language other than `src` (each language once), and the
    reason for each language that failed. No translation service: nothing is translated."""
    languages = sorted(set(targets) - {src})
    if not languages or translation is None:
        return {}, {}
    return await translation.translate_many(text, src, languages, glossary or None)
