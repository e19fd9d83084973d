"""The stream layout shared by media nodes and recognition workers, and the pure parts of the
protocol: utterance ids, entry encoding, and folding a result stream into each final once.

Keys (all under `server.storage.keys.PREFIX`, per cluster):
- `recog:{cluster}:jobs` — one entry per utterance (`uid`, `lang`, `node`), consumer group
  `workers`, capped (`MAXLEN ~`);
- `recog:{cluster}:utt:{uid}` — the utterance's audio after the node's VAD gate, in order:
  `a` (PCM), `m` (`p`ause / `r`esume), `e` (end: max silence seconds), `x` (cancelled);
- `recog:{cluster}:out:{uid}` — what the worker says back: `k` = `c` (claimed by worker `w`),
  `p` (partial), `f` (final `n` of the utterance), `e` (done);
- `recog:{cluster}:workers` — sorted set worker id -> heartbeat expiry (unix seconds);
- `recog:{cluster}:worker:{id}` — the worker's load (hash: active, done, cpu_s, slots, host).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from redis.typing import EncodableT, FieldT

from server.storage.keys import PREFIX
from translation.speech import SpeechResult

Fields = dict[FieldT, EncodableT]
"""A stream entry as redis-py takes it."""

GROUP = "workers"
JOBS_MAXLEN = 10_000
UTTERANCE_MAXLEN = 5_000  # entries; an utterance is at most ~20 s of 20-30 ms chunks (~1000)
RESULTS_MAXLEN = 2_000
OPEN_TTL_S = 120  # an utterance's streams outlive it by this long at most
ENDED_TTL_S = 30  # ... and by this long once it ended
HEARTBEAT_S = 1.0
WORKER_TTL_S = 3.0  # no heartbeat for this long: the worker is gone
CLAIM_IDLE_S = 3.0  # a job whose worker stopped refreshing it for this long is taken over


def key(cluster: str, *parts: str) -> str:
    """`tt:recog:{cluster}:{parts...}`."""
    return ":".join((f"{PREFIX}recog", cluster, *parts))


def jobs_key(cluster: str) -> str:
    return key(cluster, "jobs")


def utterance_key(cluster: str, uid: str) -> str:
    return key(cluster, "utt", uid)


def results_key(cluster: str, uid: str) -> str:
    return key(cluster, "out", uid)


def workers_key(cluster: str) -> str:
    return key(cluster, "workers")


def worker_key(cluster: str, worker: str) -> str:
    return key(cluster, "worker", worker)


class UtteranceIds:
    """Ids of one speaker's utterances: node, speaker, a random part (a restarted node with the
    same id never reuses one), then a counter."""

    def __init__(self, node: str, speaker: str) -> None:
        self.base = f"{node}.{speaker}.{secrets.token_hex(3)}"
        self.count = 0

    def next(self) -> str:
        uid = f"{self.base}.{self.count}"
        self.count += 1
        return uid


def _s(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def encode_result(
    kind: str, result: SpeechResult | None = None, n: int = 0, ms: float | None = None
) -> Fields:
    """A result-stream entry: `p` partial (`n`: finals before it), `f` final number `n`, `e`
    done (`ms`: the worker's time from the end marker to done; times are seconds from the
    utterance's first audio)."""
    entry: Fields = {"k": kind, "n": str(n)}
    if ms is not None:
        entry["ms"] = f"{ms:.2f}"
    if result is not None:
        entry.update(t=result.text, s=f"{result.start or 0.0:.3f}", d=f"{result.end or 0.0:.3f}")
        if result.lang:
            entry["l"] = result.lang  # a final heard in another language than the speaker's
    return entry


def decode_result(fields: dict) -> tuple[str, int, SpeechResult | None, str]:
    """(kind, final number, result or None, worker id) of a result-stream entry."""
    f = {_s(k): _s(v) for k, v in fields.items()}
    kind = f.get("k", "")
    result = None
    if kind in ("p", "f"):
        result = SpeechResult(
            f.get("t", ""), kind == "f", [], float(f["s"]), float(f["d"]), lang=f.get("l") or None
        )
    return kind, int(f.get("n", "0")), result, f.get("w", "")


@dataclass
class UtteranceResults:
    """One utterance's result stream as the node reads it: each final number is taken once
    (a worker that took over re-reads the utterance from its first chunk and says its finals
    again: the repeats are dropped), partials only between finals, `done` at the end."""

    offset: float = 0.0  # the utterance's start on the speaker's stream clock (seconds)
    claimed_by: str | None = None
    done: bool = False
    #: the worker's own time from reading the end marker to saying it is done (ms)
    worker_ms: float = 0.0
    next_final: int = 0
    workers: list[str] = field(default_factory=list)

    def take(self, fields: dict) -> SpeechResult | None:
        """Fold one entry; the result to pass on (stream times), or None."""
        kind, n, result, worker = decode_result(fields)
        if kind == "c":
            self.claimed_by = worker
            self.workers.append(worker)
            return None
        if kind == "e":
            self.done = True
            self.worker_ms = float(_s(fields.get(b"ms", fields.get("ms", b"0"))))
            return None
        if result is None or self.done or n < self.next_final:
            return None  # a final said before, or a partial of it (by a worker lost since)
        if kind == "f":
            self.next_final = n + 1
        result.start = round((result.start or 0.0) + self.offset, 3)
        result.end = round((result.end or 0.0) + self.offset, 3)
        return result
