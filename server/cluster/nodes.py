"""The node registry: every server process beats its id, media role and load into Redis
(`storage.node_records.NodeTable`: `tt:node:{id}` with a TTL, `tt:nodes:{cluster}` the index
`live()` and `place()` read).

The load figure is `sessions + peers + 2 * recognizers + 4 * cpu`: a media session or a peer
connection costs one unit, a speaker this process recognizes itself (Vosk, in-process) about
two, and a process whose CPU share is 1.0 (one core busy) counts as four more; so a busy process
loses placements even while its counts are low. A speaker whose speech a recognition worker
recognizes (`worker_recognizers`, in the heartbeat for the operator) adds nothing beyond its
peer: the node only gates and forwards its audio (~0.04 core against ~0.24 in-process).
The CPU share is averaged over about 10 s (exponentially), so a burst of signalling work
(sign-ins, a dozen events) does not steer every placement away for a second.
Between beats `place()` adds 1 to the node it picks, so placements in quick succession spread
instead of all landing on the same node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis

from server.storage.node_records import NODES_KEY, NodeInfo, NodeTable, node_key

__all__ = ["NODES_KEY", "NodeInfo", "NodeRegistry", "load_figure", "node_key"]

log = logging.getLogger("tradetalk.nodes")


def load_figure(peers: float, recognizers: float, sessions: float, cpu: float) -> float:
    """The score placement compares (lower is less loaded); see the module docstring."""
    return sessions + peers + 2 * recognizers + 4 * cpu


class CpuMeter:
    """This process's CPU share (1.0 = one core busy all the time), averaged exponentially over
    about `window_s` seconds of readings."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._cpu = time.process_time()
        self._wall = time.monotonic()
        self._average = 0.0  # a node starts idle: its start-up work is not load

    def read(self) -> float:
        """The averaged share, updated with the share since the previous reading."""
        cpu, wall = time.process_time(), time.monotonic()
        elapsed = wall - self._wall
        share = max(0.0, (cpu - self._cpu) / elapsed) if elapsed > 0 else 0.0
        self._cpu, self._wall = cpu, wall
        self._average += min(1.0, elapsed / self.window_s) * (share - self._average)
        return self._average


class NodeRegistry:
    """This process as a node in Redis, and the view of every other live node.

    `load()` returns this node's counts {"peers", "recognizers", "worker_recognizers",
    "sessions"} (missing ones are 0; `recognizers`: speakers recognized in this process);
    a "cpu" entry, when present, replaces the measured CPU share (for tests and benchmarks).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        node_id: str,
        *,
        ttl_s: float = 3.0,
        media: bool = True,
        media_address: str | None = None,
        url: str | None = None,
        load: Callable[[], dict[str, float]] = lambda: {},
        cluster: str | None = None,
    ) -> None:
        """`cluster`: nodes place sessions only among nodes of the same cluster name (None:
        the unnamed one)."""
        self.table = NodeTable(redis, cluster)
        self.node_id = node_id
        self.ttl_s = ttl_s
        self.media = media
        self.media_address = media_address
        self.url = url
        self.draining = False
        self._load = load
        self._cpu = CpuMeter()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self._failing = False

    # --- this node ---

    def snapshot(self) -> NodeInfo:
        """This node's figures now (reads the CPU meter, so call it once per beat)."""
        counts = self._load()
        peers = int(counts.get("peers", 0))
        recognizers = int(counts.get("recognizers", 0))
        sessions = int(counts.get("sessions", 0))
        on_workers = int(counts.get("worker_recognizers", 0))
        cpu = round(float(counts["cpu"]) if "cpu" in counts else self._cpu.read(), 4)
        return NodeInfo(
            id=self.node_id,
            media=self.media,
            media_address=self.media_address,
            url=self.url,
            draining=self.draining,
            load=load_figure(peers, recognizers, sessions, cpu),
            peers=peers,
            recognizers=recognizers,
            sessions=sessions,
            cpu=cpu,
            beat=time.time(),
            worker_recognizers=on_workers,
        )

    async def beat(self) -> None:
        """Write this node's key (PX ttl) and its score in `tt:nodes`, in one transaction."""
        async with self._lock:
            await self.table.write(self.snapshot(), self.ttl_s)

    def start(self) -> None:
        """Beat every ttl/3 in a background task until `stop()`; Redis errors are logged. The
        CPU share counts from here (start-up work is not load)."""
        self._cpu = CpuMeter()
        self._running = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"node-beat-{self.node_id}")

    async def stop(self, forget: bool = True) -> None:
        """Stop beating; with `forget` remove this node from Redis now (else its key expires)."""
        self._running = False  # also ends the loop if redis turned the cancel into an error
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if forget:
            try:
                await self.table.remove(self.node_id)
            except Exception as exc:
                log.warning("node %s: cannot remove itself from redis (%s)", self.node_id, exc)

    async def set_draining(self) -> None:
        """Mark this node draining and beat at once: `place()` never picks it again.

        Redis errors propagate; the flag stays set, so the next beat carries it anyway.
        """
        self.draining = True
        await self.beat()

    async def _run(self) -> None:
        interval = self.ttl_s / 3
        while self._running:
            started = time.monotonic()
            await self._beat_logged()
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def _beat_logged(self) -> None:
        try:
            await self.beat()
        except Exception as exc:
            if not self._failing:
                log.error("node %s: heartbeat failed (%s); retrying", self.node_id, exc)
            self._failing = True
            return
        if self._failing:
            log.warning("node %s: heartbeat works again", self.node_id)
        self._failing = False

    # --- the cluster ---

    async def live(self) -> list[NodeInfo]:
        """Every node whose key exists, in `tt:nodes` order (least loaded first)."""
        raws = await self.table.live()
        nodes = []
        for raw in raws:
            try:
                nodes.append(NodeInfo.from_json(raw))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("unreadable node entry %r (%s)", raw[:200], exc)
        return nodes

    async def alive(self, node_id: str) -> bool:
        """Whether `node_id`'s heartbeat key exists."""
        return await self.table.exists(node_id)

    async def place(self, exclude: Iterable[str] = ()) -> str | None:
        """The least-loaded live media node that is not draining nor excluded, or None.

        Ties go to the smallest id. The chosen node's score rises by 1 until its next beat.
        """
        return await self.table.place(exclude)
