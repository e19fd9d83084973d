"""The one loop that applies an endpointer's events to a recognizer.

`translation.endpointing.Endpointer` says what to do with each piece of a speaker's audio
(`Feed`, `Skip`, `Pause`, `Resume`, `End`); `UtteranceDriver` does it: feeds and skips the
recognizer, tells it about pauses, asks it for the final at each `End`, and passes each partial
to the endpointer's adaptive silence rule (`Endpointer.heard`). The server's captions thread
(`server/media_sessions/captions.py`), the endpointing tests and `bench/pauses.py` /
`bench/gating.py` all run this loop, so what they measure is what the server does. Pure: no
threads, no clocks; results go to callbacks in stream order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .endpointing import FRAME_BYTES, End, Endpointer, Event, Feed, Pause, Resume, Skip
from .speech import SpeechResult

BYTES_PER_SECOND = 16000 * 2
#: With an adaptive silence rule, audio is endpointed one 30 ms frame at a time, the recognizer
#: fed in between (as in real time, when 20 ms chunks arrive one by one): the rule decides on
#: the partial of the audio before each frame even when the captions thread takes 250 ms at
#: once (behind real time). Measured: a line then ends where it does in real time, not up to
#: 0.15 s later (tests/integration/test_endpointing.py).
ADAPTIVE_STEP_BYTES = FRAME_BYTES


class Driven(Protocol):
    """The recognizer methods the loop calls (``translation.speech_engines.Recognizer``)."""

    def feed(self, pcm: bytes) -> list[SpeechResult]: ...

    def skip(self, nbytes: int) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def end_utterance(self, max_silence_s: float = 1.5) -> SpeechResult | None: ...


#: a result, and the `End` that closed its utterance (None: the recognizer ended it itself, or
#: a partial)
OnResult = Callable[[SpeechResult, End | None], None]
#: each event but `Feed`/`Skip`, before it is applied, with the stream second it happens at
OnEvent = Callable[[Event, float], None]


class UtteranceDriver:
    """One speaker's endpointer driving one recognizer (None: the events alone, e.g. to time
    them). Not thread-safe: one per speaker, used from one thread."""

    def __init__(
        self,
        endpointer: Endpointer,
        recognizer: Driven | None,
        on_result: OnResult | None = None,
        on_event: OnEvent | None = None,
    ) -> None:
        self.endpointer = endpointer
        self.recognizer = recognizer
        self._on_result = on_result
        self._on_event = on_event
        self.position_bytes = 0  # stream handled so far: fed plus skipped
        #: the open utterance's latest partial text ("" after each End): what its final will
        #: almost always say (Vosk)
        self.last_partial = ""

    @property
    def position(self) -> float:
        """Seconds of stream the events covered so far."""
        return self.position_bytes / BYTES_PER_SECOND

    def process(self, pcm: bytes) -> None:
        """Endpoint `pcm` and apply what it says (with an adaptive silence rule, a frame at a
        time: see `ADAPTIVE_STEP_BYTES`)."""
        if not self.endpointer.adaptive or len(pcm) <= ADAPTIVE_STEP_BYTES:
            self.apply(self.endpointer.process(pcm))
            return
        for offset in range(0, len(pcm), ADAPTIVE_STEP_BYTES):
            self.apply(self.endpointer.process(pcm[offset : offset + ADAPTIVE_STEP_BYTES]))

    def flush(self, reason: str | None = None) -> None:
        """No more audio for now: close the open utterance (its `End` says `reason`, by
        default the endpointer's own, `flush`)."""
        events = self.endpointer.flush()
        if reason is not None:
            events = [End(reason, e.silence_s) if isinstance(e, End) else e for e in events]
        self.apply(events)

    def apply(self, events: list[Event]) -> None:
        """Apply `events` in order."""
        recognizer = self.recognizer
        for event in events:
            if isinstance(event, Feed):
                self.position_bytes += len(event.pcm)
                if recognizer is not None:
                    for result in recognizer.feed(event.pcm):
                        if not result.final:
                            self.endpointer.heard(result.text)
                            self.last_partial = result.text
                        else:
                            self.last_partial = ""
                        self._result(result, None)
                continue
            if isinstance(event, Skip):
                self.position_bytes += event.nbytes
                if recognizer is not None:
                    recognizer.skip(event.nbytes)
                continue
            if self._on_event is not None:
                self._on_event(event, self.position)
            if recognizer is None:
                continue
            if isinstance(event, Pause):
                recognizer.pause()
            elif isinstance(event, Resume):
                recognizer.resume()
            elif isinstance(event, End):
                self.last_partial = ""
                final = recognizer.end_utterance()
                if final is not None:
                    self._result(final, event)

    def _result(self, result: SpeechResult, end: End | None) -> None:
        if self._on_result is not None:
            self._on_result(result, end)
