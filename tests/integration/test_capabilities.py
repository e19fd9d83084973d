"""`GET /api/capabilities`, `/healthz`'s models and `tradetalk models list` tell the truth.

Real engines on this machine: Apertium en<->es (Debian), the Korean Vosk model (pip). A real
Argos package built by the tests is installed the operator's way (`tradetalk models install`
in another process) while the server runs: its pair appears without a restart.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.support.argos_package import build_argos_package
from tests.support.argos_phrases import KO_EN
from translation.capabilities import OFFERED_LANGUAGES, missing_speech_line, speech_languages
from translation.commands import format_model_list
from translation.provisioning import DEFAULT_SET, describe_pairs, missing_line
from translation.translator import Translator

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server_translator(apertium_engine) -> Translator:
    """A translator of this test's own (the server may add engines to it)."""
    return Translator([apertium_engine])


async def get_json(url: str) -> dict:
    """The JSON body of a GET (`/healthz` answers 503 with a body while the node warms up)."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        allowed = (200, 503) if url.endswith("/healthz") else (200,)
        assert response.status in allowed, await response.text()
        return await response.json()


def install_in_another_process(source: Path, data_dir: Path) -> None:
    """`tradetalk models install SOURCE` as an operator runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "models", "install", str(source)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env={**os.environ, "TRADETALK_DATA": str(data_dir), "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr


async def test_capabilities_report_this_machine_and_a_pair_installed_while_running(
    server_url, settings
):
    document = await get_json(server_url + "/api/capabilities")
    assert set(OFFERED_LANGUAGES) <= set(document["languages"])
    assert document["translation"]["en"]["es"] == "apertium"
    assert document["translation"]["es"]["en"] == "apertium"
    assert "zh" not in document["translation"].get("en", {})  # no engine for en->zh here
    assert "ko" not in document["translation"]  # nor for ko->anything
    assert document["speech"]["ko"] in ("vosk", "whisper")  # the pip Korean model at least
    assert document["speech"] == speech_languages(settings.data_dir)
    assert "install" not in str(document)  # no command lines for buyers and suppliers

    install_in_another_process(build_argos_package("ko", "en", KO_EN), settings.data_dir)
    document = await get_json(server_url + "/api/capabilities")
    assert document["translation"]["ko"]["en"] == "argos"
    assert document["translation"]["ko"]["es"] == "argos>apertium"  # through English
    assert "ko" not in document["translation"]["en"]  # en->ko is still missing

    health = await get_json(server_url + "/healthz")
    assert health["models"]["provisioning"] == "off"
    expected = [name for name in DEFAULT_SET if name != "translate-ko_en"]
    assert health["models"]["missing"] == expected
    assert health["models"]["install"] == "tradetalk models install " + " ".join(expected)


def test_models_list_shows_speech_and_routes_per_language(tmp_path):
    listing = format_model_list(tmp_path)
    lines = listing.splitlines()
    for lang in OFFERED_LANGUAGES:
        assert any(line.startswith(f"  {lang:<4} speech ") for line in lines), lang
    en = lines.index(next(line for line in lines if line.startswith("  en   speech")))
    assert lines[en + 1].startswith("       to   ✓ es apertium; ✗ ")
    assert lines[en + 2].startswith("       from ✓ es apertium; ✗ ")
    assert " zh" in lines[en + 1].split("✗")[1]
    assert any(line.startswith("  ko   speech ✓ ") for line in lines)
    assert missing_line(list(DEFAULT_SET)) in listing  # what to install, for the operator


def test_pairs_are_described_for_people():
    assert describe_pairs(DEFAULT_SET) == "en↔zh, en↔ko, en↔ja, en↔de, en↔fr, en↔es"
    assert describe_pairs(["translate-ko_en", "translate-en_de"]) == "ko→en, en→de"
    line = missing_line(["translate-en_zh", "translate-zh_en"], "offline")
    assert line == (
        "translation: en↔zh not installed (offline); run "
        "`tradetalk models install translate-en_zh translate-zh_en` with internet"
    )


def test_languages_without_a_recognizer_are_named_for_the_operator():
    line = missing_speech_line({"ko": "vosk", "en": "whisper"})
    assert line is not None and line.startswith("speech: zh, es, ja, de, fr, vi, ar, pt, ru, tr ")
    assert "tradetalk models install vosk-model-small-" in line
    assert missing_speech_line(dict.fromkeys(OFFERED_LANGUAGES, "whisper")) is None


def test_provision_command_offline_fails_fast_with_one_line(tmp_path, monkeypatch, capsys):
    from tests.integration.test_model_tools import run

    monkeypatch.setenv("TRADETALK_ARGOS_INDEX_URL", "http://127.0.0.1:9/index.json")
    assert run(["models", "provision"], tmp_path) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == missing_line(list(DEFAULT_SET), "offline")
