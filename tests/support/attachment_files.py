"""Real files for the attachment tests and benchmark (made with Pillow and zipfile, not
stubs), and an HTTP upload helper."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import aiohttp
from PIL import Image

GPS_IFD = 0x8825
LATITUDE = (52.0, 31.0, 12.5)  # what the GPS block holds (Berlin)


def png_with_gps(size: tuple[int, int] = (640, 480), color: str = "orange") -> bytes:
    """A PNG photo whose eXIf chunk has a camera make, a capture time and a GPS position."""
    exif = Image.Exif()
    exif[0x010F] = "TradeCam"  # Make
    exif.get_ifd(0x8769)[0x9003] = "2026:11:30 09:15:00"  # DateTimeOriginal
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: LATITUDE, 3: "E", 4: (13.0, 24.0, 1.5)})
    out = io.BytesIO()
    image = Image.new("RGB", size, color)
    for x in range(0, size[0], 40):  # some structure, so the file is not trivial
        image.paste("navy", (x, 0, x + 8, size[1]))
    image.save(out, format="PNG", exif=exif)
    return out.getvalue()


def jpeg_with_gps(size: tuple[int, int] = (800, 600)) -> bytes:
    """A JPEG photo with the same metadata as `png_with_gps`."""
    image = Image.open(io.BytesIO(png_with_gps(size)))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, exif=image.getexif())
    return out.getvalue()


def pdf_document(color: str = "blue", pages: int = 2) -> bytes:
    """A real multi-page PDF (A4-ish pages; the first one filled with `color`)."""
    first = Image.new("RGB", (595, 842), color)
    rest = [Image.new("RGB", (595, 842), "white") for _ in range(pages - 1)]
    out = io.BytesIO()
    first.save(out, format="PDF", save_all=True, append_images=rest)
    return out.getvalue()


XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
        'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Prices" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
    ),
    "xl/worksheets/sheet1.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>M8 bolt</t></is></c><c r="B1"><v>0.12</v></c>'
        "</row></sheetData></worksheet>"
    ),
}


def xlsx_price_list() -> bytes:
    """A minimal but valid Excel workbook (one sheet, one row: "M8 bolt", 0.12), the same
    bytes every time."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        for name, text in XLSX_PARTS.items():  # fixed times: the same bytes on every call
            book.writestr(
                zipfile.ZipInfo(name, (2026, 11, 30, 9, 0, 0)), text, zipfile.ZIP_DEFLATED
            )
    return out.getvalue()


HTML_PAGE = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
DXF_DRAWING = (  # one line from (0, 0) to (10, 5)
    b"  0\nSECTION\n  2\nENTITIES\n  0\nLINE\n  8\n0\n 10\n0.0\n 20\n0.0\n 11\n10.0\n"
    b" 21\n5.0\n  0\nENDSEC\n  0\nEOF\n"
)


async def upload(
    url: str,
    token: str | None,
    cid: str,
    name: str,
    data: bytes,
    mime: str = "application/octet-stream",
) -> tuple[int, Any]:
    """POST a file to a conversation; (status, JSON body or text)."""
    form = aiohttp.FormData(quote_fields=False)  # names as browsers send them (raw UTF-8)
    form.add_field("file", data, filename=name, content_type=mime)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/api/conversations/{cid}/attachments", data=form, headers=headers) as r,
    ):
        body = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, body


async def download(url: str, token: str | None, path: str) -> tuple[int, bytes, dict[str, str]]:
    """GET a path with the token; (status, body, headers)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(url + path, headers=headers) as r:
        return r.status, await r.read(), dict(r.headers)
