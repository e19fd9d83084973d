"""What a node keeps in Redis about itself (written by `server.cluster.nodes.NodeRegistry`,
read by whoever needs to reach a node):
- `tt:node:{id}`: the node's JSON (`NodeInfo`) with a PX TTL; a node whose key expired is dead;
- `tt:nodes:{cluster}` (`tt:nodes` unnamed): a ZSET id -> load figure.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from server.storage.keys import PREFIX

NODES_KEY = f"{PREFIX}nodes"  # + ":{cluster}" for a named cluster
NODE_KEY_PREFIX = f"{PREFIX}node:"


def node_key(node_id: str) -> str:
    """The Redis key of one node's heartbeat JSON."""
    return f"{NODE_KEY_PREFIX}{node_id}"


@dataclass(frozen=True)
class NodeInfo:
    """One live node as read from Redis."""

    id: str
    media: bool
    media_address: str | None
    url: str | None
    draining: bool
    load: float
    peers: int
    recognizers: int
    sessions: int
    cpu: float
    beat: float  # wall-clock time.time() of the beat

    @classmethod
    def from_json(cls, raw: bytes | str) -> NodeInfo:
        """Parse a node's heartbeat JSON; missing fields take neutral defaults."""
        data = json.loads(raw)
        return cls(
            id=str(data["id"]),
            media=bool(data.get("media", False)),
            media_address=data.get("media_address"),
            url=data.get("url"),
            draining=bool(data.get("draining", False)),
            load=float(data.get("load", 0.0)),
            peers=int(data.get("peers", 0)),
            recognizers=int(data.get("recognizers", 0)),
            sessions=int(data.get("sessions", 0)),
            cpu=float(data.get("cpu", 0.0)),
            beat=float(data.get("beat", 0.0)),
        )

    def to_json(self) -> str:
        """The JSON stored under `tt:node:{id}`."""
        return json.dumps(asdict(self), separators=(",", ":"))
