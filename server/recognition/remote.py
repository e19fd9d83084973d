"""The node's side of remote recognition: a `Recognizer` that sends each utterance to a worker.

`RemoteRecognizer` is what a speaker's captions thread (`server.media_sessions.captions`) drives
when the node has a `RecognitionHub`. When an utterance opens (the endpointer's first `Feed`
after the VAD gate) and a worker is alive, the utterance gets an id, its audio goes to its own
stream and one job to the workers' group stream; the partials and finals a worker writes back
are read on every feed and, at the end, until the worker says it is done. Otherwise, or when no
worker claims the job in `CLAIM_WAIT_S`, or the worker is lost and no other takes over, or Redis
fails, the node's own recognizer (opened as without workers) recognizes the utterance from the
audio kept here. Every Redis call here is synchronous: it runs on the captions thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from server.recognition.streams import (
    CLAIM_IDLE_S,
    ENDED_TTL_S,
    JOBS_MAXLEN,
    OPEN_TTL_S,
    RESULTS_MAXLEN,
    UTTERANCE_MAXLEN,
    WORKER_TTL_S,
    Fields,
    UtteranceIds,
    UtteranceResults,
    jobs_key,
    results_key,
    utterance_key,
)
from translation.speech import SpeechResult
from translation.speech_engines import Recognizer

log = logging.getLogger("tradetalk.recognition")

BYTES_PER_SECOND = 32000
CLAIM_WAIT_S = 3.0  # no worker claimed the job by then: the node recognizes the utterance
#: the claiming worker out of the live set this long, and no other claimed the job: the node
#: recognizes it (a takeover comes CLAIM_IDLE_S after the worker's last re-claim)
TAKEOVER_S = CLAIM_IDLE_S + WORKER_TTL_S + 2.0
FINAL_WAIT_S = 30.0  # after the end, never wait longer than this for a worker's final
KEEP_MAX_BYTES = 60 * BYTES_PER_SECOND  # audio kept for a fallback (an utterance is <= ~20 s)
#: Redis away or a connection cut mid-reply (redis-py may raise ValueError then): the node
#: recognizes the utterance itself
REDIS_FAILED = (redis.RedisError, OSError, ValueError)

Count = Callable[[str], None]
Alive = Callable[[str], bool]  # whether a worker (by id) is in the live set now
Hop = Callable[[float], None]


class _Utterance:
    """One utterance handed to the workers (node side)."""

    def __init__(
        self, client: redis.Redis, cluster: str, uid: str, lang: str, node: str, offset: int
    ) -> None:
        self.client = client
        self.uid = uid
        self.lang = lang
        self.node = node
        self.audio_key = utterance_key(cluster, uid)
        self.out_key = results_key(cluster, uid)
        self.jobs_key = jobs_key(cluster)
        self.offset_bytes = offset
        self.results = UtteranceResults(offset=offset / BYTES_PER_SECOND)
        self.kept: list[bytes] = []
        self.kept_bytes = 0
        self.opened = time.monotonic()
        self.last_id = "0-0"
        self.hop_s: float | None = None
        self._holder_seen = time.monotonic()  # when the claiming worker was last alive
        self.why = ""  # why the node recognized it after all

    def keep(self, pcm: bytes) -> None:
        if self.kept_bytes < KEEP_MAX_BYTES:
            self.kept.append(pcm)
            self.kept_bytes += len(pcm)

    def open(self, pcm: bytes) -> list[SpeechResult]:
        """The first audio, and the job for the workers."""
        self.keep(pcm)
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(self.audio_key, {"a": pcm}, maxlen=UTTERANCE_MAXLEN, approximate=True)
        pipe.expire(self.audio_key, OPEN_TTL_S)
        job: Fields = {"uid": self.uid, "lang": self.lang, "node": self.node}
        pipe.xadd(self.jobs_key, job, maxlen=JOBS_MAXLEN, approximate=True)
        pipe.execute()
        return []

    def feed(self, pcm: bytes) -> list[SpeechResult]:
        """More audio; returns what the worker said since the last call."""
        self.keep(pcm)
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(self.audio_key, {"a": pcm}, maxlen=UTTERANCE_MAXLEN, approximate=True)
        pipe.xread({self.out_key: self.last_id}, count=RESULTS_MAXLEN)
        return self._fold(pipe.execute()[1])

    def mark(self, kind: str) -> None:
        """`p` (pause) or `r` (resume) for an engine that decodes whole utterances."""
        self.client.xadd(self.audio_key, {"m": kind}, maxlen=UTTERANCE_MAXLEN, approximate=True)

    def cancel(self) -> None:
        """The node does the utterance itself: a worker that takes the job drops it."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(self.audio_key, {"x": "1"})
        pipe.expire(self.audio_key, ENDED_TTL_S)
        pipe.execute()

    def claimed(self) -> bool:
        return self.results.claimed_by is not None

    def unclaimed_too_long(self) -> bool:
        return not self.claimed() and time.monotonic() - self.opened > CLAIM_WAIT_S

    def abandoned(self, alive: Alive) -> str | None:
        """Why the node should recognize this utterance itself now, or None: no worker took
        it in `CLAIM_WAIT_S`, or the worker that did left the live set and none took over."""
        now = time.monotonic()
        if self.unclaimed_too_long():
            return "no worker claimed it"
        holder = self.results.claimed_by
        if holder is None or alive(holder):
            self._holder_seen = now
            return None
        if now - self._holder_seen > TAKEOVER_S:
            return f"worker {holder} was lost and none took over"
        return None

    def finish(self, max_silence_s: float, alive: Alive) -> tuple[bool, list]:
        """The end marker, then the worker's results until it is done: (done, finals).
        `hop_s` is then the wait minus the worker's own time: what the trip through Redis and
        the worker's wake-up added."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(self.audio_key, {"e": f"{max_silence_s:.2f}"})
        pipe.expire(self.audio_key, ENDED_TTL_S)
        pipe.execute()
        finals: list[SpeechResult] = []
        ended = time.monotonic()
        began = time.perf_counter()
        while not self.results.done:
            why = self.abandoned(alive)
            if why is None and time.monotonic() - ended > FINAL_WAIT_S:
                why = f"no final in {FINAL_WAIT_S:.0f} s"
            if why is not None:
                self.why = why
                return False, finals
            reply = self.client.xread({self.out_key: self.last_id}, count=RESULTS_MAXLEN, block=100)
            finals.extend(r for r in self._fold(reply) if r.final)
        self.hop_s = time.perf_counter() - began - self.results.worker_ms / 1000
        return True, finals

    def _fold(self, reply: Any) -> list[SpeechResult]:
        out: list[SpeechResult] = []
        for _key, items in reply or []:
            for entry_id, fields in items:
                self.last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                result = self.results.take(fields)
                if result is not None:
                    out.append(result)
        partials = [r for r in out if not r.final]
        return [r for r in out if r.final] + partials[-1:]  # only the newest partial matters


class RemoteRecognizer:
    """A speaker's recognizer that hands each utterance to a worker when one is alive."""

    def __init__(
        self,
        client: redis.Redis,
        cluster: str,
        node: str,
        lang: str,
        local: Recognizer,
        alive: Callable[[], int],
        count: Count,
        worker_alive: Alive | None = None,
        hop: Hop | None = None,
    ) -> None:
        """`local`: the node's own recognizer for this speaker (used when no worker serves);
        `alive()`: how many workers are alive now; `worker_alive(id)`: whether that one is;
        `count(where)`: an utterance was recognized
        by a `worker`, the `node`, or fell back to the node (`fallback`); `hop(seconds)`: what
        the worker hop added to an utterance's final (its end marker to the worker's done,
        minus the worker's own time)."""
        self.client = client
        self.cluster = cluster
        self.node = node
        self.lang = lang
        self._local = local
        self._alive = alive
        self._worker_alive = worker_alive or (lambda _worker: alive() > 0)
        self._count = count
        self._hop = hop
        self._ids = UtteranceIds(node, "s")
        self._bytes = 0  # the stream clock: audio fed and skipped
        self._local_bytes = 0  # how much of that clock the local recognizer has seen
        self._remote: _Utterance | None = None
        self._local_open = False
        self.closed = False

    @property
    def on_workers(self) -> bool:
        """Whether a worker recognizes this speaker now: its open utterance is a worker's, or,
        between utterances, the next one goes to a worker (one is alive). False while the node
        recognizes an utterance itself (no worker, a fallback) and once closed."""
        if self.closed or self._local_open:
            return False
        return self._remote is not None or self._alive() > 0

    @property
    def position(self) -> float:
        return self._bytes / BYTES_PER_SECOND

    @property
    def pending(self) -> bool:
        return self._remote is not None or self._local.pending

    def feed(self, pcm: bytes) -> list[SpeechResult]:
        if self._remote is None and not self._local_open:
            self._open(pcm)
            self._bytes += len(pcm)
            return [] if self._remote is not None else self._feed_local(pcm)
        self._bytes += len(pcm)
        remote = self._remote
        if remote is None:
            return self._feed_local(pcm)
        try:
            results = remote.feed(pcm)
        except REDIS_FAILED as exc:
            remote.why = f"redis failed ({exc})"
            return self._fall_back()
        why = remote.abandoned(self._worker_alive)
        if why is not None:
            remote.why = why
            return self._fall_back()
        return results

    def skip(self, nbytes: int) -> None:
        self._bytes += nbytes

    def pause(self) -> None:
        self._mark("p") if self._remote is not None else self._local.pause()

    def resume(self) -> None:
        self._mark("r") if self._remote is not None else self._local.resume()

    def end_utterance(self, max_silence_s: float = 1.5) -> SpeechResult | None:
        remote, self._remote = self._remote, None
        if remote is None:
            if not self._local_open:
                return None
            self._local_open = False
            self._count("node")
            return self._local.end_utterance(max_silence_s)
        try:
            done, finals = remote.finish(max_silence_s, self._worker_alive)
        except REDIS_FAILED as exc:
            done, finals, remote.why = False, [], f"redis failed ({exc})"
        if done or finals:
            self._count("worker")
            if remote.hop_s is not None and self._hop is not None:
                self._hop(remote.hop_s)
            return _joined(finals)
        self._remote = remote
        early = [r for r in self._fall_back() if r.final]
        self._local_open = False
        self._count("node")
        last = self._local.end_utterance(max_silence_s)
        return _joined(early + ([last] if last is not None else []))

    def finish(self) -> SpeechResult | None:
        if self._remote is not None:
            return self.end_utterance()
        self._local_open = False
        return self._local.finish()

    def close(self) -> None:
        self.closed = True
        remote, self._remote = self._remote, None
        if remote is not None:
            try:
                remote.cancel()
            except REDIS_FAILED:
                pass
        self._local.close()

    # ------------------------------------------------------------------ internals

    def _open(self, pcm: bytes) -> None:
        if self._alive() <= 0:
            self._local_open = True
            return
        remote = _Utterance(
            self.client, self.cluster, self._ids.next(), self.lang, self.node, self._bytes
        )
        try:
            remote.open(pcm)
        except REDIS_FAILED as exc:
            log.warning("could not hand an utterance to the workers (%s)", exc)
            self._local_open = True
            return
        self._remote = remote

    def _feed_local(self, pcm: bytes) -> list[SpeechResult]:
        """Feed the local recognizer, its clock first caught up with the audio the workers had."""
        start = self._bytes - len(pcm)
        if start > self._local_bytes:
            self._local.skip(start - self._local_bytes)
        self._local_bytes = self._bytes
        return self._local.feed(pcm)

    def _fall_back(self) -> list[SpeechResult]:
        """Recognize the open utterance here from its first chunk (the workers' is dropped)."""
        remote, self._remote = self._remote, None
        self._local_open = True
        if remote is None:
            return []
        log.info("utterance %s: %s; recognized here", remote.uid, remote.why or "redis failed")
        self._count("fallback")
        try:
            remote.cancel()
        except REDIS_FAILED:
            pass
        if remote.offset_bytes > self._local_bytes:
            self._local.skip(remote.offset_bytes - self._local_bytes)
        audio = b"".join(remote.kept)
        self._local_bytes = remote.offset_bytes + len(audio)
        if self._bytes > self._local_bytes:  # more than was kept: the clock still runs on
            self._local.skip(self._bytes - self._local_bytes)
            self._local_bytes = self._bytes
        results = self._local.feed(audio) if audio else []
        partials = [r for r in results if not r.final]
        return [r for r in results if r.final] + partials[-1:]

    def _mark(self, kind: str) -> None:
        assert self._remote is not None
        try:
            self._remote.mark(kind)
        except REDIS_FAILED:
            self._fall_back()


def _joined(finals: list[SpeechResult]) -> SpeechResult | None:
    """One final line of several (a recognizer that closed the utterance more than once)."""
    finals = [f for f in finals if f.text.strip()]
    if not finals:
        return None
    if len(finals) == 1:
        return finals[0]
    words = [w for f in finals for w in f.words]
    text = " ".join(f.text for f in finals)
    return SpeechResult(text, True, words, finals[0].start, finals[-1].end, lang=finals[-1].lang)
