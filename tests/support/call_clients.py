"""A call participant for tests: a Socket.IO peer plus a real aiortc peer connection."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import aiohttp
from aiortc.contrib.media import MediaPlayer

from tests.support.peers import Peer, token_for
from tests.support.rtc_clients import MovingPatternTrack, RtcClient


def speech_with_pauses(source: Path, target: Path, repeats: int = 1, pause_s: float = 2.0) -> Path:
    """`source` (16 kHz mono WAV) `repeats` times, each followed by `pause_s` of silence, so
    the recognizer reaches an endpoint (a final) after each utterance."""
    with wave.open(str(source)) as wav:
        params, frames = wav.getparams(), wav.readframes(wav.getnframes())
    silence = b"\0" * int(params.framerate * pause_s) * params.sampwidth
    with wave.open(str(target), "wb") as out:
        out.setparams(params)
        out.writeframes((frames + silence) * repeats)
    return target


async def call_transcript(peer: Peer, cid: str, call_id: str | None = None) -> list[dict]:
    """The conversation's transcript lines (`GET .../transcript?format=json`, as `peer`, on the
    server it is connected to), of one call when `call_id` is given."""
    url = f"{peer.url}/api/conversations/{cid}/transcript?format=json"
    if call_id is not None:
        url += f"&call_id={call_id}"
    headers = {"Authorization": f"Bearer {token_for(peer.identity)}"}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["lines"]


def call_entries(messages: list[dict]) -> list[dict]:
    """The `kind: "call"` entries among history messages."""
    return [m for m in messages if m.get("kind") == "call"]


class CallClient:
    """Joins calls over Socket.IO and answers the server's renegotiations."""

    def __init__(self, peer: Peer, wav: Path | None = None, camera: bool = True) -> None:
        self.peer = peer
        self.player = MediaPlayer(str(wav)) if wav else None
        tracks: list[Any] = []
        if self.player is not None:
            tracks.append(self.player.audio)
        if camera:
            tracks.append(MovingPatternTrack())
        recv_only = () if self.player else ("audio",)
        self.rtc = RtcClient(peer.id, tracks, recv_only=recv_only)
        self.call_id: str | None = None

        @peer.sio.on("rtc.offer")
        async def on_offer(data: dict) -> None:
            peer.events["rtc.offer"].append(data)
            answer = await self.rtc.answer(data["sdp"])
            await peer.call("rtc.answer", {"call_id": data["call_id"], "sdp": answer})

    async def join(self, call_id: str, **extra: Any) -> dict:
        """call.join with this client's offer; applies the answer."""
        self.call_id = call_id
        offer = await self.rtc.offer()
        ack = await self.peer.call(
            "call.join", {"call_id": call_id, "sdp": offer, "type": "offer", **extra}, timeout=30
        )
        if ack["ok"]:
            await self.rtc.accept(ack["sdp"])
        return ack

    def received(self, kind: str) -> int:
        """Frames of `kind` received from anyone."""
        return sum(n for key, n in self.rtc.frames.items() if key.endswith("/" + kind))

    async def close(self) -> None:
        """Close the peer connection (and the player)."""
        await self.rtc.close()
