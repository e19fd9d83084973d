"""kill -9 right after uploads were answered: a restarted server (embedded Redis, same data
dir) serves every answered file byte for byte, with its thumbnail, and sends it in a message."""

from __future__ import annotations

import asyncio
import hashlib

from server.storage.embedded_redis import free_port
from tests.integration.test_processes import alive, redis_pid
from tests.support.attachment_files import download, pdf_document, png_with_gps, upload
from tests.support.peers import Peer, ServerProcess, new_user, token_for


async def test_kill_9_after_upload_answers_loses_nothing(tmp_path) -> None:
    port = free_port()
    server = await ServerProcess(tmp_path, None, port).start()
    buyer, supplier = new_user(), new_user(lang="es")
    peers = [await Peer(buyer).connect(server.url), await Peer(supplier).connect(server.url)]
    try:
        created = await peers[0].call("conversation.create", {"participants": [supplier.id]})
        cid = created["conversation"]["id"]
        files = [(f"photo{i}.png", png_with_gps(color=c)) for i, c in enumerate(["red", "teal"])]
        files.append(("drawing.pdf", pdf_document()))
        answered = []
        for name, data in files:
            status, body = await upload(server.url, token_for(buyer), cid, name, data)
            assert status == 201, body
            answered.append(body["attachment"])
        first_redis = redis_pid(tmp_path)
        server.kill()  # kill -9 at once after the last answer
        for _ in range(200):
            if not alive(first_redis):
                break
            await asyncio.sleep(0.05)
        for peer in peers:
            await peer.close()

        server = await ServerProcess(tmp_path, None, port).start()
        for meta in answered:
            status, got, _ = await download(
                server.url, token_for(supplier), f"/api/attachments/{meta['id']}"
            )
            assert status == 200 and hashlib.sha256(got).hexdigest() == meta["sha256"], meta
            assert len(got) == meta["size"]
            status, thumb, headers = await download(
                server.url, token_for(supplier), f"/api/attachments/{meta['id']}/thumbnail"
            )
            assert status == 200 and headers["Content-Type"] == "image/jpeg" and thumb
        back = await Peer(buyer).connect(server.url)
        peers.append(back)
        ack = await back.call(
            "message.send",
            {"conversation_id": cid, "client_id": "after", "attachments": [answered[2]["id"]]},
        )
        assert ack["ok"] and ack["message"]["attachments"] == [answered[2]], ack
    finally:
        for peer in peers:
            await peer.close()
        server.kill()
