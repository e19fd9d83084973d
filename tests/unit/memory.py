"""In-memory stand-ins for the collaborators the cluster and bounds logic is given (Redis-backed
in the server), so the unit tests drive that logic alone, in milliseconds, on a fake clock.

They keep the documented contracts of the real ones (`server.cluster.bus.Bus`,
`server.cluster.nodes.NodeRegistry`, `server.storage.media_records.MediaRecords`); the
integration tests check the real ones on a real Redis.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from server.cluster.bus import BusError, Handler, NodeUnavailable
from server.storage.media_records import MediaRecord


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class BusNetwork:
    """Buses of several nodes that reach each other directly (a node not on it is gone)."""

    def __init__(self) -> None:
        self.buses: dict[str, MemoryBus] = {}

    def bus(self, node_id: str, timeout_s: float = 5.0) -> MemoryBus:
        bus = MemoryBus(self, node_id, timeout_s)
        self.buses[node_id] = bus
        return bus

    def cut(self, node_id: str) -> None:
        """The node died: nothing reaches it any more."""
        self.buses.pop(node_id, None)


@dataclass
class MemoryBus:
    """`Bus`'s request/broadcast contract without Redis: requests go through JSON-like copies."""

    network: BusNetwork
    node_id: str
    timeout_s: float = 5.0
    handlers: dict[str, Handler] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def on(self, op: str, handler: Handler) -> None:
        self.handlers[op] = handler

    async def request(
        self, node_id: str, op: str, body: Mapping[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        self.requests.append((node_id, op, dict(body)))
        target = self.network.buses.get(node_id)
        if target is None:
            raise NodeUnavailable(f"node {node_id}: no listener")
        return await target.call(op, copy.deepcopy(dict(body)))

    async def broadcast(self, op: str, body: Mapping[str, Any]) -> None:
        for node_id, bus in list(self.network.buses.items()):
            if node_id != self.node_id and op in bus.handlers:
                await bus.call(op, copy.deepcopy(dict(body)))

    async def call(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        handler = self.handlers.get(op)
        if handler is None:
            raise BusError(f"node {self.node_id} has no handler for {op!r}")
        try:
            return copy.deepcopy(dict(await handler(body) or {}))
        except Exception as exc:
            raise BusError(f"{type(exc).__name__}: {exc}") from exc


class MemoryRecords:
    """`MediaRecords` in a dict (shared by every node of a test, like Redis)."""

    def __init__(self) -> None:
        self.records: dict[str, MediaRecord] = {}
        self.conversations: dict[str, str] = {}
        self.locks: set[str] = set()

    async def put(self, record: MediaRecord) -> None:
        self.records[record["id"]] = copy.deepcopy(record)
        if record.get("conversation_id"):
            self.conversations.setdefault(record["conversation_id"], record["id"])

    async def get(self, session_id: str) -> MediaRecord | None:
        record = self.records.get(session_id)
        return copy.deepcopy(record) if record else None

    async def by_conversation(self, cid: str) -> MediaRecord | None:
        call_id = self.conversations.get(cid)
        return await self.get(call_id) if call_id else None

    async def all(self) -> list[MediaRecord]:
        return [copy.deepcopy(r) for _, r in sorted(self.records.items())]

    async def refresh(self, records: list[MediaRecord]) -> None:
        pass

    async def take_over(self, session_id: str, owner: str, new_owner: str) -> MediaRecord | None:
        record = self.records.get(session_id)
        if record is None or record["owner"] != owner:
            return None
        record["owner"] = new_owner
        record["epoch"] = record.get("epoch", 0) + 1
        return copy.deepcopy(record)

    async def lock_failover(self, session_id: str, node_id: str, ttl_ms: int) -> bool:
        if session_id in self.locks:
            return False
        self.locks.add(session_id)
        return True

    async def delete(self, record: Mapping[str, Any], owner: str | None = None) -> None:
        current = self.records.get(record["id"])
        if current is not None and (owner is None or current["owner"] == owner):
            del self.records[record["id"]]


@dataclass
class NodeEntry:
    id: str
    last_beat: float
    media: bool = True
    draining: bool = False
    load: int = 0


class MemoryRegistry:
    """`NodeRegistry`'s view of the cluster on a fake clock: a node is alive while its last beat
    is younger than `ttl_s`; placement picks the least loaded live media node, ties to the
    smallest id."""

    def __init__(self, clock: FakeClock, node_id: str, ttl_s: float = 3.0) -> None:
        self.clock = clock
        self.node_id = node_id
        self.ttl_s = ttl_s
        self.nodes: dict[str, NodeEntry] = {}

    def beat(self, node_id: str, media: bool = True) -> None:
        entry = self.nodes.get(node_id)
        if entry is None:
            self.nodes[node_id] = NodeEntry(node_id, self.clock(), media)
        else:
            entry.last_beat = self.clock()

    def _alive(self, entry: NodeEntry) -> bool:
        return self.clock() - entry.last_beat < self.ttl_s

    async def live(self) -> list[NodeEntry]:
        return [e for e in self.nodes.values() if self._alive(e)]

    async def alive(self, node_id: str) -> bool:
        entry = self.nodes.get(node_id)
        return entry is not None and self._alive(entry)

    async def place(self, exclude: Iterable[str] = ()) -> str | None:
        skip = set(exclude)
        candidates = [
            e
            for e in self.nodes.values()
            if self._alive(e) and e.media and not e.draining and e.id not in skip
        ]
        if not candidates:
            return None
        chosen = min(candidates, key=lambda e: (e.load, e.id))
        chosen.load += 1
        return chosen.id

    async def set_draining(self) -> None:
        self.nodes[self.node_id].draining = True


def record(
    session_id: str, kind: str, owner: str, cluster: str = "main", **fields: Any
) -> MediaRecord:
    """A media record as a session kind writes it."""
    return {
        "id": session_id,
        "kind": kind,
        "cluster": cluster,
        "owner": owner,
        "epoch": 0,
        "started_wall": 0.0,
        **fields,
    }
