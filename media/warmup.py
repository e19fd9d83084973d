"""Warming the media engine once per process, so the first call does not pay for it.

A node's first peer connection loads and initialises what every later one reuses: aiortc and
its codecs (libvpx VP8, libopus), the DTLS certificate machinery, the resampler to the
recognizers' 16 kHz, the interface scan of ICE gathering. `warm_media()` does each once,
off the event loop where it is CPU work, and raises nothing (a failure is logged; the first
call then pays for it as before).
"""

from __future__ import annotations

import asyncio
import fractions
import logging

log = logging.getLogger(__name__)


def _warm_codecs() -> None:
    """One VP8 and one Opus frame through aiortc's encoders and decoders, and one audio frame
    through the 48 kHz → 16 kHz mono resampler the recognizers are fed by."""
    from aiortc.codecs.opus import OpusDecoder, OpusEncoder
    from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, vp8_depayload
    from aiortc.jitterbuffer import JitterFrame
    from av import AudioFrame, AudioResampler, VideoFrame

    video = VideoFrame(320, 240, "yuv420p")
    video.pts, video.time_base = 0, fractions.Fraction(1, 90000)
    payloads, timestamp = Vp8Encoder().encode(video, force_keyframe=True)
    encoded = b"".join(vp8_depayload(p) for p in payloads)
    Vp8Decoder().decode(JitterFrame(data=encoded, timestamp=timestamp))

    audio = AudioFrame(format="s16", layout="stereo", samples=960)
    for plane in audio.planes:
        plane.update(bytes(plane.buffer_size))
    audio.sample_rate, audio.pts = 48000, 0
    audio.time_base = fractions.Fraction(1, 48000)
    payloads, timestamp = OpusEncoder().encode(audio)
    OpusDecoder().decode(JitterFrame(data=payloads[0], timestamp=timestamp))
    AudioResampler(format="s16", layout="mono", rate=16000).resample(audio)


async def _warm_peer_connection() -> None:
    """A peer connection's certificate, transceivers, ICE gathering and offer, then close."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio")
        pc.addTransceiver("video")
        await pc.setLocalDescription(await pc.createOffer())
    finally:
        await pc.close()


async def warm_media() -> None:
    """Load and initialise the media engine's codecs and a peer connection once."""
    try:
        await asyncio.to_thread(_warm_codecs)
        await _warm_peer_connection()
    except Exception:
        log.exception("warming the media engine failed; the first call pays for it")
