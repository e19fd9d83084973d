"""Images and PDFs: location metadata removed without re-encoding, sizes, and thumbnails.

`strip_location` rewrites only the metadata blocks of a JPEG (APP1 Exif / XMP), PNG (eXIf,
XMP and raw-profile text chunks) or WebP (EXIF, XMP chunks): the GPS IFD is deleted from the
Exif block, an XMP packet that mentions GPS is dropped; the pixels stay byte for byte.
Thumbnails are re-encoded with Pillow (JPEG, at most 320 px a side; a PDF's first page is
rendered with pdfium first), so no metadata of the original reaches them.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

GPS_IFD = 0x8825
THUMB_BOX = 320
MAX_PIXELS = 64_000_000  # larger images are refused (decompression bombs)
XMP_HEADS = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_METADATA_KEYWORDS = (b"XML:com.adobe.xmp", b"Raw profile type exif", b"Raw profile type APP1")

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class NotAnImage(ValueError):
    """The bytes claim an image format Pillow cannot read, or one too large to decode."""


@dataclass(frozen=True)
class ImageFacts:
    """An image's shown size (EXIF orientation applied) and its thumbnail (JPEG bytes)."""

    width: int
    height: int
    thumbnail: bytes


def exif_without_gps(block: bytes) -> bytes:
    """An Exif block (with or without the `Exif\\0\\0` header, kept as it came) without its
    GPS IFD."""
    header = block.startswith(b"Exif\x00\x00")
    exif = Image.Exif()
    exif.load(block)
    if 0x8769 in exif:  # read the Exif (and Interop) IFDs, so that tobytes() keeps them
        if 0xA005 in exif.get_ifd(0x8769):
            exif.get_ifd(0xA005)
    exif.pop(GPS_IFD, None)
    data = exif.tobytes()
    return data if header else data.removeprefix(b"Exif\x00\x00")


def has_gps(block: bytes) -> bool:
    """Whether an Exif block has a GPS IFD."""
    exif = Image.Exif()
    exif.load(block)
    return GPS_IFD in exif


def strip_jpeg(data: bytes) -> bytes:
    """A JPEG's segments with the GPS IFD and any XMP that mentions GPS removed."""
    out = bytearray(data[:2])
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            out += data[i : i + 2]
            i += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end: the rest is image data
            break
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        payload = data[i + 4 : i + 2 + length]
        if marker == 0xE1 and payload.startswith(b"Exif\x00\x00") and has_gps(payload):
            payload = exif_without_gps(payload)
            out += b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
        elif not (marker == 0xE1 and payload.startswith(XMP_HEADS) and b"GPS" in payload):
            out += data[i : i + 2 + length]
        i += 2 + length
    out += data[i:]
    return bytes(out)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def strip_png(data: bytes) -> bytes:
    """A PNG's chunks without the GPS IFD in eXIf, and without XMP or raw-profile Exif text."""
    out = bytearray(data[:8])
    i = 8
    while i + 12 <= len(data):
        length = struct.unpack(">I", data[i : i + 4])[0]
        kind = data[i + 4 : i + 8]
        body = data[i + 8 : i + 8 + length]
        end = i + 12 + length
        if kind == b"eXIf" and has_gps(body):
            out += png_chunk(kind, exif_without_gps(body))
        elif kind in (b"tEXt", b"zTXt", b"iTXt") and body.split(b"\x00", 1)[0] in (
            PNG_METADATA_KEYWORDS
        ):
            pass
        else:
            out += data[i:end]
        i = end
        if kind == b"IEND":
            break
    return bytes(out)


def strip_webp(data: bytes) -> bytes:
    """A WebP's chunks without the GPS IFD in EXIF, and without XMP (its VP8X flag cleared)."""
    chunks = []
    i = 12
    while i + 8 <= len(data):
        kind = data[i : i + 4]
        size = struct.unpack("<I", data[i + 4 : i + 8])[0]
        body = data[i + 8 : i + 8 + size]
        i += 8 + size + (size & 1)
        if kind == b"EXIF" and has_gps(body):
            body = exif_without_gps(body)
        elif kind == b"XMP ":
            continue
        chunks.append([kind, body])
    for chunk in chunks:
        if chunk[0] == b"VP8X" and chunk[1]:
            chunk[1] = bytes([chunk[1][0] & ~0x04]) + chunk[1][1:]
    body = b"".join(
        k + struct.pack("<I", len(b)) + b + (b"\x00" if len(b) & 1 else b"") for k, b in chunks
    )
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


STRIPPERS = {"image/jpeg": strip_jpeg, "image/png": strip_png, "image/webp": strip_webp}


def strip_location(data: bytes, mime: str) -> bytes:
    """The image without location metadata (the same bytes when it had none). A file whose
    blocks cannot be rewritten is re-encoded by Pillow without any metadata instead."""
    strip = STRIPPERS.get(mime)
    if strip is None:
        return data
    try:
        stripped = strip(data)
        with Image.open(io.BytesIO(stripped)) as check:
            check.load()
            if GPS_IFD in check.getexif():
                raise ValueError("GPS left")
        return stripped
    except Exception:
        return reencode(data)


def reencode(data: bytes) -> bytes:
    """The image decoded and saved again in its own format, without metadata (Pillow writes
    Exif, XMP or text chunks only when asked to)."""
    with Image.open(io.BytesIO(data)) as image:
        fmt = image.format or "PNG"
        image.load()
        out = io.BytesIO()
        image.save(out, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        return out.getvalue()


def jpeg_thumbnail(image: Image.Image) -> bytes:
    """A JPEG of at most 320 px a side, alpha flattened on white, no metadata."""
    image = ImageOps.exif_transpose(image)
    image.thumbnail((THUMB_BOX, THUMB_BOX))
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    elif image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80, optimize=True)
    return out.getvalue()


def image_facts(data: bytes) -> ImageFacts:
    """Size and thumbnail of an image; NotAnImage if Pillow cannot decode it (or it is over
    64 megapixels)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise NotAnImage(f"images may have at most {MAX_PIXELS:,} pixels")
                image.seek(0)
                image.load()
                thumbnail = jpeg_thumbnail(image)
                width, height = image.size
                if image.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated a quarter turn
                    width, height = height, width
    except NotAnImage:
        raise
    except Exception as exc:
        raise NotAnImage(f"not a readable image: {exc}") from None
    return ImageFacts(width, height, thumbnail)


def pdf_thumbnail(path: Path) -> tuple[bytes, int, int] | None:
    """The first page of a PDF rendered to a JPEG thumbnail, and the page's size in points;
    None when pdfium cannot open it or it has no page."""
    import pypdfium2

    try:
        pdf = pypdfium2.PdfDocument(str(path))
    except Exception:
        return None
    try:
        if len(pdf) == 0:
            return None
        page = pdf[0]
        width, height = page.get_size()
        scale = THUMB_BOX / max(width, height, 1)
        bitmap = page.render(scale=scale)
        image = bitmap.to_pil()
        return jpeg_thumbnail(image), round(width), round(height)
    except Exception:
        return None
    finally:
        pdf.close()
