"""media.relay: the framing of encoded packets between nodes, and the relay side's fan-out
(no encoder; keyframe requests go back to the owner; bounded like every subscriber)."""

from __future__ import annotations

import fractions

import av
import pytest

from media.fanout import VIDEO_CLOCK
from media.relay import (
    HEADER,
    FrameError,
    RelayedFanout,
    decode_packet,
    encode_packet,
)


def packet(payload: bytes, pts: int, keyframe: bool, time_base=VIDEO_CLOCK) -> av.Packet:
    p = av.Packet(payload)
    p.pts = p.dts = pts
    p.time_base = time_base
    p.is_keyframe = keyframe
    return p


def test_a_packet_survives_the_wire_with_its_timing_and_keyframe_flag() -> None:
    sent = packet(b"\x10\x02\x00\x9d\x01\x2a" + bytes(range(200)), 123_456_789_012, True)
    number, got = decode_packet(encode_packet(7, sent))
    assert number == 7 and bytes(got) == bytes(sent)
    assert got.pts == got.dts == 123_456_789_012 and got.is_keyframe
    assert got.time_base == VIDEO_CLOCK
    opus = packet(b"\xfc" * 40, 960, False, fractions.Fraction(1, 48000))
    number, got = decode_packet(encode_packet(0, opus))
    assert number == 0 and not got.is_keyframe and got.time_base == fractions.Fraction(1, 48000)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * (HEADER.size - 1),  # a short header
        HEADER.pack(0, 0, 0, 1, 90000),  # no payload
        HEADER.pack(0, 0, 0, 0, 1) + b"x",  # a zero in the time base
    ],
)
def test_bytes_that_are_not_a_packet_are_refused(data: bytes) -> None:
    with pytest.raises(FrameError):
        decode_packet(data)


def test_track_numbers_are_one_byte() -> None:
    with pytest.raises(ValueError):
        encode_packet(256, packet(b"x", 0, False))


async def test_relayed_video_reaches_subscribers_unchanged_and_asks_the_owner_for_keyframes():
    asked: list[bool] = []
    fanout = RelayedFanout("hcafe", "video", on_keyframe_request=asked.append, max_queue=3)
    assert not fanout.encoder_open
    viewer = fanout.subscribe("hcafe-video-1")
    assert asked == [True]  # a new viewer: an urgent keyframe from the one encoder
    fanout.feed(packet(b"delta", 1, False))  # before any keyframe: useless to a decoder
    key = packet(b"key", 2, True)
    fanout.feed(key)
    fanout.feed(packet(b"d1", 3, False))
    assert viewer.queued == 2 and viewer.dropped == 1
    first = await viewer.recv()
    assert first is key  # the same object: nothing decoded or re-encoded
    # a viewer that falls behind drops to the next keyframe and asks for one (not urgent)
    for pts in range(4, 8):
        fanout.feed(packet(b"d", pts, False))
    assert viewer.needs_keyframe and asked == [True, False]
    viewer.request_keyframe()  # a PLI from the viewer
    assert asked == [True, False, False]
    fanout.end()
    assert fanout.subscribe().queued == 0 and asked == [True, False, False]  # ended: no asks


async def test_relayed_audio_never_asks_for_keyframes() -> None:
    asked: list[bool] = []
    fanout = RelayedFanout("h1", "audio", on_keyframe_request=asked.append, max_queue=2)
    listener = fanout.subscribe()
    for pts in range(5):
        fanout.feed(packet(b"\xfc", pts * 960, False, fractions.Fraction(1, 48000)))
    assert listener.queued == 2 and listener.dropped == 3 and asked == []
    assert (await listener.recv()).pts == 3 * 960
