"""One uploaded file made ready to keep: its kind (sniffed), a safe name, location metadata
removed from images, and a thumbnail for images and PDFs (blocking: run it in a thread)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from server.files.images import NotAnImage, image_facts, pdf_thumbnail, strip_location
from server.files.kinds import PDF, FileKind, safe_name, sniff


class Refused(ValueError):
    """A file we do not accept (HTTP 415); the message says why."""


@dataclass(frozen=True)
class Prepared:
    """What to store: the bytes in `content` (the upload's temp file, possibly rewritten),
    their sha256 and size, and what clients are told about them."""

    kind: FileKind
    name: str
    content: Path
    sha256: str
    size: int
    width: int | None = None
    height: int | None = None
    thumbnail: bytes | None = None


def prepare(content: Path, sha256: str, size: int, name: str, keep_location: bool) -> Prepared:
    """Decide what the file at `content` is and get it ready; Refused if we do not take it.
    Images lose their EXIF GPS (and XMP with a location) unless `keep_location`."""
    kind = sniff(content, name)
    if kind is None:
        raise Refused(
            "this type of file is not accepted (images, PDF, office documents, CSV/TXT, ZIP, "
            "DXF/STEP drawings are)"
        )
    shown = safe_name(name, kind)
    if kind.image:
        data = content.read_bytes()
        try:
            facts = image_facts(data)
        except NotAnImage as exc:
            raise Refused(str(exc)) from None
        if not keep_location:
            clean = strip_location(data, kind.mime)
            if clean != data:
                content.write_bytes(clean)
                sha256, size = hashlib.sha256(clean).hexdigest(), len(clean)
        return Prepared(
            kind, shown, content, sha256, size, facts.width, facts.height, facts.thumbnail
        )
    if kind is PDF:
        rendered = pdf_thumbnail(content)
        return Prepared(kind, shown, content, sha256, size, thumbnail=rendered and rendered[0])
    return Prepared(kind, shown, content, sha256, size)
