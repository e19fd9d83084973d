"""Real aiortc client peers for media tests and benchmarks (SDP exchanged in-process)."""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import defaultdict

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc import sdp as aiortc_sdp
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame


class MovingPatternTrack(VideoStreamTrack):
    """Synthetic camera: a gradient with a moving bar, `fps` frames per second.

    `texture=True` adds a panning noise texture so a VP8 encoder works about as hard as on a
    real camera (benchmarks).
    """

    def __init__(
        self, width: int = 320, height: int = 240, fps: int = 30, texture: bool = False
    ) -> None:
        super().__init__()
        self.width, self.height, self.fps, self.texture = width, height, fps, texture
        y = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
        x = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
        self._base = np.stack(
            [
                np.broadcast_to(y, (height, width)),
                np.broadcast_to(x, (height, width)),
                np.full((height, width), 128, np.uint8),
            ],
            axis=-1,
        ).copy()
        if texture:
            noise = np.random.default_rng(7).integers(0, 96, (height, width, 3), dtype=np.uint8)
            self._base = (self._base // 2 + noise).astype(np.uint8)
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        self._n += 1
        wait = self._start + self._n / self.fps - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        image = np.roll(self._base, self._n * 3, axis=1) if self.texture else self._base.copy()
        col = (self._n * 4) % self.width
        image[:, col : col + 16] = 255
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = self._n * (90000 // self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class RtcClient:
    """One client peer: publishes given tracks, counts what it receives per publisher."""

    def __init__(
        self,
        name: str,
        tracks: list[MediaStreamTrack] = (),
        recv_only: tuple = (),
        payload_types: dict[int, int] | None = None,
    ):
        self.name = name
        self.payload_types = payload_types
        self.offers: list[str] = []
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tracks = list(tracks)
        self.recv_only = recv_only
        self.frames: dict[str, int] = defaultdict(int)  # "publisher/kind" -> count
        self.first_frame: dict[str, float] = {}
        self.video_sizes: set[tuple[int, int]] = set()
        self.answering = True
        self.renegotiations = 0
        self._tasks: list[asyncio.Task] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        publisher = track.id.rsplit("-", 2)[0] if track.id.count("-") >= 2 else "?"
        key = f"{publisher}/{track.kind}"
        try:
            while True:
                frame = await track.recv()
                self.frames[key] += 1
                self.first_frame.setdefault(key, time.monotonic())
                if track.kind == "video":
                    self.video_sizes.add((frame.width, frame.height))
        except (MediaStreamError, asyncio.CancelledError):
            pass

    def count(self, publisher: str, kind: str) -> int:
        """Frames received from `publisher` of `kind`."""
        return self.frames.get(f"{publisher}/{kind}", 0)

    async def offer(self) -> str:
        """The initial offer (own tracks sendrecv, extra recvonly transceivers)."""
        for track in self.tracks:
            self.pc.addTrack(track)
        for kind in self.recv_only:
            self.pc.addTransceiver(kind, direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp = self.pc.localDescription.sdp
        return renumber_payload_types(sdp, self.payload_types) if self.payload_types else sdp

    async def accept(self, answer_sdp: str) -> None:
        """Apply the server's answer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))

    async def answer(self, offer_sdp: str) -> str:
        """Answer a server-initiated renegotiation (or hang, if `answering` is False)."""
        if not self.answering:
            await asyncio.Event().wait()
        self.renegotiations += 1
        self.offers.append(offer_sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    async def close(self) -> None:
        """Close the connection and stop the consumers."""
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        for track in self.tracks:
            track.stop()


def renumber_payload_types(sdp: str, mapping: dict[int, int]) -> str:
    """An offer as a browser would number it (aiortc adopts the remote's dynamic types)."""
    description = aiortc_sdp.SessionDescription.parse(sdp)
    for media in description.media:
        for codec in media.rtp.codecs:
            codec.payloadType = mapping.get(codec.payloadType, codec.payloadType)
            apt = codec.parameters.get("apt")
            if isinstance(apt, int):
                codec.parameters["apt"] = mapping.get(apt, apt)
        media.fmt = [c.payloadType for c in media.rtp.codecs]
    return str(description)


def payload_types(sdp: str) -> dict[str, dict[str, int]]:
    """mid -> {mime type: payload type} of an SDP (rtx keyed as 'rtx/<apt>')."""
    out = {}
    for media in aiortc_sdp.SessionDescription.parse(sdp).media:
        out[media.rtp.muxId] = {
            (f"rtx/{c.parameters['apt']}" if c.name == "rtx" else c.mimeType.lower()): c.payloadType
            for c in media.rtp.codecs
        }
    return out


async def wait_until(predicate, timeout: float = 20.0, step: float = 0.02) -> float:
    """Poll until `predicate()` is true; return the seconds waited, raise on timeout."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
    return time.monotonic() - start
