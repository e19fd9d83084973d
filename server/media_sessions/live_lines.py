"""One speaker's open line while they talk: the source partial and its translation into each
reader language, re-translated as the stable source prefix grows (`translation.retranslation`).

Per speaker and reader language at most one translation runs at a time, started at most every
`interval_s` and only in its turn (`turn()`: the translation service's background lane, free
while no final line or message is translated); the text is picked when the turn comes, so the
newest stable prefix is translated and older ones are skipped, and a line that moved on while
it waited (its final came) translates nothing more. Each distinct text is translated once per
language (the translation service caches and coalesces). Finals never wait for this: when a
final arrives, the line moves on to the next utterance and whatever was still running for the
old one is dropped. Snapshots go out
through `emit` one at a time, in order; the owner emits the final under the same `lock`, so
no partial of an utterance follows its final and none of the next utterance precedes it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext

from server.media_sessions.subtitles import Spawn
from translation.retranslation import Shown, SourcePrefix, TargetCommit

#: Seconds between the starts of two partial translations of one speaker into one language.
PARTIAL_TRANSLATION_INTERVAL_S = 0.3


#: `TRADETALK_OPEN_LINE_GUESS` (1): before two partials agree, translate each partial but its
#: last word (`SourcePrefix(early=True)`); 0 waits for the first agreement (the benchmarks'
#: baseline). Chosen by measurement: docs/architecture.md.
def guess_from_env() -> bool:
    """Whether open lines guess before the first agreement (`TRADETALK_OPEN_LINE_GUESS`)."""
    return (os.environ.get("TRADETALK_OPEN_LINE_GUESS") or "1").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


#: (source text, language) -> its translation; None: no engine for the pair
Translate = Callable[[str, str], Awaitable[str | None]]
Emit = Callable[[str, dict[str, Shown]], Awaitable[None]]  # source partial, shown per language
#: waits for (and holds) a turn to translate (`TranslationService.background_turn`)
Turn = Callable[[], AbstractAsyncContextManager[None]]


class LiveLine:
    """The open line of one speaker (owned by the session; one per publishing member)."""

    def __init__(
        self,
        lang: str,
        *,
        targets: Callable[[], set[str]],
        agreed: Callable[[], bool],
        translate: Translate,
        emit: Emit,
        spawn: Spawn,
        interval_s: float = PARTIAL_TRANSLATION_INTERVAL_S,
        guess: bool | None = None,
        turn: Turn = nullcontext,
    ) -> None:
        """`targets()`: the reader languages now (other than `lang`); `agreed()`: whether the
        recognizer's partials are already stable (Whisper's agreed prefix); `guess`: translate
        a guess before the first agreement (None: `guess_from_env`); `turn()`: held while one
        translation is picked and run (default: no wait)."""
        self.lang = lang
        self.lock = asyncio.Lock()  # held while a snapshot or the final goes out
        self.utterance = 0
        self.stopped = False
        #: partial translations started, and how many were skipped for a newer prefix
        self.translations = 0
        self.skipped = 0
        self._targets = targets
        self._agreed = agreed
        self._translate = translate
        self._emit = emit
        self._spawn = spawn
        self._interval_s = interval_s
        self._turn = turn
        self._guess = guess_from_env() if guess is None else guess
        self._held: str | None = None  # a partial of a later utterance (its final is pending)
        self._reset()

    def _reset(self) -> None:
        self._text = ""
        self._source: SourcePrefix | None = None  # made at the first partial (engine known)
        self._sent: tuple[str, dict[str, Shown]] | None = None
        self._commits: dict[str, TargetCommit] = {}
        self._shown: dict[str, Shown] = {}
        self._wanted: dict[str, tuple[str, bool]] = {}  # lang -> (source, is a guess)
        self._running: set[str] = set()
        self._last_start: dict[str, float] = {}
        self._unserved: set[str] = set()

    def partial(self, text: str, utterance: int) -> None:
        """A source partial of `utterance` (in order, on the event loop)."""
        if self.stopped or utterance < self.utterance:
            return
        if utterance > self.utterance:  # the previous utterance's final is still on its way
            self._held = text
            return
        self._text = text
        if self._source is None:
            self._source = SourcePrefix(self.lang, agreed=self._agreed(), early=self._guess)
        stable = self._source.update(text)
        if stable is not None:
            wanted = (stable, self._source.guess)
            for lang in sorted(self._targets() - {self.lang} - self._unserved):
                if self._wanted.get(lang) is not None:
                    self.skipped += 1
                self._wanted[lang] = wanted
                if lang not in self._running:
                    self._running.add(lang)
                    self._spawn(self._run(lang, self.utterance, self._running))
        self._spawn(self._send(self.utterance))

    def finished(self, utterance: int) -> None:
        """The final of `utterance` went out (call under `lock`): the next utterance opens."""
        if utterance < self.utterance:
            return
        self.utterance = utterance + 1
        self._reset()
        held, self._held = self._held, None
        if held is not None and not self.stopped:
            self.partial(held, self.utterance)

    def stop(self) -> None:
        """The speaker left: nothing more goes out."""
        self.stopped = True
        self.utterance += 1
        self._reset()

    async def _run(self, lang: str, utterance: int, running: set[str]) -> None:
        """Translate the newest stable prefix into `lang` until none waits."""
        try:
            while self.utterance == utterance and not self.stopped:
                if lang not in self._wanted:
                    return
                wait = self._last_start.get(lang, -1e9) + self._interval_s - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                async with self._turn():
                    if self.utterance != utterance or self.stopped or lang not in self._wanted:
                        return  # the line moved on while waiting: nothing more for it
                    text, guess = self._wanted.pop(lang)  # the newest, once its turn came
                    self._last_start[lang] = time.monotonic()
                    self.translations += 1
                    result = await self._translate(text, lang)
                if self.utterance != utterance or self.stopped:
                    return
                if result is None:  # no engine for the pair: no partial translations
                    self._unserved.add(lang)
                    return
                commit = self._commits.setdefault(lang, TargetCommit(lang))
                shown = commit.update(result, guess)
                if shown != self._shown.get(lang):
                    self._shown[lang] = shown
                    await self._send(utterance)
        finally:
            running.discard(lang)

    async def _send(self, utterance: int) -> None:
        async with self.lock:
            if self.utterance != utterance or self.stopped or not self._text:
                return
            snapshot = (self._text, dict(self._shown))
            if snapshot == self._sent:
                return
            self._sent = snapshot
            await self._emit(*snapshot)
