"""Real offers (from aiortc) for tests that need a well-formed SDP, and ways to break one."""

from __future__ import annotations

from aiortc import RTCPeerConnection


async def sample_offer(audio: bool = True, video: bool = True) -> str:
    """A real offer with gathered candidates, from a peer connection closed right after."""
    pc = RTCPeerConnection()
    try:
        if audio:
            pc.addTransceiver("audio", direction="sendrecv")
        if video:
            pc.addTransceiver("video", direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()
