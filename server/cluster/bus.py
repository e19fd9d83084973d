"""Request/reply between server processes over Redis pub/sub.

Every node subscribes to `tt:bus:{node_id}` (requests to it and replies to its requests) and to
`tt:bus:all` (broadcasts). Messages are compact JSON:
- request   {"kind":"req","id":uuid,"from":node,"op":op,"body":{...}}
- reply     {"kind":"rep","id":uuid,"body":{...}}  or  {"kind":"rep","id":uuid,"error":"..."}
- broadcast {"kind":"cast","from":node,"op":op,"body":{...}}

A PUBLISH that reaches no subscriber means the node is gone: the request fails at once with
`NodeUnavailable`, as does one unanswered within the timeout. A handler that raises, or an op the
node has no handler for, fails the request with `BusError`. Pub/sub is at-most-once: a message
published while a listener reconnects is lost (a request then times out).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, NotRequired, TypedDict

import redis.asyncio as aioredis

from server.storage.keys import PREFIX
from server.storage.media_records import IdentityRecord

log = logging.getLogger("tradetalk.bus")

BROADCAST_CHANNEL = f"{PREFIX}bus:all"
MAX_IN_FLIGHT = 10_000  # requests waiting for a reply, and handlers running, each
CLOSE_GRACE_S = 1.0  # how long close() lets running handlers finish (and reply)

# A handler gets the body as the sender's JSON decoded (one of the bodies below, unchecked:
# Any is the JSON boundary) and returns the reply body.
Handler = Callable[[Any], Awaitable[Mapping[str, Any] | None]]


class EventBody(TypedDict):
    """op `event`: a Socket.IO event forwarded to the node that owns its call or tour."""

    event: str
    sid: str  # the client's socket, on the node `node`
    node: str
    identity: IdentityRecord
    data: Any  # the event's payload, as the client sent it
    hops: int
    deadline: float  # epoch seconds: when the sender stops waiting


class EventReply(TypedDict):
    """The reply to `event`: the handler's ack."""

    ack: dict[str, Any]


class AdoptBody(TypedDict):
    """op `adopt`: take a call or tour over, from a dead `owner` or handed over (`handed`)."""

    id: str
    reason: str
    owner: NotRequired[str]
    handed: NotRequired[bool]


class AdoptReply(TypedDict):
    """The reply to `adopt`: whether this node runs the session now."""

    ok: bool


class DropSocketBody(TypedDict):
    """broadcast `drop_socket`: a socket is gone; leave its calls and tours."""

    sid: str


class NodeUnavailable(Exception):
    """The node did not take or answer the request (gone, or no answer in time)."""


class BusError(Exception):
    """The node answered with an error: its handler raised, or it has no handler for the op."""


def node_channel(node_id: str) -> str:
    """The pub/sub channel a node receives its requests and replies on."""
    return f"{PREFIX}bus:{node_id}"


def encode(message: Mapping[str, Any]) -> str:
    """Compact JSON for the wire."""
    return json.dumps(message, separators=(",", ":"))


def error_text(exc: BaseException) -> str:
    """What a failed handler's reply says."""
    return str(exc) or type(exc).__name__


class Bus:
    """This node's end of the bus: handlers for ops, requests to other nodes, broadcasts."""

    def __init__(self, redis_url: str, node_id: str, *, timeout_s: float = 5.0) -> None:
        self.node_id = node_id
        self.timeout_s = timeout_s
        self.channel = node_channel(node_id)
        self.redis = aioredis.from_url(redis_url, socket_connect_timeout=2)
        self._handlers: dict[str, Handler] = {}
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._closed = False

    def on(self, op: str, handler: Handler) -> None:
        """Answer requests and broadcasts for `op` with `handler(body)` (None replies {})."""
        self._handlers[op] = handler

    # --- lifecycle ---

    async def start(self) -> None:
        """Subscribe to this node's and the broadcast channel, then listen in a task."""
        if self._closed:
            raise RuntimeError("bus closed")
        if self._listener is not None:
            return
        self._pubsub = await self._subscribe()
        self._listener = asyncio.create_task(self._listen(), name=f"bus-{self.node_id}")

    async def close(self) -> None:
        """Stop for good: no more requests in or out; pending requests fail NodeUnavailable."""
        if self._closed:
            return
        self._closed = True
        listener, self._listener = self._listener, None
        if listener is not None:  # a cancel inside a Redis read can be swallowed: repeat it
            listener.cancel()
            await asyncio.wait([listener], timeout=1)
            await self._drop_pubsub()
            while not listener.done():
                listener.cancel()
                await asyncio.wait([listener], timeout=1)
        await self._drop_pubsub()
        self._fail_pending(f"bus of node {self.node_id} closed")
        await self._finish_handlers()
        await self.redis.aclose()

    async def _subscribe(self) -> Any:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel, BROADCAST_CHANNEL)
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise
        return pubsub

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _fail_pending(self, reason: str) -> None:
        """Fail every request waiting for a reply (none can come any more)."""
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(NodeUnavailable(reason))

    async def _finish_handlers(self) -> None:
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=CLOSE_GRACE_S)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=CLOSE_GRACE_S)

    # --- receiving ---

    async def _listen(self) -> None:
        """Read messages; on a Redis error re-subscribe with backoff 0.25 s doubling to 5 s."""
        backoff = 0.25
        while not self._closed:
            try:
                if self._pubsub is None:
                    self._pubsub = await self._subscribe()
                    log.warning("bus of node %s: listening again", self.node_id)
                backoff = 0.25
                async for message in self._pubsub.listen():
                    self._receive(message)
                raise aioredis.ConnectionError("the subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._closed:
                    return
                log.error("bus of node %s: %s; retrying in %.2f s", self.node_id, exc, backoff)
                await self._drop_pubsub()
                self._fail_pending(f"bus of node {self.node_id} lost redis ({exc})")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _receive(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        try:
            data = json.loads(message["data"])
            kind = data["kind"]
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("bus of node %s: unreadable message (%s)", self.node_id, exc)
            return
        if kind == "rep":
            self._resolve(data)
        elif kind == "req":
            self._spawn(self._answer(data))
        elif kind == "cast" and data.get("from") != self.node_id:
            self._spawn(self._run_cast(data))

    def _resolve(self, reply: dict[str, Any]) -> None:
        future = self._pending.pop(str(reply.get("id")), None)
        if future is None or future.done():
            return  # its requester timed out already
        if "error" in reply:
            future.set_exception(BusError(str(reply["error"])))
        else:
            future.set_result(reply.get("body") or {})

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any] | None:
        """Run `coro` as a task held in `_tasks` (None, and dropped, when too many run)."""
        if len(self._tasks) >= MAX_IN_FLIGHT:
            log.error("bus of node %s: %d tasks running; one dropped", self.node_id, MAX_IN_FLIGHT)
            coro.close()
            return None
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved, so asyncio does not warn about it
        if exc is not None and not isinstance(exc, BusError):  # a BusError was logged already
            log.error("bus of node %s: task failed", self.node_id, exc_info=exc)

    async def _call(self, op: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Run the handler for `op`; BusError when there is none or it raised."""
        handler = self._handlers.get(op)
        if handler is None:
            raise BusError(f"node {self.node_id} has no handler for {op!r}")
        try:
            return dict(await handler(body) or {})
        except Exception as exc:
            log.exception("bus of node %s: handler for %r failed", self.node_id, op)
            raise BusError(error_text(exc)) from exc

    async def _answer(self, request: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"kind": "rep", "id": request.get("id")}
        try:
            reply["body"] = await self._call(str(request.get("op")), request.get("body") or {})
            text = encode(reply)
        except BusError as exc:
            text = encode({**reply, "error": str(exc)})
        except (TypeError, ValueError) as exc:
            log.error("bus of node %s: reply to %r is not JSON (%s)", self.node_id, reply, exc)
            text = encode({"kind": "rep", "id": reply["id"], "error": "reply is not JSON"})
        try:
            await self.redis.publish(node_channel(str(request.get("from"))), text)
        except Exception as exc:
            log.error("bus of node %s: cannot send a reply (%s)", self.node_id, exc)

    async def _run_cast(self, cast: dict[str, Any]) -> None:
        op = str(cast.get("op"))
        if op not in self._handlers:
            return  # a broadcast is for whichever nodes handle it
        with contextlib.suppress(BusError):  # _call logged it
            await self._call(op, cast.get("body") or {})

    # --- sending ---

    async def request(
        self, node_id: str, op: str, body: Mapping[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """`op` with `body` on node `node_id`, and its reply body.

        Raises NodeUnavailable (no listener there, no answer in `timeout` s, Redis away, or this
        bus closed or not listening) or BusError (the node's handler raised, or it does not
        handle `op`, or MAX_IN_FLIGHT requests wait already).
        """
        if self._closed:
            raise NodeUnavailable(f"bus of node {self.node_id} closed")
        wait = self.timeout_s if timeout is None else timeout
        if node_id == self.node_id:
            return await self._request_self(op, body, wait)
        if self._pubsub is None:  # not started, or re-subscribing: the reply would be lost
            raise NodeUnavailable(f"bus of node {self.node_id} is not listening (redis away?)")
        if len(self._pending) >= MAX_IN_FLIGHT:
            raise BusError(f"{MAX_IN_FLIGHT} requests in flight on node {self.node_id}")
        request_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            async with asyncio.timeout(wait):
                await self._publish_request(node_id, request_id, op, body)
                return await future
        except TimeoutError:
            raise NodeUnavailable(f"node {node_id}: no answer to {op!r} in {wait:g} s") from None
        finally:
            self._pending.pop(request_id, None)

    async def _publish_request(
        self, node_id: str, request_id: str, op: str, body: Mapping[str, Any]
    ) -> None:
        message = {"kind": "req", "id": request_id, "from": self.node_id, "op": op, "body": body}
        try:
            receivers = await self.redis.publish(node_channel(node_id), encode(message))
        except aioredis.RedisError as exc:
            raise NodeUnavailable(f"node {node_id}: cannot publish to redis ({exc})") from exc
        if receivers == 0:
            raise NodeUnavailable(f"node {node_id}: no listener on {node_channel(node_id)}")

    async def _request_self(self, op: str, body: Mapping[str, Any], wait: float) -> dict[str, Any]:
        """A request to this node: its handler directly, in a task that outlives a timeout."""
        task = self._spawn(self._call(op, body))
        if task is None:
            raise BusError(f"{MAX_IN_FLIGHT} handlers running on node {self.node_id}")
        try:
            return await asyncio.wait_for(asyncio.shield(task), wait)
        except TimeoutError:
            message = f"node {self.node_id}: no answer to {op!r} in {wait:g} s"
            raise NodeUnavailable(message) from None

    async def broadcast(self, op: str, body: Mapping[str, Any]) -> None:
        """`op` with `body` to every other node's handler; no reply, no delivery guarantee.

        Redis errors propagate (nothing was sent).
        """
        if self._closed:
            raise NodeUnavailable(f"bus of node {self.node_id} closed")
        message = {"kind": "cast", "from": self.node_id, "op": op, "body": body}
        await self.redis.publish(BROADCAST_CHANNEL, encode(message))
