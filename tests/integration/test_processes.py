"""Server processes: several on one Redis, kill -9 and restart, Ctrl-C, embedded Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.storage.embedded_redis import free_port
from tests.support.peers import Peer, ServerProcess, new_user


def redis_pid(data_dir: Path) -> int:
    """The pid the embedded redis wrote."""
    return int((data_dir / "redis" / "redis.pid").read_text().strip())


def alive(pid: int) -> bool:
    """Whether a process exists (and isn't a zombie)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


@pytest.fixture
async def peers():
    """Peers to close after the test."""
    made: list[Peer] = []
    yield made
    for peer in made:
        await peer.close()


async def test_two_processes_on_one_redis_deliver_to_each_other(tmp_path, redis_server, peers):
    one = await ServerProcess(tmp_path / "one", redis_server.url, free_port()).start()
    two = await ServerProcess(tmp_path / "two", redis_server.url, free_port()).start()
    try:
        buyer = await Peer(new_user(lang="en")).connect(one.url)
        supplier = await Peer(new_user(lang="zh", role="supplier")).connect(two.url)
        peers += [buyer, supplier]
        conv = (await buyer.call("conversation.create", {"participants": [supplier.id]}))[
            "conversation"
        ]
        await supplier.wait_for("inbox.update", lambda u: u["conversation"]["id"] == conv["id"])
        sent = await buyer.call(
            "message.send", {"conversation_id": conv["id"], "client_id": "a", "text": "hello"}
        )
        assert (await supplier.wait_for("message.new"))["message"] == sent["message"]
        reply = await supplier.call(
            "message.send", {"conversation_id": conv["id"], "client_id": "b", "text": "你好"}
        )
        got = await buyer.wait_for("message.new", lambda e: e["message"]["id"] == 2)
        assert got["message"] == reply["message"]
        await supplier.call("typing", {"conversation_id": conv["id"], "active": True})
        assert (await buyer.wait_for("typing"))["user_id"] == supplier.id
        # Presence across processes: the supplier's last socket closes on process two.
        await supplier.close()
        gone = await buyer.wait_for("presence", lambda e: e["user_id"] == supplier.id)
        assert gone["online"] is False
        await asyncio.sleep(0.3)
        assert len(buyer.events["message.new"]) == 2
    finally:
        one.kill()
        two.kill()


async def test_kill_9_then_restart_keeps_every_acked_message(tmp_path, peers):
    """Embedded Redis: kill -9 the server after acks; a restart serves all of them, in order."""
    port = free_port()
    server = await ServerProcess(tmp_path, None, port).start()
    first_redis = redis_pid(tmp_path)
    buyer = await Peer(new_user()).connect(server.url)
    supplier = await Peer(new_user(lang="es")).connect(server.url)
    peers += [buyer, supplier]
    conv = (await buyer.call("conversation.create", {"participants": [supplier.id]}))[
        "conversation"
    ]
    cid = conv["id"]
    for i in range(1, 4):
        ack = await buyer.call(
            "message.send", {"conversation_id": cid, "client_id": f"m{i}", "text": f"t{i}"}
        )
        assert ack["ok"]
    await supplier.wait_for("message.new", lambda e: e["message"]["id"] == 3)
    seen = max(e["message"]["id"] for e in supplier.events["message.new"])
    await supplier.close()
    acked = []
    for i in range(4, 34):
        ack = await buyer.call(
            "message.send", {"conversation_id": cid, "client_id": f"m{i}", "text": f"t{i}"}
        )
        acked.append(ack["message"])
    server.kill()
    for _ in range(200):  # the embedded redis follows its parent down (PDEATHSIG)
        if not alive(first_redis):
            break
        await asyncio.sleep(0.05)
    assert not alive(first_redis)

    server = await ServerProcess(tmp_path, None, port).start()
    try:
        back = await Peer(supplier.identity).connect(server.url)
        peers.append(back)
        replay = await back.call("conversation.join", {"conversation_id": cid, "since": seen})
        assert replay["messages"] == acked
        assert [m["id"] for m in replay["messages"]] == list(range(4, 34))
        again = await back.call(
            "message.send", {"conversation_id": cid, "client_id": "m3", "text": "t3"}
        )
        assert again["message"]["id"] == 34  # a new sender's client_id; ids continue in order
        await buyer.close()
        retry = await Peer(buyer.identity).connect(server.url)
        peers.append(retry)
        dup = await retry.call(
            "message.send", {"conversation_id": cid, "client_id": "m20", "text": "t20"}
        )
        assert dup["duplicate"] is True and dup["message"]["id"] == 20
        inbox = await back.call("inbox.list", {})
        assert inbox["conversations"][0]["last_message"]["id"] == 34
    finally:
        assert server.interrupt() == 0


async def test_ctrl_c_stops_server_and_embedded_redis(tmp_path):
    server = await ServerProcess(tmp_path, None, free_port()).start()
    pid = redis_pid(tmp_path)
    assert alive(pid)
    assert server.interrupt() == 0
    assert not alive(pid)
    assert (tmp_path / "redis" / "appendonlydir").is_dir() or any(
        p.name.startswith("appendonly") for p in (tmp_path / "redis").iterdir()
    )
