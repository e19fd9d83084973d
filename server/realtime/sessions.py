"""Per-socket state held by the process that owns the socket (or, for an event forwarded from
another node, rebuilt from the forwarded identity)."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.realtime.turns import ArrivalOrder
from server.tokens import Identity


@dataclass
class Session:
    """One connected socket: who it is (from its token), the conversations it joined, and the
    line that keeps its ordered events (message sends) in the order they arrived."""

    identity: Identity
    node: str = ""  # the node this socket is connected to
    joined: set[str] = field(default_factory=set)
    ordered: ArrivalOrder = field(default_factory=ArrivalOrder)


def user_room(user_id: str) -> str:
    """The room every socket of a user is in."""
    return f"user:{user_id}"


def conversation_room(cid: str) -> str:
    """The live room of a conversation (sockets that joined it)."""
    return f"conv:{cid}"
