"""Whether a recognizer's partial looks like a finished sentence, per language.

Used by the endpointer (`translation.endpointing.Endpointer.heard`): a short silence after words
that cannot end a sentence is a pause inside it, so the line waits a little longer before
closing. `finished_rule(lang)` gives the rule for a language, or None where there is none
(the fixed silence rule applies). Vosk's output has no punctuation; the rules look at the
last word.
"""

from __future__ import annotations

from collections.abc import Callable

#: Korean sentence-final endings (declarative -다, polite -요, question -까, -죠, -네, -야,
#: proposal -자). Vosk's Korean model splits `걸어갔다` as `걸어갔 다`, so the last token is
#: checked on its own. Connective endings (-고, -면서, -서, -는데...) and particles
#: (-는, -을, -으로...) do not end a sentence.
KOREAN_FINAL_ENDINGS = ("다", "요", "까", "죠", "네", "야", "자")
SENTENCE_PUNCTUATION = (".", "?", "!", "。", "？", "！")


def korean_finished(text: str) -> bool | None:
    """True if the last word carries a sentence-final ending, False if not, None if empty."""
    words = text.split()
    if not words:
        return None
    last = words[-1]
    return last.endswith(KOREAN_FINAL_ENDINGS) or last.endswith(SENTENCE_PUNCTUATION)


_RULES: dict[str, Callable[[str], bool | None]] = {"ko": korean_finished}


def finished_rule(lang: str | None) -> Callable[[str], bool | None] | None:
    """The rule for `lang` (a BCP 47 tag or its primary subtag), or None if it has none."""
    if not lang:
        return None
    return _RULES.get(lang.split("-")[0].lower())
