"""The two ends of a tour's relay link (composed by `server.cluster.tour_relays`).

`OwnerLink` runs on the tour's owner, in the `GET /internal/relay/tours/{id}` WebSocket a relay
node opened: the host's tracks (`tracks`) and their encoded packets (`media.relay` framing) go
out, `keyframe` and `lost` come back. `RelayedTour` runs on the relay: it opens that WebSocket
(signed with the cluster's secret), feeds each track's packets to a `RelayedFanout` in its own
`MediaRoom`, and serves its viewers' peer connections from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import socketio
from aiohttp import web
from aiortc.mediastreams import MediaStreamError

from media.errors import MediaError
from media.fanout import Fanout, PacketTrack
from media.relay import FrameError, RelayedFanout, decode_packet, encode_packet
from media.room import MediaRoom
from server.config import Settings
from server.media_sessions.reoffers import PendingAnswers

if TYPE_CHECKING:
    from server.media_sessions.core import Member
    from server.media_sessions.tours import Tour, Tours

log = logging.getLogger("tradetalk.relays")

RELAY_ROUTE = "/internal/relay/tours/{tour_id}"
NODE_HEADER = "X-TradeTalk-Relay-Node"
TIME_HEADER = "X-TradeTalk-Relay-Time"
SIGNATURE_HEADER = "X-TradeTalk-Relay-Signature"
SIGNATURE_MAX_AGE_S = 60.0
LINK_HEARTBEAT_S = 5.0  # a link whose peer stops answering pings closes within 1.5 x this
TRACK_POLL_S = 0.25  # how often the owner looks for changes in the host's tracks
MAX_CONTROL_BYTES = 4096  # relay → owner messages are small JSON
TRACKS_WAIT_S = 3.0  # a relay answers a join once it knows the host's tracks, or after this


def relay_signature(secret: bytes, tour_id: str, node: str, stamp: str) -> str:
    """HMAC-SHA256 (the cluster's shared secret) of one link request."""
    message = f"relay:{tour_id}:{node}:{stamp}".encode()
    return hmac.new(bytes(secret), message, hashlib.sha256).hexdigest()


def link_headers(secret: bytes, tour_id: str, node: str) -> dict[str, str]:
    """The headers that authenticate a relay node's link request."""
    stamp = f"{time.time():.3f}"
    return {
        NODE_HEADER: node,
        TIME_HEADER: stamp,
        SIGNATURE_HEADER: relay_signature(secret, tour_id, node, stamp),
    }


def link_authentic(secret: bytes, tour_id: str, headers: Any) -> str | None:
    """The requesting node's id when the headers are signed with our secret and fresh."""
    node, stamp, signature = (headers.get(h) for h in (NODE_HEADER, TIME_HEADER, SIGNATURE_HEADER))
    if not node or not stamp or not signature:
        return None
    try:
        age = abs(time.time() - float(stamp))
    except ValueError:
        return None
    expected = relay_signature(secret, tour_id, node, stamp)
    if age > SIGNATURE_MAX_AGE_S or not hmac.compare_digest(expected, signature):
        return None
    return str(node)


class RelayNode(Protocol):
    """What a relayed tour needs of its node (`server.cluster.tour_relays.TourRelays`)."""

    settings: Settings
    node_id: str
    sio: socketio.AsyncServer
    relayed: dict[str, RelayedTour]

    def client(self) -> aiohttp.ClientSession: ...
    def spawn(self, coro: Awaitable[Any]) -> None: ...
    def local_candidates(self, sdp: str) -> str: ...
    def forget_lock(self, tour_id: str) -> None: ...


class ViewerRelays(Protocol):
    """What `Tours` asks of the relays (`server.cluster.tour_relays.TourRelays`)."""

    links: set[OwnerLink]

    async def pick(self, member: Member) -> str | None: ...
    async def attach(self, tour: Tour, member: Member, offer: str, node: str) -> str: ...
    async def detach(self, tour_id: str, member: Member) -> None: ...
    async def answer(self, tour_id: str, member: Member, sdp: str) -> bool: ...


# ---------------------------------------------------------------------- owner side


class OwnerLink:
    """The owner's end of one link: the host's packets to one relay node, its requests back."""

    def __init__(self, tours: Tours, tour: Tour, node: str, ws: web.WebSocketResponse) -> None:
        self.tours = tours
        self.tour = tour
        self.node = node
        self.ws = ws
        self.sent: dict[Fanout, tuple[int, PacketTrack, asyncio.Task[None]]] = {}
        self.packets = 0
        self.draining = False  # the relay said it stops (SIGTERM): a restart, not a loss
        self._numbers = 0
        self._announced = False
        self._lock = asyncio.Lock()

    def _host_fanouts(self) -> list[Fanout]:
        host = self.tour.host_member
        if host is None or host.peer_id not in self.tour.room.peer_ids:
            return []
        return self.tour.room.fanouts(host.peer_id)

    def _running(self) -> bool:
        return self.tours.sessions.get(self.tour.id) is self.tour and not self.ws.closed

    async def run(self) -> None:
        """Send until the tour ends or moves here, or the relay goes."""
        reader = asyncio.create_task(self._read(), name=f"relay-read-{self.tour.id}-{self.node}")
        try:
            while self._running() and not reader.done():
                await self._sync_tracks()
                await asyncio.wait([reader], timeout=TRACK_POLL_S)
        except (ConnectionError, RuntimeError) as exc:  # the socket closed under a send
            log.info("tour %s: relay link to %s broke (%s)", self.tour.id, self.node, exc)
        finally:
            reader.cancel()
            for _, track, task in self.sent.values():
                track.stop()
                task.cancel()
            tasks = [task for _, _, task in self.sent.values()] + [reader]
            await asyncio.wait(tasks)
            self.sent.clear()

    async def _sync_tracks(self) -> None:
        current = self._host_fanouts()
        if self._announced and set(current) == set(self.sent):
            return
        self._announced = True  # the first message says "no tracks yet" too
        for fanout in [f for f in self.sent if f not in current]:
            _, track, task = self.sent.pop(fanout)
            track.stop()
            task.cancel()
        added = [f for f in current if f not in self.sent]
        numbers = {f: self.sent[f][0] for f in current if f in self.sent}
        numbers.update({f: self._next_number() for f in added})
        tracks = [{"id": numbers[f], "kind": f.kind, "source": f.source_id} for f in current]
        await self._send_text({"op": "tracks", "tracks": tracks})
        for fanout in added:  # subscribed after the relay knows the numbers
            track = fanout.subscribe()
            task = asyncio.create_task(self._pump(numbers[fanout], track))
            self.sent[fanout] = (numbers[fanout], track, task)

    def _next_number(self) -> int:
        number = self._numbers % 256
        self._numbers += 1
        return number

    async def _pump(self, number: int, track: PacketTrack) -> None:
        try:
            while True:
                packet = await track.recv()
                data = encode_packet(number, packet)
                async with self._lock:
                    await self.ws.send_bytes(data)
                self.packets += 1
        except (MediaStreamError, ConnectionError, RuntimeError):
            pass  # the host's track ended, or the link closed

    async def _send_text(self, message: dict[str, Any]) -> None:
        async with self._lock:
            await self.ws.send_str(json.dumps(message, separators=(",", ":")))

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                data = json.loads(message.data)
                op = data.get("op")
            except (ValueError, AttributeError):
                log.warning("relay %s sent an unreadable message", self.node)
                continue
            if op == "keyframe":
                by_number = {n: f for f, (n, _, _) in self.sent.items()}
                fanout = by_number.get(data.get("track"))
                if fanout is not None:
                    fanout.request_keyframe(urgent=bool(data.get("urgent")))
            elif op == "draining":
                self.draining = True
            elif op == "lost":
                member = self.tour.member_by_peer(str(data.get("peer")))
                if member is not None and member.relay == self.node:
                    reason = str(data.get("reason") or "connection failed")[:200]
                    await self.tours.peer_lost(self.tour, member, reason)


# ---------------------------------------------------------------------- relay side


class RelayedTour:
    """A tour relayed on this node: the link from the owner and the local viewers' room."""

    def __init__(self, relays: RelayNode, tour_id: str, owner: str, owner_url: str) -> None:
        self.relays = relays
        self.tour_id = tour_id
        self.owner = owner
        self.owner_url = owner_url
        settings = relays.settings
        self.room = MediaRoom(
            f"relay-{tour_id}",
            renegotiate=self._renegotiate,
            on_peer_removed=self._peer_removed,
            ice_servers=settings.ice_servers,
            renegotiation_timeout=settings.limits.renegotiation_timeout_s,
        )
        self.viewers: dict[str, str] = {}  # peer id -> socket id
        self.pending = PendingAnswers()
        self.tracks: dict[int, RelayedFanout] = {}
        self.ready = asyncio.Event()  # the owner said which tracks the host has
        self.closed = False
        self.packets = 0
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Open the link in the background."""
        self.task = asyncio.create_task(self._run(), name=f"relay-link-{self.tour_id}")

    async def _run(self) -> None:
        url = self.owner_url.rstrip("/") + RELAY_ROUTE.format(tour_id=self.tour_id)
        headers = link_headers(self.relays.settings.secret, self.tour_id, self.relays.node_id)
        try:
            client = self.relays.client()
            async with client.ws_connect(
                url, headers=headers, heartbeat=LINK_HEARTBEAT_S, max_msg_size=2 << 20
            ) as ws:
                self.ws = ws
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.BINARY:
                        self._packet(message.data)
                    elif message.type == aiohttp.WSMsgType.TEXT:
                        await self._control(message.data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("relay link for tour %s to %s failed: %s", self.tour_id, self.owner, exc)
        finally:
            self.ws = None
            self.ready.set()  # a join waiting for the tracks gives up now
            if not self.closed:
                log.info("relay link for tour %s to %s closed", self.tour_id, self.owner)
                self.relays.spawn(self.close())

    def _packet(self, data: bytes) -> None:
        try:
            number, packet = decode_packet(data)
        except FrameError as exc:
            log.warning("tour %s: bad relayed packet (%s)", self.tour_id, exc)
            return
        fanout = self.tracks.get(number)
        if fanout is not None:
            self.packets += 1
            fanout.feed(packet)

    async def _control(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            return
        if not isinstance(data, dict) or data.get("op") != "tracks":
            return
        wanted = {
            int(t["id"]): (str(t["kind"]), str(t["source"]))
            for t in data.get("tracks") or []
            if isinstance(t, dict) and t.get("kind") in ("audio", "video")
        }
        for number in [n for n in self.tracks if n not in wanted]:
            await self.room.remove_source(self.tracks.pop(number))
        for number, (kind, source) in wanted.items():
            if number in self.tracks or self.room.closed:
                continue
            fanout = RelayedFanout(
                source,
                kind,
                on_keyframe_request=functools.partial(self._ask_keyframe, number),
                max_queue=self.room.video_queue if kind == "video" else self.room.audio_queue,
            )
            self.tracks[number] = fanout
            self.room.add_source(fanout)
        self.ready.set()

    def _ask_keyframe(self, number: int, urgent: bool) -> None:
        self._send({"op": "keyframe", "track": number, "urgent": urgent})

    def _send(self, message: dict[str, Any]) -> None:
        ws = self.ws
        if ws is not None and not ws.closed:
            self.relays.spawn(ws.send_str(json.dumps(message, separators=(",", ":"))))

    async def _renegotiate(self, peer_id: str, offer: str) -> str:
        sid = self.viewers.get(peer_id)
        if sid is None:
            raise MediaError(f"peer {peer_id} is not relayed here")
        offer = self.relays.local_candidates(offer)
        payload = {"tour_id": self.tour_id, "sdp": offer}
        return await self.pending.offer(self.relays.sio, "tour.offer", payload, sid)

    def _peer_removed(self, peer_id: str, reason: str) -> None:
        sid = self.viewers.pop(peer_id, None)
        if sid is not None:
            self.pending.cancel(sid)
            self._send({"op": "lost", "peer": peer_id, "reason": reason})

    async def add(self, sid: str, peer_id: str, offer: str) -> str:
        """Answer a viewer's offer here (once the host's tracks are known, if they come)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), TRACKS_WAIT_S)
        if self.closed or self.ws is None:
            raise MediaError(f"no link to the owner of tour {self.tour_id}")
        self.viewers[peer_id] = sid
        try:
            answer = await self.room.add_peer(peer_id, offer, publish=False, subscribe=True)
        except BaseException:
            self.viewers.pop(peer_id, None)
            raise
        return self.relays.local_candidates(answer)

    async def remove(self, sid: str, peer_id: str) -> None:
        """A viewer left: its peer goes; the last one closes the link."""
        if self.viewers.pop(peer_id, None) is not None:
            self.pending.cancel(sid)
        await self.room.remove_peer(peer_id, "left")
        if not self.viewers:
            await self.close()

    async def drain(self) -> None:
        """This node stops (SIGTERM): tell the owner first (its viewers here re-join elsewhere,
        told the media server is restarting, not lost), then close."""
        ws = self.ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.send_str(json.dumps({"op": "draining"}))
        await self.close()

    async def close(self) -> None:
        """Drop every viewer's peer and the link; idempotent."""
        if self.closed:
            return
        self.closed = True
        if self.relays.relayed.get(self.tour_id) is self:
            del self.relays.relayed[self.tour_id]
            self.relays.forget_lock(self.tour_id)
        self.pending.cancel()
        self.viewers.clear()
        task = self.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.wait([task])
        for fanout in self.tracks.values():
            fanout.end()
        self.tracks.clear()
        await self.room.close()
