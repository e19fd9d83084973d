"""Default trade glossaries: fixed translations of trade vocabulary, per language pair.

Engines get trade words wrong ("bolts" -> "rayos", "quote" -> "citar"). A default glossary
per pair fixes them, applied *under* each conversation's own glossary (a conversation's term
wins). Files, one per direction, UTF-8 TSV::

    translation/glossaries/<src>-<dst>.tsv      shipped with the package
    <data>/glossaries/<src>-<dst>.tsv           the deployer's (TRADETALK_DATA): its lines win

One entry a line; ``#`` (at the start or after white space) starts a comment::

    source <TAB> target [<TAB> tags]

- ``source`` and ``target`` are written in the singular; ``a|b`` gives the singular and the
  plural explicitly ("analysis|analyses"). ``target`` ``=`` keeps the source term as it is;
  ``-`` (in a deployer file) removes a shipped entry.
- tags, space-separated: ``n`` a countable noun (its plurals are matched and written); ``m`` /
  ``f`` the target noun's gender (Spanish articles agree with it; default ``m``); ``mod`` a
  material or other noun that qualifies a following noun (English "stainless steel bolts" ->
  "pernos de acero inoxidable"; Spanish "pernos de acero inoxidable" -> "stainless steel
  bolts"); ``adj`` an adjective, likewise ("zinc-plated washers" -> "arandelas zincadas").
  A ``mod``/``adj`` followed by another word is left to the engine (it would be out of place
  on its own); before a glossary noun, the two become one term. ``v`` (English source) the
  noun is also a verb: after "to", "please", "we", "can"... it is left to the engine ("we
  quote" is not "cotización"; a phrase entry such as "we quote -> cotizamos" covers the verb).
  A gender without ``n`` marks a singular uncountable noun (its article agrees too).

Matching is case-insensitive (a source written in capitals, "MOQ", "ABS", matches only in
capitals), on word boundaries (none needed beside Chinese/Japanese/Korean characters), the
longest term first. The output follows the match's case ("Bolts" -> "Pernos").
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .glossary_grammar import adjective, compound, plural

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).with_name("glossaries")
RULES_VERSION = "1"  # part of every glossary's version: bump when matching rules change
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{CJK}]")
KINDS = ("n", "mod", "adj")
TAGS = (*KINDS, "m", "f", "v")
# Words after which a source-English modifier still stands alone ("steel and brass").
_EN_FREE_AFTER = frozenset(
    "and or with for in is are was were from to of at on by as but per than if when".split()
)
_COMMENT = re.compile(r"(?:^|\s)#")  # "#" at the start or after white space: a comment
_NEXT_WORD = re.compile(r"\s+([^\W\d_][\w-]*)")
# Words after which an English noun-or-verb ("quote", "sample") is a verb.
_EN_VERB_AFTER = frozenset(
    """to please pls kindly will would can could should shall may might must we i you they
    not don't won't can't cannot also 'll we'll i'll""".split()
)
_LAST_WORD = re.compile(r"([\w']+)\s+$")


@dataclass(frozen=True)
class Entry:
    """One glossary line: singular source and target, optional plurals, tags."""

    source: str
    target: str | None  # None: keep the source term
    source_plural: str | None = None
    target_plural: str | None = None
    kind: str = ""  # "n", "mod", "adj" or "" (a fixed phrase)
    gender: str = "m"
    gendered: bool = False  # a gender tag was given
    verb: bool = False  # also a verb (tag v)


@dataclass(frozen=True)
class Hit:
    """A glossary term found in a text: where, what to write, and its grammar."""

    start: int
    end: int
    source: str
    output: str
    gender: str | None = None
    plural: bool | None = None  # None: no number (a phrase, an adjective alone)


def parse_line(line: str) -> tuple[str, str, list[str]] | None:
    """``(source, target, tags)`` of one TSV line; None for a blank or comment line; raises
    ValueError for a malformed one."""
    text = _COMMENT.split(line.rstrip("\r\n"), maxsplit=1)[0]
    if not text.strip():
        return None
    cells = text.split("\t")
    if len(cells) < 2 or not cells[0].strip() or not cells[1].strip():
        raise ValueError("expected: source <TAB> target [<TAB> tags]")
    tags = cells[2].split() if len(cells) > 2 else []
    unknown = [t for t in tags if t not in TAGS]
    if unknown:
        raise ValueError(f"unknown tags {unknown}")
    return cells[0].strip(), cells[1].strip(), tags


def read_entries(path: Path, src: str, dst: str) -> dict[str, Entry | None]:
    """A file's entries by lowercased source term (None: a ``-`` removal line)."""
    entries: dict[str, Entry | None] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            parsed = parse_line(line)
        except ValueError as exc:
            log.warning("glossary %s:%d skipped: %s", path, number, exc)
            continue
        if parsed is None:
            continue
        source, target, tags = parsed
        one, _, many = source.partition("|")
        key = one.strip().lower()
        if target == "-":
            entries[key] = None
            continue
        kind = next((t for t in tags if t in KINDS), "")
        t_one, _, t_many = target.partition("|")
        entries[key] = Entry(
            source=one.strip(),
            target=None if t_one.strip() == "=" else t_one.strip(),
            source_plural=many.strip() or (plural(one.strip(), src) if kind == "n" else None),
            target_plural=t_many.strip() or (plural(t_one.strip(), dst) if kind == "n" else None),
            kind=kind,
            gender="f" if "f" in tags else "m",
            gendered="f" in tags or "m" in tags,
            verb="v" in tags,
        )
    return entries


def _is_capitals(term: str) -> bool:
    letters = [c for c in term if c.isalpha() and not _CJK_CHAR.match(c)]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def bounded_term(term: str, exact_capitals: bool = True) -> str:
    """A regex for ``term``: word boundaries on its non-CJK edges (not inside a host name
    or an e-mail address either); exact case if it is written in capitals (and
    ``exact_capitals``)."""
    left = "" if _CJK_CHAR.match(term[0]) else r"(?<![\w.@])"  # not in "www.bolts.com"
    right = "" if _CJK_CHAR.match(term[-1]) else r"(?![\w@]|\.\w)"
    body = re.escape(term)
    exact = exact_capitals and _is_capitals(term)
    return f"{left}(?-i:{body}){right}" if exact else f"{left}{body}{right}"


def _trie(words: Iterable[str]) -> str:
    """One regex matching any of ``words``, longest first, as a character trie (much faster
    than a plain alternation of hundreds of terms)."""
    root: dict = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        ends = "" in node
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if ends:
            return f"(?:{body})?" if len(alts) == 1 else body + "?"
        return body

    return build(root)


def _terms_regex(words: list[str]) -> re.Pattern[str] | None:
    """A case-insensitive regex for glossary terms, see :func:`bounded_term` (terms with a
    CJK edge keep their own pattern; the others share two tries under one pair of bounds)."""
    if not words:
        return None
    cjk = [w for w in words if _CJK_CHAR.match(w[0]) or _CJK_CHAR.match(w[-1])]
    latin = [w for w in words if w not in set(cjk)]
    capitals = [w for w in latin if _is_capitals(w)]
    others = [w.lower() for w in latin if not _is_capitals(w)]
    groups = ([f"(?-i:{_trie(capitals)})"] if capitals else []) + (
        [_trie(others)] if others else []
    )
    parts = []
    if groups:
        parts.append(rf"(?<![\w.@])(?:{'|'.join(groups)})(?![\w@]|\.\w)")
    parts += [bounded_term(w) for w in sorted(cjk, key=len, reverse=True)]
    return re.compile("|".join(parts), re.IGNORECASE)


def _key(form: str) -> str:
    return form if _is_capitals(form) else form.lower()


def _follow_case(match: str, source: str, output: str) -> str:
    """``output`` in the case of ``match`` ("Bolts" -> "Pernos", "BOLTS" -> "PERNOS")."""
    if not output or _is_capitals(source):
        return output
    if _is_capitals(match) and len(match) > 1:
        return output.upper()
    if match[:1].isupper() and not source[:1].isupper():
        return output[:1].upper() + output[1:]
    return output


@dataclass(frozen=True)
class _Form:
    entry: Entry
    plural: bool

    def raw(self, match: str) -> str:
        """The target word as written in the glossary (the match itself for ``=``)."""
        entry = self.entry
        out = entry.target_plural if self.plural and entry.target_plural else entry.target
        return out if out is not None else match


class PairGlossary:
    """The default glossary of one direction (``src -> dst``), compiled for matching."""

    def __init__(self, src: str, dst: str, entries: Iterable[Entry], version: str) -> None:
        self.src, self.dst, self.version = src, dst, version
        self.entries = list(entries)
        forms: dict[str, tuple[str, _Form]] = {}  # match key -> (form as written, form)
        for entry in self.entries:  # singulars first: they win a clash with a plural
            forms[_key(entry.source)] = (entry.source, _Form(entry, False))
        for entry in self.entries:
            more = [(entry.source_plural, True)] if entry.source_plural else []
            if entry.kind == "adj" and src == "es":  # "zincado": zincada, zincados, zincadas
                for g, n in (("m", True), ("f", False), ("f", True)):
                    more.append((adjective(entry.source, "es", g, n), n))
            for form, many in more:
                forms.setdefault(_key(form), (form, _Form(entry, many)))
        self._forms = {key: form for key, (_, form) in forms.items()}
        self._regex = _terms_regex([w for w, _ in forms.values()])

    def __len__(self) -> int:
        return len(self.entries)

    def _lookup(self, text: str) -> _Form | None:
        return self._forms.get(text) or self._forms.get(text.lower())

    def find(self, text: str) -> list[Hit]:
        """Every glossary term in ``text`` (sorted, non-overlapping), compounds joined,
        a stray modifier left out."""
        if self._regex is None:
            return []
        raw = [(m, f) for m in self._regex.finditer(text) if (f := self._lookup(m.group(0)))]
        hits: list[Hit] = []
        i = 0
        while i < len(raw):
            joined, used = self._compound(text, raw, i)
            if joined is not None:
                hits.append(joined)
                i += used
                continue
            m, form = raw[i]
            i += 1
            kind = form.entry.kind
            if kind in ("mod", "adj") and not self._stands_alone(text, m.end()):
                continue
            if form.entry.verb and not form.plural and self._after_verb_word(text, m.start()):
                continue
            word = _follow_case(m.group(0), form.entry.source, form.raw(m.group(0)))
            many = form.plural if kind == "n" else (False if form.entry.gendered else None)
            hits.append(Hit(m.start(), m.end(), m.group(0), word, form.entry.gender, many))
        return hits

    def _stands_alone(self, text: str, end: int) -> bool:
        """Whether a modifier ending at ``end`` may be written on its own (English: not
        when another word follows it, "stainless steel pipe")."""
        if self.src != "en":
            return True
        nxt = _NEXT_WORD.match(text, end)
        return nxt is None or nxt.group(1).lower() in _EN_FREE_AFTER

    def _after_verb_word(self, text: str, start: int) -> bool:
        """Whether the word before ``start`` makes an English noun-or-verb a verb."""
        if self.src != "en":
            return False
        last = _LAST_WORD.search(text, 0, start)
        return last is not None and last.group(1).lower() in _EN_VERB_AFTER

    def _compound(
        self, text: str, raw: list[tuple[re.Match[str], _Form]], i: int
    ) -> tuple[Hit | None, int]:
        """A compound starting at ``raw[i]``: (hit, entries used) or (None, 0)."""
        if self.src == "en":  # modifiers first: "zinc-plated carbon steel bolts"
            j = i
            while j < len(raw) and raw[j][1].entry.kind in ("mod", "adj"):
                if j + 1 >= len(raw) or text[raw[j][0].end() : raw[j + 1][0].start()].strip():
                    return None, 0
                j += 1
            if j == i or j >= len(raw) or raw[j][1].entry.kind != "n":
                return None, 0
            head, parts, last = raw[j], raw[i:j], raw[j][0]
        elif self.src == "es":  # head first: "pernos hexagonales de acero inoxidable"
            if raw[i][1].entry.kind != "n":
                return None, 0
            j = i + 1
            while j < len(raw):
                gap = text[raw[j - 1][0].end() : raw[j][0].start()].strip().lower()
                kind = raw[j][1].entry.kind
                if not ((kind == "adj" and gap == "") or (kind == "mod" and gap == "de")):
                    break
                j += 1
            if j == i + 1:
                return None, 0
            head, parts, last = raw[i], raw[i + 1 : j], raw[j - 1][0]
        else:
            return None, 0
        head_match, head_form = head
        gender, many = head_form.entry.gender, head_form.plural
        words = [
            (f.entry.kind, f.raw(m.group(0)))
            if f.entry.kind == "mod"
            else (f.entry.kind, adjective(f.raw(m.group(0)), self.dst, gender, many))
            for m, f in (reversed(parts) if self.src == "en" else parts)
        ]  # the qualifier closest to the head first
        output = compound(self.dst, head_form.raw(head_match.group(0)), words)
        first = raw[i][0]
        source = text[first.start() : last.end()]
        output = _follow_case(source, raw[i][1].entry.source, output)
        return Hit(first.start(), last.end(), source, output, gender, many), len(parts) + 1


def _pair_of(path: Path) -> tuple[str, str] | None:
    m = re.fullmatch(r"([a-z]{2,3})-([a-z]{2,3})\.tsv", path.name)
    return (m.group(1), m.group(2)) if m else None


class TradeGlossaries:
    """Every default glossary: the shipped files, overlaid by the deployer's
    ``<data>/glossaries`` files (loaded once, at construction)."""

    def __init__(self, data_dir: Path | str | None = None, shipped: Path = SHIPPED_DIR) -> None:
        dirs = [shipped]
        if data_dir is not None:
            dirs.append(Path(data_dir) / "glossaries")
        files: dict[tuple[str, str], list[Path]] = {}
        for folder in dirs:
            for path in sorted(folder.glob("*.tsv")) if folder.is_dir() else ():
                pair = _pair_of(path)
                if pair is None:
                    log.warning("glossary %s ignored: name it <src>-<dst>.tsv", path)
                    continue
                files.setdefault(pair, []).append(path)
        self._pairs: dict[tuple[str, str], PairGlossary] = {}
        for (src, dst), paths in files.items():
            merged: dict[str, Entry | None] = {}
            digest = hashlib.sha256(RULES_VERSION.encode())
            for path in paths:
                merged.update(read_entries(path, src, dst))
                digest.update(b"\0" + path.read_bytes())
            entries = [e for e in merged.values() if e is not None]
            self._pairs[(src, dst)] = PairGlossary(src, dst, entries, digest.hexdigest()[:12])
            log.info(
                "trade glossary %s->%s: %d entries (%s)",
                src, dst, len(entries), ", ".join(str(p) for p in paths),
            )  # fmt: skip

    def get(self, src: str, dst: str) -> PairGlossary | None:
        """The default glossary of ``src -> dst``, or None."""
        return self._pairs.get((src, dst))

    def pairs(self) -> list[tuple[str, str]]:
        """The directions that have a default glossary."""
        return sorted(self._pairs)
