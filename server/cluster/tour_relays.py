"""Tour relays: a tour's viewers served by media nodes other than its owner (the link's two
ends are `server.media_sessions.relay_links`; this composes them with the bus and the registry).

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
- Relay → owner on the same socket: `keyframe` (a new viewer, a PLI: reaches the one encoder),
  `lost` (the relay dropped a viewer's peer: no answer, connection failed) and `draining` (the
  relay stops, SIGTERM: it closes its links right after).
- The owner asks the relay over the bus: `tour_relay_join` (the viewer's offer → the relay's
  answer), `tour_relay_answer` (the viewer's answer to a relay's re-offer), `tour_relay_leave`.
- The link ends when the tour ends or moves on the owner (the relay drops its viewers' peers;
  the new owner tells them `tour.moved`), or when the relay has no viewer left. A link that
  drops while the owner still has viewers on that relay re-serves them: each gets `tour.moved`
  and re-joins — "media server restarting" when the relay said it drains, else "media server
  lost" (it died).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, TypedDict

import aiohttp
import socketio
from aiohttp import web

from media.errors import MediaError
from media.negotiation import keep_candidates
from server.background import TaskSet
from server.cluster.bus import Bus, BusError, NodeUnavailable
from server.cluster.failover import LOST, RESTARTING
from server.cluster.nodes import NodeRegistry
from server.config import Settings
from server.media_sessions.relay_links import (
    LINK_HEARTBEAT_S,
    MAX_CONTROL_BYTES,
    RELAY_ROUTE,
    OwnerLink,
    RelayedTour,
    link_authentic,
)

if TYPE_CHECKING:
    from server.media_sessions.core import Member
    from server.media_sessions.tours import Tour, Tours

log = logging.getLogger("tradetalk.relays")

__all__ = ["RELAY_ROUTE", "TourRelays"]

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

    async def drain(self) -> int:
        """SIGTERM: every tour relayed here tells its owner and stops (its viewers here
        re-join elsewhere now, not when the process is gone); how many tours."""
        relayed = list(self.relayed.values())
        await asyncio.gather(*(tour.drain() for tour in relayed))
        return len(relayed)

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
            await self.tours.relay_gone(tour, node, RESTARTING if link.draining else LOST)
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
