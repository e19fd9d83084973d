"""The language a typed text is in, when its letters rule out the writer's own.

A chat message is in its sender's language — unless its letters cannot be: a Chinese sales
agent who types English to a lead, a buyer who pastes a Korean spec. Read as the sender's
language, such a text is "translated" from a language it is not in (or shown with a note that
no engine serves a pair it never needed). Scripts decide it, with no model: a text with a letter
of the sender's own script stays theirs (mixed texts, a product name in another script); one
with none is in the language its script says (kana: Japanese, Hangul: Korean, Han: Chinese,
Cyrillic: Russian, ...); Latin words alone (two or more: not a code like "USD"), from a writer
of another script, are read as English, the trade's common language (`LINGUA_FRANCA`). Which
Latin-script language a Latin-script writer uses cannot be told this way: theirs is kept.
"""

from __future__ import annotations

import functools
import re
from collections import Counter

LINGUA_FRANCA = "en"
#: Latin letters read as the lingua franca only from a sentence: two words of two letters or more
MIN_LATIN_WORDS = 2
LATIN_WORD = re.compile(r"[A-Za-z\u00C0-\u024F\u1E00-\u1EFF]{2,}")

# Unicode blocks by script (the letters that tell a language apart; digits and signs tell
# nothing).
_BLOCKS: tuple[tuple[int, int, str], ...] = (
    (0x0041, 0x024F, "latin"),
    (0x1E00, 0x1EFF, "latin"),  # Vietnamese and other extended Latin
    (0x0370, 0x03FF, "greek"),
    (0x0400, 0x052F, "cyrillic"),
    (0x0590, 0x05FF, "hebrew"),
    (0x0600, 0x06FF, "arabic"),
    (0x0750, 0x077F, "arabic"),
    (0x0900, 0x097F, "devanagari"),
    (0x0E00, 0x0E7F, "thai"),
    (0x1100, 0x11FF, "hangul"),
    (0x3040, 0x30FF, "kana"),
    (0x3130, 0x318F, "hangul"),
    (0x3400, 0x4DBF, "han"),
    (0x4E00, 0x9FFF, "han"),
    (0xAC00, 0xD7A3, "hangul"),
    (0xF900, 0xFAFF, "han"),
)

#: The scripts each language is written in (a language not listed: Latin).
WRITTEN_IN: dict[str, frozenset[str]] = {
    "zh": frozenset({"han"}),
    "ja": frozenset({"kana", "han"}),
    "ko": frozenset({"hangul", "han"}),
    "ru": frozenset({"cyrillic"}),
    "uk": frozenset({"cyrillic"}),
    "bg": frozenset({"cyrillic"}),
    "ar": frozenset({"arabic"}),
    "fa": frozenset({"arabic"}),
    "ur": frozenset({"arabic"}),
    "he": frozenset({"hebrew"}),
    "hi": frozenset({"devanagari"}),
    "th": frozenset({"thai"}),
    "el": frozenset({"greek"}),
}
#: The language a text is in when its script is all it has (and the writer's is another).
BY_SCRIPT = {
    "kana": "ja",
    "hangul": "ko",
    "han": "zh",
    "cyrillic": "ru",
    "arabic": "ar",
    "hebrew": "he",
    "devanagari": "hi",
    "thai": "th",
    "greek": "el",
    "latin": LINGUA_FRANCA,
}
# Japanese and Korean are told by kana and Hangul even beside Han characters.
_TELLING = ("kana", "hangul")


@functools.lru_cache(maxsize=4096)
def script_of(char: str) -> str | None:
    """The script of a letter, or None (digits, punctuation, emoji, unlisted scripts)."""
    point = ord(char)
    for low, high, script in _BLOCKS:
        if low <= point <= high:
            return script if script != "latin" or char.isalpha() else None
    return None


def written_language(text: str, declared: str) -> str:
    """The language `text` is in: `declared` (the writer's, e.g. "zh" or "zh-TW") unless no
    letter of it is in `declared`'s script, then the one its script says (see the module)."""
    if text.isascii():  # the common case: its letters can only be Latin, no look at each one
        scripts = Counter({"latin": 1} if any(c.isalpha() for c in text) else {})
    else:
        scripts = Counter(s for s in map(script_of, text) if s is not None)
    if not scripts:
        return declared
    own = WRITTEN_IN.get(declared.split("-")[0].lower(), frozenset({"latin"}))
    telling = next((s for s in _TELLING if scripts[s] and s not in own), None)
    if telling is not None:  # kana or Hangul: Japanese or Korean, whatever Han is beside it
        return BY_SCRIPT[telling]
    if any(scripts[s] for s in own):
        return declared
    script = scripts.most_common(1)[0][0]
    if script == "latin" and len(LATIN_WORD.findall(text)) < MIN_LATIN_WORDS:
        return declared  # a code or a unit ("USD", "FOB"), not a sentence in another language
    return BY_SCRIPT[script]
