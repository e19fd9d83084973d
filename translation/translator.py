"""Routing over engines, sentence splitting, protected terms and default glossaries: the
``Translator``.

Default trade glossaries (``glossary.py``) apply per hop pair: on a direct route the pair's
glossary is matched with the conversation's glossary and the protected patterns, in one
placeholder pass; on a pivot route (``ko -> en -> es``) each hop's glossary (``ko-en``,
``en-es``) is applied to that hop's input, with placeholders of its own (``ZXG0``) inside
the route's. Each hop's glossary version is part of the route key, so cached translations
made with another glossary are never served.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

from .engines.base import Engine
from .errors import TranslationUnavailable
from .glossary import PairGlossary, TradeGlossaries
from .protect import Glossary, protect, translate_protected
from .sentences import join_sentences, split_sentences

PIVOT = "en"
HOP_TOKEN = "ZXG"  # placeholders of a pivot hop's default glossary


def normalize_lang(code: str) -> str:
    """``"EN-us"`` -> ``"en"``: lower case, primary subtag only."""
    return code.strip().lower().replace("_", "-").split("-")[0]


class Hop(NamedTuple):
    """One direct translation step: ``engine`` translates ``src -> dst``."""

    engine: Engine
    src: str
    dst: str

    def __str__(self) -> str:
        return f"{self.engine.name}:{self.src}-{self.dst}"


class Translator:
    """Translates text with the best engine for a pair, pivoting through English.

    ``engines`` are listed best first. A direct pair goes to the first engine that has it;
    otherwise ``src -> en`` and ``en -> dst`` are each served by their best engine (possibly
    two different engines). ``glossaries`` are the default trade glossaries (none if
    omitted). Synchronous and thread-safe as far as the engines are.
    """

    def __init__(
        self, engines: Sequence[Engine], glossaries: TradeGlossaries | None = None
    ) -> None:
        self.engines = list(engines)
        self.glossaries = glossaries

    def default_glossary(self, src: str, dst: str) -> PairGlossary | None:
        """The default trade glossary of one hop pair, if any."""
        return self.glossaries.get(src, dst) if self.glossaries is not None else None

    def pairs(self) -> dict[tuple[str, str], str]:
        """Every direct pair with the name of the engine that serves it."""
        served: dict[tuple[str, str], str] = {}
        for engine in self.engines:
            for pair in sorted(engine.pairs()):
                served.setdefault(pair, engine.name)
        return served

    def _best(self, src: str, dst: str) -> Engine | None:
        for engine in self.engines:
            if (src, dst) in engine.pairs():
                return engine
        return None

    def route(self, src: str, dst: str) -> list[Hop]:
        """The hops that translate ``src -> dst`` ([] when src == dst)."""
        src, dst = normalize_lang(src), normalize_lang(dst)
        if src == dst:
            return []
        direct = self._best(src, dst)
        if direct is not None:
            return [Hop(direct, src, dst)]
        if PIVOT not in (src, dst):
            first, second = self._best(src, PIVOT), self._best(PIVOT, dst)
            if first is not None and second is not None:
                return [Hop(first, src, PIVOT), Hop(second, PIVOT, dst)]
            missing = (src, PIVOT) if first is None else (PIVOT, dst)
            detail = "no direct pair, and no pivot through English ({}->{} is missing)".format(
                *missing
            )
        else:
            missing = (src, dst)
            detail = "no engine has this pair"
        installed = ", ".join(f"{a}->{b}" for a, b in sorted(self.pairs())) or "none"
        raise TranslationUnavailable(src, dst, f"{detail}; installed pairs: {installed}", missing)

    def route_key(self, src: str, dst: str) -> str:
        """A string naming the route and each hop's default-glossary version (part of cache
        keys): ``argos:ko-en>apertium:en-es#3f2a9c01d4e7``."""
        keys = []
        for hop in self.route(src, dst):
            default = self.default_glossary(hop.src, hop.dst)
            keys.append(f"{hop}#{default.version}" if default else str(hop))
        return ">".join(keys) or "identity"

    def translate(self, text: str, src: str, dst: str, glossary: Glossary | None = None) -> str:
        """Translate one text; raises TranslationUnavailable for an unserved pair."""
        return self.translate_batch([text], src, dst, glossary)[0]

    def translate_batch(
        self, texts: list[str], src: str, dst: str, glossary: Glossary | None = None
    ) -> list[str]:
        """Translate texts (same order). Paragraphs (lines) are kept; a short line is one
        sentence, a long one is split; protected terms and the glossary are applied."""
        hops = self.route(src, dst)
        if not hops:
            return list(texts)
        dst = normalize_lang(dst)
        # texts -> lines -> sentences, flattened into one batch for the engines.
        layout: list[list[int]] = []  # per text, sentence count of each line
        units: list[str] = []
        for text in texts:
            counts = []
            for line in text.split("\n"):
                sentences = split_sentences(line)
                counts.append(len(sentences))
                units.extend(sentences)
            layout.append(counts)
        direct = self.default_glossary(hops[0].src, hops[0].dst) if len(hops) == 1 else None
        protected = [protect(unit, glossary, direct, dst=dst) for unit in units]
        translated = translate_protected(protected, lambda batch: self._run(hops, batch))
        results: list[str] = []
        position = 0
        for counts in layout:
            lines = []
            for count in counts:
                lines.append(join_sentences(translated[position : position + count], dst))
                position += count
            results.append("\n".join(lines))
        return results

    def _run(self, hops: list[Hop], batch: list[str]) -> list[str]:
        for hop in hops:
            default = self.default_glossary(hop.src, hop.dst) if len(hops) > 1 else None
            if default is None:
                batch = hop.engine.translate_batch(batch, hop.src, hop.dst)
                continue
            items = [
                protect(t, default=default, patterns=False, token=HOP_TOKEN, dst=hop.dst)
                for t in batch
            ]
            batch = translate_protected(items, partial(_translate_batch, hop))
        return batch

    def close(self) -> None:
        for engine in self.engines:
            engine.close()


def _translate_batch(hop: Hop, texts: list[str]) -> list[str]:
    """One hop's engine on a batch."""
    return hop.engine.translate_batch(texts, hop.src, hop.dst)
