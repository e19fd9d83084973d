"""Attachments: upload and download throughput of a 10 MB file through TradeTalk against a
plain aiohttp server (a multipart handler writing the file, and `web.static`), measured in the
same run on the same machine; and the time from an upload answered to the other side holding
the message with its thumbnail.

Both servers run as child processes: `tradetalk serve` (embedded Redis, `TRADETALK_DATA` in a
temp dir) and `python -m bench.attachments --baseline PORT DIR`. Uploads and downloads alternate
between them, one at a time, so load on this shared machine hits both alike.

    .venv/bin/python -m bench.attachments [--size-mb 10] [--rounds 8] [--photos 15]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import aiohttp
from aiohttp import web
from PIL import Image

from server.storage.embedded_redis import free_port
from tests.support.attachment_files import png_with_gps
from tests.support.peers import Peer, ServerProcess, new_user, token_for

REPO = Path(__file__).resolve().parents[1]


def baseline_app(folder: Path) -> web.Application:
    """The plain aiohttp server: POST /upload streams the multipart field to a file, GET
    /static/<name> serves files with aiohttp's static handler."""

    async def upload(request: web.Request) -> web.Response:
        reader = await request.multipart()
        part = await reader.next()
        path = folder / secrets.token_hex(8)
        size = 0
        with open(path, "wb") as out:
            while chunk := await part.read_chunk(256 * 1024):
                size += len(chunk)
                out.write(chunk)
        return web.json_response({"name": path.name, "size": size}, status=201)

    app = web.Application()
    app.router.add_post("/upload", upload)
    app.router.add_static("/static", folder)
    return app


def camera_photo(size: tuple[int, int] = (1600, 1200)) -> bytes:
    """A JPEG the size of a phone photo (noise, so it weighs like one) with EXIF GPS."""
    exif = Image.open(io.BytesIO(png_with_gps((8, 8)))).getexif()
    noise = Image.merge("RGB", [Image.effect_noise(size, 60) for _ in range(3)])
    out = io.BytesIO()
    noise.save(out, format="JPEG", quality=90, exif=exif)
    return out.getvalue()


def zip_of(size: int) -> bytes:
    """A ZIP archive (stored, incompressible content) of about `size` bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("drawings.bin", os.urandom(size - 200))
    return out.getvalue()


async def post_file(http: aiohttp.ClientSession, url: str, data: bytes, headers=None) -> dict:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("file", data, filename="drawings.zip", content_type="application/zip")
    async with http.post(url, data=form, headers=headers or {}) as r:
        assert r.status == 201, (r.status, await r.text())
        return await r.json()


async def get_all(http: aiohttp.ClientSession, url: str, headers=None) -> int:
    size = 0
    async with http.get(url, headers=headers or {}) as r:
        assert r.status == 200, r.status
        async for chunk in r.content.iter_chunked(1 << 20):
            size += len(chunk)
    return size


def mbps(size: int, seconds: list[float]) -> tuple[float, float]:
    """Median and best throughput in MB/s (10^6 bytes)."""
    rates = [size / s / 1e6 for s in seconds]
    return statistics.median(rates), max(rates)


async def throughput(ours_url: str, token: str, cid: str, base_url: str, size_mb: int, rounds: int):
    data = zip_of(size_mb * 1_000_000)
    auth = {"Authorization": f"Bearer {token}"}
    times: dict[str, list[float]] = {
        k: [] for k in ("up ours", "up base", "down ours", "down base")
    }
    async with aiohttp.ClientSession() as http:

        async def up_ours() -> None:
            began = time.perf_counter()
            url = f"{ours_url}/api/conversations/{cid}/attachments"
            ids.append((await post_file(http, url, data, auth))["attachment"]["id"])
            times["up ours"].append(time.perf_counter() - began)

        async def up_base() -> None:
            began = time.perf_counter()
            names.append((await post_file(http, f"{base_url}/upload", data))["name"])
            times["up base"].append(time.perf_counter() - began)

        async def down_ours() -> None:
            began = time.perf_counter()
            got = await get_all(http, f"{ours_url}/api/attachments/{ids[-1]}", auth)
            times["down ours"].append(time.perf_counter() - began)
            assert got == len(data)

        async def down_base() -> None:
            began = time.perf_counter()
            got = await get_all(http, f"{base_url}/static/{names[-1]}")
            times["down base"].append(time.perf_counter() - began)
            assert got == len(data)

        ids: list[str] = []
        names: list[str] = []
        for n in range(rounds):  # who goes first alternates, so neither always follows the other
            order = [up_ours, up_base, down_ours, down_base]
            if n % 2:
                order = [up_base, up_ours, down_base, down_ours]
            for step in order:
                await step()
    print(f"\n{size_mb} MB ZIP, {rounds} rounds each, alternating (MB/s, median / best):")
    for kind in ("up", "down"):
        ours_mid, ours_best = mbps(len(data), times[f"{kind} ours"])
        base_mid, base_best = mbps(len(data), times[f"{kind} base"])
        name = "upload  " if kind == "up" else "download"
        print(
            f"  {name}  TradeTalk {ours_mid:7.1f} / {ours_best:7.1f}   plain aiohttp "
            f"{base_mid:7.1f} / {base_best:7.1f}   ratio {ours_mid / base_mid:4.2f}x (goal >= 0.8x)"
        )


async def photo_to_thumbnail(url: str, photos: int) -> None:
    """Upload answered → message.send → the other side's message.new → its thumbnail fetched."""
    buyer, supplier = new_user(), new_user(lang="es")
    sender = await Peer(buyer).connect(url)
    reader = await Peer(supplier).connect(url)
    try:
        created = await sender.call("conversation.create", {"participants": [supplier.id]})
        cid = created["conversation"]["id"]
        photo = camera_photo()
        auth_b = {"Authorization": f"Bearer {token_for(buyer)}"}
        auth_s = {"Authorization": f"Bearer {token_for(supplier)}"}
        upload_ms, total_ms, message_ms = [], [], []
        async with aiohttp.ClientSession() as http:
            for n in range(photos):
                began = time.perf_counter()
                body = await post_file_named(
                    http, f"{url}/api/conversations/{cid}/attachments", photo, auth_b
                )
                answered = time.perf_counter()
                aid = body["attachment"]["id"]
                await sender.sio.emit(
                    "message.send",
                    {"conversation_id": cid, "client_id": f"p{n}", "attachments": [aid]},
                )
                event = await reader.wait_for(
                    "message.new", lambda e, c=f"p{n}": e["message"]["client_id"] == c
                )
                arrived = time.perf_counter()
                [shown] = event["message"]["attachments"]
                async with http.get(
                    f"{url}/api/attachments/{shown['id']}/thumbnail", headers=auth_s
                ) as r:
                    assert r.status == 200 and (await r.read())[:3] == b"\xff\xd8\xff"
                done = time.perf_counter()
                upload_ms.append((answered - began) * 1000)
                message_ms.append((arrived - answered) * 1000)
                total_ms.append((done - answered) * 1000)
    finally:
        await sender.close()
        await reader.close()
    print(f"\nphoto 1600x1200 JPEG ({len(photo) / 1e6:.1f} MB) with EXIF GPS, {photos} times:")
    for name, values in (
        ("upload (sniff, strip GPS, thumbnail, fsync)", upload_ms),
        ("upload answered -> message.new at the other side", message_ms),
        ("upload answered -> thumbnail in hand there", total_ms),
    ):
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(len(ordered) * 0.95) - 1)]
        print(f"  {name:50} p50 {statistics.median(ordered):7.1f} ms  p95 {p95:7.1f} ms")


async def post_file_named(http, url, data, headers) -> dict:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("file", data, filename="sample.jpg", content_type="image/jpeg")
    async with http.post(url, data=form, headers=headers) as r:
        assert r.status == 201, (r.status, await r.text())
        return await r.json()


async def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer")
            await asyncio.sleep(0.1)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-att-") as tmp:
        folder = Path(tmp)
        (folder / "base").mkdir()
        base_port = free_port()
        baseline = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.attachments",
                "--baseline",
                str(base_port),
                str(folder / "base"),
            ],
            cwd=REPO,
        )
        server = ServerProcess(folder / "tt", None, free_port())
        try:
            await server.start(timeout=120, ready=True)
            base_url = f"http://127.0.0.1:{base_port}"
            await wait_http(base_url + "/static/none")
            buyer, supplier = new_user(), new_user()
            peer = await Peer(buyer).connect(server.url)
            await (await Peer(supplier).connect(server.url)).close()
            created = await peer.call("conversation.create", {"participants": [supplier.id]})
            await peer.close()
            print(f"load average before: {os.getloadavg()[0]:.1f}")
            await throughput(
                server.url,
                token_for(buyer),
                created["conversation"]["id"],
                base_url,
                args.size_mb,
                args.rounds,
            )
            await photo_to_thumbnail(server.url, args.photos)
            print(f"load average after: {os.getloadavg()[0]:.1f}")
        finally:
            server.kill()
            baseline.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--photos", type=int, default=15)
    parser.add_argument("--baseline", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.baseline:
        port, where = options.baseline
        web.run_app(baseline_app(Path(where)), host="127.0.0.1", port=int(port), print=None)
    else:
        asyncio.run(main(options))
