"""Tour participants for tests: a Socket.IO peer plus a real aiortc peer connection."""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from tests.support.peers import Peer
from tests.support.rtc_clients import MovingPatternTrack, RtcClient


class PausedRtcClient(RtcClient):
    """A viewer whose application never reads its tracks (a stalled consumer)."""

    unread: list[MediaStreamTrack]

    def _on_track(self, track: MediaStreamTrack) -> None:
        if not hasattr(self, "unread"):
            self.unread = []
        self.unread.append(track)


class ScheduledSpeech(MediaStreamTrack):
    """A microphone that says `clip` (16 kHz mono s16) at each of `at` seconds, digital silence
    in between, and sends no packets at all during each `muted` window (a muted sender, silence
    suppression, a network outage). Seconds count on the wall clock from its first frame
    (`started`, monotonic)."""

    kind = "audio"
    RATE = 16000
    FRAME = 320  # 20 ms

    def __init__(
        self, clip: bytes, at: Sequence[float], muted: Sequence[tuple[float, float]] = ()
    ) -> None:
        super().__init__()
        self.clip = clip
        self.at = [int(a * self.RATE) for a in at]
        self.muted = [(int(a * self.RATE), int(b * self.RATE)) for a, b in muted]
        self.started: float | None = None
        self.sent_at: list[float] = []  # wall clock (monotonic) of each utterance's first frame
        self._t = 0  # samples so far, sent or muted

    def _samples(self, first: int, count: int) -> bytes:
        out = bytearray(2 * count)
        clip_samples = len(self.clip) // 2
        for onset in self.at:
            lo, hi = max(first, onset), min(first + count, onset + clip_samples)
            if lo < hi:
                out[2 * (lo - first) : 2 * (hi - first)] = self.clip[
                    2 * (lo - onset) : 2 * (hi - onset)
                ]
        return bytes(out)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.started is None:
            self.started = time.monotonic()
        for lo, hi in self.muted:
            if lo <= self._t < hi:
                self._t = hi  # nothing is sent for the window
        wait = self.started + self._t / self.RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if any(onset <= self._t < onset + self.FRAME for onset in self.at):
            self.sent_at.append(time.monotonic())
        frame = AudioFrame(format="s16", layout="mono", samples=self.FRAME)
        frame.planes[0].update(self._samples(self._t, self.FRAME))
        frame.sample_rate = self.RATE
        frame.pts = self._t
        frame.time_base = fractions.Fraction(1, self.RATE)
        self._t += self.FRAME
        return frame


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
