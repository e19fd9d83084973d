"""Per-socket state held by the process that owns the socket."""

from __future__ import annotations

from dataclasses import dataclass, field

from .ratelimit import TokenBucket
from .tokens import Identity


@dataclass
class Session:
    """One connected socket: who it is (from its token) and its rate limit."""

    identity: Identity
    bucket: TokenBucket
    joined: set[str] = field(default_factory=set)


def user_room(user_id: str) -> str:
    """The room every socket of a user is in."""
    return f"user:{user_id}"


def conversation_room(cid: str) -> str:
    """The live room of a conversation (sockets that joined it)."""
    return f"conv:{cid}"
