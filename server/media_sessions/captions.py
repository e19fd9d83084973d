"""Live captions for one speaker: their call audio recognized on a worker thread.

The media room hands 16 kHz mono PCM to `feed` on the event loop; recognition (≈ one core per
stream at worst) runs on this speaker's own thread, and each partial or final result is posted
back to the event loop. The queue is bounded: if recognition falls behind by more than
`max_backlog_s` of audio, the oldest half of it is dropped (and counted) rather than growing
without limit or delaying captions further: one gap, not many, and the missing stretch still
counts on the stream's clock (as gated silence does), so later lines keep their times.

Endpointing (`EndpointConfig`, from the environment by `endpoint_config_from_env`): a
voice-activity detector (`translation.endpointing`) closes each utterance after a short
silence and asks the recognizer for its final (longer after a partial that does not look like
a finished sentence: each partial is passed to `Endpointer.heard`); silence between
utterances is not decoded.
An open utterance is also closed when no audio has arrived for `gap_s` (muted track, dropped
network, ended track), on `flush()` and on `close()`. Without a config, Vosk's own endpoint
rules decide (the old behaviour, kept as the benchmark's baseline).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping

from translation.endpoint_driver import UtteranceDriver
from translation.endpointing import End, EndpointConfig, Endpointer, Skip
from translation.sentence_ends import finished_rule
from translation.speech import SpeechResult
from translation.speech_engines import Recognizer

log = logging.getLogger("tradetalk.captions")

BYTES_PER_SECOND = 16000 * 2
MAX_BATCH_BYTES = BYTES_PER_SECOND // 4
DEFAULT_GAP_S = 0.5
_FLUSH = b""  # queued by `flush()`: close the open utterance now


def endpoint_config_from_env(env: Mapping[str, str] | None = None) -> EndpointConfig | None:
    """`TRADETALK_ENDPOINT` (`vad`, default, or `model` for Vosk's own rules),
    `TRADETALK_ENDPOINT_SILENCE_S` (0.25), `TRADETALK_ENDPOINT_UNFINISHED_S` (0.45: the silence
    after a partial that does not look like a finished sentence, for languages with a rule in
    `translation.sentence_ends`), `TRADETALK_UTTERANCE_MAX_S` (15) and
    `TRADETALK_SILENCE_GATE` (1; 0 feeds silence to the recognizer too)."""
    env = os.environ if env is None else env
    mode = (env.get("TRADETALK_ENDPOINT") or "vad").strip().lower()
    if mode == "model":
        return None
    if mode != "vad":
        raise ValueError("TRADETALK_ENDPOINT must be 'vad' or 'model'")
    defaults = EndpointConfig()
    return EndpointConfig(
        silence_s=float(env.get("TRADETALK_ENDPOINT_SILENCE_S") or defaults.silence_s),
        unfinished_silence_s=float(
            env.get("TRADETALK_ENDPOINT_UNFINISHED_S") or defaults.unfinished_silence_s
        ),
        max_utterance_s=float(env.get("TRADETALK_UTTERANCE_MAX_S") or defaults.max_utterance_s),
        gate=(env.get("TRADETALK_SILENCE_GATE") or "1") not in ("0", "false", "no"),
    )


def audio_gap_from_env(env: Mapping[str, str] | None = None) -> float:
    """`TRADETALK_AUDIO_GAP_S` (0.5): no audio for this long closes the open utterance."""
    env = os.environ if env is None else env
    value = float(env.get("TRADETALK_AUDIO_GAP_S") or DEFAULT_GAP_S)
    if not 0.1 <= value <= 10.0:
        raise ValueError("TRADETALK_AUDIO_GAP_S must be between 0.1 and 10 seconds")
    return value


class SpeakerCaptions:
    """Feeds one speaker's audio to a streaming recognizer on a dedicated thread."""

    def __init__(
        self,
        recognizer: Recognizer,
        loop: asyncio.AbstractEventLoop,
        on_result: Callable[[SpeechResult], None],
        name: str = "captions",
        max_backlog_s: float = 10.0,
        endpoint: EndpointConfig | None = None,
        gap_s: float = DEFAULT_GAP_S,
        lang: str | None = None,
        on_closing: Callable[[str], None] | None = None,
    ) -> None:
        """`recognizer`: this speaker's own (`translation.speech_engines.open_recognizer`), closed
        with the captions; `endpoint`: server-side endpointing (None: Vosk's own rules);
        `gap_s`: no audio for this long closes an open utterance (with `endpoint` only);
        `lang`: the speaker's language (its sentence-end rule, if any, adapts the silence);
        `on_closing(text)`: an utterance is being closed, its latest partial was `text` (posted
        to the loop before the recognizer's final, which comes after it has decoded the
        closing silence: 40-300 ms)."""
        self.loop = loop
        self.on_result = on_result
        self.on_closing = on_closing
        self.dropped_bytes = 0
        self.fed_bytes = 0
        self.gap_s = gap_s
        #: how each utterance was closed: reason -> count (silence, cap, gap, flush, model)
        self.closed_by: dict[str, int] = {}
        self._recognizer = recognizer
        self._driver = (
            UtteranceDriver(
                Endpointer(endpoint, finished_rule(lang)), recognizer, self._driven, self._event
            )
            if endpoint is not None
            else None
        )
        self._last_audio = time.monotonic()
        #: (audio, when it was queued, its first byte's place in the stream); None stops
        self._queue: queue.Queue[tuple[bytes, float, int] | None] = queue.Queue(
            maxsize=int(max_backlog_s * 50)
        )
        self._batch = (0.0, 0.0)  # the batch being decoded: its newest chunk queued, dequeued
        self._ended_at = 0.0  # when the driver reached the latest `End`
        self._decoded_to = 0  # stream bytes decoded or skipped (thread)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def feed(self, pcm: bytes) -> None:
        """Queue audio without blocking; drop the oldest chunk when the backlog is full."""
        if not pcm:
            return
        self._put(pcm)
        self.fed_bytes += len(pcm)

    def flush(self) -> None:
        """The speaker's audio stopped (track ended): close the open utterance now."""
        self._put(_FLUSH)

    @property
    def decoded_bytes(self) -> int:
        """Audio actually given to the recognizer (less than fed when silence is gated)."""
        if self._driver is None:
            return self.fed_bytes - self.dropped_bytes
        return self._driver.endpointer.fed_bytes

    def _put(self, pcm: bytes) -> None:
        item = (pcm, time.monotonic(), self.fed_bytes)
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                if not self._drop_oldest(max(1, self._queue.maxsize // 2)):
                    self.dropped_bytes += len(pcm)  # nothing but markers queued: drop this
                    return

    def _drop_oldest(self, count: int) -> int:
        """Drop the oldest `count` audio chunks at once (a flush or stop marker stays);
        returns how many were dropped."""
        with self._queue.mutex:  # queue.Queue's own lock: no get or put in between
            items, kept, left = self._queue.queue, [], count
            while items and left > 0:
                item = items.popleft()
                if item is None or item[0] == _FLUSH:
                    kept.append(item)
                    continue
                self.dropped_bytes += len(item[0])
                left -= 1
            items.extendleft(reversed(kept))
            self._queue.not_full.notify_all()
        return count - left

    def close(self, timeout: float = 5.0) -> None:
        """Flush the last utterance and stop the thread."""
        while True:
            try:
                self._queue.put(None, timeout=timeout)
                break
            except queue.Full:
                self._queue.get_nowait()
        self._thread.join(timeout)

    @property
    def backlog(self) -> int:
        """Audio chunks waiting for the recognizer."""
        return self._queue.qsize()

    @property
    def alive(self) -> bool:
        """Whether the worker thread still runs."""
        return self._thread.is_alive()

    def _post(self, result: SpeechResult) -> None:
        try:
            self.loop.call_soon_threadsafe(self.on_result, result)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    def _run(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=0.05)
                except queue.Empty:
                    self._check_gap()
                    continue
                pending = [item]
                size = len(item[0]) if item else 0
                # Batch what has queued, up to 250 ms: fewer calls when behind, yet partials
                # still come out while the speaker talks.
                while item and item[0] and size < MAX_BATCH_BYTES and not self._queue.empty():
                    item = self._queue.get_nowait()
                    pending.append(item)
                    size += len(item[0]) if item else 0
                queued = max((i[1] for i in pending if i is not None), default=time.monotonic())
                self._batch = (queued, time.monotonic())
                self._decode_in_order([i for i in pending if i and i[0]])
                if pending[-1] is not None and pending[-1][0] == _FLUSH:
                    self._end_utterance("flush")
                if pending[-1] is None:
                    self._end_utterance("flush")
                    return
        except Exception:
            log.exception("speech recognition failed")
        finally:
            self._recognizer.close()  # a Vosk recognizer goes back to its pool

    def _decode_in_order(self, chunks: list[tuple[bytes, float, int]]) -> None:
        """Decode consecutive chunks together; where chunks were dropped, the missing audio
        counts on the stream's clock."""
        run = bytearray()
        for pcm, _, at in chunks:
            if at > self._decoded_to:
                if run:
                    self._decode(bytes(run))
                    run.clear()
                self._skip_dropped(at - self._decoded_to)
            run += pcm
            self._decoded_to = at + len(pcm)
        if run:
            self._last_audio = time.monotonic()
            self._decode(bytes(run))

    def _skip_dropped(self, nbytes: int) -> None:
        if self._driver is None:
            self._recognizer.skip(nbytes)
        else:
            self._driver.apply([Skip(nbytes)])

    def _decode(self, audio: bytes) -> None:
        if self._driver is None:  # the model's own endpoint rules
            for result in self._recognizer.feed(audio):
                self._driven(result, None)
        else:
            self._driver.process(audio)

    def _event(self, event: object, position: float) -> None:
        if isinstance(event, End):
            self._ended_at = time.monotonic()
            text = self._driver.last_partial if self._driver is not None else ""
            if text and self.on_closing is not None:
                try:
                    self.loop.call_soon_threadsafe(self.on_closing, text)
                except RuntimeError:  # the loop is closed
                    pass

    def _driven(self, result: SpeechResult, end: End | None) -> None:
        """A result of the recognizer: counted by what closed it if final, then posted (a
        final with where its time went: `SpeechResult.timing`)."""
        if result.final:
            self._count(end.reason if end is not None else "model")
            queued, dequeued = self._batch
            result.timing.update(
                queued=queued,
                dequeued=dequeued,
                ended=self._ended_at or dequeued,
                closed=time.monotonic(),
                silence=end.silence_s if end is not None else 0.0,
                backlog=self._queue.qsize(),
            )
        self._post(result)

    def _end_utterance(self, reason: str) -> None:
        """Close whatever is open: the endpointer's utterance, then the recognizer's."""
        if self._driver is None:
            final = self._recognizer.finish()
            if final is not None:
                self._count(reason)
                self._post(final)
            return
        self._driver.flush(reason)

    def _check_gap(self) -> None:
        if self._driver is None or not self._driver.endpointer.open:
            return
        if time.monotonic() - self._last_audio >= self.gap_s:
            self._end_utterance("gap")

    def _count(self, reason: str) -> None:
        self.closed_by[reason] = self.closed_by.get(reason, 0) + 1
