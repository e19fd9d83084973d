"""Protected trade terms: what must come out of machine translation unchanged.

Protected spans: URLs and e-mail addresses; Incoterms with their place ("FOB Shenzhen",
"CIF Rotterdam", a bare "EXW"); standards ("ISO 9001:2015", "EN 71-3", "GB/T 1234");
prices and currencies ("2.35 USD/unit", "$1,200", "¥8.50", "USD 3,000"); container types
("40HQ", "20GP"); quantities with a unit ("500 pcs", "20 kg", "3.5 mm"); model and SKU codes
("M8x40", "TL-2045-B"); and any other number. On top of these, a per-conversation glossary
``{term: fixed translation}`` (``None`` = keep the term as is) is matched case-insensitively
on word boundaries (none beside CJK characters), longest term first, before the patterns.
The pair's default trade glossary (``glossary.py``) comes next, in what the conversation's
glossary and the URL, e-mail, Incoterm, standard, price, container and quantity patterns left
(a conversation's term wins; "www.bolts.com" and "500 pcs" stay whole); codes and bare numbers
give way to a glossary term ("stainless steel 304"). A default-glossary term carries its
gender and number, so the article the engine wrote before its placeholder is made to agree
(``glossary_grammar.agree``: "el ZXQ0" -> "los pernos").

How the spans survive an engine (engine-agnostic, because engines differ):

1. **Placeholders, verified.** Each span is replaced by an opaque token (``ZXQ0``, ``ZXQ1``,
   ...) and the whole sentence is translated, so the engine sees real sentence structure and
   can reorder words around the tokens (a rule-based engine such as Apertium passes unknown
   tokens through untouched). The output is then *verified*: every token must appear exactly
   once. If so, the tokens are replaced by the spans (or the glossary's translation).
2. **Segments, as the fallback.** If any token was dropped, duplicated or mangled (small
   neural models do this), the sentence is instead cut at the spans: only the text *between*
   spans is translated, and the translated pieces are reassembled around the untouched spans
   with their original spacing. Grammar may suffer a little; the trade terms cannot.

Both steps batch every sentence into one engine call each, so the fallback costs at most one
extra call per batch, and only for the sentences whose placeholders failed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .glossary import PairGlossary, bounded_term
from .glossary_grammar import agree, uncapitalize

Glossary = Mapping[str, str | None]

CURRENCY_CODES = (
    "USD|EUR|CNY|RMB|JPY|KRW|GBP|HKD|TWD|SGD|AUD|CAD|CHF|INR|VND|THB|MYR|IDR|PHP|MXN|BRL"
    "|RUB|TRY|AED|SAR|NZD|SEK|NOK|DKK|PLN|CZK|ZAR"
)
CURRENCY_SYMBOLS = r"[$€£¥₩₹₽₫฿]|US\$|HK\$|NT\$|RMB|CN¥|A\$|C\$|S\$"
INCOTERMS = "EXW|FCA|FAS|FOB|CFR|CNF|CIF|CPT|CIP|DAP|DPU|DDP|DAT|DDU"
STANDARD_BODIES = (
    r"ISO(?:/IEC)?|IEC|EN|DIN|ASTM|ANSI|GB/T|GB|JIS|BS|UL|IEEE|ASME|SAE|NF|AS/NZS|KS|CSA|IPC"
)
UNITS = (
    r"pcs|pc|PCS|sets|set|prs|ctns|ctn|kgs|kg|mg|g|lbs|lb|oz|MT|mt|tons|ton|t|km|cm|mm|μm|um|m²"
    r"|m³|m2|m3|sqm|cbm|CBM|m|ft|yd|ml|mL|L|l|gal|W|kW|kWh|MW|V|kV|mV|A|mA|mAh|Ah|Hz|kHz"
    r"|MHz|GHz|°C|°F|℃|rpm|psi|bar|MPa|kPa|Pa|N·m|Nm|dB|lm|K|GB|TB|MB|%"
)
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?"
_PLACE = r"(?:\s+(?:[A-Z][\w'’-]*|[\u4e00-\u9fff]+))?(?:\s+[A-Z][\w'’-]*)?"

PATTERNS: dict[str, str] = {
    "url": r"\bhttps?://[^\s<>\"]+[^\s<>\".,;:!?)]",
    "email": r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b",
    "incoterm": rf"\b(?:{INCOTERMS})\b(?:\s*(?:20(?:10|20)|Incoterms®?\s*20(?:10|20)))?{_PLACE}",
    "standard": rf"\b(?:{STANDARD_BODIES})\s?\d+(?:[-.:/]\d+)*(?:-[A-Z0-9]+)?\b"
    r"|\b(?:RoHS|REACH|CE|FCC|FDA|UKCA|CCC|SGS|BSCI|HACCP)\b",
    "price": rf"(?:{CURRENCY_SYMBOLS})\s?(?:{_NUMBER})(?:\s?(?:[kKmM]|million|billion|bn))?"
    rf"(?:\s?/\s?[A-Za-z]+)?"
    rf"|(?:{_NUMBER})\s?(?:{CURRENCY_CODES})(?:\s?/\s?[A-Za-z]+)?\b"
    rf"|\b(?:{CURRENCY_CODES})\s?(?:{_NUMBER})(?:\s?/\s?[A-Za-z]+)?",
    "container": r"\b(?:20|40|45)\s?'?\s?(?:HQ|HC|GP|DV|RF|OT|FR|ft)\b",
    "quantity": rf"(?:{_NUMBER})\s?(?:{UNITS})(?:\s?/\s?[A-Za-z]+)?(?![\w])",
    "code": r"\b(?=[\w./×-]*\d)(?=[\w./×-]*[A-Za-z])[A-Za-z0-9]+(?:[-/.×x][A-Za-z0-9]+)*\b",
    "number": rf"[+-]?(?:{_NUMBER})(?:\s?[-–~]\s?(?:{_NUMBER}))?%?",
}
_PROTECTED = re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in PATTERNS.items()))
# Patterns the default glossary may not cut into ("www.bolts.com", "500 pcs"); the others
# ("304", "SS304") give way to a glossary term ("stainless steel 304").
LATE_PATTERNS = frozenset({"code", "number"})

TOKEN = "ZXQ"  # placeholders: ZXQ0, ZXQ1, ...
_SENTENCE_START = re.compile(r"(?:^|[.!?…:]\s)[\s\"'“‘(¿¡-]*$")
MASK = "\ue000"  # hides a conversation term from the default glossary (not a word char)
_HAS_WORD = re.compile(r"[^\W\d_]", re.UNICODE)  # a letter: worth sending to an engine


@dataclass
class Span:
    """A protected span: its source text and what to write in the translation."""

    source: str
    output: str
    kind: str
    gender: str | None = None  # a default-glossary noun's gender and number (agreement)
    plural: bool | None = None


@dataclass
class ProtectedText:
    """A text cut into alternating free pieces and protected spans (``free[i]`` precedes
    ``spans[i]``; ``len(free) == len(spans) + 1``). ``token`` prefixes the placeholders;
    ``dst`` (the target language) enables article agreement."""

    text: str
    free: list[str] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    token: str = TOKEN
    dst: str | None = None

    def with_placeholders(self) -> str:
        """The text with every span replaced by its placeholder token."""
        out = [self.free[0]]
        for i, free in enumerate(self.free[1:]):
            out.append(f"{self.token}{i}")
            out.append(free)
        return "".join(out)

    def _tokens(self) -> re.Pattern[str]:
        return re.compile(rf"{self.token}(\d+)")

    def restore(self, translated: str) -> str | None:
        """Put the spans back into a translation of :meth:`with_placeholders`; ``None`` if
        the engine lost, duplicated or altered a placeholder."""
        tokens = self._tokens()
        found = [int(n) for n in tokens.findall(translated)]
        if sorted(found) != list(range(len(self.spans))):
            return None
        return self._fill(translated, tokens)

    def _fill(self, translated: str, tokens: re.Pattern[str]) -> str:
        if self.dst:
            translated = agree(self.dst, translated, self.token, self._term)
        if self.dst and self.spans and self._opens_with_span():
            translated = uncapitalize(self.dst, translated, self.text)
        return tokens.sub(lambda m: self.spans[int(m.group(1))].output, translated)

    def _opens_with_span(self) -> bool:
        """Whether a sentence of the text opens with a protected span."""
        return any(_SENTENCE_START.search(free) for free in self.free[:-1])

    def _term(self, n: int) -> tuple[str, str | None, bool | None]:
        span = self.spans[n]
        return span.output, span.gender, span.plural

    def reassemble(self, translated_free: list[str]) -> str:
        """Rebuild the text from translated free pieces (keeping each piece's outer spacing)."""
        out: list[str] = []
        for i, (original, translated) in enumerate(zip(self.free, translated_free, strict=True)):
            out.append(_keep_spacing(original, translated))
            if i < len(self.spans):
                out.append(f"{self.token}{i}")
        return self._fill("".join(out), self._tokens())


def _keep_spacing(original: str, translated: str) -> str:
    lead = original[: len(original) - len(original.lstrip())]
    trail = original[len(original.rstrip()) :]
    return lead + translated.strip() + trail if original.strip() else original


def _glossary_regex(glossary: Glossary) -> re.Pattern[str] | None:
    terms = sorted((t for t in glossary if t.strip()), key=len, reverse=True)
    if not terms:
        return None
    return re.compile("|".join(bounded_term(t, exact_capitals=False) for t in terms), re.I)


def find_spans(
    text: str,
    glossary: Glossary | None = None,
    default: PairGlossary | None = None,
    patterns: bool = True,
) -> list[tuple[int, int, Span]]:
    """Protected spans of ``text`` as (start, end, span), sorted, non-overlapping: the
    conversation's ``glossary``, then the ``default`` glossary, then (if ``patterns``) the
    trade-term patterns, each in what the ones before left."""
    found: list[tuple[int, int, Span]] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return not any(s < end and start < e for s, e in taken)

    if glossary:
        lowered = {k.lower(): v for k, v in glossary.items()}
        regex = _glossary_regex(glossary)
        for m in regex.finditer(text) if regex else ():
            fixed = lowered.get(m.group(0).lower())
            found.append((m.start(), m.end(), Span(m.group(0), fixed or m.group(0), "glossary")))
            taken.append((m.start(), m.end()))
    matches = [m for m in _PROTECTED.finditer(text) if m.end() > m.start()] if patterns else []
    late = []
    for m in matches:
        if m.lastgroup in LATE_PATTERNS:
            late.append(m)
        elif free(*m.span()):
            found.append((m.start(), m.end(), Span(m.group(0), m.group(0), m.lastgroup or "")))
            taken.append(m.span())
    if default is not None:
        masked = text
        for start, end in taken:
            masked = masked[:start] + MASK * (end - start) + masked[end:]
        for hit in default.find(masked):
            span = Span(hit.source, hit.output, "default", hit.gender, hit.plural)
            found.append((hit.start, hit.end, span))
            taken.append((hit.start, hit.end))
    for m in late:
        if free(*m.span()):
            found.append((m.start(), m.end(), Span(m.group(0), m.group(0), m.lastgroup or "")))
    found.sort(key=lambda item: item[0])
    return found


def protect(
    text: str,
    glossary: Glossary | None = None,
    default: PairGlossary | None = None,
    patterns: bool = True,
    token: str = TOKEN,
    dst: str | None = None,
) -> ProtectedText:
    """Cut ``text`` into free pieces and protected spans (see the module docstring);
    ``dst``, the target language, enables the agreement and capitals fixes."""
    result = ProtectedText(text, token=token, dst=dst or (default.dst if default else None))
    position = 0
    for start, end, span in find_spans(text, glossary, default, patterns):
        result.free.append(text[position:start])
        result.spans.append(span)
        position = end
    result.free.append(text[position:])
    return result


def translate_protected(
    items: list[ProtectedText], translate: Callable[[list[str]], list[str]]
) -> list[str]:
    """Translate protected texts with ``translate`` (a batch function): placeholders first,
    verified; the segment fallback for the items whose placeholders did not survive."""
    results: list[str | None] = [None] * len(items)
    first_batch: list[int] = []
    for i, item in enumerate(items):
        if not _HAS_WORD.search("".join(item.free)):
            # Nothing to translate (only numbers, codes, punctuation): keep it as is.
            results[i] = item.reassemble(item.free)
        else:
            first_batch.append(i)
    outputs = translate([items[i].with_placeholders() for i in first_batch]) if first_batch else []
    retry: list[int] = []
    for i, output in zip(first_batch, outputs, strict=True):
        restored = items[i].restore(output) if items[i].spans else output
        if restored is None:
            retry.append(i)
        else:
            results[i] = restored
    if retry:
        pieces: list[str] = []
        where: list[tuple[int, int]] = []  # (item, piece index) for each piece sent
        for i in retry:
            for j, piece in enumerate(items[i].free):
                if _HAS_WORD.search(piece):
                    where.append((i, j))
                    pieces.append(piece.strip())
        translated = translate(pieces) if pieces else []
        free = {i: list(items[i].free) for i in retry}
        for (i, j), text in zip(where, translated, strict=True):
            free[i][j] = text
        for i in retry:
            results[i] = items[i].reassemble(free[i])
    return [r if r is not None else "" for r in results]
