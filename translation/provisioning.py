"""First-run provisioning: install the default translation packages once, from the catalogue.

The default set is Argos en<->zh, ko, ja, de, fr, es (both directions). ``provision`` fetches
the Argos index once, downloads each missing package (progress bar and checksums as in
``translation.model_downloads``; every archive's CRCs are checked) and installs it through the
installer. What happened is kept in ``<data>/models/provision.json``, so later starts do not
try again: an installed name is never fetched again (removing it with ``tradetalk models
remove`` sticks), a failed or offline one only after ``RETRY_AFTER_S``. One process at a time
(a lock file); others skip. ``tradetalk models provision`` runs it now, ignoring the wait.
"""

from __future__ import annotations

import fcntl
import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from . import model_downloads
from .installer import InstallError, argos_name_pair, argos_packages, install_from_catalogue
from .model_downloads import DownloadError
from .paths import models_dir

log = logging.getLogger(__name__)

DEFAULT_PARTNERS = ("zh", "ko", "ja", "de", "fr", "es")
DEFAULT_SET: tuple[str, ...] = tuple(
    name for lang in DEFAULT_PARTNERS for name in (f"translate-en_{lang}", f"translate-{lang}_en")
)
RETRY_AFTER_S = 24 * 3600.0  # a failed or offline attempt is not repeated sooner at start
MODES = ("auto", "off")


@dataclass
class Outcome:
    """What one provisioning run did."""

    installed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> why
    offline: bool = False  # the catalogue could not be reached at all
    busy: bool = False  # another process holds the lock: nothing was tried


def state_path(data_dir: Path | str) -> Path:
    """``<data>/models/provision.json``: what earlier runs installed or failed."""
    return models_dir(data_dir) / "provision.json"


def read_state(data_dir: Path | str) -> dict[str, Any]:
    """The saved state (``{}`` when no run happened or the file is unreadable)."""
    try:
        state = json.loads(state_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _write_state(data_dir: Path | str, state: dict[str, Any]) -> None:
    path = state_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def installed_names(data_dir: Path | str) -> set[str]:
    """Catalogue names of the Argos packages installed in the data dir."""
    return {f"translate-{src}_{dst}" for src, dst, _ in argos_packages(Path(data_dir))}


def missing(data_dir: Path | str, names: Sequence[str] = DEFAULT_SET) -> list[str]:
    """The names of ``names`` not installed now (whatever earlier runs did)."""
    have = installed_names(data_dir)
    return [name for name in names if name not in have]


def pending(data_dir: Path | str, names: Sequence[str] = DEFAULT_SET) -> list[str]:
    """The names a run would fetch: missing, and not installed by an earlier run (an operator
    who removed one keeps it removed)."""
    done = read_state(data_dir).get("installed", {})
    return [name for name in missing(data_dir, names) if name not in done]


def due(data_dir: Path | str, names: Sequence[str] = DEFAULT_SET, now: float | None = None) -> bool:
    """Whether a start should run provisioning: something is pending, and no attempt was made
    in the last ``RETRY_AFTER_S``."""
    if not pending(data_dir, names):
        return False
    attempted = read_state(data_dir).get("attempted_at")
    now = time.time() if now is None else now
    return not isinstance(attempted, (int, float)) or now - attempted >= RETRY_AFTER_S


@contextmanager
def _exclusive(data_dir: Path | str) -> Iterator[bool]:
    """Hold ``<data>/models/.provision.lock``; yields False when another process holds it."""
    path = models_dir(data_dir) / ".provision.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def provision(
    data_dir: Path | str,
    names: Sequence[str] = DEFAULT_SET,
    progress: IO[str] | None = None,
    now: float | None = None,
    reinstall_removed: bool = False,
) -> Outcome:
    """Install the pending ``names`` from the catalogue and record the outcome.
    ``reinstall_removed``: also the ones an earlier run installed and an operator removed."""
    data_dir = Path(data_dir)
    outcome = Outcome()
    with _exclusive(data_dir) as mine:
        if not mine:
            outcome.busy = True
            return outcome
        todo = missing(data_dir, names) if reinstall_removed else pending(data_dir, names)
        if not todo:
            return outcome
        state = read_state(data_dir)
        state["attempted_at"] = time.time() if now is None else now
        installed = state.setdefault("installed", {})
        index: list[dict] | None = None
        try:
            if any(argos_name_pair(name) for name in todo):
                index = model_downloads.fetch_json(model_downloads.argos_index_url())
        except DownloadError as exc:
            outcome.offline = True
            outcome.failed = dict.fromkeys(todo, str(exc))
        else:
            for position, name in enumerate(todo, 1):
                log.info("models: %s (%d of %d)", name, position, len(todo))
                try:
                    summary = install_from_catalogue(
                        name, data_dir, progress=progress or sys.stderr, argos_index=index
                    )
                except (InstallError, DownloadError, OSError) as exc:
                    outcome.failed[name] = str(exc)
                    log.warning("models: %s not installed: %s", name, exc)
                    continue
                outcome.installed.append(name)
                installed[name] = state["attempted_at"]
                log.info("models: %s", summary)
        state["failed"] = outcome.failed
        state["offline"] = outcome.offline
        _write_state(data_dir, state)
    return outcome


def describe_pairs(names: Sequence[str]) -> str:
    """``en↔zh, en→ko`` for catalogue names (both directions of a pair shown as one)."""
    pairs = [pair for pair in map(argos_name_pair, names) if pair is not None]
    wanted = set(pairs)
    shown: list[str] = []
    seen: set[tuple[str, str]] = set()
    for src, dst in pairs:
        if (src, dst) in seen:
            continue
        seen.add((src, dst))
        if (dst, src) in wanted:
            seen.add((dst, src))
            first, second = sorted((src, dst), key=lambda code: (code != "en", code))
            shown.append(f"{first}↔{second}")
        else:
            shown.append(f"{src}→{dst}")
    return ", ".join(shown)


def missing_line(names: Sequence[str], why: str = "") -> str:
    """The one log line naming what is missing and the command that installs it."""
    return (
        f"translation: {describe_pairs(names)} not installed{f' ({why})' if why else ''}; run "
        f"`tradetalk models install {' '.join(names)}` with internet"
    )
