"""Call and tour events run on the node that owns the session.

Each call/tour event is registered with a *locator* that names the node it must run on: the
owner in the session's record (`tt:media:{id}`), a freshly placed node for `call.start` /
`tour.start`, or none (here). An event for another node goes to it over the bus with the
socket's identity, socket id and node, runs there through the same handler, and its ack comes
back as the ack of the client's event. The owner's emits to that socket (re-offers, subtitles)
and its room changes reach the socket's node through the Socket.IO Redis manager.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from server.cluster.bus import Bus, BusError, EventBody, EventReply, NodeUnavailable
from server.cluster.nodes import NodeRegistry
from server.media_sessions.core import Elsewhere
from server.realtime.dispatch import Dispatcher, Handler
from server.realtime.errors import AppError, error_ack
from server.realtime.sessions import Session
from server.realtime.validation import CONVERSATION_ID_RE
from server.storage.media_records import MediaRecords, identity_record
from server.tokens import Identity

log = logging.getLogger("tradetalk.router")

NODE_UNAVAILABLE = "node_unavailable"
UNANSWERED = "the server that holds this call or tour did not answer; retry"
NO_MEDIA_NODE = "no media server is available now; retry"

Locate = Callable[[Session, Any], Awaitable[str | None]]
# Takes back what a forwarded event did once its sender had given up on the answer.
Undo = Callable[[str, Any], Awaitable[None]]


class Router:
    """Registers call/tour handlers so that each runs on its session's node."""

    def __init__(
        self,
        node_id: str,
        bus: Bus,
        dispatcher: Dispatcher,
        registry: NodeRegistry,
        records: MediaRecords,
    ) -> None:
        self.node_id = node_id
        self.bus = bus
        self.dispatcher = dispatcher
        self.registry = registry
        self.records = records
        self.handlers: dict[str, Handler] = {}
        self.undo: dict[str, Undo] = {}
        self.forwarded = 0  # events this node sent to another one

    def register(
        self, name: str, handler: Handler, locate: Locate | None, undo: Undo | None = None
    ) -> None:
        """Serve event `name` with `handler` on the node `locate` names (None: here). `undo(sid,
        data)` takes back a forwarded event that succeeded after its sender stopped waiting (a
        join whose client was told `node_unavailable` must not leave a member behind)."""
        self.handlers[name] = handler
        if undo is not None:
            self.undo[name] = undo

        async def routed(session: Session, sid: str, data: Any) -> dict[str, Any]:
            node = await locate(session, data) if locate is not None else None
            if node is None or node == self.node_id:
                return await self.run_here(name, session, sid, data)
            return await self.forward(node, name, session, sid, data)

        self.dispatcher.register(name, routed)

    async def run_here(
        self, name: str, session: Session, sid: str, data: Any, hops: int = 0
    ) -> dict[str, Any]:
        """Run the handler on this node; a session started elsewhere meanwhile is asked there
        (one that is gone again, or is here after all, is asked for here once more)."""
        try:
            return await self.handlers[name](session, sid, data)
        except Elsewhere as exc:
            if hops:
                raise AppError(NODE_UNAVAILABLE, UNANSWERED) from None
            record = await self.records.get(exc.session_id)
            if record is None or record["owner"] == self.node_id:
                return await self.run_here(name, session, sid, data, hops + 1)
            return await self.forward(record["owner"], name, session, sid, data, hops + 1)

    async def forward(
        self, node: str, name: str, session: Session, sid: str, data: Any, hops: int = 0
    ) -> dict[str, Any]:
        """Run the event on `node`; its ack, or `node_unavailable` when it does not answer."""
        body: EventBody = {
            "event": name,
            "sid": sid,
            "node": session.node or self.node_id,
            "identity": identity_record(session.identity),
            "data": data,
            "hops": hops,
            "deadline": time.time() + self.bus.timeout_s,  # when the sender stops waiting
        }
        self.forwarded += 1
        try:
            reply = await self.bus.request(node, "event", body)
        except (NodeUnavailable, BusError) as exc:
            log.warning("%s for %s: node %s did not answer (%s)", name, sid, node, exc)
            return error_ack(NODE_UNAVAILABLE, UNANSWERED)
        ack: dict[str, Any] = reply["ack"]  # the other node's EventReply
        return ack

    async def serve(self, body: EventBody) -> EventReply:
        """Bus op `event`: an event forwarded here by another node."""
        name = body["event"]
        if name not in self.handlers:
            return {"ack": error_ack(NODE_UNAVAILABLE, f"this node does not serve {name}")}
        deadline = float(body.get("deadline") or 0) or None
        if deadline is not None and time.time() > deadline:  # reached us after the sender gave up
            log.warning("%s for %s arrived after its sender stopped waiting", name, body["sid"])
            return {"ack": error_ack(NODE_UNAVAILABLE, UNANSWERED)}
        session = Session(Identity(**body["identity"]), node=body["node"])
        step = self.run_here(name, session, body["sid"], body["data"], int(body.get("hops") or 0))
        ack = await self.dispatcher.safely(name, step)
        if deadline is not None and time.time() > deadline and ack.get("ok") and name in self.undo:
            log.warning(
                "%s for %s finished after its sender stopped waiting: undone", name, body["sid"]
            )
            await self.dispatcher.safely(name, self.undo[name](body["sid"], body["data"]))
        return {"ack": ack}

    # ------------------------------------------------------------------ locators

    def by_id(self, field: str, pattern: re.Pattern[str]) -> Locate:
        """The owner of the session named by `data[field]` (malformed or unknown: here, which
        answers `invalid` or `not_found`)."""

        async def locate(session: Session, data: Any) -> str | None:
            value = data.get(field) if isinstance(data, dict) else None
            if not isinstance(value, str) or not pattern.match(value):
                return None
            record = await self.records.get(value)
            return record["owner"] if record else None

        return locate

    async def by_conversation(self, session: Session, data: Any) -> str | None:
        """The owner of the conversation's running call (none: here)."""
        cid = data.get("conversation_id") if isinstance(data, dict) else None
        if not isinstance(cid, str) or not CONVERSATION_ID_RE.match(cid):
            return None
        record = await self.records.by_conversation(cid)
        return record["owner"] if record else None

    async def place_call(self, session: Session, data: Any) -> str | None:
        """The running call's owner, else the least-loaded media node."""
        owner = await self.by_conversation(session, data)
        if owner is not None or not isinstance(data, dict) or "conversation_id" not in data:
            return owner
        return await self.place(session, data)

    async def place(self, session: Session, data: Any) -> str | None:
        """The least-loaded live media node that is not draining."""
        node = await self.registry.place()
        if node is None:
            raise AppError(NODE_UNAVAILABLE, NO_MEDIA_NODE)
        return node
