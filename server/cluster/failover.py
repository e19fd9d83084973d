"""Sessions outlive their node: a dead owner's calls and tours are re-placed, and a draining node
hands its own to the others.

Every node checks, every third of the node TTL:
- records whose owner's heartbeat lapsed: one node (a short Redis lock per session) places the
  session on the least-loaded live media node, which takes the record over (`epoch` + 1), runs
  the session on a fresh media room and tells its members `call.moved` / `tour.moved`; with no
  media node left the session ends (`call.ended` / `tour.ended`, reason "media server lost");
- members whose socket's node died are dropped from the sessions this node owns;
- sessions this node runs but another node took over (a missed heartbeat) are let go.
On SIGTERM, `drain()` marks this node draining (placement skips it), closes every open subtitle
line and hands each session to another node, which tells the members to re-join there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from server.background import Periodic
from server.cluster.bus import AdoptBody, AdoptReply, Bus, BusError, NodeUnavailable
from server.cluster.nodes import NodeRegistry
from server.media_sessions.core import MediaSessions
from server.storage.media_records import MediaRecord, MediaRecords

log = logging.getLogger("tradetalk.failover")

LOST = "media server lost"
RESTARTING = "media server restarting"


class Failover:
    """Re-places the sessions of dead nodes; hands this node's sessions over on drain."""

    def __init__(
        self,
        node_id: str,
        registry: NodeRegistry,
        records: MediaRecords,
        bus: Bus,
        kinds: list[MediaSessions[Any]],
        cluster: str,
    ) -> None:
        self.node_id = node_id
        self.cluster = cluster
        self.registry = registry
        self.records = records
        self.bus = bus
        self.kinds = {kind.kind: kind for kind in kinds}
        self.interval = max(0.05, registry.ttl_s / 3)
        self._seen: set[str] = set()
        self._loop = Periodic("node check", self.interval, self.check)

    async def start(self) -> None:
        """Re-place what an earlier run of this node id left, then check the nodes in the
        background until `stop()`."""
        for record in await self.records.all():
            if record.get("owner") == self.node_id and record.get("cluster") == self.cluster:
                if record.get("kind") in self.kinds and record["id"] not in self._running():
                    log.warning(
                        "%s %s was left by an earlier run of this node",
                        record["kind"],
                        record["id"],
                    )
                    await self.replace(record, LOST)
        self._loop.start()

    def _running(self) -> set[str]:
        return {sid for kind in self.kinds.values() for sid in kind.sessions}

    async def stop(self) -> None:
        """Stop checking."""
        await self._loop.stop()

    async def check(self) -> None:
        """One round: drop dead nodes' members, let go of what was taken, re-place orphans."""
        live = {node.id for node in await self.registry.live()} | {self.node_id}
        for dead in self._seen - live:
            log.warning("node %s is gone", dead)
            for kind in self.kinds.values():
                await kind.drop_node(dead)
        self._seen = live
        for kind in self.kinds.values():
            for session_id in await kind.refresh_records():
                log.warning("%s %s was taken over by another node", kind.kind, session_id)
                await kind.let_go(session_id)
        alive: dict[str, bool] = dict.fromkeys(live, True)  # other clusters' owners too
        for record in await self.records.all():
            owner = record.get("owner")
            if record.get("kind") not in self.kinds or not isinstance(owner, str):
                continue
            if record.get("cluster") != self.cluster:  # another cluster's nodes see to it
                continue
            if owner not in alive:
                alive[owner] = await self.registry.alive(owner)
            if alive[owner]:
                continue
            ttl_ms = int(self.registry.ttl_s * 2000)
            if await self.records.lock_failover(record["id"], self.node_id, ttl_ms):
                await self.replace(record, LOST)

    async def replace(self, record: MediaRecord, reason: str) -> bool:
        """Put a session whose owner died on a live media node; end it when there is none."""
        owner = record["owner"]
        tried: list[str] = [owner]
        while True:
            target = await self.registry.place(exclude=tried)
            if target is None:
                break
            body: AdoptBody = {"id": record["id"], "owner": owner, "reason": reason}
            try:
                reply = await self.bus.request(target, "adopt", body)
                return bool(reply.get("ok"))
            except (NodeUnavailable, BusError) as exc:
                log.warning("node %s could not take %s over (%s)", target, record["id"], exc)
                tried.append(target)
        kind = self.kinds[record["kind"]]
        taken = await self.records.take_over(record["id"], owner, self.node_id)
        if taken is not None:
            log.warning("no media node for %s %s: ending it", kind.kind, record["id"])
            session = await kind.adopt(taken, reason, tell=False)
            await kind.end_session(session, reason)
        return False

    async def adopt(self, body: AdoptBody) -> AdoptReply:
        """Bus op `adopt`: take a session over (from a dead owner, or handed over by a
        draining one)."""
        if body.get("handed"):
            record = await self.records.get(body["id"])
            if record is None or record.get("owner") != self.node_id:
                return {"ok": False}
        else:
            record = await self.records.take_over(body["id"], body["owner"], self.node_id)
            if record is None:
                return {"ok": False}
        await self.kinds[record["kind"]].adopt(record, body["reason"])
        return {"ok": True}

    async def drain(self, finish_s: float | None = None) -> int:
        """Hand every session of this node to another media node (each one's open lines
        within `finish_s` when given); returns how many moved (those with nowhere to go stay
        and end with the process)."""
        with contextlib.suppress(Exception):
            await self.registry.set_draining()
        moves = []
        for kind in self.kinds.values():
            for session in list(kind.sessions.values()):
                target = await self.registry.place(exclude=[self.node_id])
                if target is not None:
                    moves.append(self._hand(kind, session, target, finish_s))
        return sum(await asyncio.gather(*moves))  # at once: each waits for its open lines

    async def _hand(
        self, kind: MediaSessions[Any], session: Any, target: str, finish_s: float | None
    ) -> int:
        """Hand one session to `target` and ask it to adopt it; 1 if it moved."""
        record = await kind.hand_over(session, target, finish_s)
        if record is None:
            return 0
        body: AdoptBody = {"id": session.id, "handed": True, "reason": RESTARTING}
        try:
            await self.bus.request(target, "adopt", body)
        except (NodeUnavailable, BusError) as exc:  # the others' check re-places it
            log.warning("node %s did not take %s (%s)", target, session.id, exc)
            return 0
        return 1
