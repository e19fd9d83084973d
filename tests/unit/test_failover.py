"""Failover alone, three nodes on an in-memory bus and a fake clock: a dead owner's session is
re-placed exactly once on a live media node (seconds of fake time after its last heartbeat),
ended when no media node is left, and handed over by a draining node."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.cluster.failover import LOST, RESTARTING, Failover
from server.storage.media_records import MediaRecord
from tests.unit.memory import BusNetwork, FakeClock, MemoryRecords, MemoryRegistry, record


@dataclass
class Running:
    id: str
    record: MediaRecord
    reason: str


@dataclass
class Calls:
    """The call kind of one node, as Failover drives it."""

    node_id: str
    records: MemoryRecords
    kind: str = "call"
    sessions: dict[str, Running] = field(default_factory=dict)
    ended: list[tuple[str, str]] = field(default_factory=list)
    dropped_nodes: list[str] = field(default_factory=list)

    async def refresh_records(self) -> list[str]:
        return []

    async def drop_node(self, node_id: str) -> None:
        self.dropped_nodes.append(node_id)

    async def let_go(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)

    async def adopt(self, taken: MediaRecord, reason: str, tell: bool = True) -> Running:
        session = Running(taken["id"], taken, reason)
        self.sessions[session.id] = session
        return session

    async def end_session(self, session: Running, reason: str) -> None:
        self.sessions.pop(session.id, None)
        self.ended.append((session.id, reason))
        await self.records.delete(session.record)

    async def hand_over(
        self, session: Running, target: str, finish_s: float | None = None
    ) -> MediaRecord | None:
        moved = await self.records.take_over(session.id, self.node_id, target)
        self.sessions.pop(session.id, None)
        return moved


class Cluster:
    def __init__(self, *nodes: str, media: tuple[str, ...] | None = None) -> None:
        self.clock = FakeClock()
        self.records = MemoryRecords()
        self.network = BusNetwork()
        self.registry = MemoryRegistry(self.clock, nodes[0], ttl_s=3.0)
        self.calls: dict[str, Calls] = {}
        self.failover: dict[str, Failover] = {}
        for node in nodes:
            self.registry.beat(node, media=media is None or node in media)
            self.calls[node] = Calls(node, self.records)
            bus = self.network.bus(node)
            self.failover[node] = Failover(
                node,
                self.registry,  # type: ignore[arg-type]
                self.records,  # type: ignore[arg-type]
                bus,  # type: ignore[arg-type]
                [self.calls[node]],  # type: ignore[list-item]
                "main",
            )
            bus.on("adopt", self.failover[node].adopt)

    def beat(self, *nodes: str) -> None:
        for node in nodes:
            self.registry.beat(node)

    def kill(self, node: str) -> None:
        self.network.cut(node)  # its heartbeat stops with it: beat() is not called again


async def test_a_dead_owner_s_call_moves_once_to_a_live_media_node() -> None:
    cluster = Cluster("A", "B", "C")
    await cluster.records.put(record("k_1", "call", "B"))
    cluster.kill("B")
    cluster.clock.advance(2.5)  # B's last beat is younger than the TTL (3 s): still alive
    cluster.beat("A", "C")
    await cluster.failover["A"].check()
    assert (await cluster.records.get("k_1"))["owner"] == "B"

    cluster.clock.advance(1.0)  # 3.5 s since B's beat: dead
    cluster.beat("A", "C")
    await cluster.failover["A"].check()
    await cluster.failover["C"].check()  # the other node finds the lock taken
    moved = await cluster.records.get("k_1")
    assert moved is not None and moved["epoch"] == 1
    owner = moved["owner"]
    assert owner in ("A", "C")
    assert list(cluster.calls[owner].sessions) == ["k_1"]
    assert cluster.calls[owner].sessions["k_1"].reason == LOST
    other = "C" if owner == "A" else "A"
    assert cluster.calls[other].sessions == {}
    assert "B" in cluster.calls["A"].dropped_nodes  # its members' sockets went with it


async def test_with_no_media_node_left_the_call_ends() -> None:
    cluster = Cluster("A", "B", media=("B",))  # A carries signalling only
    await cluster.records.put(record("k_1", "call", "B"))
    cluster.kill("B")
    cluster.clock.advance(3.5)
    cluster.beat("A")
    await cluster.failover["A"].check()
    assert cluster.calls["A"].ended == [("k_1", LOST)]
    assert await cluster.records.get("k_1") is None


async def test_another_cluster_s_sessions_are_left_to_it() -> None:
    cluster = Cluster("A", "B", "C")
    await cluster.records.put(record("k_1", "call", "B", cluster="other"))
    cluster.kill("B")
    cluster.clock.advance(3.5)
    cluster.beat("A", "C")
    await cluster.failover["A"].check()
    assert (await cluster.records.get("k_1"))["owner"] == "B"


async def test_a_draining_node_hands_its_calls_to_another() -> None:
    cluster = Cluster("A", "B")
    running = record("k_1", "call", "A")
    await cluster.records.put(running)
    cluster.calls["A"].sessions["k_1"] = Running("k_1", running, "started")
    assert await cluster.failover["A"].drain() == 1
    assert cluster.registry.nodes["A"].draining
    assert (await cluster.records.get("k_1"))["owner"] == "B"
    assert cluster.calls["B"].sessions["k_1"].reason == RESTARTING
    assert cluster.calls["A"].sessions == {}
