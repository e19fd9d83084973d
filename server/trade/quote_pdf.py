"""A quote as a PDF (fpdf2) in the reader's language, with the original texts beside the
translated ones. Numbers, units, currencies, Incoterms, places and dates are printed exactly as
stored; only the labels and the translated texts follow the reader.

Fonts are Debian's (scripts/setup-system.sh): DejaVu Sans for Latin, Cyrillic, Greek, Arabic
and Vietnamese; WenQuanYi Micro Hei (or Noto Sans CJK) added only when the document holds
Chinese, Japanese or Korean; Lohit Devanagari only for Hindi. Arabic and Devanagari are shaped
with HarfBuzz (uharfbuzz), which fpdf2 uses when text shaping is on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from server.trade.quote_labels import label

FONTS = Path("/usr/share/fonts")
REGULAR = [FONTS / "truetype/dejavu/DejaVuSans.ttf"]
BOLD = [FONTS / "truetype/dejavu/DejaVuSans-Bold.ttf"]
CJK = [
    FONTS / "truetype/wqy/wqy-microhei.ttc",
    FONTS / "opentype/noto/NotoSansCJK-Regular.ttc",
]
DEVANAGARI = [FONTS / "truetype/lohit-devanagari/Lohit-Devanagari.ttf"]
CJK_RE = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")
DEVANAGARI_RE = re.compile(r"[\u0900-\u097f]")
COMPLEX_RE = re.compile(r"[\u0590-\u08ff\u0900-\u0dff\ufb1d-\ufdff\ufe70-\ufeff]")
GREY = (110, 110, 110)
RIGHT_TO_LEFT = {"ar", "fa", "he", "ur"}


class Isolate:
    """Bidi isolates for a right-to-left reader: data (dates, amounts, ids, Incoterm and place)
    keeps its left-to-right order inside an Arabic line, and the parts of a line joined by
    " · " do not run into each other. For other readers it changes nothing."""

    def __init__(self, lang: str) -> None:
        self.on = lang.split("-")[0].lower() in RIGHT_TO_LEFT

    def data(self, text: object) -> str:
        """Left-to-right text (LRI … PDI)."""
        return f"\u2066{text}\u2069" if self.on else str(text)

    def parts(self, *parts: str) -> str:
        """Segments joined by " · ", each isolated by its own first strong character."""
        return " · ".join(f"\u2068{p}\u2069" for p in parts) if self.on else " · ".join(parts)


class FontMissing(RuntimeError):
    """A font the document needs is not installed (the message names the Debian package)."""


def _first(paths: list[Path], package: str) -> Path:
    for path in paths:
        if path.exists():
            return path
    raise FontMissing(f"no font for this document: install the Debian package {package}")


def when(at: str) -> str:
    """`2026-12-03T13:22:27.123Z` as `2026-12-03 13:22 UTC` (the same in every language)."""
    return f"{at[:10]} {at[11:16]} UTC"


def _texts(quote: dict[str, Any], view: dict[str, Any] | None, lang: str) -> str:
    latest = quote["versions"][-1]
    parts = [str(v) for v in (latest.get("notes"), latest.get("payment_terms")) if v]
    parts += [i["product"] for i in latest["items"]]
    if view:
        extra = (*view.get("items", []), view.get("notes"), view.get("payment_terms"))
        parts += [str(v) for v in extra if v]
    parts += [label(lang, "quote"), label(lang, "machine", lang="x")]
    parts += [v["by"]["name"] for v in quote["versions"]]
    if quote.get("closed"):
        parts.append(quote["closed"]["by"]["name"])
    return "".join(parts)


class _Document(FPDF):
    """A4, one font family with the fallbacks this document's scripts need."""

    def __init__(self, sample: str, shaped: bool = False) -> None:
        super().__init__(format="A4")
        self.set_auto_page_break(True, margin=15)
        self.add_font("body", "", str(_first(REGULAR, "fonts-dejavu-core")))
        self.add_font("body", "B", str(_first(BOLD, "fonts-dejavu-core")))
        fallbacks = []
        if CJK_RE.search(sample):
            path = _first(CJK, "fonts-wqy-microhei")
            self.add_font("cjk", "", str(path))
            fallbacks.append("cjk")
        if DEVANAGARI_RE.search(sample):
            self.add_font("deva", "", str(_first(DEVANAGARI, "fonts-lohit-deva")))
            fallbacks.append("deva")
        if fallbacks:
            self.set_fallback_fonts(fallbacks, exact_match=False)
        if shaped or COMPLEX_RE.search(sample):
            self.set_text_shaping(True)
        self.set_font("body", size=10)

    def text_line(
        self, text: str, size: float = 10, bold: bool = False, grey: bool = False
    ) -> None:
        """A paragraph across the page."""
        self.set_font("body", "B" if bold else "", size)
        self.set_text_color(*(GREY if grey else (0, 0, 0)))
        self.multi_cell(0, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0, 0, 0)


def _holds_translation(view: dict[str, Any]) -> bool:
    """Whether the reader's texts hold any translated text (a product, the terms, the notes)."""
    return any(view.get("items") or []) or bool(view.get("payment_terms") or view.get("notes"))


def render(quote: dict[str, Any], lang: str, view: dict[str, Any] | None) -> bytes:
    """The quote's latest version as a PDF for a reader of `lang`. `view`: the reader's texts
    (`{"items": [product or None], "payment_terms"?, "notes"?}`), None when the reader reads
    the original's language."""
    latest = quote["versions"][-1]
    src = latest["lang"]
    # Translated only when some text was: a reader whose language has no engine from the
    # author's gets the original, said so once, not a "machine translation" of nothing.
    translated = view is not None and lang != src and _holds_translation(view)
    untranslated = view is not None and lang != src and not translated
    iso = Isolate(lang)
    pdf = _Document(_texts(quote, view, lang), shaped=iso.on)
    pdf.add_page()
    pdf.text_line(label(lang, "rfq" if quote["kind"] == "rfq" else "quote"), size=18, bold=True)
    status = label(lang, quote["status"])
    version = label(lang, "version", n=latest["version"], total=len(quote["versions"]))
    pdf.text_line(
        iso.parts(iso.data(quote["id"]), version, f"{label(lang, 'status')}: {status}"), bold=True
    )
    pdf.text_line(
        iso.parts(f"{label(lang, 'from')}: {latest['by']['name']}", iso.data(when(latest["at"])))
    )
    closed = quote.get("closed")
    if closed:
        key = "closed_accept" if closed["action"] == "accept" else "closed_decline"
        pdf.text_line(
            label(lang, key, name=closed["by"]["name"], at=iso.data(when(closed["at"]))), bold=True
        )
    if translated:
        pdf.text_line(label(lang, "machine", lang=src), size=8, grey=True)
    elif untranslated:
        note = f"{label(lang, 'original', lang=src)} — {label(lang, 'untranslated')}"
        pdf.text_line(note, size=8, grey=True)
    pdf.ln(3)
    _items(pdf, latest, view if translated else None, lang)
    pdf.ln(2)
    for currency, total in latest.get("totals", {}).items():
        pdf.set_font("body", "B", 11)
        text = f"{label(lang, 'total')}: {iso.data(f'{total} {currency}')}"
        pdf.cell(0, 7, text, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    place = f" {latest['place']}" if latest.get("place") else ""
    incoterm = iso.data(f"{latest['incoterm']}{place} (Incoterms 2020)")
    pdf.text_line(f"{label(lang, 'incoterm')}: {incoterm}")
    pdf.text_line(f"{label(lang, 'lead_time')}: {label(lang, 'days', n=latest['lead_time_days'])}")
    pdf.text_line(f"{label(lang, 'valid_until')}: {iso.data(latest['valid_until'])}")
    for field in ("payment_terms", "notes"):
        original = latest.get(field)
        if not original:
            continue
        shown = (view or {}).get(field) if translated else original
        pdf.text_line(f"{label(lang, field)}: {shown or original}")
        if translated:
            note = "" if shown else f" — {label(lang, 'untranslated')}"
            pdf.text_line(
                f"{label(lang, 'original', lang=src)}: {original}{note}", size=9, grey=True
            )
    earlier = quote["versions"][:-1]
    if earlier:
        pdf.ln(3)
        pdf.text_line(label(lang, "earlier"), bold=True)
        for v in earlier:
            sums = ", ".join(f"{t} {c}" for c, t in v.get("totals", {}).items())
            parts = [iso.data(f"v{v['version']}"), v["by"]["name"], iso.data(when(v["at"]))]
            if sums:
                parts.append(f"{label(lang, 'total')}: {iso.data(sums)}")
            pdf.text_line(iso.parts(*parts), size=9)
    return bytes(pdf.output())


def _items(pdf: _Document, latest: dict[str, Any], view: dict[str, Any] | None, lang: str) -> None:
    """The lines as a table: the product in the reader's language, the original beside it."""
    priced = "totals" in latest
    src = latest["lang"]
    texts = [label(lang, "product")]
    if view is not None:
        texts.append(label(lang, "original", lang=src))
    numbers = [label(lang, "quantity"), label(lang, "unit")]
    fixed = [22, 14]
    if priced:
        numbers += [label(lang, "unit_price"), label(lang, "amount")]
        fixed += [27, 27]
    free = (190 - 8 - sum(fixed)) / len(texts)  # A4 less margins: 190 mm
    head = ["#", *texts, *numbers]
    widths = [8, *[free] * len(texts), *fixed]
    pdf.set_font("body", size=9)
    with pdf.table(col_widths=widths, text_align="LEFT", line_height=5) as table:
        row = table.row()
        for cell in head:
            row.cell(cell)
        for n, item in enumerate(latest["items"]):
            row = table.row()
            row.cell(str(n + 1))
            if view is None:
                row.cell(item["product"])
            else:
                mine = (view.get("items") or [None] * (n + 1))[n]
                row.cell(mine or f"{item['product']} ({label(lang, 'untranslated')})")
                row.cell(item["product"])
            row.cell(item["quantity"])
            row.cell(item["unit"])
            if priced:
                row.cell(f"{item['unit_price']} {item['currency']}")
                row.cell(f"{item['amount']} {item['currency']}")
