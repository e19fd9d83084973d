"""Recognition quality metrics used by the tests and benchmarks."""

from __future__ import annotations


def character_error_rate(hypothesis: str, reference: str) -> float:
    """Levenshtein distance between the texts, spaces removed, divided by the reference length.

    Spaces are ignored because Vosk's Korean and Chinese models put spaces inside words.
    """
    hyp, ref = hypothesis.replace(" ", ""), reference.replace(" ", "")
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / len(ref)
