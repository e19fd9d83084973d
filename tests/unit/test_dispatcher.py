"""The Dispatcher alone: every way an event can go maps to its documented ack; guards run before
the handler and follows after it; one socket's ordered events commit in their order."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.exceptions

from server.realtime.dispatch import Dispatcher
from server.realtime.errors import AppError, error_ack, ok_ack
from server.realtime.sessions import Session
from server.realtime.strict_json import Rejected
from server.realtime.turns import commit_turn
from server.tokens import Identity

ALICE = Identity("alice", "Alice", "buyer", "en")


class Events:
    """What the Dispatcher needs of `socketio.AsyncServer`: `on(name, handler)`."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def on(self, name: str, handler: Any) -> None:
        self.handlers[name] = handler

    async def emit(self, name: str, sid: str, *args: Any) -> Any:
        """A client's event, as python-socketio calls the registered handler."""
        if name in self.handlers:
            return await self.handlers[name](sid, *args)
        return await self.handlers["*"](name, sid, *args)


class Bucket:
    """A rate limit that allows `tokens` events, then refuses (or raises `error`)."""

    def __init__(self, tokens: int = 1000, error: Exception | None = None) -> None:
        self.tokens = tokens
        self.error = error

    async def allow(self, user_id: str) -> bool:
        if self.error is not None:
            raise self.error
        self.tokens -= 1
        return self.tokens >= 0


def dispatcher(bucket: Bucket | None = None) -> tuple[Dispatcher, Events]:
    events = Events()
    sessions = {"s1": Session(ALICE)}
    return Dispatcher(events, sessions, bucket or Bucket()), events  # type: ignore[arg-type]


async def test_a_handler_s_return_is_the_ack_and_its_failures_are_documented_acks() -> None:
    d, events = dispatcher()

    async def echo(session: Session, sid: str, data: Any) -> dict[str, Any]:
        if data == "app":
            raise AppError("not_found", "no such thing")
        if data == "redis":
            raise redis.exceptions.ConnectionError("gone")
        if data == "bug":
            raise KeyError("oops")
        return ok_ack(user=session.identity.id, sid=sid, data=data)

    d.register("thing.get", echo)
    assert await events.emit("thing.get", "s1", {"x": 1}) == ok_ack(
        user="alice", sid="s1", data={"x": 1}
    )
    assert (await events.emit("thing.get", "s1", "app"))["error"]["code"] == "not_found"
    assert (await events.emit("thing.get", "s1", "redis"))["error"]["code"] == "unavailable"
    internal = await events.emit("thing.get", "s1", "bug")
    assert internal == error_ack("internal", "internal server error")  # nothing leaks


async def test_refusals_before_the_handler() -> None:
    ran: list[Any] = []

    async def handler(session: Session, sid: str, data: Any) -> dict[str, Any]:
        ran.append(data)
        return ok_ack()

    d, events = dispatcher(Bucket(tokens=4))
    d.register("thing.set", handler)
    assert (await events.emit("thing.set", "nobody", {}))["error"]["code"] == "unauthorized"
    assert (await events.emit("thing.set", "s1", {}, {}))["error"]["code"] == "invalid"
    rejected = await events.emit("thing.set", "s1", Rejected("integer too large"))
    assert rejected == error_ack("invalid", "integer too large")
    unknown = await events.emit("thing.nope", "s1", {})
    assert unknown == error_ack("unknown_event", "unknown event 'thing.nope'")
    assert (await events.emit("thing.set", "s1", {}))["ok"]  # the 4th token
    assert (await events.emit("thing.set", "s1", {}))["error"]["code"] == "rate_limited"
    assert ran == [{}]

    d, events = dispatcher(Bucket(error=redis.exceptions.TimeoutError("slow")))
    d.register("thing.set", handler)
    assert (await events.emit("thing.set", "s1", {}))["error"]["code"] == "unavailable"
    assert ran == [{}]


async def test_guards_refuse_and_follows_see_every_ack() -> None:
    order: list[str] = []

    async def handler(session: Session, sid: str, data: Any) -> dict[str, Any]:
        order.append("handler")
        if data.get("fail"):
            raise AppError("invalid", "bad")
        return ok_ack()

    async def cap(session: Session, sid: str, data: Any) -> dict[str, Any] | None:
        order.append("guard")
        return error_ack("limit_reached", "too many") if data.get("over") else None

    async def broken_guard(session: Session, sid: str, data: Any) -> dict[str, Any] | None:
        raise RuntimeError("guard bug")

    async def follow(session: Session, sid: str, ack: dict[str, Any]) -> None:
        order.append(f"follow {ack['ok']}")

    d, events = dispatcher()
    d.register("thing.start", handler)
    d.before("thing.start", cap)
    d.after("thing.start", follow)
    assert (await events.emit("thing.start", "s1", {}))["ok"]
    assert order == ["guard", "handler", "follow True"]
    order.clear()
    over = await events.emit("thing.start", "s1", {"over": True})
    assert over == error_ack("limit_reached", "too many")
    assert order == ["guard", "follow False"]  # the handler never ran
    order.clear()
    assert (await events.emit("thing.start", "s1", {"fail": True}))["error"]["code"] == "invalid"
    assert order == ["guard", "handler", "follow False"]

    d.before("thing.start", broken_guard)
    order.clear()
    assert (await events.emit("thing.start", "s1", {}))["error"]["code"] == "internal"
    assert order == ["guard", "follow False"]


async def test_one_socket_s_message_sends_overlap_but_commit_in_arrival_order() -> None:
    started: list[int] = []
    committed: list[int] = []

    async def send(session: Session, sid: str, data: Any) -> dict[str, Any]:
        started.append(data["n"])
        await asyncio.sleep(0.05 if data["n"] == 0 else 0)  # the first is the slowest
        if data["n"] == 2:
            raise AppError("invalid", "never commits")
        async with commit_turn():
            committed.append(data["n"])
        return ok_ack()

    d, events = dispatcher()
    d.register("message.send", send)
    acks = await asyncio.gather(*(events.emit("message.send", "s1", {"n": n}) for n in range(5)))
    assert [a["ok"] for a in acks] == [True, True, False, True, True]
    assert started[:2] == [0, 1]  # the second began while the first was still working
    assert committed == [0, 1, 3, 4]
