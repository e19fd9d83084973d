"""Re-translation of a growing utterance: which source prefix to translate, which part of its
translation to show steady, and how much a caption sequence flickers.

Following the re-translation studies (Arivazhagan et al. 2020; Yao & Haddow 2020), the open
utterance is translated again as it grows. Two rules keep what a reader sees from jumping:

- **Stable source** (`SourcePrefix`): only the prefix two successive partials agree on is
  translated (a streaming recognizer rewrites its last words); a recognizer whose partials are
  already agreed (Whisper's LocalAgreement) is taken as it is. With `early`, until two
  partials agree on anything, each partial but its last word is translated as a *guess*
  (shown dimmed, whole: its source is already masked), so the first translated words need
  not wait for a second partial.
- **Commit on agreement** (`TargetCommit`): in the target language, the units two successive
  translations agree on are *committed* and never taken back within the utterance; the rest,
  but its last unit, is a *tentative* tail the client dims, shown while the translation still
  agrees with the committed part.

`normalized_erasure` is the flicker measure: units erased from the end of what was shown, summed
over the updates, per unit of the final text. Pure helpers: no engines, no threads.
"""

from __future__ import annotations

from dataclasses import dataclass

from .agreement import agreed_prefix, join_units, units


class SourcePrefix:
    """The stable prefix of one utterance's source partials."""

    def __init__(self, lang: str, agreed: bool = False, early: bool = False) -> None:
        """`agreed`: the partials are already stable (each extends the last; Whisper);
        `early`: before any agreement, guess with each partial but its last word."""
        self.lang = lang
        self.agreed = agreed
        self.early = early
        self._previous: list[str] = []
        self._settled = False  # two partials agreed on something (no more guesses)
        self.stable = ""
        #: whether `stable` is a guess (a partial but its last word, before any agreement)
        self.guess = False

    def update(self, partial: str) -> str | None:
        """Take a partial; the stable prefix (or guess) when it changed, else None."""
        current = units(partial, self.lang)
        count = len(current) if self.agreed else agreed_prefix(self._previous, current)
        self._previous = current
        self._settled = self._settled or count > 0
        self.guess = self.early and not self._settled
        if self.guess:
            count = len(current) - 1
        stable = join_units(current[:count], self.lang)
        if stable == self.stable or not stable:
            return None
        self.stable = stable
        return stable


@dataclass(frozen=True)
class Shown:
    """What a reader sees of a translated partial: `text`, whose first `committed` characters
    are steady (the rest dimmed)."""

    text: str
    committed: int


class TargetCommit:
    """Commit-on-agreement over one utterance's successive translations into one language.

    `mask`: units at the end of each translation never committed by agreement alone;
    `tail_mask`: units at the end of each translation never shown at all (its last word is the
    one most often revised). The tentative tail is shown only while the translation still starts
    with the committed units (a revision of a committed word shows the committed part alone
    until the final). Chosen by `bench/retranslation.py` (docs/architecture.md)."""

    def __init__(self, lang: str, mask: int = 0, tail_mask: int = 1) -> None:
        self.lang = lang
        self.mask = mask
        self.tail_mask = tail_mask
        self.committed: list[str] = []
        self._previous: list[str] = []

    def update(self, translation: str, guess: bool = False) -> Shown:
        """Take a new translation of the stable source; what to show now. A `guess`'s source
        was masked already (`SourcePrefix.guess`): its tail is shown whole."""
        current = units(translation, self.lang)
        agreed = min(agreed_prefix(self._previous, current), max(0, len(current) - self.mask))
        self._previous = current
        keeps = agreed_prefix(self.committed, current) == len(self.committed)
        if keeps and agreed > len(self.committed):
            self.committed = current[:agreed]
        steady = join_units(self.committed, self.lang)
        tail = current[len(self.committed) :] if keeps else []
        tail = tail[: max(0, len(tail) - (0 if guess else self.tail_mask))]
        if not tail:
            return Shown(steady, len(steady))
        rest = join_units(tail, self.lang)
        if not steady:
            return Shown(rest, 0)
        return Shown(join_units([steady, rest], self.lang), len(steady))


def normalized_erasure(shown: list[str], lang: str) -> float:
    """Units erased from the end of each shown text by the next one, summed, divided by the
    last text's length in units (the final): 0 for a caption that only ever grows."""
    if not shown:
        return 0.0
    erased = 0
    previous: list[str] = []
    for text in shown:
        current = units(text, lang)
        erased += len(previous) - agreed_prefix(previous, current)
        previous = current
    return erased / max(1, len(previous))
