"""The pure parts of remote recognition (server/recognition/streams.py): utterance ids, result
entries, and folding a result stream so that each final goes out once."""

from __future__ import annotations

from server.recognition.streams import (
    UtteranceIds,
    UtteranceResults,
    encode_result,
    results_key,
    utterance_key,
)
from translation.speech import SpeechResult


def entry(kind: str, text: str = "", n: int = 0, start: float = 0.0, end: float = 0.0) -> dict:
    """A result-stream entry as the node reads it back (bytes, like the Redis client's)."""
    result = SpeechResult(text, kind == "f", [], start, end) if kind in "pf" else None
    fields = encode_result(kind, result, n)
    return {k.encode(): v.encode() for k, v in fields.items()}


def claimed(worker: str) -> dict:
    return {b"k": b"c", b"w": worker.encode()}


def test_utterance_ids_count_per_speaker_and_differ_between_speakers() -> None:
    a, b = UtteranceIds("host1", "s"), UtteranceIds("host1", "s")
    first = [a.next() for _ in range(3)]
    assert len(set(first)) == 3 and all(i.startswith("host1.s.") for i in first)
    assert [i.rsplit(".", 1)[1] for i in first] == ["0", "1", "2"]
    assert b.next() not in first  # a restarted node with the same id never reuses one


def test_keys_are_prefixed_per_cluster() -> None:
    assert utterance_key("main", "u1") == "tt:recog:main:utt:u1"
    assert results_key("other", "u1") == "tt:recog:other:out:u1"


def test_times_are_moved_to_the_speakers_stream_clock() -> None:
    fold = UtteranceResults(offset=12.5)
    got = fold.take(entry("f", "안녕하세요", 0, 0.3, 1.9))
    assert got is not None and got.final and got.text == "안녕하세요"
    assert (got.start, got.end) == (12.8, 14.4)


def test_a_final_said_again_by_the_worker_that_took_over_is_dropped() -> None:
    """Worker A said final 0, partial of final 1, then was lost; B re-read the utterance from
    its first chunk and says final 0 again, then final 1: each final goes out once."""
    fold = UtteranceResults()
    stream = [
        claimed("a"),
        entry("p", "그는", 0),
        entry("f", "그는 걸어갔다", 0, 0.1, 2.0),
        entry("p", "옆으로", 1),
        claimed("b"),
        entry("p", "그는", 0),  # B's partial of a line already out: dropped
        entry("f", "그는 걸어갔다", 0, 0.1, 2.0),  # said again: dropped
        entry("f", "옆으로 갔다", 1, 2.2, 3.0),
        entry("e", n=2),
        entry("f", "late", 2),  # after done: nothing more
    ]
    out = [r for r in (fold.take(e) for e in stream) if r is not None]
    assert [(r.text, r.final) for r in out] == [
        ("그는", False),
        ("그는 걸어갔다", True),
        ("옆으로", False),
        ("옆으로 갔다", True),
    ]
    assert fold.workers == ["a", "b"] and fold.claimed_by == "b" and fold.done


def test_nothing_claimed_nothing_done() -> None:
    fold = UtteranceResults()
    assert fold.claimed_by is None and not fold.done
    assert fold.take(entry("e")) is None and fold.done


def test_a_final_heard_in_another_language_says_so_across_the_stream() -> None:
    from server.recognition.streams import decode_result

    heard = SpeechResult("Ask not.", True, [], 0.5, 1.5, lang="en")
    fields = {k.encode(): v.encode() for k, v in encode_result("f", heard, 0).items()}
    kind, _n, result, _worker = decode_result(fields)
    assert kind == "f" and result is not None and result.lang == "en"
    plain = encode_result("f", SpeechResult("x", True))
    assert "l" not in plain
    assert decode_result({k.encode(): v.encode() for k, v in plain.items()})[2].lang is None  # type: ignore[union-attr]
