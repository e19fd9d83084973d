"""Bounds alone, on a fake clock: the per-user caps over every node's records, the hourly
conversation quota, dropping a join whose socket left, and the idle sweep (seconds of fake
time, not the minutes of `idle_end_s`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.config import Limits
from server.events import install_caps
from server.handlers.bounds import IDLE_REASON, Bounds
from server.realtime.errors import ok_ack
from server.realtime.sessions import Session
from server.tokens import Identity
from tests.unit.memory import FakeClock, MemoryRecords, record
from tests.unit.test_dispatcher import Bucket, Events

ALICE = Identity("alice", "Alice", "supplier", "en")


class Quota:
    """An hourly count per user, as `HourlyQuota` keeps it in Redis."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    async def used(self, user_id: str) -> int:
        return self.counts.get(user_id, 0)

    async def count(self, user_id: str) -> None:
        self.counts[user_id] = self.counts.get(user_id, 0) + 1


@dataclass
class Item:
    id: str
    members: dict[str, Any] = field(default_factory=dict)


@dataclass
class Kind:
    """Calls or tours as the sweep sees them."""

    sessions: dict[str, Item] = field(default_factory=dict)
    ended: list[tuple[str, str]] = field(default_factory=list)

    async def end_session(self, session: Item, reason: str) -> None:
        self.ended.append((session.id, reason))
        self.sessions.pop(session.id, None)


def bounds(limits: Limits, clock: FakeClock | None = None) -> tuple[Bounds, dict[str, Any]]:
    parts: dict[str, Any] = {
        "records": MemoryRecords(),
        "quota": Quota(),
        "sockets": {"s1": Session(ALICE)},
        "dropped": [],
        "calls": Kind(),
        "tours": Kind(),
    }

    async def drop_media(sid: str) -> None:
        parts["dropped"].append(sid)

    made = Bounds(
        limits,
        parts["records"],
        parts["quota"],
        parts["sockets"],
        drop_media,
        [parts["calls"], parts["tours"]],
        clock=clock or FakeClock(),
    )
    return made, parts


def app_with(made: Bounds) -> Events:
    """The guards installed on a dispatcher, every event answered ok by its handler."""
    from server.realtime.dispatch import Dispatcher

    events = Events()
    dispatcher = Dispatcher(events, {"s1": Session(ALICE)}, Bucket())  # type: ignore[arg-type]

    async def handler(session: Session, sid: str, data: Any) -> dict[str, Any]:
        return ok_ack()

    for name in ("call.start", "tour.start", "conversation.create", "call.join"):
        dispatcher.register(name, handler)
    install_caps(dispatcher, made)
    return events


async def test_caps_count_the_user_s_running_sessions_on_every_node() -> None:
    made, parts = bounds(Limits(max_calls_per_user=2, max_tours_per_user=1))
    events = app_with(made)
    records: MemoryRecords = parts["records"]
    await records.put(record("k_1", "call", "n1", started_by="alice", conversation_id="c_1"))
    await records.put(record("k_2", "call", "n2", started_by="bob"))
    assert (await events.emit("call.start", "s1", {"conversation_id": "c_9"}))["ok"]
    await records.put(record("k_3", "call", "n2", started_by="alice"))
    refused = await events.emit("call.start", "s1", {"conversation_id": "c_9"})
    assert refused["error"]["code"] == "limit_reached"
    # the conversation's running call is returned, not a new one: no cap
    assert (await events.emit("call.start", "s1", {"conversation_id": "c_1"}))["ok"]

    host = {"id": "alice", "name": "Alice", "role": "supplier", "lang": "en"}
    assert (await events.emit("tour.start", "s1", {}))["ok"]
    await records.put(record("t_1", "tour", "n3", host=host))
    assert (await events.emit("tour.start", "s1", {}))["error"]["code"] == "limit_reached"


async def test_the_hourly_conversation_quota_counts_only_what_was_created() -> None:
    made, parts = bounds(Limits(conversations_per_hour=2))
    events = app_with(made)
    assert (await events.emit("conversation.create", "s1", {}))["ok"]
    assert (await events.emit("conversation.create", "s1", {}))["ok"]
    assert parts["quota"].counts == {"alice": 2}
    refused = await events.emit("conversation.create", "s1", {})
    assert refused["error"]["code"] == "limit_reached"
    assert parts["quota"].counts == {"alice": 2}  # a refused one is not counted


async def test_a_join_answered_after_its_socket_left_is_dropped() -> None:
    made, parts = bounds(Limits())
    events = app_with(made)
    assert (await events.emit("call.join", "s1", {}))["ok"]
    assert parts["dropped"] == []
    del parts["sockets"]["s1"]  # disconnected while the join ran
    await events.emit("call.join", "s1", {})
    assert parts["dropped"] == ["s1"]


async def test_idle_sweep_ends_what_stayed_empty_for_idle_end_s() -> None:
    clock = FakeClock()
    made, parts = bounds(Limits(idle_end_s=60), clock)
    calls, tours = parts["calls"], parts["tours"]
    calls.sessions["k_empty"] = Item("k_empty")
    calls.sessions["k_busy"] = Item("k_busy", members={"s1": object()})
    tours.sessions["t_empty"] = Item("t_empty")
    await made.sweep()  # first seen empty now
    clock.advance(59)
    await made.sweep()
    assert calls.ended == tours.ended == []
    tours.sessions["t_empty"].members["s2"] = object()  # a viewer came back
    clock.advance(1)
    await made.sweep()
    assert calls.ended == [("k_empty", IDLE_REASON)]
    assert tours.ended == []
    del tours.sessions["t_empty"].members["s2"]  # empty again: its 60 s start again
    await made.sweep()
    clock.advance(59)
    await made.sweep()
    assert tours.ended == []
    clock.advance(1)
    await made.sweep()
    assert tours.ended == [("t_empty", IDLE_REASON)]
    assert list(calls.sessions) == ["k_busy"]
