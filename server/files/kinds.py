"""What an uploaded file is, decided by its content (never by its name), and a safe name for it.

Accepted: images (PNG, JPEG, GIF, WebP), PDF, office documents (OOXML docx/xlsx/pptx,
OpenDocument odt/ods/odp, legacy OLE2 doc/xls/ppt), plain text and CSV (UTF-8, not markup),
ZIP archives, DXF drawings (ASCII and binary) and STEP models. Anything else (HTML, SVG,
executables, scripts, ...) is refused.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

HEAD_BYTES = 8192


@dataclass(frozen=True)
class FileKind:
    """A sniffed type: its MIME type, the extensions a name of it may end in (first: the one
    added when the name has none of them), and whether browsers may show it inline."""

    mime: str
    extensions: tuple[str, ...]
    image: bool = False


PNG = FileKind("image/png", ("png",), image=True)
JPEG = FileKind("image/jpeg", ("jpg", "jpeg", "jpe"), image=True)
GIF = FileKind("image/gif", ("gif",), image=True)
WEBP = FileKind("image/webp", ("webp",), image=True)
PDF = FileKind("application/pdf", ("pdf",))
ZIP = FileKind("application/zip", ("zip",))
DOCX = FileKind(
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ("docx", "docm")
)
XLSX = FileKind(
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ("xlsx", "xlsm")
)
PPTX = FileKind(
    "application/vnd.openxmlformats-officedocument.presentationml.presentation", ("pptx", "pptm")
)
ODT = FileKind("application/vnd.oasis.opendocument.text", ("odt",))
ODS = FileKind("application/vnd.oasis.opendocument.spreadsheet", ("ods",))
ODP = FileKind("application/vnd.oasis.opendocument.presentation", ("odp",))
DOC = FileKind("application/msword", ("doc",))
XLS = FileKind("application/vnd.ms-excel", ("xls",))
PPT = FileKind("application/vnd.ms-powerpoint", ("ppt",))
OLE = FileKind("application/x-ole-storage", ("doc", "xls", "ppt", "msg"))
DXF = FileKind("image/vnd.dxf", ("dxf",))
STEP = FileKind("model/step", ("step", "stp"))
CSV = FileKind("text/csv", ("csv",))
TEXT = FileKind("text/plain", ("txt", "log", "md", "tsv", "ini", "cfg"))

OPEN_DOCUMENT = {k.mime: k for k in (ODT, ODS, ODP)}
OOXML_PARTS = (("word/", DOCX), ("xl/", XLSX), ("ppt/", PPTX))
OLE_BY_EXTENSION = {"doc": DOC, "xls": XLS, "ppt": PPT}
# Markup a browser would render or run: refused even when it decodes as text.
MARKUP = re.compile(
    rb"<\s*(!doctype|html|head|body|script|iframe|svg|object|embed|meta|\?xml|xml|style|a\s)",
    re.IGNORECASE,
)
DXF_START = re.compile(rb"^\s*0\s*\r?\n\s*(SECTION|EOF)\s*\r?\n", re.IGNORECASE)
DXF_BINARY = b"AutoCAD Binary DXF\r\n\x1a\x00"


def sniff(path: Path, name: str = "") -> FileKind | None:
    """The kind of the file at `path` from its bytes, or None when it is not one we accept.
    `name` only picks between kinds the content leaves open (CSV vs text, doc vs xls)."""
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    ext = extension(name)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return zip_kind(path)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return OLE_BY_EXTENSION.get(ext, OLE)
    if head.startswith(DXF_BINARY):
        return DXF
    if head.lstrip().startswith(b"ISO-10303-21;"):
        return STEP
    return text_kind(path, head, ext)


def zip_kind(path: Path) -> FileKind | None:
    """An office document (OOXML, OpenDocument) or a plain ZIP; None if the archive is broken."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "mimetype" in names:
                declared = archive.read("mimetype")[:100].decode("ascii", "replace").strip()
                if declared in OPEN_DOCUMENT:
                    return OPEN_DOCUMENT[declared]
            if "[Content_Types].xml" in names:
                for prefix, kind in OOXML_PARTS:
                    if any(n.startswith(prefix) for n in names):
                        return kind
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError):
        return None
    return ZIP


def text_kind(path: Path, head: bytes, ext: str) -> FileKind | None:
    """UTF-8 text without NULs or markup: a DXF drawing, CSV or plain text."""
    if b"\x00" in head:
        return None
    body = head.removeprefix(b"\xef\xbb\xbf")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the head is fine
        if exc.start < len(body) - 3:
            return None
    if not body.strip() or MARKUP.search(body):
        return None
    if DXF_START.match(body):
        return DXF
    if not whole_text_ok(path):
        return None
    return CSV if ext == "csv" else TEXT


def whole_text_ok(path: Path, chunk: int = 1 << 20) -> bool:
    """The whole file is UTF-8 without NULs and without markup (checked chunk by chunk)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    tail = b""
    with open(path, "rb") as f:
        while block := f.read(chunk):
            if b"\x00" in block:
                return False
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                return False
            if MARKUP.search(tail + block):
                return False
            tail = block[-32:]
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def extension(name: str) -> str:
    """The lower-case extension of a file name ('' when none)."""
    base = name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and stem else ""


UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
MAX_NAME_CHARS = 120


def safe_name(name: str, kind: FileKind) -> str:
    """A name to show and to download as: the last path part, NFC, without control, format
    (bidi overrides, zero-width) or reserved characters, no leading dots, at most 120
    characters, ending in an extension of `kind` (one is added when it ends in another)."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(
        "_" if UNSAFE.match(c) else c for c in base if unicodedata.category(c) not in ("Cf", "Cc")
    )
    base = re.sub(r"\s+", " ", base).strip(" .")
    if not base:
        base = "file"
    if extension(base) not in kind.extensions:
        base = f"{base}.{kind.extensions[0]}"
    if len(base) > MAX_NAME_CHARS:
        stem, _, ext = base.rpartition(".")
        base = stem[: MAX_NAME_CHARS - len(ext) - 1].rstrip(" .") + "." + ext
    return base
