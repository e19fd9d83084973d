"""Attachments across hosts (network namespaces, or 127.0.0.x where they can't be made): a file
uploaded through host 1 is copied to one other host in the background, downloads through host 2
and, after host 1 was killed with kill -9, through host 3 (each copying from a holder on a miss,
sha256 checked, and keeping the copy)."""

from __future__ import annotations

import asyncio
import hashlib
import time

import redis.asyncio as aioredis

from tests.cluster.test_hosts import expected_mode
from tests.support.attachment_files import download, pdf_document, png_with_gps, upload
from tests.support.hosts import Hosts
from tests.support.peers import Peer, new_user, token_for


async def holders(redis: aioredis.Redis, sha: str) -> set[bytes]:
    return await redis.smembers(f"tt:blob:{sha}")


async def wait_until(read, done, timeout: float = 60.0):
    """Poll `read()` until `done(value)`; the value (fails after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await read()
        if done(value):
            return value
        assert time.monotonic() < deadline, value
        await asyncio.sleep(0.1)


async def test_file_uploaded_on_host_1_downloads_on_hosts_2_and_3(tmp_path) -> None:
    peers: list[Peer] = []
    async with Hosts(3, tmp_path) as cluster:
        assert cluster.mode == expected_mode(), cluster.reason
        redis = aioredis.from_url(cluster.redis_url)
        try:
            buyer, supplier = new_user("buyer", "en"), new_user("supplier", "es")
            peers.append(await Peer(buyer).connect(cluster[0].url))
            peers.append(await Peer(supplier).connect(cluster[1].url))
            created = await peers[0].call("conversation.create", {"participants": [supplier.id]})
            cid = created["conversation"]["id"]
            photo, drawing = png_with_gps(), pdf_document()
            uploaded = []
            for name, data in (("sample.png", photo), ("drawing.pdf", drawing)):
                status, body = await upload(cluster[0].url, token_for(buyer), cid, name, data)
                assert status == 201, body
                uploaded.append(body["attachment"])
            png, pdf = uploaded
            for sha in (png["sha256"], pdf["sha256"]):  # a second copy on another host
                await wait_until(lambda sha=sha: holders(redis, sha), lambda h: len(h) == 2)
                assert b"host1" in await redis.smembers(f"tt:blob:{sha}")

            # the supplier's message.send on host 2 carries the files uploaded through host 1
            ack = await peers[0].call(
                "message.send",
                {"conversation_id": cid, "client_id": "b1", "attachments": [png["id"], pdf["id"]]},
            )
            assert ack["ok"], ack
            got = await peers[1].wait_for("message.new")
            assert got["message"]["attachments"] == [png, pdf]

            status, body, _ = await download(
                cluster[1].url, token_for(supplier), f"/api/attachments/{pdf['id']}"
            )
            assert status == 200 and body == drawing  # from host 2's address, byte for byte
            status, thumb, _ = await download(
                cluster[1].url, token_for(supplier), f"/api/attachments/{png['id']}/thumbnail"
            )
            assert status == 200 and thumb[:3] == b"\xff\xd8\xff"
            assert b"host2" in await redis.smembers(f"tt:blob:{pdf['sha256']}")

            cluster[0].kill()  # kill -9 host 1: host 3 copies from host 2 now
            status, body, _ = await download(
                cluster[2].url, token_for(buyer), f"/api/attachments/{png['id']}"
            )
            assert status == 200 and hashlib.sha256(body).hexdigest() == png["sha256"]
            status, body, _ = await download(
                cluster[2].url, token_for(supplier), f"/api/attachments/{pdf['id']}"
            )
            assert status == 200 and body == drawing
            outsider = new_user()
            status, _, _ = await download(
                cluster[2].url, token_for(outsider), f"/api/attachments/{pdf['id']}"
            )
            assert status == 403
            # host 3 keeps what it served; the drawing is on both hosts that served it
            assert b"host3" in await redis.smembers(f"tt:blob:{png['sha256']}")
            assert {b"host2", b"host3"} <= await redis.smembers(f"tt:blob:{pdf['sha256']}")
            assert any("fetched blob" in h.log() for h in cluster.hosts[1:])
        finally:
            for peer in peers:
                await peer.close()
            await redis.aclose()
