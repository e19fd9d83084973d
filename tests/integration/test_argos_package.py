"""The test-built Argos package installs and translates through argostranslate's real code.

Builds (or takes from the cache) a Korean->English package from ``KO_EN``, installs it with
``argostranslate.package.install_from_path`` into a temporary data dir, and checks every
phrase through three levels of argostranslate: ``translate()``, ``apply_packaged_translation``
with one already-split sentence, and the package's own tokenizer around CTranslate2.
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest

from tests.support.argos_env import argos_packages_path
from tests.support.argos_package import (
    build_argos_package,
    default_cache_dir,
    package_dir_name,
    package_key,
)
from tests.support.argos_phrases import EN_KO, EN_ZH, KO_EN


class OneSentence:
    """A sentencizer for text that is already one sentence (argostranslate's interface)."""

    def split_sentences(self, text: str) -> list[str]:
        return [text]


@pytest.fixture(scope="session")
def ko_en_archive() -> Path:
    return build_argos_package("ko", "en", KO_EN)


@pytest.fixture(scope="session")
def ko_en_installed(ko_en_archive: Path):  # -> argostranslate.package.Package
    packages_dir = argos_packages_path()
    import argostranslate.package

    argostranslate.package.install_from_path(ko_en_archive)
    name = package_dir_name("ko", "en", package_key("ko", "en", KO_EN))
    assert (packages_dir / name / "metadata.json").is_file()
    return next(
        p
        for p in argostranslate.package.get_installed_packages()
        if p.package_path.resolve() == packages_dir / name
    )


def test_phrase_lists_are_trade_sized() -> None:
    for pairs in (KO_EN, EN_ZH, EN_KO):
        assert 20 <= len(pairs) <= 40
        assert len({s for s, _ in pairs}) == len(pairs)
    assert ("가격은 얼마입니까", "What is the price") in KO_EN
    assert ("What is the price?", "价格是多少？") in EN_ZH


def test_archive_is_cached_and_shaped_like_a_download(ko_en_archive: Path) -> None:
    started = time.perf_counter()
    assert build_argos_package("ko", "en", list(KO_EN)) == ko_en_archive
    assert time.perf_counter() - started < 1.0
    assert ko_en_archive.parent == default_cache_dir()
    assert not list(ko_en_archive.parent.glob(".*.tmp"))
    folder = ko_en_archive.stem
    with zipfile.ZipFile(ko_en_archive) as zf:
        names = set(zf.namelist())
        metadata = json.loads(zf.read(f"{folder}/metadata.json"))
    assert {n.split("/")[0] for n in names} == {folder}
    members = ("model/model.bin", "model/config.json", "sentencepiece.model", "minisbd/ko.onnx")
    for member in members:
        assert f"{folder}/{member}" in names
    assert metadata["from_code"] == "ko" and metadata["to_code"] == "en"
    assert metadata["from_name"] == "Korean" and metadata["to_name"] == "English"
    assert metadata["type"] == "translate" and metadata["package_version"]


def test_other_pairs_get_other_keys() -> None:
    assert package_key("ko", "en", KO_EN) != package_key("en", "ko", KO_EN)
    assert package_key("ko", "en", KO_EN) != package_key("ko", "en", KO_EN[:-1])


def test_conflicting_pairs_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="two different targets"):
        build_argos_package("ko", "en", [("안녕", "Hi"), ("안녕", "Bye")], cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.argosmodel"))


def test_installed_package_is_listed(ko_en_installed) -> None:
    import argostranslate.package
    import argostranslate.translate

    installed = argostranslate.package.get_installed_packages()
    assert any(p.from_code == "ko" and p.to_code == "en" for p in installed)
    languages = {lang.code: lang for lang in argostranslate.translate.get_installed_languages()}
    assert {"ko", "en"} <= set(languages)
    assert languages["ko"].get_translation(languages["en"]) is not None
    assert ko_en_installed.packaged_sbd_path == ko_en_installed.package_path / "minisbd"


def test_translate_every_phrase_with_argostranslate_translate(ko_en_installed) -> None:
    """The highest-level call: sentence splitting (packaged MiniSBD), beam 4, offline."""
    import argostranslate.settings
    import argostranslate.translate

    got = [argostranslate.translate.translate(src, "ko", "en") for src, _ in KO_EN]
    assert got == [tgt for _, tgt in KO_EN]
    # The splitter came from the package: MiniSBD's download cache stayed empty.
    minisbd_cache = Path(argostranslate.settings.data_dir) / "minisbd"
    assert not minisbd_cache.exists() or not any(minisbd_cache.iterdir())


def test_translate_one_sentence_without_sentence_splitting(ko_en_installed) -> None:
    """The lowest argostranslate call for one already-split sentence."""
    import ctranslate2
    from argostranslate.translate import apply_packaged_translation

    translator = ctranslate2.Translator(
        str(ko_en_installed.package_path / "model"), device="cpu", compute_type="auto"
    )
    for src, tgt in KO_EN:
        hypotheses = apply_packaged_translation(
            ko_en_installed, src, translator, OneSentence(), num_hypotheses=1
        )
        assert hypotheses[0].value == tgt


def test_package_tokenizer_around_ctranslate2_greedy(ko_en_installed) -> None:
    """Same package, no argostranslate translation code: its tokenizer + CTranslate2, beam 1."""
    import ctranslate2

    tokenizer = ko_en_installed.tokenizer
    translator = ctranslate2.Translator(str(ko_en_installed.package_path / "model"))
    batch = [tokenizer.encode(src) for src, _ in KO_EN]
    results = translator.translate_batch(batch, beam_size=1)
    got = [tokenizer.decode(r.hypotheses[0]).lstrip(" ") for r in results]
    assert got == [tgt for _, tgt in KO_EN]


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRADETALK_TEST_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("TRADETALK_TEST_CACHE")
    assert default_cache_dir() == Path(__file__).resolve().parents[2] / ".cache/argos-test-packages"
