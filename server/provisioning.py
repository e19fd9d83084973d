"""`tradetalk serve`'s first-run model provisioning, in the background after the server starts.

`add_provisioning(app, settings)` (called by `server/cli.py`) adds a start-up step that never
delays serving: with `TRADETALK_PROVISION=auto` and provisioning due (see
`translation.provisioning.due`), the default translation packages are installed by a daemon
thread (a shutdown does not wait for a download); the new engines are added to the running
translator and warmed, so they serve without a restart. Otherwise, or when it fails, one log
line names what is missing and the command that installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading

from aiohttp import web

from server.background import TaskSet
from server.config import Settings
from server.web.capabilities import MODELS, ModelStatus
from translation.capabilities import missing_speech_line, speech_languages
from translation.installer import argos_name_pair
from translation.provisioning import (
    DEFAULT_SET,
    RETRY_AFTER_S,
    Outcome,
    describe_pairs,
    due,
    missing,
    missing_line,
    pending,
    provision,
)

log = logging.getLogger("tradetalk.models")


def add_provisioning(app: web.Application, settings: Settings) -> None:
    """Provision (or say what is missing) once the app has started; see the module doc."""

    async def report_speech() -> None:
        speech = await asyncio.to_thread(speech_languages, settings.data_dir)
        line = missing_speech_line(speech)
        if line:
            log.warning(line)

    async def start(app: web.Application) -> None:
        status: ModelStatus = app[MODELS]
        data_dir = settings.data_dir
        tasks.spawn(report_speech())
        absent = await asyncio.to_thread(missing, data_dir, DEFAULT_SET)
        if settings.provision == "off":
            if absent:
                log.warning(missing_line(absent, "TRADETALK_PROVISION=off"))
            return
        if not await asyncio.to_thread(due, data_dir, DEFAULT_SET):
            todo = await asyncio.to_thread(pending, data_dir, DEFAULT_SET)
            if todo:
                status.provisioning = "waiting"
                why = f"an earlier attempt failed; tried again {RETRY_AFTER_S / 3600:g} h after it"
                log.warning(missing_line(todo, why))
            elif absent:
                log.warning(missing_line(absent, "removed"))
            return
        status.provisioning = "running"
        todo = await asyncio.to_thread(pending, data_dir, DEFAULT_SET)
        log.info(
            "models: installing translation %s in the background (TRADETALK_PROVISION=off skips)",
            describe_pairs(todo),
        )
        loop = asyncio.get_running_loop()

        def run() -> None:
            try:
                outcome = provision(data_dir, DEFAULT_SET, progress=sys.stderr)
            except Exception as exc:  # never take the server down
                log.exception("models: provisioning failed")
                outcome = Outcome(failed=dict.fromkeys(todo, repr(exc)))
            with contextlib.suppress(RuntimeError):  # the loop closed: the server stopped
                loop.call_soon_threadsafe(finished, outcome)

        def finished(outcome: Outcome) -> None:
            if outcome.busy:
                status.provisioning = "busy"
                log.info("models: another process is installing them; restart to use them")
                return
            if outcome.installed:
                added = _use_new_engines(status, outcome.installed, tasks)
                log.info(
                    "models: installed %s; %s",
                    describe_pairs(outcome.installed),
                    "in use now (no restart needed)" if added else "restart to use them",
                )
            if outcome.failed:
                status.provisioning = "offline" if outcome.offline else "failed"
                log.warning(missing_line(list(outcome.failed), status.provisioning))
            else:
                status.provisioning = "done"

        threading.Thread(target=run, name="provision-models", daemon=True).start()

    async def stop(app: web.Application) -> None:
        await tasks.cancel()

    tasks = TaskSet()
    app.on_startup.append(start)
    app.on_shutdown.append(stop)


def _use_new_engines(status: ModelStatus, installed: list[str], tasks: TaskSet) -> bool:
    """Add newly installed engines to the running translator and warm the installed pairs in
    the background; False when there is no translator to add them to."""
    from translation.registry import refresh_engines

    translator = status.translation.translator
    if translator is None:
        return False
    refresh_engines(translator, status.data_dir)
    status.invalidate()
    service = status.translation
    pairs = [pair for pair in map(argos_name_pair, installed) if pair is not None]
    if pairs and service is not None:
        tasks.spawn(service.warm(pairs))
    return True
