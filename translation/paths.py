"""Where models live under the data dir, and argostranslate's environment.

Layout (``data_dir`` is the server's ``TRADETALK_DATA``, default ``./var``)::

    <data>/models/argos/                 Argos packages (ARGOS_PACKAGES_DIR)
    <data>/models/argos-home/{data,config,cache}   argostranslate's XDG dirs
    <data>/models/vosk/<lang>/           Vosk model folders (am/ conf/ graph/ ...)
"""

from __future__ import annotations

import os
from pathlib import Path


def models_dir(data_dir: Path | str) -> Path:
    """``<data>/models``: the root of every installed model."""
    return Path(data_dir) / "models"


def argos_packages_dir(data_dir: Path | str) -> Path:
    """``<data>/models/argos``: where argostranslate installs packages."""
    return models_dir(data_dir) / "argos"


def argos_home_dir(data_dir: Path | str) -> Path:
    """``<data>/models/argos-home``: argostranslate's XDG data/config/cache dirs."""
    return models_dir(data_dir) / "argos-home"


def vosk_models_dir(data_dir: Path | str) -> Path:
    """``<data>/models/vosk``: one standard Vosk model folder per language below it."""
    return models_dir(data_dir) / "vosk"


def configure_argos_env(data_dir: Path | str) -> None:
    """Point argostranslate's env vars into the data dir and create the folders.

    argostranslate reads these variables when it is first imported, so this must run
    before the first ``import argostranslate`` in the process; calling it afterwards with
    another data dir has no effect on the already-imported module.
    """
    data_dir = Path(data_dir).resolve()
    home = argos_home_dir(data_dir)
    env = {
        "ARGOS_PACKAGES_DIR": argos_packages_dir(data_dir),
        "XDG_DATA_HOME": home / "data",
        "XDG_CONFIG_HOME": home / "config",
        "XDG_CACHE_HOME": home / "cache",
    }
    for name, path in env.items():
        path.mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(path)
    # Never fetch anything at run time (argostranslate's stanza/minisbd downloads).
    os.environ.setdefault("ARGOS_DEVICE_TYPE", "cpu")
