"""`tradetalk worker`: recognizes speech for media nodes, taken from Redis Streams.

A worker runs `slots` job threads and one heartbeat thread. A job thread takes one utterance
at a time: first any job another worker left unfinished for `CLAIM_IDLE_S` (`XAUTOCLAIM`: that
worker was lost), else a new one (`XREADGROUP` in group `workers`). It says it took the job on
the utterance's result stream, reads the utterance's audio from its first chunk (blocking
`XREAD`) through its end marker with the same recognizer the node would use (its recognizer
pool and models are this process's), writes partials and finals back, then `XACK`s. The
heartbeat keeps the worker in the live set (`recog:{cluster}:workers`, expiry `WORKER_TTL_S`),
publishes its load, and re-claims its own jobs every second so that none idles into another
worker's `XAUTOCLAIM` while it is being worked on.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import redis
from redis.typing import StreamIdT

from server.config import Settings
from server.recognition.streams import (
    CLAIM_IDLE_S,
    ENDED_TTL_S,
    GROUP,
    HEARTBEAT_S,
    OPEN_TTL_S,
    RESULTS_MAXLEN,
    WORKER_TTL_S,
    Fields,
    encode_result,
    jobs_key,
    results_key,
    utterance_key,
    worker_key,
    workers_key,
)
from server.warmup import warm_recognizers
from translation.speech import SpeechResult
from translation.speech_engines import load_engine, preload, recognizer_for

log = logging.getLogger("tradetalk.worker")

READ_BLOCK_MS = 500
SILENT_GIVE_UP_S = 10.0  # no audio and no end for this long: the node is gone


def _s(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class Worker:
    """One worker process's job threads and heartbeat."""

    def __init__(
        self,
        redis_url: str,
        data_dir: Path,
        worker_id: str | None = None,
        cluster: str = "main",
        slots: int = 4,
        languages: list[str] | None = None,
    ) -> None:
        """`languages`: those loaded and warmed before the worker joins (default: every
        language recognized here); others load on their first utterance."""
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=10)
        self.data_dir = data_dir
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.cluster = cluster
        self.slots = slots
        self.languages = languages
        self.jobs = jobs_key(cluster)
        self.stopping = threading.Event()
        self.active: dict[str, str] = {}  # job entry id -> utterance id
        self.done = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._engines: dict[str, tuple[str, Any]] = {}

    def run(self) -> None:
        """Load the models, join the group, work until `stop()` (SIGTERM / Ctrl-C)."""
        if self.languages:
            languages = {lang: load_engine(lang, self.data_dir)[0] for lang in self.languages}
        else:
            languages = preload(self.data_dir)
        warm_recognizers(self.data_dir, languages)  # a cold recognizer's first utterance is slow
        log.info("worker %s: %d slots, languages %s", self.id, self.slots, sorted(languages))
        try:
            self.redis.xgroup_create(self.jobs, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self.beat()
        self._threads = [
            threading.Thread(target=self._slot, name=f"slot-{i}", daemon=True)
            for i in range(self.slots)
        ]
        for thread in self._threads:
            thread.start()
        print(f"recognition worker {self.id} ({self.slots} slots)", flush=True)
        while not self.stopping.wait(HEARTBEAT_S):
            try:
                self.beat()
            except (redis.RedisError, OSError) as exc:
                log.warning("heartbeat failed (%s)", exc)
        for thread in self._threads:  # an utterance left open is taken over by another worker
            thread.join(timeout=5)
        self.redis.zrem(workers_key(self.cluster), self.id)
        self.redis.delete(worker_key(self.cluster, self.id))

    def stop(self) -> None:
        self.stopping.set()

    def beat(self) -> None:
        """Alive until now + `WORKER_TTL_S`; the load; this worker's jobs stay claimed."""
        with self._lock:
            active = list(self.active)
            done = self.done
        cpu = time.process_time()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(workers_key(self.cluster), {self.id: time.time() + WORKER_TTL_S})
        load_key = worker_key(self.cluster, self.id)
        load: Fields = {
            "active": len(active),
            "slots": self.slots,
            "done": done,
            "cpu_seconds": cpu,
        }
        pipe.hset(load_key, mapping={**load, "host": socket.gethostname(), "pid": os.getpid()})
        pipe.expire(load_key, int(WORKER_TTL_S * 3))
        if active:
            ids: list[StreamIdT] = list(active)
            pipe.xclaim(self.jobs, GROUP, self.id, 0, ids, justid=True)
        pipe.execute()

    # ------------------------------------------------------------------ jobs

    def _engine(self, lang: str) -> tuple[str, Any]:
        """(engine, model) for `lang`, looked up once per language (finding it scans the
        data dir: ~0.1 s, too much per utterance)."""
        found = self._engines.get(lang)
        if found is None:
            found = self._engines[lang] = load_engine(lang, self.data_dir)
        return found

    def _slot(self) -> None:
        while not self.stopping.is_set():
            try:
                job = self._take()
                if job is not None:
                    self._work(*job)
            except (redis.RedisError, OSError) as exc:
                log.warning("redis failed (%s); retrying", exc)
                self.stopping.wait(1.0)
            except Exception:
                log.exception("a recognition job failed")

    def _take(self) -> tuple[str, dict[str, str]] | None:
        """A job lost by another worker, else a new one (None after a second of nothing)."""
        idle_ms = int(CLAIM_IDLE_S * 1000)
        reply = self.redis.xautoclaim(self.jobs, GROUP, self.id, idle_ms, "0-0", count=1)
        claimed, deleted = reply[1], reply[2] if len(reply) > 2 else []
        if deleted:
            self.redis.xack(self.jobs, GROUP, *deleted)
        for entry_id, fields in claimed:
            if fields:
                log.info("took over job %s", _s(entry_id))
                return _s(entry_id), {_s(k): _s(v) for k, v in fields.items()}
            self.redis.xack(self.jobs, GROUP, entry_id)
        fresh: Any = self.redis.xreadgroup(GROUP, self.id, {self.jobs: ">"}, count=1, block=1000)
        for _stream, entries in fresh or []:
            for entry_id, fields in entries:
                return _s(entry_id), {_s(k): _s(v) for k, v in fields.items()}
        return None

    def _work(self, entry_id: str, job: dict[str, str]) -> None:
        uid = job.get("uid", "")
        with self._lock:
            self.active[entry_id] = uid
        finished = False
        try:
            finished = self._recognize(uid, job.get("lang", ""))
        finally:
            with self._lock:
                self.active.pop(entry_id, None)
                self.done += 1
            # stopped mid-utterance: left pending, another worker's XAUTOCLAIM takes it over
            if finished:
                self.redis.xack(self.jobs, GROUP, entry_id)

    def _recognize(self, uid: str, lang: str) -> bool:
        """Read the utterance from its first chunk to its end; write what is recognized.
        False: this worker is stopping and left the utterance to another."""
        audio_key = utterance_key(self.cluster, uid)
        out = results_key(self.cluster, uid)
        if not self.redis.exists(audio_key):
            return True  # ended long ago (or cancelled and expired): nobody waits for it
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(out, {"k": "c", "w": self.id}, maxlen=RESULTS_MAXLEN, approximate=True)
        pipe.expire(out, OPEN_TTL_S)
        pipe.execute()
        recognizer = recognizer_for(*self._engine(lang), lang)
        finals = 0
        last = "0-0"
        heard = time.perf_counter()
        try:
            while not self.stopping.is_set():
                # ~1 s of audio at a time: a worker catching up (a takeover) still says
                # partials as it goes
                reply: Any = self.redis.xread({audio_key: last}, count=50, block=READ_BLOCK_MS)
                entries = [e for _k, items in reply or [] for e in items]
                if not entries:
                    if time.perf_counter() - heard > SILENT_GIVE_UP_S:
                        log.warning("utterance %s: no audio for %.0f s", uid, SILENT_GIVE_UP_S)
                        return True
                    continue
                heard = read_at = time.perf_counter()
                log.debug("utterance %s: %d entries", uid, len(entries))
                last = _s(entries[-1][0])
                fields = [{_s(k): v for k, v in f.items()} for _id, f in entries]
                if any("x" in f for f in fields):
                    return True  # the node recognizes it itself
                results: list[SpeechResult] = []
                ended = None
                for f in fields:
                    if "a" in f:
                        results.extend(recognizer.feed(f["a"]))
                    elif "m" in f and _s(f["m"]) == "p":
                        recognizer.pause()
                    elif "m" in f:
                        recognizer.resume()
                    elif "e" in f:
                        ended = float(_s(f["e"]) or 1.5)
                        break
                if ended is not None:
                    final = recognizer.end_utterance(ended)
                    if final is not None:
                        results.append(final)
                entries_out = []
                for i, result in enumerate(results):
                    if result.final:
                        entries_out.append(encode_result("f", result, finals))
                        finals += 1
                    elif i == len(results) - 1 or results[i + 1].final:
                        entries_out.append(encode_result("p", result, finals))
                if ended is not None:
                    busy_ms = (time.perf_counter() - read_at) * 1000
                    entries_out.append(encode_result("e", None, finals, busy_ms))
                if entries_out:
                    pipe = self.redis.pipeline(transaction=False)
                    for entry in entries_out:
                        pipe.xadd(out, entry, maxlen=RESULTS_MAXLEN, approximate=True)
                    if ended is not None:
                        pipe.expire(out, ENDED_TTL_S)
                    pipe.execute()
                if ended is not None:
                    return True
            return False
        finally:
            recognizer.close()


def run_worker(
    settings: Settings, worker_id: str | None, slots: int, languages: list[str] | None = None
) -> int:
    """`tradetalk worker`: run until SIGTERM or Ctrl-C (REDIS_URL, TRADETALK_DATA,
    TRADETALK_CLUSTER as the media nodes')."""
    if not settings.redis_url:
        print("tradetalk worker: REDIS_URL must name the media nodes' Redis", flush=True)
        return 2
    worker = Worker(
        settings.redis_url, settings.data_dir, worker_id, settings.cluster, slots, languages
    )
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    worker.run()
    return 0
