"""Relaying already-encoded packets between media nodes: the wire framing, and the fan-out a
relay node feeds from it.

The owner of a tour encodes the host's video and audio once (`media.fanout`). A relay node
receives those packets over a node-to-node link and hands the same `av.Packet` objects to its
own viewers' `PacketTrack`s: no decoding, no encoding, only the viewers' SRTP and
packetization run on the relay. This module knows nothing of the transport; it frames one
packet as bytes and back:

    ">BBqII" header: track number (0-255), flags (bit 0: keyframe), pts (int64), time base
    numerator and denominator (uint32 each); then the packet's payload bytes.

A `RelayedFanout` is a `Fanout` without a source track or an encoder: `feed(packet)` pushes a
received packet to every subscriber (same bounded queues, same drop-to-keyframe rule), and a
keyframe request (a new subscriber, a viewer's PLI, an overflowing queue) goes to
`on_keyframe_request(urgent)`, which the link sends back to the one encoder on the owner.
"""

from __future__ import annotations

import fractions
import struct
from collections.abc import Callable

import av

from media.fanout import Fanout

HEADER = struct.Struct(">BBqII")
KEYFRAME = 0x01
MAX_TRACKS = 256
MAX_PAYLOAD = 1 << 20  # a frame larger than 1 MiB is not a live 800 kbit/s stream


class FrameError(ValueError):
    """Bytes that are not one framed packet."""


def encode_packet(track: int, packet: av.Packet) -> bytes:
    """One packet as header + payload bytes."""
    if not 0 <= track < MAX_TRACKS:
        raise ValueError(f"track number {track} out of range")
    time_base = packet.time_base or fractions.Fraction(1, 1)
    flags = KEYFRAME if packet.is_keyframe else 0
    pts = int(packet.pts or 0)
    header = HEADER.pack(track, flags, pts, time_base.numerator, time_base.denominator)
    return header + bytes(packet)


def decode_packet(data: bytes) -> tuple[int, av.Packet]:
    """The track number and a fresh `av.Packet` (payload, pts/dts, time base, keyframe flag)."""
    if len(data) < HEADER.size:
        raise FrameError(f"{len(data)} bytes is shorter than a packet header")
    track, flags, pts, num, den = HEADER.unpack_from(data)
    payload = data[HEADER.size :]
    if not payload or len(payload) > MAX_PAYLOAD:
        raise FrameError(f"payload of {len(payload)} bytes")
    if num == 0 or den == 0:
        raise FrameError("zero in the time base")
    packet = av.Packet(payload)
    packet.pts = pts
    packet.dts = pts
    packet.time_base = fractions.Fraction(num, den)
    packet.is_keyframe = bool(flags & KEYFRAME)
    return track, packet


class RelayedFanout(Fanout):
    """Packets received from another node, shared with this node's subscribers as they are."""

    def __init__(
        self,
        source_id: str,
        kind: str,
        *,
        on_keyframe_request: Callable[[bool], None],
        max_queue: int,
    ) -> None:
        if kind not in ("audio", "video"):
            raise ValueError(f"kind {kind!r}")
        self.kind = kind
        super().__init__(source_id, max_queue=max_queue)
        self.on_keyframe_request = on_keyframe_request
        self.keyframes = 0
        self.keyframe_requests = 0

    @property
    def encoder_open(self) -> bool:
        return False  # never: that is the point

    def feed(self, packet: av.Packet) -> None:
        """A packet from the link: to every subscriber (each drops on its own overflow)."""
        self.frames_in += 1
        if packet.is_keyframe:
            self.keyframes += 1
        for subscriber in list(self._subscribers):
            subscriber.push(packet)

    def request_keyframe(self, urgent: bool = False) -> None:
        """Ask the owner's encoder (video only; the owner rate-limits non-urgent requests)."""
        if self.kind != "video" or self._closed:
            return
        self.keyframe_requests += 1
        self.on_keyframe_request(urgent)

    def end(self) -> None:
        """The link is gone: every subscriber's track ends."""
        self._closed = True
        self._end_subscribers()

    async def _encode(self, frame: av.frame.Frame) -> list[av.Packet]:
        raise NotImplementedError("a relayed fanout has no source track to encode")

    def _release(self) -> None:
        """Nothing to release: no encoder."""
