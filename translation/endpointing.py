"""Server-side endpointing: a voice-activity detector splits a PCM stream into utterances.

`Endpointer.process(pcm)` takes 16 kHz mono s16 audio in chunks of any size and returns
what to do with it, in order: `Feed(pcm)` (give it to the recognizer), `Skip(nbytes)` (silence
the recognizer is not fed: it only advances the stream clock), `Pause()` (the open utterance has
had `pause_s` of trailing silence: a recognizer that decodes whole utterances may start now),
`Resume()` (speech came back after a `Pause`) and `End(reason)` (the utterance is over: ask the
recognizer for its final result). An utterance closes after `silence_s` of
trailing silence once it holds `min_speech_s` of speech (shorter ones wait for
`long_silence_s`), and one longer than `max_utterance_s` is cut at the next `cap_pause_s`
pause (or at `max_utterance_s + hard_extra_s` if the speaker never pauses).

Adaptive silence: with a `finished` rule (`translation.sentence_ends`), the caller reports the
recognizer's latest partial with `heard(text)`; while it does not look like a finished
sentence and the utterance holds less than `long_speech_s` of speech, the line waits for
`unfinished_silence_s` instead of `silence_s` (a pause inside a sentence does not split it).
Without a rule, or when the rule cannot tell, `silence_s` applies.

With `gate=True` silence between utterances is not fed (only `preroll_s` of it before speech,
so the recognizer hears the onset). The detector is WebRTC's (`webrtcvad-wheels`, mode 3, 30 ms
frames): why this one is in docs/architecture.md.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import webrtcvad

SAMPLE_RATE = 16000
FRAME_MS = 30
FRAME_BYTES = SAMPLE_RATE * 2 * FRAME_MS // 1000
FRAME_S = FRAME_MS / 1000


@dataclass(frozen=True)
class EndpointConfig:
    """How utterances are closed; seconds throughout."""

    silence_s: float = 0.25
    unfinished_silence_s: float = 0.45
    long_speech_s: float = 6.0
    pause_s: float = 0.09
    min_speech_s: float = 0.3
    long_silence_s: float = 1.0
    max_utterance_s: float = 15.0
    cap_pause_s: float = 0.09
    hard_extra_s: float = 5.0
    preroll_s: float = 0.3
    gate: bool = True
    vad_mode: int = 3

    def __post_init__(self) -> None:
        if not 0.03 <= self.silence_s <= 5.0:
            raise ValueError("silence_s must be between 0.03 and 5 seconds")
        if not 0.03 <= self.unfinished_silence_s <= 5.0:
            raise ValueError("unfinished_silence_s must be between 0.03 and 5 seconds")
        if not 1.0 <= self.max_utterance_s <= 120.0:
            raise ValueError("max_utterance_s must be between 1 and 120 seconds")
        if self.vad_mode not in (0, 1, 2, 3):
            raise ValueError("vad_mode must be 0..3")


@dataclass(frozen=True)
class Feed:
    """Audio to decode."""

    pcm: bytes


@dataclass(frozen=True)
class Skip:
    """Audio not decoded (gated silence): `nbytes` of stream time."""

    nbytes: int


@dataclass(frozen=True)
class End:
    """The utterance is over: `silence`, `cap`, `flush` (no more audio / track ended);
    `silence_s`: the trailing silence it waited for (stream seconds)."""

    reason: str
    silence_s: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class Pause:
    """The open utterance has had `pause_s` of trailing silence (it may be about to end)."""


@dataclass(frozen=True)
class Resume:
    """Speech came back after a `Pause`: the utterance goes on."""


Event = Feed | Skip | Pause | Resume | End


class Endpointer:
    """Voice-activity endpointing for one stream (not thread-safe; one per speaker)."""

    def __init__(
        self,
        config: EndpointConfig | None = None,
        finished: Callable[[str], bool | None] | None = None,
    ) -> None:
        """`finished`: whether a partial looks like a finished sentence (None: can't tell);
        without it the fixed `silence_s` rule applies."""
        self.config = config or EndpointConfig()
        self._finished = finished
        self._unfinished = False
        self._vad = webrtcvad.Vad(self.config.vad_mode)
        self._rest = b""
        self._preroll: deque[bytes] = deque(maxlen=max(1, round(self.config.preroll_s / FRAME_S)))
        self._open = False
        self._length = 0.0
        self._speech = 0.0
        self._trailing = 0.0
        self._paused = False
        self.utterances = 0
        self.fed_bytes = 0
        self.skipped_bytes = 0

    @property
    def adaptive(self) -> bool:
        """Whether the silence adapts to the recognizer's partials (a `finished` rule)."""
        return self._finished is not None

    @property
    def open(self) -> bool:
        """Whether an utterance has begun and not ended."""
        return self._open

    def heard(self, text: str) -> None:
        """The recognizer's latest partial for the open utterance (call after feeding)."""
        if self._finished is not None and self._open:
            self._unfinished = self._finished(text) is False

    @property
    def silence_needed(self) -> float:
        """Trailing silence that closes the open utterance now (see the module docstring)."""
        config = self.config
        if self._unfinished and self._speech < config.long_speech_s:
            return max(config.silence_s, config.unfinished_silence_s)
        return config.silence_s

    def process(self, pcm: bytes) -> list[Event]:
        """Classify `pcm` in 30 ms frames; return the events in stream order."""
        data = self._rest + pcm
        whole = len(data) - len(data) % FRAME_BYTES
        self._rest = data[whole:]
        events: list[Event] = []
        for offset in range(0, whole, FRAME_BYTES):
            self._frame(data[offset : offset + FRAME_BYTES], events)
        return _merged(events)

    def flush(self) -> list[Event]:
        """No more audio for now (track ended, muted, stopped): close the open utterance."""
        events: list[Event] = []
        rest, self._rest = self._rest, b""
        if self._open or not self.config.gate:
            if rest:
                events.append(Feed(rest))
                self.fed_bytes += len(rest)
            if self._open:
                self._close("flush", events)
        else:
            held = sum(len(f) for f in self._preroll) + len(rest)
            self._preroll.clear()
            if held:
                events.append(Skip(held))
                self.skipped_bytes += held
        return events

    def _frame(self, frame: bytes, events: list[Event]) -> None:
        config = self.config
        speech = self._vad.is_speech(frame, SAMPLE_RATE)
        if not self._open:
            if not speech:
                if not config.gate:
                    self._feed(frame, events)
                    return
                if len(self._preroll) == self._preroll.maxlen:
                    events.append(Skip(len(self._preroll[0])))
                    self.skipped_bytes += len(self._preroll[0])
                self._preroll.append(frame)
                return
            self._open = True
            self._length = self._speech = self._trailing = 0.0
            for kept in self._preroll:
                self._feed(kept, events)
            self._preroll.clear()
        self._feed(frame, events)
        self._length += FRAME_S
        eps = 1e-6
        if speech:
            self._speech += FRAME_S
            self._trailing = 0.0
            if self._paused:
                self._paused = False
                events.append(Resume())
        else:
            self._trailing += FRAME_S
            if not self._paused and self._trailing + eps >= config.pause_s:
                self._paused = True
                events.append(Pause())
        if (
            self._trailing + eps >= self.silence_needed
            and self._speech + eps >= config.min_speech_s
        ):
            self._close("silence", events)
        elif self._trailing + eps >= config.long_silence_s:
            self._close("silence", events)
        elif self._length + eps >= config.max_utterance_s and (
            self._trailing + eps >= config.cap_pause_s
            or self._length + eps >= config.max_utterance_s + config.hard_extra_s
        ):
            self._close("cap", events)

    def _feed(self, frame: bytes, events: list[Event]) -> None:
        events.append(Feed(frame))
        self.fed_bytes += len(frame)

    def _close(self, reason: str, events: list[Event]) -> None:
        events.append(End(reason, self._trailing))
        self._open = False
        self._paused = False
        self._unfinished = False
        self.utterances += 1
        self._length = self._speech = self._trailing = 0.0


def _merged(events: list[Event]) -> list[Event]:
    """Adjacent feeds (and adjacent skips) joined: fewer recognizer calls."""
    out: list[Event] = []
    for event in events:
        last = out[-1] if out else None
        if isinstance(event, Feed) and isinstance(last, Feed):
            out[-1] = Feed(last.pcm + event.pcm)
        elif isinstance(event, Skip) and isinstance(last, Skip):
            out[-1] = Skip(last.nbytes + event.nbytes)
        else:
            out.append(event)
    return out
