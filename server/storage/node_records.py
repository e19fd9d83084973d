"""What a node keeps in Redis about itself (`NodeTable`, written for
`server.cluster.nodes.NodeRegistry`, read by whoever needs to reach a node):
- `tt:node:{id}`: the node's JSON (`NodeInfo`) with a PX TTL; a node whose key expired is dead;
- `tt:nodes:{cluster}` (`tt:nodes` unnamed): a ZSET id -> load figure, the index `live()` and
  `place()` read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis

from server.storage.keys import PREFIX

NODES_KEY = f"{PREFIX}nodes"  # + ":{cluster}" for a named cluster
NODE_KEY_PREFIX = f"{PREFIX}node:"


# KEYS[1]: tt:nodes  ARGV[1]: "tt:node:"  ARGV[2..]: excluded ids  -> the chosen id or nil.
# Single-instance Redis only: the node keys are built in the script, not passed as KEYS.
PLACE_SCRIPT = """
local excluded = {}
for i = 2, #ARGV do excluded[ARGV[i]] = true end
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local best, best_score
for i = 1, #members, 2 do
  local id, score = members[i], tonumber(members[i + 1])
  local raw = redis.call('GET', ARGV[1] .. id)
  if not raw then
    redis.call('ZREM', KEYS[1], id)
  elseif not excluded[id] then
    local ok, info = pcall(cjson.decode, raw)
    if ok and type(info) == 'table' and info.media == true and info.draining ~= true
       and (best == nil or score < best_score or (score == best_score and id < best)) then
      best, best_score = id, score
    end
  end
end
if best then redis.call('ZINCRBY', KEYS[1], 1, best) end
return best
"""

# KEYS[1]: tt:nodes  ARGV[1]: "tt:node:"  -> the JSON of every live node; dead ids are removed.
LIVE_SCRIPT = """
local live = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local raw = redis.call('GET', ARGV[1] .. id)
  if raw then table.insert(live, raw) else redis.call('ZREM', KEYS[1], id) end
end
return live
"""


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
    #: speakers whose speech recognition workers do (not counted in `load`); `recognizers`
    #: are those this node recognizes itself
    worker_recognizers: int = 0

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
            worker_recognizers=int(data.get("worker_recognizers", 0)),
        )

    def to_json(self) -> str:
        """The JSON stored under `tt:node:{id}`."""
        return json.dumps(asdict(self), separators=(",", ":"))


class NodeTable:
    """Every `tt:node:*` and `tt:nodes*` key: the live nodes of one cluster."""

    def __init__(self, client: aioredis.Redis, cluster: str | None = None) -> None:
        """`cluster`: the nodes of that cluster name only (None: the unnamed one)."""
        self.redis = client
        self.nodes_key = f"{NODES_KEY}:{cluster}" if cluster else NODES_KEY
        self._place = client.register_script(PLACE_SCRIPT)
        self._live = client.register_script(LIVE_SCRIPT)

    async def write(self, info: NodeInfo, ttl_s: float) -> None:
        """A node's key (PX ttl) and its score in the index, in one transaction."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(node_key(info.id), info.to_json(), px=max(1, int(ttl_s * 1000)))
            pipe.zadd(self.nodes_key, {info.id: info.load})
            await pipe.execute()

    async def remove(self, node_id: str) -> None:
        """Forget a node now (else its key expires)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(node_key(node_id))
            pipe.zrem(self.nodes_key, node_id)
            await pipe.execute()

    async def live(self) -> list[bytes]:
        """The JSON of every node whose key exists, least loaded first (dead ids are removed
        from the index)."""
        return list(await self._live(keys=[self.nodes_key], args=[NODE_KEY_PREFIX]))

    async def exists(self, node_id: str) -> bool:
        """Whether the node's heartbeat key exists."""
        return bool(await self.redis.exists(node_key(node_id)))

    async def place(self, exclude: Iterable[str] = ()) -> str | None:
        """The least-loaded live media node not draining nor excluded (its score +1), or None."""
        chosen: Any = await self._place(keys=[self.nodes_key], args=[NODE_KEY_PREFIX, *exclude])
        if chosen is None:
            return None
        return chosen.decode() if isinstance(chosen, bytes) else str(chosen)
