"""Live captions for one speaker: their call audio recognized on a worker thread.

The media room hands 16 kHz mono PCM to `feed` on the event loop; recognition (≈ one core per
stream at worst) runs on this speaker's own thread, and each partial or final result is posted
back to the event loop. The queue is bounded: if recognition falls behind by more than
`max_backlog_s` of audio, the oldest audio is dropped (and counted) rather than growing
without limit or delaying captions further.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from translation.speech import RECOGNIZERS, SpeechResult, StreamingRecognizer

log = logging.getLogger("tradetalk.captions")

BYTES_PER_SECOND = 16000 * 2
MAX_BATCH_BYTES = BYTES_PER_SECOND // 4


class SpeakerCaptions:
    """Feeds one speaker's audio to a streaming recognizer on a dedicated thread."""

    def __init__(
        self,
        model: Any,
        loop: asyncio.AbstractEventLoop,
        on_result: Callable[[SpeechResult], None],
        name: str = "captions",
        max_backlog_s: float = 10.0,
    ) -> None:
        self.loop = loop
        self.on_result = on_result
        self.dropped_bytes = 0
        self.fed_bytes = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=int(max_backlog_s * 50))
        self._recognizer = StreamingRecognizer(model, pool=RECOGNIZERS)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def feed(self, pcm: bytes) -> None:
        """Queue audio without blocking; drop the oldest chunk when the backlog is full."""
        self.fed_bytes += len(pcm)
        while True:
            try:
                self._queue.put_nowait(pcm)
                return
            except queue.Full:
                try:
                    dropped = self._queue.get_nowait()
                    self.dropped_bytes += len(dropped or b"")
                except queue.Empty:
                    pass

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
                chunk = self._queue.get()
                pending = [chunk]
                size = len(chunk or b"")
                # Batch what has queued, up to 250 ms: fewer calls when behind, yet partials
                # still come out while the speaker talks.
                while chunk is not None and size < MAX_BATCH_BYTES and not self._queue.empty():
                    chunk = self._queue.get_nowait()
                    pending.append(chunk)
                    size += len(chunk or b"")
                audio = b"".join(c for c in pending if c is not None)
                if audio:
                    for result in self._recognizer.feed(audio):
                        self._post(result)
                if pending[-1] is None:
                    final = self._recognizer.finish()
                    if final is not None:
                        self._post(final)
                    self._recognizer.close()  # a warm recognizer for the next speaker
                    return
        except Exception:
            log.exception("speech recognition failed")
