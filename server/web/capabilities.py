"""`GET /api/capabilities` and the operator's view of the installed models.

`add_capability_routes(app, translation, data_dir)` adds the public route (no token: the
sign-in page reads it before anyone signs in; it says only which languages are recognized and
which pairs translate) and puts a `ModelStatus` under `app[MODELS]`, which `/healthz` reports to the
operator (`models`: provisioning state, what of the default set is missing, the command that
installs it). Install commands appear only there, never in the public document.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from translation.capabilities import capabilities
from translation.paths import argos_packages_dir, vosk_models_dir
from translation.provisioning import DEFAULT_SET, missing
from translation.service import TranslationService
from translation.translator import Translator

CACHE_S = 30.0  # the document is recomputed at least this often


class ModelStatus:
    """The capability document (cached) and provisioning's state, for one server process."""

    def __init__(self, translation: TranslationService, data_dir: Path) -> None:
        self.translation = translation  # its translator: None while the engines load
        self.data_dir = data_dir
        # off | running | done | offline | failed | waiting (an earlier attempt failed) | busy
        self.provisioning = "off"
        self._cached: tuple[float, tuple[float, ...], dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Forget the cached document (engines changed)."""
        self._cached = None

    def _loaded(self) -> Translator:
        """The engines (the route answers 503 until they are loaded)."""
        assert self.translation.translator is not None, "asked before the engines loaded"
        return self.translation.translator

    def _compute(self) -> dict[str, Any]:
        from translation.registry import refresh_engines

        translator = self._loaded()
        refresh_engines(translator, self.data_dir)  # packages installed while running count
        return capabilities(translator, self.data_dir)

    def _stamp(self) -> tuple[float, ...]:
        """Changes when models are installed or removed in the data dir."""
        stamps = []
        for folder in (argos_packages_dir(self.data_dir), vosk_models_dir(self.data_dir)):
            try:
                stamps.append(folder.stat().st_mtime)
            except OSError:
                stamps.append(0.0)
        return (*stamps, len(self._loaded().engines))

    async def capabilities(self) -> dict[str, Any]:
        """The document of `GET /api/capabilities`: recomputed when models change in the data
        dir, else at most `CACHE_S` old (speech packages installed with pip)."""
        async with self._lock:
            stamp, cached = self._stamp(), self._cached
            if cached is None or cached[1] != stamp or time.monotonic() - cached[0] > CACHE_S:
                document = await asyncio.to_thread(self._compute)
                cached = (time.monotonic(), self._stamp(), document)
                self._cached = cached
            return cached[2]

    def operator(self) -> dict[str, Any]:
        """For `/healthz`: provisioning state and the install command for what is missing."""
        absent = missing(self.data_dir, DEFAULT_SET)
        return {
            "provisioning": self.provisioning,
            "missing": absent,
            "install": f"tradetalk models install {' '.join(absent)}" if absent else None,
        }


MODELS = web.AppKey("models", ModelStatus)


async def capabilities_handler(request: web.Request) -> web.Response:
    """`GET /api/capabilities` → `{languages, speech, translation}` (see docs/protocol.md)."""
    if request.app[MODELS].translation.translator is None:  # engines still loading
        raise web.HTTPServiceUnavailable(text="engines are loading; try again")
    document = await request.app[MODELS].capabilities()
    return web.json_response(document, headers={"Cache-Control": "no-cache"})


def add_capability_routes(
    app: web.Application, translation: TranslationService, data_dir: Path
) -> ModelStatus:
    """Add `GET /api/capabilities`; returns the process's `ModelStatus` (also `app[MODELS]`)."""
    status = ModelStatus(translation, data_dir)
    app[MODELS] = status
    app.router.add_get("/api/capabilities", capabilities_handler)
    return status
