"""The Router alone, two nodes on an in-memory bus: an event runs on the node that owns its
session, with the client's identity and socket, and its ack comes back; a node that does not
answer is `node_unavailable`; a forwarded event that finished after its sender gave up is
undone."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from server.cluster.router import Router
from server.media_sessions.core import Elsewhere
from server.realtime.dispatch import Dispatcher
from server.realtime.errors import ok_ack
from server.realtime.sessions import Session
from server.storage.media_records import identity_record
from server.tokens import Identity
from tests.unit.memory import BusNetwork, FakeClock, MemoryRecords, MemoryRegistry, record
from tests.unit.test_dispatcher import Bucket, Events

ALICE = Identity("alice", "Alice", "buyer", "en")
CALL_RE = re.compile(r"^k_\w+\Z")


class Node:
    """One server node: its dispatcher's events, its router, what its handler saw."""

    def __init__(self, node_id: str, network: BusNetwork, records: MemoryRecords) -> None:
        self.id = node_id
        self.events = Events()
        sessions = {"s1": Session(ALICE, node=node_id)}
        dispatcher = Dispatcher(self.events, sessions, Bucket())  # type: ignore[arg-type]
        registry = MemoryRegistry(FakeClock(), node_id)
        self.bus = network.bus(node_id, timeout_s=5.0)
        self.router = Router(node_id, self.bus, dispatcher, registry, records)  # type: ignore[arg-type]
        self.bus.on("event", self.router.serve)
        self.seen: list[tuple[str, str, str, Any]] = []
        self.undone: list[tuple[str, Any]] = []
        self.delay = 0.0
        self.raise_elsewhere: str | None = None

    async def handler(self, session: Session, sid: str, data: Any) -> dict[str, Any]:
        if self.raise_elsewhere is not None:
            raise Elsewhere(self.raise_elsewhere)
        await asyncio.sleep(self.delay)
        self.seen.append((session.identity.id, session.node, sid, data))
        return ok_ack(ran_on=self.id)

    async def undo(self, sid: str, data: Any) -> None:
        self.undone.append((sid, data))

    def serve(self, name: str) -> None:
        self.router.register(name, self.handler, self.router.by_id("call_id", CALL_RE), self.undo)


def two_nodes() -> tuple[Node, Node, MemoryRecords, BusNetwork]:
    network, records = BusNetwork(), MemoryRecords()
    a, b = Node("A", network, records), Node("B", network, records)
    for node in (a, b):
        node.serve("call.join")
    return a, b, records, network


async def test_an_event_runs_on_the_owner_with_the_client_s_identity_and_socket() -> None:
    a, b, records, _ = two_nodes()
    await records.put(record("k_1", "call", "B"))
    ack = await a.events.emit("call.join", "s1", {"call_id": "k_1"})
    assert ack == ok_ack(ran_on="B")
    assert b.seen == [("alice", "A", "s1", {"call_id": "k_1"})]  # the socket lives on A
    assert a.seen == [] and a.router.forwarded == 1
    # no record (or a malformed id): here, where the handler answers for itself
    assert await a.events.emit("call.join", "s1", {"call_id": "k_2"}) == ok_ack(ran_on="A")
    assert await a.events.emit("call.join", "s1", {"call_id": 5}) == ok_ack(ran_on="A")


async def test_an_owner_that_does_not_answer_is_node_unavailable() -> None:
    a, b, records, network = two_nodes()
    await records.put(record("k_1", "call", "B"))
    network.cut("B")
    ack = await a.events.emit("call.join", "s1", {"call_id": "k_1"})
    assert ack["error"]["code"] == "node_unavailable"
    assert b.seen == []


async def test_a_session_started_elsewhere_meanwhile_is_asked_there() -> None:
    a, b, records, _ = two_nodes()
    await records.put(record("k_7", "call", "B"))
    a.raise_elsewhere = "k_7"  # e.g. call.start lost the race for the conversation to B
    assert await a.events.emit("call.join", "s1", {"call_id": "k_new"}) == ok_ack(ran_on="B")
    b.raise_elsewhere = "k_7"  # the owner says elsewhere again: no ping-pong
    ack = await a.events.emit("call.join", "s1", {"call_id": "k_new"})
    assert ack["error"]["code"] == "node_unavailable"


async def test_late_forwarded_events_are_refused_or_undone() -> None:
    a, b, _, _ = two_nodes()
    body = {
        "event": "call.join",
        "sid": "s9",
        "node": "A",
        "identity": identity_record(ALICE),
        "data": {"call_id": "k_1"},
        "hops": 0,
        "deadline": time.time() - 1,  # arrived after its sender stopped waiting
    }
    reply = await a.bus.request("B", "event", body)
    assert reply["ack"]["error"]["code"] == "node_unavailable"
    assert b.seen == []

    b.delay = 0.2  # finishes after the deadline: the join is taken back
    reply = await a.bus.request("B", "event", {**body, "deadline": time.time() + 0.05})
    assert reply["ack"] == ok_ack(ran_on="B")
    assert b.undone == [("s9", {"call_id": "k_1"})]

    reply = await a.bus.request("B", "event", {**body, "event": "call.nope"})
    assert reply["ack"]["error"]["code"] == "node_unavailable"
