"""Session fixtures for the machine-translation tests (real engines, no mocks).

argostranslate reads its environment when first imported, so the data dir comes from
``tests.support.argos_env`` (which calls ``translation.paths.configure_argos_env`` on a temporary
data dir before the first import). The test-built Argos packages (``tests.support.argos_package``,
cached) are installed there through ``argostranslate.package.install_from_path``.
Missing engines make these fixtures fail, never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.argos_env import argos_packages_path
from tests.support.argos_package import build_argos_package
from tests.support.argos_phrases import EN_KO, EN_ZH, KO_EN
from translation.engines.apertium import ApertiumEngine, is_installed
from translation.engines.argos import ArgosEngine
from translation.paths import argos_packages_dir
from translation.translator import Translator

ARGOS_TEST_PACKAGES = {("ko", "en"): KO_EN, ("en", "zh"): EN_ZH, ("en", "ko"): EN_KO}


def argos_test_data_dir() -> Path:
    """The test process's data dir (``<data>/models/argos`` is argostranslate's package dir)."""
    packages = argos_packages_path()
    data_dir = packages.parents[1]
    assert argos_packages_dir(data_dir).resolve() == packages, (
        f"argostranslate's package dir {packages} is not <data>/models/argos"
    )
    return data_dir


@pytest.fixture(scope="session")
def argos_data_dir() -> Path:
    """A data dir with the test-built ko->en, en->zh and en->ko packages installed through
    argostranslate's own ``install_from_path``."""
    data_dir = argos_test_data_dir()
    archives = [build_argos_package(a, b, p) for (a, b), p in ARGOS_TEST_PACKAGES.items()]
    import argostranslate.package

    for archive in archives:
        argostranslate.package.install_from_path(archive)
    return data_dir


@pytest.fixture(scope="session")
def argos_engine(argos_data_dir: Path) -> Iterator[ArgosEngine]:
    engine = ArgosEngine(argos_data_dir)
    assert set(ARGOS_TEST_PACKAGES) <= engine.pairs(), engine.pairs()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def apertium_engine() -> Iterator[ApertiumEngine]:
    """Debian's Apertium with en<->es (``apt-get install apertium apertium-eng-spa``)."""
    assert is_installed(), "Apertium is not installed: apt-get install apertium apertium-eng-spa"
    engine = ApertiumEngine()
    assert {("en", "es"), ("es", "en")} <= engine.pairs(), engine.pairs()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def translator(argos_engine: ArgosEngine, apertium_engine: ApertiumEngine) -> Translator:
    """Argos first, then Apertium (the server's order)."""
    return Translator([argos_engine, apertium_engine])
