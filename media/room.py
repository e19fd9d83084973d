"""A media room (one call or one tour): every publisher's audio and video to every subscriber.

Each peer has one aiortc `RTCPeerConnection` to the server. The client's offer carries its
microphone and camera (m-lines it sends on) and may carry m-lines it only receives on
(browser viewers: `addTransceiver(kind, {direction: "recvonly"})`). Outgoing media is
matched first to the client's own m-lines of the right kind that accept media, so a joiner's
answer already carries the existing publishers' tracks; whatever does not fit, and every
publisher that joins later, is added by a server-initiated renegotiation through the
`renegotiate(peer_id, offer_sdp) -> answer_sdp` callback (after the peer's connection is up,
so the client has applied our answer). A peer that does not answer in time is removed.

Each publisher's tracks are consumed once by a `media.fanout.Fanout` (encode once, share
packets); its audio also feeds `on_audio(peer_id, pcm)` with 16 kHz mono s16 PCM, once per
publisher, and `on_audio(peer_id, b"")` once when that track has ended (no more audio).
Outgoing tracks carry `msid` stream id = the publisher's peer id (sanitized), so a
browser's `RTCTrackEvent.streams[0].id` says whose audio/video it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from media import ice_patch  # noqa: F401  (fixes an aioice task leak on early close)
from media.errors import (
    InvalidSdpError,
    MediaError,
    NegotiationError,
    PeerExistsError,
    RoomClosedError,
    UnknownPeerError,
)
from media.fanout import AudioFanout, Fanout, PacketTrack, VideoFanout
from media.negotiation import (
    direction_for,
    keep_extension_ids,
    keep_payload_types,
    learn_extension_ids,
    learn_payload_types,
    parse_sdp,
    remote_receives,
    remote_sends,
    restrict_to_send_codec,
)

logger = logging.getLogger(__name__)

Renegotiate = Callable[[str, str], Awaitable[str]]
AudioTap = Callable[[str, bytes], None]
PeerRemoved = Callable[[str, str], None]
IceServerSpec = RTCIceServer | dict[str, Any]

LIVE_PEER_CONNECTIONS: weakref.WeakSet[RTCPeerConnection] = weakref.WeakSet()


def stop_decoders(pc: RTCPeerConnection) -> None:
    """End the decoder threads of a peer connection's receivers now. aiortc runs one
    non-daemon thread per started receiver and ends it only when the connection closes: one
    left running holds the interpreter at exit for ever."""
    for transceiver in pc.getTransceivers():
        with contextlib.suppress(Exception):
            transceiver.receiver._handle_disconnect()


def _ice_server(spec: IceServerSpec) -> RTCIceServer:
    if isinstance(spec, RTCIceServer):
        return spec
    return RTCIceServer(
        urls=spec["urls"], username=spec.get("username"), credential=spec.get("credential")
    )


def _msid_token(text: str) -> str:
    """A peer id usable as an SDP msid stream id (RFC 4566 token characters)."""
    token = re.sub(r"[^A-Za-z0-9._~-]", "_", text)
    return token or "peer"


@dataclass(eq=False)
class _Output:
    """One publisher track sent to one subscriber."""

    transceiver: RTCRtpTransceiver
    track: PacketTrack


@dataclass(eq=False)
class _Peer:
    id: str
    pc: RTCPeerConnection
    publish: bool
    subscribe: bool
    sources: list[Fanout] = field(default_factory=list)
    source_tracks: dict[Fanout, MediaStreamTrack] = field(default_factory=dict)
    outputs: dict[Fanout, _Output] = field(default_factory=dict)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    #: codecs (with payload types) agreed per mid; re-offers must keep them (see _renegotiate)
    negotiated: dict[str, list[Any]] = field(default_factory=dict)
    #: the client's own payload types: mime type -> pt, and rtx pt per primary pt
    client_pts: dict[str, int] = field(default_factory=dict)
    client_rtx: dict[int, int] = field(default_factory=dict)
    #: the client's RTP header-extension ids: uri -> id (re-offers must not reassign them)
    client_ext: dict[str, int] = field(default_factory=dict)
    dirty: bool = False
    sync_task: asyncio.Task[None] | None = None
    removed: bool = False
    #: add_peer is still negotiating: a removal then leaves closing the connection to add_peer,
    #: because closing it mid-gathering leaks the UDP sockets gathered after the close
    joining: bool = False


class MediaRoom:
    """One call or tour: peers, their sources (fan-outs) and the forwarding between them."""

    def __init__(
        self,
        room_id: str = "room",
        *,
        renegotiate: Renegotiate | None = None,
        on_audio: AudioTap | None = None,
        on_peer_removed: PeerRemoved | None = None,
        ice_servers: Iterable[IceServerSpec] = (),
        renegotiation_timeout: float = 10.0,
        connect_timeout: float = 20.0,
        video_bitrate: int = 800_000,
        video_queue: int = 30,
        audio_queue: int = 50,
    ) -> None:
        """`renegotiate` sends an offer to a peer and returns its answer (server: `rtc.offer`
        → `rtc.answer`); `on_audio(peer_id, pcm)` gets each publisher's 16 kHz mono s16 audio
        on the event loop and must not block; `on_peer_removed(peer_id, reason)` is told when
        the room drops a peer by itself (no answer, connection failed). `ice_servers`: STUN/TURN
        as `RTCIceServer` or `{"urls", "username", "credential"}` dicts; empty means host
        candidates only (enough on loopback/LAN; aiortc's own default would be Google STUN)."""
        self.room_id = room_id
        self.renegotiate = renegotiate
        self.on_audio = on_audio
        self.on_peer_removed = on_peer_removed
        self.ice_servers = [_ice_server(s) for s in ice_servers]
        self.renegotiation_timeout = renegotiation_timeout
        self.connect_timeout = connect_timeout
        self.video_bitrate = video_bitrate
        self.video_queue = video_queue
        self.audio_queue = audio_queue
        self.renegotiations = 0
        self._peers: dict[str, _Peer] = {}
        #: sources fed from outside the room (a relayed tour's packets), sent to every subscriber
        self._external: list[Fanout] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._track_serial = 0

    # ------------------------------------------------------------------ public API

    @property
    def peer_ids(self) -> list[str]:
        """Ids of the peers in the room."""
        return list(self._peers)

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    async def add_peer(
        self, peer_id: str, offer_sdp: str, *, publish: bool = True, subscribe: bool = True
    ) -> str:
        """Answer a client's offer and return the answer SDP.

        `publish`: forward the media the client sends (camera, microphone); `subscribe`: send
        it every other publisher's media. Raises `InvalidSdpError` on a malformed offer,
        `PeerExistsError`, `RoomClosedError`.
        """
        if self._closed:
            raise RoomClosedError(f"room {self.room_id} is closed")
        if peer_id in self._peers:
            raise PeerExistsError(f"peer {peer_id} is already in room {self.room_id}")
        description = parse_sdp(offer_sdp, "offer")

        # max-bundle: one ICE/DTLS transport per peer, shared by every m-line added later
        pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=list(self.ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
            )
        )
        LIVE_PEER_CONNECTIONS.add(pc)
        peer = _Peer(peer_id, pc, publish, subscribe, joining=True)
        self._peers[peer_id] = peer
        self._watch(peer)
        try:
            try:
                await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            except Exception as exc:
                raise InvalidSdpError(f"offer rejected: {exc}") from exc
            self._check_present(peer)
            self._configure_offered(peer, description.media)
            learn_payload_types(description.media, peer.client_pts, peer.client_rtx)
            learn_extension_ids(description.media, peer.client_ext)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
            self._check_present(peer)
            for transceiver in pc.getTransceivers():
                if transceiver.mid is not None:  # every one has its mid once answered
                    peer.negotiated[transceiver.mid] = copy.deepcopy(transceiver._codecs)
        except BaseException:
            peer.joining = False
            await self._drop(peer, "join failed", notify=False)
            with contextlib.suppress(Exception):
                await pc.close()  # removed meanwhile: _drop left the close to us
            raise
        peer.joining = False
        for fanout in peer.sources:
            fanout.start(peer.source_tracks.pop(fanout))
        for other in self._peers.values():
            if other is not peer and other.subscribe and peer.sources:
                self._schedule_sync(other)
        if peer.dirty:
            self._schedule_sync(peer)
        return pc.localDescription.sdp

    async def remove_peer(self, peer_id: str, reason: str = "left") -> bool:
        """Remove a peer: close its connection, stop its sources, update the others.

        Idempotent: returns False if the peer is not (or no longer) in the room, e.g. because
        the room already dropped it (then `on_peer_removed` was called).
        """
        peer = self._peers.get(peer_id)
        if peer is None:
            return False
        await self._drop(peer, reason, notify=False)
        return True

    def add_source(self, fanout: Fanout) -> None:
        """A source that is not a peer's track (`media.relay.RelayedFanout`): every subscriber
        gets it (renegotiated as needed)."""
        if self._closed:
            raise RoomClosedError(f"room {self.room_id} is closed")
        self._external.append(fanout)
        for peer in self._peers.values():
            if peer.subscribe:
                self._schedule_sync(peer)

    async def remove_source(self, fanout: Fanout) -> None:
        """Stop sending an external source (its subscribers' tracks end) and close it."""
        if fanout not in self._external:
            return
        self._external.remove(fanout)
        await fanout.close()
        if not self._closed:
            for peer in self._peers.values():
                if fanout in peer.outputs:
                    self._schedule_sync(peer)

    async def close(self) -> None:
        """Remove every peer and stop every task; idempotent."""
        self._closed = True
        for peer in list(self._peers.values()):
            await self._drop(peer, "room closed", notify=False)
        external, self._external = self._external, []
        for fanout in external:
            await fanout.close()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def request_keyframe(self, peer_id: str) -> None:
        """Force a keyframe on a publisher's shared video encoder."""
        peer = self._peers.get(peer_id)
        if peer is None:
            raise UnknownPeerError(peer_id)
        for fanout in peer.sources:
            fanout.request_keyframe(urgent=True)

    def stats(self) -> dict[str, int]:
        """Live resources of this room (for leak tests and monitoring)."""
        peers = list(self._peers.values())
        fanouts = [f for p in peers for f in p.sources] + self._external
        senders = [t.sender for p in peers for t in p.pc.getTransceivers()]
        return {
            "peers": len(peers),
            "peer_connections": sum(1 for p in peers if p.pc.connectionState != "closed"),
            "connected": sum(1 for p in peers if p.pc.connectionState == "connected"),
            "sources": len(fanouts),
            "video_encoders": sum(1 for f in fanouts if f.kind == "video" and f.encoder_open),
            "audio_encoders": sum(1 for f in fanouts if f.kind == "audio" and f.encoder_open),
            "keyframes": sum(f.keyframes for f in fanouts if isinstance(f, VideoFanout)),
            "subscriptions": sum(f.subscribers for f in fanouts),
            "outputs": sum(len(p.outputs) for p in peers),
            "per_sender_encoders": sum(1 for s in senders if _sender_encodes(s)),
            "tasks": sum(1 for t in self._tasks if not t.done())
            + sum(1 for f in fanouts if f.running),
            "renegotiations": self.renegotiations,
        }

    def fanouts(self, peer_id: str) -> list[Fanout]:
        """A publisher's sources (for tests and stats)."""
        return list(self._peers[peer_id].sources)

    # ------------------------------------------------------------------ joining

    def _watch(self, peer: _Peer) -> None:
        pc = peer.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if not peer.publish or track.kind not in ("audio", "video"):
                return
            fanout: Fanout
            if track.kind == "video":
                fanout = VideoFanout(
                    peer.id, max_queue=self.video_queue, bitrate=self.video_bitrate
                )
            else:
                tap = None
                if self.on_audio is not None:
                    callback, pid = self.on_audio, peer.id

                    def tap(pcm: bytes) -> None:
                        callback(pid, pcm)

                fanout = AudioFanout(peer.id, on_pcm=tap, max_queue=self.audio_queue)
            peer.sources.append(fanout)
            peer.source_tracks[fanout] = track

        @pc.on("connectionstatechange")
        def on_state() -> None:
            state = pc.connectionState
            if state == "connected":
                peer.connected.set()
            elif state == "failed" and not peer.removed:
                self._spawn(self._drop(peer, "connection failed", notify=True))

    def _configure_offered(self, peer: _Peer, media: list[Any]) -> None:
        """Directions for the client's m-lines; fill receivable ones with existing sources."""
        wanted = self._wanted_sources(peer)
        by_mid = {m.rtp.muxId: m for m in media}
        for transceiver in peer.pc.getTransceivers():
            m = by_mid.get(transceiver.mid)
            if m is None:
                continue
            receive = peer.publish and remote_sends(m.direction)
            send = False
            if remote_receives(m.direction):
                fanout = next((f for f in wanted if f.kind == transceiver.kind), None)
                if fanout is not None and restrict_to_send_codec(transceiver):
                    wanted.remove(fanout)
                    self._attach(peer, fanout, transceiver)
                    send = True
            transceiver.direction = direction_for(send, receive)
        if wanted:
            peer.dirty = True

    def _wanted_sources(self, peer: _Peer) -> list[Fanout]:
        """Sources this peer should receive but does not yet."""
        if not peer.subscribe:
            return []
        sources = [
            f
            for other in self._peers.values()
            if other is not peer and not other.removed
            for f in other.sources
        ]
        return [f for f in sources + self._external if f not in peer.outputs]

    def _attach(self, peer: _Peer, fanout: Fanout, transceiver: RTCRtpTransceiver) -> None:
        self._track_serial += 1
        publisher = _msid_token(fanout.source_id)
        track = fanout.subscribe(f"{publisher}-{fanout.kind}-{self._track_serial}")
        sender = transceiver.sender
        sender.replaceTrack(track)
        # msid stream id = publisher: the browser groups its audio+video and knows whose it is
        sender._stream_id = publisher
        # a PLI/FIR from this subscriber reaches the sender as _send_keyframe(): redirect it to
        # the shared encoder (aiortc would only flag its own per-sender encoder, unused here)
        sender._send_keyframe = track.request_keyframe  # type: ignore[method-assign]
        peer.outputs[fanout] = _Output(transceiver, track)

    # ------------------------------------------------------------------ renegotiation

    def _schedule_sync(self, peer: _Peer) -> None:
        peer.dirty = True
        if peer.removed or (peer.sync_task is not None and not peer.sync_task.done()):
            return
        peer.sync_task = self._spawn(self._sync(peer))

    async def _sync(self, peer: _Peer) -> None:
        """Bring a peer's outgoing tracks in line with the room, renegotiating as needed."""
        try:
            try:
                await asyncio.wait_for(peer.connected.wait(), self.connect_timeout)
            except TimeoutError:
                raise NegotiationError("peer connection never came up") from None
            while peer.dirty and not peer.removed:
                peer.dirty = False
                if self._update_outputs(peer):
                    await self._renegotiate(peer)
        except NegotiationError as exc:
            logger.warning("room %s: removing %s: %s", self.room_id, peer.id, exc)
            if not peer.removed:
                await self._drop(peer, str(exc), notify=True)

    def _update_outputs(self, peer: _Peer) -> bool:
        """Add transceivers for new sources, deactivate those of departed ones."""
        changed = False
        live = {f for other in self._peers.values() if other is not peer for f in other.sources}
        live.update(self._external)
        for fanout, output in list(peer.outputs.items()):
            if fanout not in live or not peer.subscribe:
                output.track.stop()
                output.transceiver.direction = (
                    "recvonly" if output.transceiver.direction == "sendrecv" else "inactive"
                )
                del peer.outputs[fanout]
                changed = True
        for fanout in self._wanted_sources(peer):
            transceiver = peer.pc.addTransceiver(fanout.kind, direction="sendonly")
            restrict_to_send_codec(transceiver)
            self._attach(peer, fanout, transceiver)
            changed = True
        return changed

    async def _renegotiate(self, peer: _Peer) -> None:
        if self.renegotiate is None:
            logger.warning(
                "room %s: cannot renegotiate with %s (no callback)", self.room_id, peer.id
            )
            return
        pc = peer.pc
        offer = await pc.createOffer()
        offer_sdp = keep_payload_types(
            offer.sdp, pc.getTransceivers(), peer.negotiated, peer.client_pts, peer.client_rtx
        )
        offer_sdp = keep_extension_ids(offer_sdp, pc.getTransceivers(), peer.client_ext)
        await pc.setLocalDescription(RTCSessionDescription(offer_sdp, "offer"))
        self.renegotiations += 1
        try:
            answer_sdp = await asyncio.wait_for(
                self.renegotiate(peer.id, pc.localDescription.sdp), self.renegotiation_timeout
            )
        except TimeoutError:
            raise NegotiationError(f"no answer within {self.renegotiation_timeout:g} s") from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise NegotiationError(f"renegotiation failed: {exc}") from exc
        if peer.removed:
            return
        try:
            parse_sdp(answer_sdp, "answer")
            await pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        except (MediaError, Exception) as exc:
            raise NegotiationError(f"unusable answer: {exc}") from exc

    # ------------------------------------------------------------------ leaving

    async def _drop(self, peer: _Peer, reason: str, *, notify: bool) -> None:
        if peer.removed:
            return
        peer.removed = True
        if self._peers.get(peer.id) is peer:
            del self._peers[peer.id]
        current = asyncio.current_task()
        if peer.sync_task is not None and peer.sync_task is not current:
            peer.sync_task.cancel()
            await asyncio.wait([peer.sync_task])
        for output in peer.outputs.values():
            output.track.stop()
        peer.outputs.clear()
        for fanout in peer.sources:
            await fanout.close()
        if not peer.joining:
            with contextlib.suppress(Exception):
                await peer.pc.close()
        if peer.sources and not self._closed:
            for other in self._peers.values():
                if any(f in other.outputs for f in peer.sources):
                    self._schedule_sync(other)
        peer.sources.clear()
        peer.source_tracks.clear()
        if notify and self.on_peer_removed is not None:
            try:
                self.on_peer_removed(peer.id, reason)
            except Exception:
                logger.exception("on_peer_removed callback failed")

    def _check_present(self, peer: _Peer) -> None:
        if peer.removed:
            raise MediaError(f"peer {peer.id} was removed while joining")

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _sender_encodes(sender: Any) -> bool:
    """Whether aiortc built a real per-sender encoder (it must not: we hand it packets).

    Reads aiortc 1.16's private `RTCRtpSender.__encoder`; VP8's codec context is only created
    by `encode()`, never by `pack()`. aiortc's `OpusEncoder` allocates (but never opens) a
    context in its constructor, so for audio we check that no frame was ever encoded.
    """
    encoder = getattr(sender, "_RTCRtpSender__encoder", None)
    if encoder is None:
        return False
    if sender.kind == "video":
        return getattr(encoder, "codec", None) is not None
    return getattr(encoder, "first_packet_pts", None) is not None
