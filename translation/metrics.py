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


def normalized(text: str) -> str:
    """Lower case, punctuation removed, spaces collapsed: what error rates compare (Whisper
    writes "Mr. Quilter," where a reference says "Mr quilter")."""
    import unicodedata

    kept = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text.casefold())
    return " ".join(kept.split())


def word_error_rate(hypothesis: str, reference: str) -> float:
    """Word-level Levenshtein distance over the reference's word count (normalized texts)."""
    hyp, ref = normalized(hypothesis).split(), normalized(reference).split()
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(1, len(ref))


#: Languages whose error rate is counted in characters (no spaces, or spaces inside words).
CER_LANGS = frozenset({"zh", "ja", "ko", "th", "yue"})


def error_rate(hypothesis: str, reference: str, lang: str) -> float:
    """CER for languages written without word spaces (and Korean), WER otherwise; both on
    normalized text."""
    if lang.split("-")[0] in CER_LANGS:
        return character_error_rate(normalized(hypothesis), normalized(reference))
    return word_error_rate(hypothesis, reference)
