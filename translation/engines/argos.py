"""argostranslate engine: installed Argos packages (CTranslate2 + SentencePiece).

Packages live in ``<data>/models/argos`` (installed with argostranslate's own
``argostranslate.package.install_from_path``). ``pairs()`` reads the packages' metadata
without importing argostranslate. The first translation imports ``argostranslate.translate``
(about 5 s: it pulls in stanza and torch) once per process, loads the package's CTranslate2
model once, and then translates through argostranslate's own
``argostranslate.translate.apply_packaged_translation`` (tokenize with the package's
SentencePiece, CTranslate2 beam search as argostranslate configures it, detokenize), with a
sentence splitter that returns the input whole: the caller (``translation.sentences``) has
already split the text, so argostranslate's own sentence boundary detection (MiniSBD or
stanza, which would try to download a model) never runs.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from ..paths import argos_packages_dir, configure_argos_env

log = logging.getLogger(__name__)

_import_lock = threading.Lock()


def import_argostranslate(data_dir: Path) -> Any:
    """Import ``argostranslate.translate`` once per process, configured for ``data_dir`` if it
    is the first import. Returns the module."""
    with _import_lock:
        if "argostranslate.settings" not in sys.modules:
            configure_argos_env(data_dir)
        import argostranslate.translate

        # argostranslate logs every text it translates at INFO: what users say stays out of logs
        logging.getLogger("argostranslate.utils").setLevel(logging.WARNING)
        return argostranslate.translate


class _WholeInput:
    """A sentence splitter for ``apply_packaged_translation`` that does not split."""

    def split_sentences(self, text: str) -> list[str]:
        return [text]


def read_packages(packages_dir: Path) -> dict[tuple[str, str], Path]:
    """Installed translate packages by (from_code, to_code), from their metadata.json."""
    found: dict[tuple[str, str], Path] = {}
    if not packages_dir.is_dir():
        return found
    for folder in sorted(packages_dir.iterdir()):
        metadata_file = folder / "metadata.json"
        if not metadata_file.is_file() or not (folder / "model").is_dir():
            continue
        try:
            metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("unreadable Argos package metadata: %s", metadata_file)
            continue
        if metadata.get("type", "translate") != "translate":
            continue
        src, dst = metadata.get("from_code"), metadata.get("to_code")
        if src and dst:
            found.setdefault((src, dst), folder)
    return found


class _LoadedPackage:
    """An argostranslate Package with its CTranslate2 translator, loaded once."""

    def __init__(self, module: Any, package_path: Path, intra_threads: int) -> None:
        import ctranslate2
        from argostranslate import package, settings

        self.module = module
        self.package = package.Package(package_path)
        self.translator = ctranslate2.Translator(
            str(package_path / "model"),
            device=settings.device,
            inter_threads=settings.inter_threads,
            intra_threads=intra_threads,
            compute_type=settings.compute_type,
        )
        self.package.tokenizer.encode("warm up")  # load SentencePiece now, not in two threads
        self.splitter = _WholeInput()

    def translate(self, sentence: str) -> str:
        hypotheses = self.module.apply_packaged_translation(
            self.package, sentence, self.translator, self.splitter, num_hypotheses=1
        )
        return str(hypotheses[0].value)


class ArgosEngine:
    """Translates with the Argos packages installed in ``<data_dir>/models/argos``."""

    name = "argos"

    def __init__(self, data_dir: Path | str, intra_threads: int = 1) -> None:
        """``intra_threads``: CPU threads per translation. 1 by default: the service runs
        several translations in parallel instead, and CTranslate2's OpenMP threads spinning
        on every core would starve the event loop's thread."""
        self.data_dir = Path(data_dir)
        self.intra_threads = intra_threads
        self.packages_dir = argos_packages_dir(self.data_dir)
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str], _LoadedPackage] = {}
        self._scan: tuple[float, dict[tuple[str, str], Path]] | None = None

    def packages(self) -> dict[tuple[str, str], Path]:
        """Installed packages by pair (re-read when the packages folder changes)."""
        try:
            stamp = self.packages_dir.stat().st_mtime
        except FileNotFoundError:
            return {}
        with self._lock:
            if self._scan is None or self._scan[0] != stamp:
                self._scan = (stamp, read_packages(self.packages_dir))
            return dict(self._scan[1])

    def pairs(self) -> set[tuple[str, str]]:
        return set(self.packages())

    def load(self, src: str, dst: str) -> None:
        """Import argostranslate and load the pair's model now (the cold start)."""
        self._get(src, dst)

    def _get(self, src: str, dst: str) -> _LoadedPackage:
        with self._lock:
            loaded = self._loaded.get((src, dst))
        if loaded is not None:
            return loaded
        path = self.packages().get((src, dst))
        if path is None:
            raise KeyError(f"no Argos package installed for {src}->{dst} in {self.packages_dir}")
        module = import_argostranslate(self.data_dir)
        with self._lock:
            loaded = self._loaded.get((src, dst))
            if loaded is None or loaded.package.package_path != path:
                loaded = _LoadedPackage(module, path, self.intra_threads)
                self._loaded[(src, dst)] = loaded
            return loaded

    def translate_batch(self, texts: list[str], src: str, dst: str) -> list[str]:
        loaded = self._get(src, dst)
        return [loaded.translate(text) if text.strip() else text for text in texts]

    def close(self) -> None:
        with self._lock:
            self._loaded.clear()
