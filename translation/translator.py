"""Routing over engines, sentence splitting and protected terms: the ``Translator``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .engines.base import Engine
from .errors import TranslationUnavailable
from .protect import Glossary, protect, translate_protected
from .sentences import join_sentences, split_sentences

PIVOT = "en"


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
    two different engines). Synchronous and thread-safe as far as the engines are.
    """

    def __init__(self, engines: Sequence[Engine]) -> None:
        self.engines = list(engines)

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
        """A string naming the route (part of cache keys): ``argos:ko-en>apertium:en-es``."""
        return ">".join(str(hop) for hop in self.route(src, dst)) or "identity"

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
        protected = [protect(unit, glossary) for unit in units]
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

    @staticmethod
    def _run(hops: list[Hop], batch: list[str]) -> list[str]:
        for hop in hops:
            batch = hop.engine.translate_batch(batch, hop.src, hop.dst)
        return batch

    def close(self) -> None:
        for engine in self.engines:
            engine.close()
