"""First-run provisioning by `tradetalk serve` (real processes, a real catalogue on loopback).

The catalogue serves real Argos packages built by the tests (ko->en, en->ko); the other ten
names of the default set are not in its index. A silent catalogue (accepts, never answers)
stands for a machine without internet: the server must be ready before the attempt ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import time
from pathlib import Path

import aiohttp
import pytest

from server.storage.embedded_redis import free_port
from tests.support.argos_package import build_argos_package
from tests.support.argos_phrases import EN_KO, KO_EN
from tests.support.catalogue import serve_catalogue
from tests.support.peers import Peer, ServerProcess, new_user, sign_in_once
from translation.provisioning import (
    DEFAULT_SET,
    RETRY_AFTER_S,
    describe_pairs,
    due,
    missing,
    missing_line,
    pending,
    state_path,
)

PACKAGES = {("ko", "en"): KO_EN, ("en", "ko"): EN_KO}


def catalogue_files(base: str) -> dict[str, bytes]:
    """An Argos index (as the public one, plus sha256) and the packages it links to."""
    files: dict[str, bytes] = {}
    index = []
    for (src, dst), phrases in PACKAGES.items():
        body = build_argos_package(src, dst, phrases).read_bytes()
        path = f"/translate-{src}_{dst}-1_0.argosmodel"
        files[path] = body
        index.append(
            {
                "package_version": "1.0",
                "argos_version": "1.9.0",
                "from_code": src,
                "to_code": dst,
                "links": ["ipfs://Qm-not-fetched", f"{base}{path}"],
                "code": f"translate-{src}_{dst}",
                "sha256": hashlib.sha256(body).hexdigest(),
            }
        )
    files["/index.json"] = json.dumps(index).encode()
    return files


async def get_json(url: str) -> dict:
    """The JSON body of a GET (`/healthz` answers 503 with a body while the node warms up)."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        allowed = (200, 503) if url.endswith("/healthz") else (200,)
        assert response.status in allowed, await response.text()
        return await response.json()


async def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def serve(data_dir: Path, redis_url: str, index_url: str) -> ServerProcess:
    env = {"TRADETALK_PROVISION": "auto", "TRADETALK_ARGOS_INDEX_URL": index_url}
    return ServerProcess(data_dir, redis_url, free_port(), env=env)


async def test_first_start_installs_the_default_set_once_and_uses_it_without_restart(
    tmp_path, redis_server
):
    catalogue = serve_catalogue()
    try:
        catalogue.files.update(catalogue_files(catalogue.base))
        index_url = f"{catalogue.base}/index.json"
        data = tmp_path / "data"
        catalogue.open.clear()  # the packages come only once "before" is seen
        server = await serve(data, redis_server.url, index_url).start(120)
        try:
            before = await get_json(server.url + "/api/capabilities")
            catalogue.open.set()
            assert "ko" not in before["translation"].get("en", {})

            async def installed():
                document = await get_json(server.url + "/api/capabilities")
                return document if document["translation"].get("ko", {}).get("en") else None

            # Without a restart: the running server's translator took the new engine.
            document = await wait_for(installed, 180, "ko->en served after provisioning")
            assert document["translation"]["ko"]["en"] == "argos"
            assert document["translation"]["en"]["ko"] == "argos"
            assert document["translation"]["ko"]["es"] == "argos>apertium"  # pivot, 2 engines
            # And it translates: a Korean supplier's message reaches the English buyer in English.
            supplier, buyer = Peer(new_user("supplier", "ko")), Peer(new_user("buyer", "en"))
            await sign_in_once(server.url, supplier.identity, buyer.identity)
            await supplier.connect(server.url)
            await buyer.connect(server.url)
            try:
                made = await supplier.call("conversation.create", {"participants": [buyer.id]})
                ack = await supplier.call(
                    "message.send",
                    {
                        "conversation_id": made["conversation"]["id"],
                        "client_id": "1",
                        "text": "가격은 얼마입니까",
                    },
                    timeout=60,
                )
                assert ack["message"]["translations"] == {"en": "What is the price"}, ack
            finally:
                await supplier.close()
                await buyer.close()
            health = await wait_for(
                lambda: _provisioning_over(server.url), 60, "provisioning finished"
            )
        finally:
            assert server.interrupt(60) == 0
        log = server.log.read_text(errors="replace")
        assert "100.0%" in log and "translate-ko_en-1_0.argosmodel: sha256" in log  # progress
        assert "in use now (no restart needed)" in log
        others = [
            name for name in DEFAULT_SET if name not in ("translate-ko_en", "translate-en_ko")
        ]
        assert log.count(missing_line(others, "failed")) == 1  # not in this index
        state = json.loads(state_path(data).read_text())
        assert set(state["installed"]) == {"translate-ko_en", "translate-en_ko"}
        assert set(state["failed"]) == set(others) and state["offline"] is False
        # The operator (only) sees what is missing and how to install it.
        assert health["models"]["provisioning"] == "failed"
        assert health["models"]["missing"] == others
        assert health["models"]["install"] == f"tradetalk models install {' '.join(others)}"
        asked = list(catalogue.requests)
        assert asked.count("/index.json") == 1 and len(asked) == 3

        # A second start downloads nothing and still has the pairs.
        again = await serve(data, redis_server.url, index_url).start(120)
        try:
            document = await get_json(again.url + "/api/capabilities")
            assert document["translation"]["ko"]["en"] == "argos"
            health = await get_json(again.url + "/healthz")
            assert health["models"]["provisioning"] == "waiting"
        finally:
            assert again.interrupt(60) == 0
        assert catalogue.requests == asked
        second_log = again.log.read_text(errors="replace")  # its own file (another port)
        assert "installing translation" not in second_log
        assert "an earlier attempt failed" in second_log
    finally:
        catalogue.stop()


async def _provisioning_over(url: str) -> dict | None:
    health = await get_json(url + "/healthz")
    return health if health["models"]["provisioning"] not in ("running", "off") else None


async def test_offline_start_is_ready_at_once_and_says_what_is_missing_in_one_line(
    tmp_path, redis_server
):
    # A catalogue host that accepts connections and never answers: the worst offline case
    # (the attempt waits for its 5 s timeout) must not delay serving.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        index_url = f"http://127.0.0.1:{silent.getsockname()[1]}/index.json"
        data = tmp_path / "data"
        began = time.monotonic()
        server = await serve(data, redis_server.url, index_url).start(120)
        try:
            ready_s = time.monotonic() - began
            health = await get_json(server.url + "/healthz")
            assert health["models"]["provisioning"] == "running"  # ready while it tries
            await wait_for(lambda: _provisioning_over(server.url), 30, "offline attempt over")
            health = await get_json(server.url + "/healthz")
            assert health["models"]["provisioning"] == "offline"
        finally:
            assert server.interrupt(60) == 0
    log = server.log.read_text(errors="replace")
    line = missing_line(list(DEFAULT_SET), "offline")
    assert log.count(line) == 1, log[-3000:]
    assert describe_pairs(DEFAULT_SET) in line and "en↔zh, en↔ko" in line
    assert "100.0%" not in log
    assert json.loads(state_path(data).read_text())["offline"] is True
    print(f"ready in {ready_s:.2f} s with the catalogue unreachable")

    # The next start does not try again (for a day) and says so in one line at once.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}/index.json"
        again = await serve(data, redis_server.url, silent_url).start(120)
        try:
            health = await get_json(again.url + "/healthz")
            assert health["models"]["provisioning"] == "waiting"
        finally:
            assert again.interrupt(60) == 0
        silent.setblocking(False)
        with pytest.raises(BlockingIOError):
            silent.accept()  # nobody connected to the catalogue
    assert "not installed (an earlier attempt failed" in again.log.read_text(errors="replace")


def test_when_a_start_provisions(tmp_path):
    """Due on a first start; not again within a day of a failed attempt; a package an earlier
    run installed and the operator removed is not fetched again (but is still missing)."""
    assert due(tmp_path, now=1_000.0)
    assert pending(tmp_path) == list(DEFAULT_SET)
    state_path(tmp_path).parent.mkdir(parents=True)
    state = {"attempted_at": 1_000.0, "installed": {"translate-en_zh": 1_000.0}, "offline": True}
    state_path(tmp_path).write_text(json.dumps(state))
    assert not due(tmp_path, now=1_000.0 + RETRY_AFTER_S - 1)
    assert due(tmp_path, now=1_000.0 + RETRY_AFTER_S)
    assert "translate-en_zh" not in pending(tmp_path)
    assert "translate-en_zh" in missing(tmp_path)
