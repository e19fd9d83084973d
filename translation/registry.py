"""Find the installed translation engines and build a Translator from them."""

from __future__ import annotations

import logging
from pathlib import Path

from .engines.apertium import ApertiumEngine
from .engines.apertium import is_installed as apertium_installed
from .engines.argos import ArgosEngine
from .engines.base import Engine
from .glossary import TradeGlossaries
from .translator import Translator

log = logging.getLogger(__name__)


def discover_engines(data_dir: Path | str) -> list[Engine]:
    """The installed engines, best first: Argos (if a package is installed in
    ``<data>/models/argos``), then Apertium (if Debian's apertium and a pair are installed)."""
    engines: list[Engine] = []
    argos = ArgosEngine(Path(data_dir))
    if argos.pairs():
        engines.append(argos)
    if apertium_installed():
        engines.append(ApertiumEngine())
    log.info(
        "translation engines: %s",
        ", ".join(f"{e.name} ({len(e.pairs())} pairs)" for e in engines) or "none",
    )
    return engines


def build_translator(data_dir: Path | str) -> Translator:
    """A Translator over :func:`discover_engines` (may have no engines: every pair then
    raises TranslationUnavailable), with the default trade glossaries (shipped, and the
    deployer's ``<data>/glossaries``)."""
    return Translator(discover_engines(data_dir), TradeGlossaries(data_dir))


def refresh_engines(translator: Translator, data_dir: Path | str) -> bool:
    """Add the Argos engine to a running ``translator`` once packages appear in the data dir
    (installed while it runs); True when it was added. An existing Argos engine sees new
    packages by itself (it re-reads its folder when that changes)."""
    if any(isinstance(engine, ArgosEngine) for engine in translator.engines):
        return False
    argos = ArgosEngine(Path(data_dir))
    if not argos.pairs():
        return False
    translator.engines = [argos, *translator.engines]  # one rebinding: readers see old or new
    log.info("translation engines: argos added (%d pairs)", len(argos.pairs()))
    return True
