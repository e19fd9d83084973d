"""Offline sentence splitting (regular expressions; never downloads a model).

A short utterance (at most ``max_chars``, 200 by default) is returned whole: chat messages and
subtitles are translated as said. Longer text is split after ``. ! ?`` (and ``…``) followed
by white space and a sentence start, and after ``。！？`` — but not after abbreviations
("Mr.", "e.g.", "No."), initials ("J. Smith") or inside numbers ("2.35", "1,200.50").
"""

from __future__ import annotations

import re

SHORT_UTTERANCE_CHARS = 200

ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt no nos vs e.g i.e eg ie approx appx dept est fig
    inc ltd co corp llc plc gmbh bros jan feb mar apr jun jul aug sep sept oct nov dec
    mon tue wed thu fri sat sun min max qty ref tel ext att attn cf al viz ca""".split()
)

# Latin-script end: punctuation, optional closing quotes/brackets, then white space.
_LATIN_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+)")
# CJK end: full-width punctuation, optional closing quotes; no space needed after it.
_CJK_END = re.compile(r"[。！？]+[」』”’\"')）]*")
_LAST_WORD = re.compile(r"(\S+)$")
_NEXT_START = re.compile(r"\s+([\"'“‘(\[]?\S)")


def _is_boundary(text: str, end: int, punct_start: int) -> bool:
    """Decide whether the Latin-script punctuation at ``punct_start`` ends a sentence."""
    if text[punct_start] == ".":
        word = _LAST_WORD.search(text, 0, punct_start)
        if word:
            token = word.group(1).lstrip("\"'“‘([").lower()
            if token in ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
                return False
    nxt = _NEXT_START.match(text, end)
    if not nxt:
        return False
    first = nxt.group(1)[-1]
    return not first.islower()  # "e.g. this" continues; "Done. Next" splits


def split_sentences(text: str, max_chars: int = SHORT_UTTERANCE_CHARS) -> list[str]:
    """Split ``text`` into sentences (stripped); text of at most ``max_chars`` stays whole."""
    stripped = text.strip()
    if len(stripped) <= max_chars:
        return [stripped] if stripped else []
    cuts: set[int] = set()
    for match in _LATIN_END.finditer(stripped):
        if _is_boundary(stripped, match.end(), match.start()):
            cuts.add(match.end())
    for match in _CJK_END.finditer(stripped):
        cuts.add(match.end())
    sentences: list[str] = []
    start = 0
    for cut in sorted(cuts):
        piece = stripped[start:cut].strip()
        if piece:
            sentences.append(piece)
        start = cut
    tail = stripped[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


# Languages written without spaces between sentences.
NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "zt", "th", "lo", "my", "km"})


def join_sentences(sentences: list[str], lang: str) -> str:
    """Join translated sentences the way ``lang`` writes them."""
    return ("" if lang in NO_SPACE_LANGUAGES else " ").join(s for s in sentences if s)
