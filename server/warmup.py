"""Readiness: what a node's first call needs is done before `/healthz` says ready.

The first call after a start used to wait for the speech model to load (the preload ran in
the background while the node already said it was healthy), for a fresh Vosk
recognizer's first utterance (about four times the CPU of later ones) and for the media
engine's first peer connection: its first line came seconds late. A media node now runs
`Warmup.run()` in the background as it starts serving, and `/healthz` answers 503 with the
step in progress until it is done. The translation engines are warmed before the server
listens at all (`Realtime.start`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from media.warmup import warm_media
from translation.endpointing import EndpointConfig, Endpointer
from translation.speech_engines import VOSK, open_recognizer, preload

log = logging.getLogger("tradetalk.warmup")

WARM_AUDIO_S = 2.0  # decoded once per language by a recognizer that then waits in the pool


def warm_recognizers(data_dir: Path, engines: dict[str, str]) -> list[str]:
    """Per Vosk language: one recognizer decodes a little audio and goes back to the
    process's pool, where the first speaker of that language picks it up (Whisper's shared
    decoder was warmed by `preload`); and the voice-activity detector is loaded once.
    Returns the languages warmed."""
    Endpointer(EndpointConfig()).process(bytes(960))
    noise = np.random.default_rng(7).normal(0, 1000, int(16000 * WARM_AUDIO_S))
    pcm = noise.astype(np.int16).tobytes()
    warmed = []
    for lang, engine in engines.items():
        if engine != VOSK:
            continue
        try:
            _, recognizer = open_recognizer(lang, data_dir)
        except Exception as exc:  # a broken model: nothing to warm
            log.warning("no recognizer warmed for %s (%s)", lang, exc)
            continue
        warmed.append(lang)
        try:
            for i in range(0, len(pcm), 3200):
                recognizer.feed(pcm[i : i + 3200])
            recognizer.end_utterance()
        finally:
            recognizer.close()
    return warmed


class Warmup:
    """The warm-up of one node and why it is not ready yet (`reason`, None once ready)."""

    def __init__(self, data_dir: Path, media: bool) -> None:
        self.data_dir = data_dir
        self.media = media
        self.reason: str | None = "starting"
        self.took_s: float | None = None

    @property
    def ready(self) -> bool:
        """Whether the first call gets what later calls get."""
        return self.reason is None

    async def run(self) -> None:
        """Load the speech models, warm a recognizer per language and the media engine (media
        nodes only), then say ready. A failing step is logged and skipped: it must not keep
        the node out of service."""
        began = time.monotonic()
        if self.media:
            self.reason = "warming up: loading speech models"
            engines = await self._step("speech models", preload, self.data_dir)
            self.reason = "warming up: speech recognizers"
            await self._step("speech recognizers", warm_recognizers, self.data_dir, engines or {})
            self.reason = "warming up: media engine"
            started = time.monotonic()
            await warm_media()
            log.info("warm: media engine (%.1f s)", time.monotonic() - started)
        self.took_s = time.monotonic() - began
        self.reason = None
        log.info("ready: warmed up in %.1f s", self.took_s)

    async def _step(self, name: str, work: Callable[..., Any], *args: Any) -> Any:
        started = time.monotonic()
        try:
            result = await asyncio.to_thread(work, *args)
        except Exception:
            log.exception("warming %s failed; the first call pays for it", name)
            return None
        shown = ""
        if isinstance(result, dict) and result:  # lang -> engine
            engines = sorted(set(result.values()))
            per = [f"{e} {sum(1 for v in result.values() if v == e)}" for e in engines]
            shown = f" for {len(result)} languages ({', '.join(per)})"
        elif result:
            shown = f" for {', '.join(sorted(result))}"
        log.info("warm: %s%s (%.1f s)", name, shown, time.monotonic() - started)
        return result
