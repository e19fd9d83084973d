"""The node's view of the recognition workers: who is alive and how loaded (refreshed every
second from Redis), the recognizer source the media sessions use, and the numbers for
`/metrics` and `/healthz`.

With no worker alive, every utterance is recognized in this process exactly as without workers
(no setting needed on one machine); `RemoteRecognizer` decides per utterance.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from server import metrics
from server.background import Periodic
from server.media_sessions.captions import endpoint_config_from_env
from server.recognition.remote import RemoteRecognizer
from server.recognition.streams import (
    GROUP,
    HEARTBEAT_S,
    jobs_key,
    worker_key,
    workers_key,
)
from translation.speech_engines import Recognizer, open_recognizer


class RecognitionHub:
    """Recognition workers as this node sees them; `open_recognizer` is the media sessions'
    recognizer source."""

    def __init__(self, redis_url: str, client: aioredis.Redis, node_id: str, cluster: str) -> None:
        self.node_id = node_id
        self.cluster = cluster
        self.redis = client
        self.sync = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        self.alive = 0
        self.workers: dict[str, dict[str, float]] = {}  # worker id -> its load
        self.queue_depth = 0
        #: utterances recognized by a `worker`, by this `node`, and `fallback`s to the node
        self.utterances = {"worker": 0, "node": 0, "fallback": 0}
        self._counting = threading.Lock()  # speakers' captions threads count
        #: the latest worker hops (s): end marker to done, minus the worker's own time
        self.hops: deque[float] = deque(maxlen=1000)
        #: every speaker's recognizer this hub opened (closed ones drop out as they are freed)
        self._streams: weakref.WeakSet[RemoteRecognizer] = weakref.WeakSet()
        self._refresh = Periodic("recognition workers", HEARTBEAT_S, self.refresh)

    async def start(self) -> None:
        """Look once now, then every second."""
        try:
            await self.refresh()
        except Exception:  # Redis away: no workers until it answers (logged by the loop)
            pass
        self._refresh.start()

    async def stop(self) -> None:
        await self._refresh.stop()
        self.sync.close()

    async def refresh(self) -> None:
        """Read the live workers, their load and the queue depth."""
        try:
            now = time.time()
            key = workers_key(self.cluster)
            pipe = self.redis.pipeline(transaction=False)
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zrange(key, 0, -1)
            _, ids = await pipe.execute()
            names = [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(worker_key(self.cluster, name))
            loads = await pipe.execute() if names else []
            self.workers = {n: _numbers(load) for n, load in zip(names, loads, strict=True)}
            self.alive = len(names)
            self.queue_depth = await self._queue_depth()
        except BaseException:
            self.alive = 0
            raise

    async def _queue_depth(self) -> int:
        """Jobs not yet taken (the group's lag) plus jobs taken and not finished (pending)."""
        try:
            groups = await self.redis.xinfo_groups(jobs_key(self.cluster))
        except aioredis.ResponseError:  # no stream yet
            return 0
        for group in groups:
            name = group.get("name")
            if (name.decode() if isinstance(name, bytes) else name) == GROUP:
                return int(group.get("lag") or 0) + int(group.get("pending") or 0)
        return 0

    def open_recognizer(self, lang: str, data_dir: Path | str) -> tuple[str, Recognizer]:
        """A speaker's recognizer: the node's own (opened as without workers), wrapped so that
        each utterance goes to a worker when one is alive. Vosk's own endpointing
        (`TRADETALK_ENDPOINT=model`) has no utterances to hand over: always local then."""
        engine, local = open_recognizer(lang, data_dir)
        if endpoint_config_from_env() is None:
            return engine, local
        remote = RemoteRecognizer(
            self.sync,
            self.cluster,
            self.node_id,
            lang,
            local,
            alive=lambda: self.alive,
            count=self._count,
            worker_alive=lambda worker: worker in self.workers,
            hop=self._hop,
        )
        with self._counting:
            self._streams.add(remote)
        return engine, remote

    def worker_streams(self) -> int:
        """Speakers of this node whose speech a worker recognizes now (`on_workers`)."""
        with self._counting:
            streams = list(self._streams)
        return sum(1 for s in streams if s.on_workers)

    def recognition_load(self, speakers: int) -> dict[str, int]:
        """Of this node's `speakers` being recognized, how many it recognizes itself
        (`recognizers`, what placement counts) and how many workers do
        (`worker_recognizers`: their CPU is not this node's)."""
        on_workers = min(speakers, self.worker_streams())
        return {"recognizers": speakers - on_workers, "worker_recognizers": on_workers}

    def _count(self, where: str) -> None:
        with self._counting:
            self.utterances[where] = self.utterances.get(where, 0) + 1

    def _hop(self, seconds: float) -> None:
        self.hops.append(seconds)
        metrics.RECOGNITION_HOP_SECONDS.observe(max(0.0, seconds))

    def describe(self) -> str:
        """For `/healthz`: `in-process` or `workers: N`."""
        return f"workers: {self.alive}" if self.alive else "in-process"

    def gauges(self) -> dict[str, float]:
        """For `/metrics` (`server.metrics.GAUGE_HELP`)."""
        return {
            "recognition_workers": self.alive,
            "recognition_queue_depth": self.queue_depth,
            "recognition_utterances_worker": self.utterances["worker"],
            "recognition_utterances_node": self.utterances["node"],
            "recognition_fallbacks": self.utterances["fallback"],
        }

    def labeled_gauges(self) -> dict[str, tuple[str, dict[str, float]]]:
        """Per-worker load for `/metrics`: name -> (label, {worker: value})."""
        loads = self.workers.items()
        return {
            f"recognition_worker_{f}": ("worker", {w: n.get(f, 0.0) for w, n in loads})
            for f in ("active", "slots", "done", "cpu_seconds")
        }


def _numbers(load: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in (load or {}).items():
        name = k.decode() if isinstance(k, bytes) else str(k)
        try:
            out[name] = float(v)
        except (TypeError, ValueError):
            continue
    return out
