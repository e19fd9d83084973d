"""Attachments end to end on a real server and Redis: upload, sniffing, limits, GPS removal,
thumbnails, safe serving, messages that carry files, and who may do what."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import replace

import pytest
from PIL import Image

from server.app import create_app
from server.config import Limits, Settings
from tests.integration.test_chat import converse
from tests.support.attachment_files import (
    DXF_DRAWING,
    GPS_IFD,
    HTML_PAGE,
    LATITUDE,
    download,
    jpeg_with_gps,
    pdf_document,
    png_with_gps,
    upload,
    xlsx_price_list,
)
from tests.support.peers import SECRET, Peer, new_user, token_for

LIMIT = 2 * 1024 * 1024  # these servers take files up to 2 MB (the default is 25 MB)


@pytest.fixture
def settings(tmp_path) -> Settings:
    """A server whose upload limit is 2 MB, so the oversize case stays quick."""
    return Settings(
        data_dir=tmp_path, secret=SECRET, limits=replace(Limits(), max_attachment_bytes=LIMIT)
    )


def tok(peer) -> str:
    return token_for(peer.identity)


async def send_files(peer, cid: str, client_id: str, ids: list[str], text: str | None = None):
    payload = {"conversation_id": cid, "client_id": client_id, "attachments": ids}
    if text is not None:
        payload["text"] = text
    return await peer.call("message.send", payload)


async def test_photo_with_gps_is_served_without_location_and_with_a_thumbnail(
    connect, server_url
) -> None:
    (buyer, supplier), conv = await converse(connect, "en", "es")
    original = png_with_gps()
    assert GPS_IFD in Image.open(io.BytesIO(original)).getexif()
    status, body = await upload(server_url, tok(buyer), conv["id"], "muestra.png", original)
    assert status == 201, body
    meta = body["attachment"]
    assert meta["mime"] == "image/png" and meta["name"] == "muestra.png"
    assert (meta["width"], meta["height"]) == (640, 480) and meta["thumbnail"] is True
    assert meta["id"].startswith("a_")

    path = f"/api/attachments/{meta['id']}"
    status, got, headers = await download(server_url, tok(supplier), path)
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Content-Disposition"].startswith("inline;")
    exif = Image.open(io.BytesIO(got)).getexif()
    assert GPS_IFD not in exif and not exif.get_ifd(GPS_IFD)  # the location is gone ...
    assert exif[0x010F] == "TradeCam"  # ... the rest of the metadata is kept
    assert exif.get_ifd(0x8769)[0x9003] == "2026:11:30 09:15:00"
    before, after = Image.open(io.BytesIO(original)), Image.open(io.BytesIO(got))
    assert before.tobytes() == after.tobytes()  # the pixels are untouched
    assert meta["sha256"] == hashlib.sha256(got).hexdigest() and meta["size"] == len(got)

    status, thumb, headers = await download(
        server_url, tok(supplier), f"/api/attachments/{meta['id']}/thumbnail"
    )
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    small = Image.open(io.BytesIO(thumb))
    assert small.format == "JPEG" and max(small.size) == 320 and small.size == (320, 240)
    assert not small.getexif()  # re-encoded: no metadata at all


async def test_jpeg_gps_removed_too(connect, server_url) -> None:
    (buyer, supplier), conv = await converse(connect, "en", "es")
    status, body = await upload(server_url, tok(buyer), conv["id"], "IMG_1.JPG", jpeg_with_gps())
    assert status == 201 and body["attachment"]["mime"] == "image/jpeg", body
    aid = body["attachment"]["id"]
    _, got, _ = await download(server_url, tok(supplier), f"/api/attachments/{aid}")
    exif = Image.open(io.BytesIO(got)).getexif()
    assert GPS_IFD not in exif and exif[0x010F] == "TradeCam"


async def test_pdf_xlsx_dxf_are_downloads_and_the_pdf_has_a_first_page_thumbnail(
    connect, server_url
) -> None:
    (buyer, supplier), conv = await converse(connect, "en", "es")
    cid = conv["id"]
    pdf, xlsx = pdf_document("blue"), xlsx_price_list()
    status, body = await upload(server_url, tok(buyer), cid, "drawing rev B.pdf", pdf)
    assert status == 201, body
    pdf_meta = body["attachment"]
    assert pdf_meta["mime"] == "application/pdf" and pdf_meta["thumbnail"] is True
    assert pdf_meta["sha256"] == hashlib.sha256(pdf).hexdigest() and pdf_meta["size"] == len(pdf)
    status, body = await upload(server_url, tok(supplier), cid, "precios.xlsx", xlsx)
    assert status == 201, body
    xlsx_meta = body["attachment"]
    assert xlsx_meta["mime"].endswith("spreadsheetml.sheet") and xlsx_meta["thumbnail"] is False
    assert "width" not in xlsx_meta
    status, body = await upload(server_url, tok(buyer), cid, "bracket.dxf", DXF_DRAWING)
    assert status == 201 and body["attachment"]["mime"] == "image/vnd.dxf", body

    for meta, data, reader in ((pdf_meta, pdf, supplier), (xlsx_meta, xlsx, buyer)):
        path = f"/api/attachments/{meta['id']}"
        status, got, headers = await download(server_url, tok(reader), path)
        assert status == 200 and got == data  # byte for byte
        assert headers["Content-Disposition"].startswith("attachment;")
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Type"] == meta["mime"]
    _, _, headers = await download(
        server_url, tok(supplier), f"/api/attachments/{body['attachment']['id']}"
    )
    assert headers["Content-Disposition"].startswith("attachment;")  # a DXF is no picture
    assert (
        "filename*=UTF-8''drawing%20rev%20B.pdf"
        in (
            (await download(server_url, tok(buyer), f"/api/attachments/{pdf_meta['id']}"))[2][
                "Content-Disposition"
            ]
        )
    )
    status, thumb, _ = await download(
        server_url, tok(supplier), f"/api/attachments/{pdf_meta['id']}/thumbnail"
    )
    page = Image.open(io.BytesIO(thumb)).convert("RGB")
    assert status == 200 and page.height == 320 and page.width < 320  # a portrait page
    r, g, b = page.getpixel((page.width // 2, page.height // 2))
    assert b > 200 and r < 60 and g < 60  # the first page (blue), not the second (white)
    status, _, _ = await download(
        server_url, tok(buyer), f"/api/attachments/{xlsx_meta['id']}/thumbnail"
    )
    assert status == 404


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("photo.png", HTML_PAGE),  # HTML renamed .png
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>'),
        ("setup.exe", b"MZ\x90\x00\x03\x00\x00\x00" + bytes(200)),
        ("notes.txt", b"hello <script>alert(1)</script>"),
        ("broken.png", b"\x89PNG\r\n\x1a\n" + bytes(100)),  # a PNG header and nothing more
    ],
)
async def test_types_are_decided_by_content_and_refused_with_415(
    connect, server_url, name, data
) -> None:
    (buyer, _), conv = await converse(connect, "en", "es")
    status, body = await upload(server_url, tok(buyer), conv["id"], name, data, "image/png")
    assert status == 415, body
    assert body["error"]["code"] == "unsupported_type"


async def test_names_are_sanitized_and_follow_the_content(connect, server_url) -> None:
    (buyer, _), conv = await converse(connect, "en", "es")
    cid = conv["id"]
    cases = {
        "../../etc/passwd": (b"root:x:0:0\n", "passwd.txt"),
        "C:\\Users\\ann\\price\u202egnp.csv": (b"a,b\n1,2\n", "pricegnp.csv"),  # RLO gone
        "report.png": (pdf_document(), "report.png.pdf"),  # a PDF named .png stays a PDF
        "prices.csv": (b"sku,price\nM8,0.12\n", "prices.csv"),
        "...": (b"plain words\n", "file.txt"),
    }
    for name, (data, expected) in cases.items():
        status, body = await upload(server_url, tok(buyer), cid, name, data)
        assert status == 201, (name, body)
        assert body["attachment"]["name"] == expected, (name, body)
    assert body["attachment"]["mime"] == "text/plain"


async def test_oversize_is_refused_with_413_and_nothing_is_kept(
    connect, server_url, tmp_path
) -> None:
    (buyer, _), conv = await converse(connect, "en", "es")
    big = b"x" * (LIMIT + 1)
    status, body = await upload(server_url, tok(buyer), conv["id"], "big.txt", big)
    assert status == 413 and body["error"]["code"] == "too_large", body
    exactly = b"y" * LIMIT
    status, body = await upload(server_url, tok(buyer), conv["id"], "ok.txt", exactly)
    assert status == 201 and body["attachment"]["size"] == LIMIT
    blobs = [p for p in (tmp_path / "attachments" / "blobs").rglob("*") if p.is_file()]
    assert [p.name for p in blobs] == [hashlib.sha256(exactly).hexdigest()]
    assert not [p for p in (tmp_path / "attachments" / "tmp").rglob("*") if p.is_file()]


def test_default_limit_is_25_mb_and_settable(tmp_path) -> None:
    env = {"TRADETALK_DATA": str(tmp_path), "TRADETALK_SECRET": "x" * 32}
    assert Settings.from_env(env).limits.max_attachment_bytes == 25 * 1024 * 1024
    env["TRADETALK_ATTACHMENT_MAX_MB"] = "5"
    assert Settings.from_env(env).limits.max_attachment_bytes == 5 * 1024 * 1024
    assert Settings.from_env(env).keep_location is False


async def test_outsiders_are_refused_everywhere(connect, server_url) -> None:
    (buyer, supplier), conv = await converse(connect, "en", "es")
    outsider = await connect(new_user(lang="en"))
    cid = conv["id"]
    status, body = await upload(server_url, tok(buyer), cid, "a.png", png_with_gps())
    aid = body["attachment"]["id"]
    path, thumb = f"/api/attachments/{aid}", f"/api/attachments/{aid}/thumbnail"

    assert (await upload(server_url, None, cid, "a.png", png_with_gps()))[0] == 401
    assert (await upload(server_url, "garbage", cid, "a.png", png_with_gps()))[0] == 401
    status, body = await upload(server_url, tok(outsider), cid, "a.png", png_with_gps())
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await upload(server_url, tok(buyer), "c_0000000000000000", "a.png", b"x")
    assert status == 404
    for where in (path, thumb):
        assert (await download(server_url, None, where))[0] == 401
        assert (await download(server_url, tok(outsider), where))[0] == 403
        assert (await download(server_url, tok(supplier), where))[0] == 200
    assert (await download(server_url, tok(buyer), "/api/attachments/a_0000000000000000"))[0] == 404
    blob = f"/api/internal/blobs/{'0' * 64}"
    assert (await download(server_url, tok(buyer), blob))[0] == 403  # nodes only

    # nobody may send another's upload, not even a participant; nor one of another conversation
    ack = await send_files(supplier, cid, "s1", [aid])
    assert ack["error"]["code"] == "invalid" and aid in ack["error"]["message"], ack
    own = await outsider.call("conversation.create", {"participants": [buyer.id]})
    ack = await send_files(buyer, own["conversation"]["id"], "b9", [aid])
    assert ack["error"]["code"] == "invalid", ack
    ack = await send_files(outsider, cid, "o1", [aid])
    assert ack["error"]["code"] == "forbidden", ack


async def test_message_carries_attachments_live_in_history_and_on_retry(
    connect, server_url
) -> None:
    (buyer, supplier), conv = await converse(connect, "en", "es")
    cid = conv["id"]
    photo = (await upload(server_url, tok(buyer), cid, "bolt.png", png_with_gps()))[1]
    sheet = (await upload(server_url, tok(buyer), cid, "spec.pdf", pdf_document()))[1]
    ids = [photo["attachment"]["id"], sheet["attachment"]["id"]]

    ack = await send_files(buyer, cid, "b1", ids)  # no text at all
    assert ack["ok"] and ack["duplicate"] is False, ack
    message = ack["message"]
    assert message["text"] == "" and message["translations"] == {}
    assert message["attachments"] == [photo["attachment"], sheet["attachment"]]
    live = await supplier.wait_for("message.new", lambda e: e["message"]["id"] == message["id"])
    assert live["message"] == message

    ack = await send_files(buyer, cid, "b2", ids[:1], text="The price is too high.")
    with_text = ack["message"]
    assert "precio" in with_text["translations"]["es"].lower()
    assert with_text["attachments"] == [photo["attachment"]]

    again = await send_files(buyer, cid, "b1", ids)  # a retry of the first send
    assert again["duplicate"] is True and again["message"] == message
    joined = await supplier.call("conversation.join", {"conversation_id": cid, "since": 0})
    assert joined["messages"] == [message, with_text]
    page = await buyer.call("history.get", {"conversation_id": cid})
    assert page["messages"] == [message, with_text]


@pytest.mark.parametrize(
    "attachments",
    [[], "a_0123456789abcdef", ["a_1"], ["a_0123456789abcdef"] * 2, ["a_0123456789abcdef"] * 11],
)
async def test_bad_attachment_lists_are_invalid(connect, attachments) -> None:
    (buyer, _), conv = await converse(connect, "en", "es")
    ack = await buyer.call(
        "message.send",
        {"conversation_id": conv["id"], "client_id": "x", "attachments": attachments},
    )
    assert ack["ok"] is False and ack["error"]["code"] == "invalid", ack


async def test_text_is_still_required_without_attachments(connect) -> None:
    (buyer, _), conv = await converse(connect, "en", "es")
    ack = await buyer.call("message.send", {"conversation_id": conv["id"], "client_id": "x"})
    assert ack["error"]["code"] == "invalid" and "text" in ack["error"]["message"]


async def test_an_office_zip_that_is_not_office_is_a_zip(connect, server_url) -> None:
    (buyer, _), conv = await converse(connect, "en", "es")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "parts list")
    status, body = await upload(server_url, tok(buyer), conv["id"], "fake.xlsx", out.getvalue())
    assert status == 201 and body["attachment"]["mime"] == "application/zip", body
    assert body["attachment"]["name"] == "fake.xlsx.zip"


async def test_keep_location_setting_keeps_gps(
    aiohttp_server, redis_server, settings, server_translator
) -> None:
    """`TRADETALK_KEEP_LOCATION=1`: files are kept exactly as uploaded (GPS included)."""
    app = create_app(replace(settings, keep_location=True), redis_server.url, server_translator)
    url = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    buyer, supplier = new_user(), new_user(lang="es")
    peers = [await Peer(buyer).connect(url), await Peer(supplier).connect(url)]
    try:
        created = await peers[0].call("conversation.create", {"participants": [supplier.id]})
        original = png_with_gps()
        status, body = await upload(
            url, token_for(buyer), created["conversation"]["id"], "a.png", original
        )
        assert (
            status == 201 and body["attachment"]["sha256"] == hashlib.sha256(original).hexdigest()
        )
        _, got, _ = await download(
            url, token_for(supplier), f"/api/attachments/{body['attachment']['id']}"
        )
        assert got == original
        assert Image.open(io.BytesIO(got)).getexif().get_ifd(GPS_IFD)[2] == LATITUDE
    finally:
        for peer in peers:
            await peer.close()
