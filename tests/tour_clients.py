"""Tour participants for tests: a Socket.IO peer plus a real aiortc peer connection."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamTrack

from tests.peers import Peer
from tests.rtc_clients import MovingPatternTrack, RtcClient


class PausedRtcClient(RtcClient):
    """A viewer whose application never reads its tracks (a stalled consumer)."""

    unread: list[MediaStreamTrack]

    def _on_track(self, track: MediaStreamTrack) -> None:
        if not hasattr(self, "unread"):
            self.unread = []
        self.unread.append(track)


class TourClient:
    """A tour host (`publish`) or viewer (`join`); answers the server's `tour.offer`."""

    def __init__(
        self,
        peer: Peer,
        wav: Path | None = None,
        camera: bool = False,
        paused: bool = False,
        fps: int = 30,
    ) -> None:
        self.peer = peer
        self.player = MediaPlayer(str(wav)) if wav else None
        tracks: list[Any] = []
        if self.player is not None:
            tracks.append(self.player.audio)
        if camera:
            tracks.append(MovingPatternTrack(fps=fps))
        kinds = {t.kind for t in tracks}
        recv_only = tuple(k for k in ("audio", "video") if k not in kinds)
        if wav is not None:  # the host only sends
            recv_only = ()
        cls = PausedRtcClient if paused else RtcClient
        self.rtc = cls(peer.id, tracks, recv_only=recv_only)
        self.joined_at: float | None = None

        @peer.sio.on("tour.offer")
        async def on_offer(data: dict) -> None:
            peer.events["tour.offer"].append(data)
            answer = await self.rtc.answer(data["sdp"])
            await peer.call("tour.answer", {"tour_id": data["tour_id"], "sdp": answer})

    async def publish(self, tour_id: str) -> dict:
        """tour.publish with this client's camera and microphone."""
        offer = await self.rtc.offer()
        ack = await self.peer.call(
            "tour.publish", {"tour_id": tour_id, "sdp": offer, "type": "offer"}, timeout=30
        )
        if ack["ok"]:
            await self.rtc.accept(ack["sdp"])
        return ack

    async def join(self, tour_id: str, **extra: Any) -> dict:
        """tour.join with this client's offer; applies the answer."""
        offer = await self.rtc.offer()
        ack = await self.peer.call(
            "tour.join", {"tour_id": tour_id, "sdp": offer, "type": "offer", **extra}, timeout=30
        )
        if ack["ok"]:
            await self.rtc.accept(ack["sdp"])
            self.joined_at = time.monotonic()
        return ack

    def received(self, kind: str) -> int:
        """Frames of `kind` received from anyone."""
        return sum(n for key, n in self.rtc.frames.items() if key.endswith("/" + kind))

    def publishers(self) -> set[str]:
        """Whose media this client received (publisher ids from the track ids)."""
        return {key.split("/")[0] for key, n in self.rtc.frames.items() if n}

    async def close(self) -> None:
        """Close the peer connection (and the player)."""
        await self.rtc.close()
        if self.player is not None and self.player.audio is not None:
            self.player.audio.stop()
