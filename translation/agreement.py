"""LocalAgreement: which part of a re-decoded, growing utterance is stable enough to show.

A non-streaming recognizer (Whisper) is re-run on the open utterance as it grows; its newest
hypothesis may still change at the end. Following whisper_streaming (Macháček et al., 2023,
"LocalAgreement-2"), a unit is committed once two successive hypotheses agree on it, and what
was committed is never taken back within the utterance. Pure helpers: no model, no threads.
"""

from __future__ import annotations

import re
import unicodedata

#: Languages written without spaces between words: compared character by character.
CHARACTER_LANGS = frozenset({"zh", "ja", "th", "lo", "my", "km", "yue", "bo"})


def units(text: str, lang: str) -> list[str]:
    """The units two hypotheses are compared in: characters (no-space scripts) or words."""
    if lang.split("-")[0] in CHARACTER_LANGS:
        return [c for c in text if not c.isspace()]
    return text.split()


def join_units(parts: list[str], lang: str) -> str:
    """The text of some units (inverse of :func:`units`)."""
    return ("" if lang.split("-")[0] in CHARACTER_LANGS else " ").join(parts)


def _key(unit: str) -> str:
    """A unit as compared: case and punctuation do not count ("Mr." == "mr")."""
    return "".join(c for c in unit.casefold() if not unicodedata.category(c).startswith("P"))


def agreed_prefix(previous: list[str], current: list[str]) -> int:
    """How many leading units the two hypotheses share."""
    count = 0
    for a, b in zip(previous, current, strict=False):
        if _key(a) != _key(b):
            break
        count += 1
    return count


class LocalAgreement:
    """The committed prefix of one utterance, grown as hypotheses arrive."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._previous: list[str] = []
        self.committed: list[str] = []

    def update(self, hypothesis: str) -> str | None:
        """Take a new hypothesis; the committed text when it grew, else None."""
        current = units(hypothesis, self.lang)
        agreed = agreed_prefix(self._previous, current)
        self._previous = current
        # A commitment is final within the utterance: later hypotheses extend it or are ignored.
        if agreed <= len(self.committed) or agreed_prefix(self.committed, current) < len(
            self.committed
        ):
            return None
        self.committed = current[:agreed]
        return join_units(self.committed, self.lang)

    def reset(self) -> None:
        """A new utterance begins."""
        self._previous = []
        self.committed = []


_LOOP = re.compile(r"(.{2,}?)\1{3,}", re.DOTALL)
_PHRASE_LOOP = re.compile(r"(\S.{7,}?)(?:[\s,，、。.]*\1)+", re.DOTALL | re.IGNORECASE)


def collapse_repeats(text: str) -> str:
    """A decoder loop cut to its first occurrence: a short piece said four times or more
    ("好的好的好的好的"), or a phrase of eight characters or more said twice or more in a row
    ("las arenas son blanquecinas las arenas son blanquecinas")."""
    return _PHRASE_LOOP.sub(r"\1", _LOOP.sub(r"\1", text)).strip()
