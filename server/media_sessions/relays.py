"""Tour relays: a tour's viewers served by media nodes other than its owner.

A tour runs on one owner node, which encodes the host's video and audio once
(`media.fanout`). When the owner serves `TourLimits.local_viewers` viewers already, the next
viewer's media is served by a *relay* node: the node its socket is on when that is a live media
node, else the least-loaded one (`NodeRegistry.place`). The viewer stays a member of the tour
on the owner (rooms, subtitles, counts, questions: unchanged); only its peer connection lives
on the relay.

- Owner → relay, once per (tour, relay node): a WebSocket `GET /internal/relay/tours/{id}`
  that the relay opens to the owner's URL, signed with the cluster secret. The owner sends a
  JSON `tracks` message (track number, kind, publisher) whenever the host's tracks change, and
  each encoded packet as one binary message (`media.relay.encode_packet`). Each track is one
  bounded `PacketTrack` subscription on the host's fan-out: a link that backs up drops to the
  next keyframe and asks for one, as a slow viewer does.
- Relay → owner on the same socket: `keyframe` (a new viewer, a PLI: reaches the one encoder)
  and `lost` (the relay dropped a viewer's peer: no answer, connection failed).
- The owner asks the relay over the bus: `tour_relay_join` (the viewer's offer → the relay's
  answer), `tour_relay_answer` (the viewer's answer to a relay's re-offer), `tour_relay_leave`.
- The link ends when the tour ends or moves on the owner (the relay drops its viewers' peers;
  the new owner tells them `tour.moved`), or when the relay has no viewer left. A link that
  drops while the owner still has viewers on that relay (the relay died) re-serves them: each
  gets `tour.moved` ("media server lost") and re-joins.
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
from typing import TYPE_CHECKING, Any, TypedDict

import aiohttp
import socketio
from aiohttp import web
from aiortc.mediastreams import MediaStreamError

from media.errors import MediaError
from media.fanout import Fanout, PacketTrack
from media.negotiation import keep_candidates
from media.relay import FrameError, RelayedFanout, decode_packet, encode_packet
from media.room import MediaRoom
from server.background import TaskSet
from server.cluster.bus import Bus, BusError, NodeUnavailable
from server.cluster.nodes import NodeRegistry
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
TRACKS_WAIT_S = 3.0  # a relay answers a join once it knows the host's tracks, or after this
TRACK_POLL_S = 0.25  # how often the owner looks for changes in the host's tracks
MAX_CONTROL_BYTES = 4096  # relay → owner messages are small JSON
RELAY_JOIN_SHARE = 0.6  # of TRADETALK_FORWARD_TIMEOUT_S a relay has to answer a viewer's join


class RelayJoinBody(TypedDict):
    """bus op `tour_relay_join`: serve a viewer of `tour_id` (owned by `owner`) here."""

    tour_id: str
    owner: str
    sid: str
    peer_id: str
    sdp: str


class RelayPeerBody(TypedDict):
    """bus ops `tour_relay_answer` (with `sdp`) and `tour_relay_leave`."""

    tour_id: str
    sid: str
    peer_id: str
    sdp: str


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
            elif op == "lost":
                member = self.tour.member_by_peer(str(data.get("peer")))
                if member is not None and member.relay == self.node:
                    reason = str(data.get("reason") or "connection failed")[:200]
                    await self.tours.peer_lost(self.tour, member, reason)


# ---------------------------------------------------------------------- relay side


class RelayedTour:
    """A tour relayed on this node: the link from the owner and the local viewers' room."""

    def __init__(self, relays: TourRelays, tour_id: str, owner: str, owner_url: str) -> None:
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


# ---------------------------------------------------------------------- both sides


class TourRelays:
    """This node's relays: the links it serves as an owner, the tours it relays for others,
    and the bus calls between the two."""

    def __init__(
        self,
        tours: Tours,
        bus: Bus,
        registry: NodeRegistry,
        settings: Settings,
        sio: socketio.AsyncServer,
    ) -> None:
        self.tours = tours
        self.bus = bus
        self.registry = registry
        self.settings = settings
        self.sio = sio
        self.node_id = settings.node_id
        self.relayed: dict[str, RelayedTour] = {}  # tours this node relays, by id
        self.links: set[OwnerLink] = set()  # links this node (an owner) serves
        self._client: aiohttp.ClientSession | None = None
        self._tasks = TaskSet()
        self._joining: dict[str, asyncio.Lock] = {}

    def client(self) -> aiohttp.ClientSession:
        """The HTTP client the links are opened with."""
        if self._client is None or self._client.closed:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(connect=3))
        return self._client

    def spawn(self, coro: Any) -> None:
        """Run a coroutine in the background (stopped by `close()`)."""
        self._tasks.spawn(coro)

    def forget_lock(self, tour_id: str) -> None:
        """The tour is no longer relayed here: its join lock goes unless a join holds it."""
        lock = self._joining.get(tour_id)
        if lock is not None and not lock.locked():
            del self._joining[tour_id]

    def local_candidates(self, sdp: str) -> str:
        """Only this node's media address's candidates (see `keep_candidates`)."""
        address = self.settings.media_address
        return keep_candidates(sdp, address) if address else sdp

    # ------------------------------------------------------------------ placement (owner)

    async def pick(self, member: Member) -> str | None:
        """The node that serves a viewer the owner has no room for: the media node its socket
        is on, else the least-loaded one; None when no other media node is live."""
        nodes = {n.id: n for n in await self.registry.live()}
        own = nodes.get(member.node)
        if own is not None and own.id != self.node_id and own.media and not own.draining:
            return own.id
        return await self.registry.place(exclude=[self.node_id])

    async def attach(self, tour: Tour, member: Member, offer: str, node: str) -> str:
        """Have `node` serve `member`'s media; its answer SDP. Raises `MediaError` when the
        relay does not answer or cannot serve it."""
        body: RelayJoinBody = {
            "tour_id": tour.id,
            "owner": self.node_id,
            "sid": member.sid,
            "peer_id": member.peer_id,
            "sdp": offer,
        }
        try:  # within the client's own wait for the join, so a slow relay leaves time to
            # serve the viewer here instead
            reply = await self.bus.request(
                node, "tour_relay_join", body, timeout=RELAY_JOIN_SHARE * self.bus.timeout_s
            )
        except (NodeUnavailable, BusError) as exc:
            leave = {**body, "sdp": ""}  # a join the relay finishes after all must not linger
            self.spawn(self._tell(node, "tour_relay_leave", leave))
            raise MediaError(f"relay {node}: {exc}") from exc
        return str(reply["sdp"])

    async def _tell(self, node: str, op: str, body: dict[str, Any]) -> None:
        with contextlib.suppress(NodeUnavailable, BusError):
            await self.bus.request(node, op, body, timeout=self.bus.timeout_s)

    async def detach(self, tour_id: str, member: Member) -> None:
        """Tell the relay that `member` left (a dead relay is fine: nothing to drop)."""
        if member.relay is None:
            return
        body = {"tour_id": tour_id, "sid": member.sid, "peer_id": member.peer_id, "sdp": ""}
        try:
            await self.bus.request(member.relay, "tour_relay_leave", body, timeout=2.0)
        except (NodeUnavailable, BusError) as exc:
            log.info("relay %s did not take %s's leave (%s)", member.relay, member.peer_id, exc)

    async def answer(self, tour_id: str, member: Member, sdp: str) -> bool:
        """Hand a relayed viewer's answer to its relay's waiting re-offer."""
        if member.relay is None:
            return False
        body = {"tour_id": tour_id, "sid": member.sid, "peer_id": member.peer_id, "sdp": sdp}
        try:
            reply = await self.bus.request(member.relay, "tour_relay_answer", body)
        except (NodeUnavailable, BusError):
            return False
        return bool(reply.get("ok"))

    async def serve_link(self, request: web.Request) -> web.StreamResponse:
        """`GET /internal/relay/tours/{tour_id}` (WebSocket): a relay node's link."""
        tour_id = request.match_info["tour_id"]
        node = link_authentic(self.settings.secret, tour_id, request.headers)
        if node is None:
            raise web.HTTPForbidden(text="relay links need the cluster's signature")
        tour = self.tours.sessions.get(tour_id)
        if tour is None or tour.ending:
            raise web.HTTPNotFound(text=f"no tour {tour_id} runs here")
        ws = web.WebSocketResponse(heartbeat=LINK_HEARTBEAT_S, max_msg_size=MAX_CONTROL_BYTES)
        await ws.prepare(request)
        link = OwnerLink(self.tours, tour, node, ws)
        self.links.add(link)
        log.info("tour %s: relay link to %s open", tour_id, node)
        try:
            await link.run()
        finally:
            self.links.discard(link)
            with contextlib.suppress(Exception):
                await ws.close()
            log.info("tour %s: relay link to %s closed (%d packets)", tour_id, node, link.packets)
            await self.tours.relay_gone(tour, node)
        return ws

    # ------------------------------------------------------------------ bus ops (relay)

    async def on_join(self, body: RelayJoinBody) -> dict[str, Any]:
        """`tour_relay_join`: serve the viewer here; the answer SDP."""
        tour_id = str(body["tour_id"])
        lock = self._joining.setdefault(tour_id, asyncio.Lock())
        async with lock:  # one link per tour, however many joins come at once
            relayed = self.relayed.get(tour_id)
            if relayed is None or relayed.closed or relayed.owner != body["owner"]:
                if relayed is not None:
                    await relayed.close()
                owner = next((n for n in await self.registry.live() if n.id == body["owner"]), None)
                if owner is None or not owner.url:
                    raise MediaError(f"owner {body['owner']} is not live")
                relayed = RelayedTour(self, tour_id, owner.id, owner.url)
                self.relayed[tour_id] = relayed
                relayed.start()
        answer = await relayed.add(str(body["sid"]), str(body["peer_id"]), str(body["sdp"]))
        return {"sdp": answer}

    async def on_answer(self, body: RelayPeerBody) -> dict[str, Any]:
        """`tour_relay_answer`: a relayed viewer's answer to this relay's re-offer."""
        relayed = self.relayed.get(str(body["tour_id"]))
        ok = relayed is not None and relayed.pending.answer(str(body["sid"]), str(body["sdp"]))
        return {"ok": ok}

    async def on_leave(self, body: RelayPeerBody) -> dict[str, Any]:
        """`tour_relay_leave`: a relayed viewer left the tour."""
        relayed = self.relayed.get(str(body["tour_id"]))
        if relayed is not None:
            await relayed.remove(str(body["sid"]), str(body["peer_id"]))
        return {}

    def serve(self, bus: Bus) -> None:
        """Answer the relay ops on `bus`."""
        bus.on("tour_relay_join", self.on_join)
        bus.on("tour_relay_answer", self.on_answer)
        bus.on("tour_relay_leave", self.on_leave)

    # ------------------------------------------------------------------ figures, stop

    def peers(self) -> int:
        """Viewers' peer connections this node serves for other nodes' tours."""
        return sum(len(r.viewers) for r in self.relayed.values())

    def gauges(self) -> dict[str, float]:
        """For `/metrics`: links out (as owner), tours relayed and their viewers (as relay)."""
        return {
            "tour_relay_links": len(self.links),
            "tours_relayed": len(self.relayed),
            "tour_relayed_viewers": self.peers(),
        }

    async def close(self) -> None:
        """Drop every relayed tour, stop the background tasks, close the HTTP client."""
        for relayed in list(self.relayed.values()):
            await relayed.close()
        await self._tasks.cancel(timeout=2)
        if self._client is not None:
            await self._client.close()
