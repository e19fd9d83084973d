"""Three TradeTalk hosts on one Redis (network namespaces, or 127.0.0.x where they can't be made):
chat translated across hosts, presence across hosts, kill -9 of one host."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.support.hosts import LOOPBACK, NETNS, Hosts, Network, clean_stale, ip, namespaces
from tests.support.peers import Peer, new_user


def expected_mode() -> str:
    """Namespaces as root (CI), unless the loopback fallback is asked for."""
    if os.environ.get("TRADETALK_TEST_HOSTS") == LOOPBACK or os.geteuid() != 0:
        return LOOPBACK
    return NETNS


async def send(peer: Peer, cid: str, text: str, client_id: str) -> dict:
    ack = await peer.call(
        "message.send", {"conversation_id": cid, "client_id": client_id, "text": text}
    )
    assert ack["ok"], ack
    return ack["message"]


async def test_chat_and_presence_across_three_hosts_survive_kill_9(tmp_path) -> None:
    peers: list[Peer] = []
    async with Hosts(3, tmp_path, heartbeat_s=3.0) as cluster:
        assert cluster.mode == expected_mode(), cluster.reason
        assert len({h.address for h in cluster.hosts}) == 3
        for i, host in enumerate(cluster.hosts):
            assert host.node_id == f"host{i + 1}"
            assert host.server.env["TRADETALK_MEDIA_ADDRESS"] == host.address
            # `ip netns exec` execs: the pid the harness holds is the server itself, inside
            # its own namespace (so SIGTERM/SIGKILL reach the server, not a wrapper)
            cmdline = Path(f"/proc/{host.pid}/cmdline").read_bytes().split(b"\0")
            assert b"server.cli" in cmdline and b"serve" in cmdline, cmdline
            if cluster.mode == NETNS:
                assert os.readlink(f"/proc/{host.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        try:
            buyer = await Peer(new_user("buyer", "en")).connect(cluster[0].url)
            supplier = await Peer(new_user("supplier", "es")).connect(cluster[1].url)
            agent = await Peer(new_user("agent", "en")).connect(cluster[2].url)
            peers += [buyer, supplier, agent]
            ack = await buyer.call(
                "conversation.create", {"participants": [supplier.id, agent.id], "title": "Bolts"}
            )
            cid = ack["conversation"]["id"]
            await supplier.wait_for("inbox.update", lambda u: u["conversation"]["id"] == cid)

            sent = await send(buyer, cid, "The price is too high.", "b1")
            got = (await supplier.wait_for("message.new"))["message"]
            assert got == sent and got["lang"] == "en"
            assert "precio" in got["translations"]["es"].lower(), got
            reply = await send(supplier, cid, "El precio es demasiado alto.", "s1")
            back = await buyer.wait_for("message.new", lambda e: e["message"]["id"] == reply["id"])
            assert "price" in back["message"]["translations"]["en"].lower(), back
            await agent.wait_for("message.new", lambda e: e["message"]["id"] == reply["id"])

            # Presence across hosts: the agent's socket on host 3 is seen online from host 1.
            joined = await buyer.call("conversation.join", {"conversation_id": cid})
            assert joined["online"] == {buyer.id: True, supplier.id: True, agent.id: True}

            cluster[2].kill()  # kill -9 host 3's server
            killed = time.monotonic()
            offline = await buyer.wait_for(
                "presence",
                lambda e: e["user_id"] == agent.id and e["online"] is False,
                timeout=cluster.heartbeat_s * 4 / 3 + 5,
            )
            assert offline["online"] is False
            took = time.monotonic() - killed
            beat = cluster.heartbeat_s
            print(f"[hosts] agent offline {took:.1f} s after kill -9 (heartbeat {beat:g} s)")

            # Hosts 1 and 2 keep serving, both ways, translated.
            after = await send(buyer, cid, "We can ship tomorrow.", "b2")
            seen = await supplier.wait_for(
                "message.new", lambda e: e["message"]["id"] == after["id"]
            )
            assert seen["message"]["translations"]["es"] != "We can ship tomorrow."
            more = await send(supplier, cid, "Gracias.", "s2")
            await buyer.wait_for("message.new", lambda e: e["message"]["id"] == more["id"])
            joined = await buyer.call("conversation.join", {"conversation_id": cid})
            assert joined["online"][agent.id] is False and joined["online"][supplier.id] is True

            # SIGTERM: host 2's server exits cleanly (exit code 0)
            await supplier.close()
            assert await asyncio.to_thread(cluster[1].terminate, 20) == 0
            assert not cluster[1].alive()
        finally:
            for peer in peers:
                await peer.close()
    assert cluster.leftovers() == []
    if cluster.mode == NETNS:
        assert not any(name.startswith(cluster.run) for name in namespaces())


async def test_loopback_fallback_serves_chat_across_processes(tmp_path) -> None:
    """The fallback that runs where namespaces can't be made: 127.0.0.2 and .3."""
    host_env = [{}, {"TRADETALK_MEDIA": "0", "TRADETALK_NODE_ID": "signal-2"}]
    async with Hosts(2, tmp_path, mode=LOOPBACK, host_env=host_env) as cluster:
        assert cluster.mode == LOOPBACK and cluster.network is None
        assert [h.address for h in cluster.hosts] == ["127.0.0.2", "127.0.0.3"]
        assert [h.node_id for h in cluster.hosts] == ["host1", "signal-2"]
        assert [h.server.env.get("TRADETALK_MEDIA") for h in cluster.hosts] == [None, "0"]
        assert cluster[1].server.env["TRADETALK_MEDIA_ADDRESS"] == "127.0.0.3"
        buyer = await Peer(new_user("buyer", "en")).connect(cluster[0].url)
        supplier = await Peer(new_user("supplier", "es")).connect(cluster[1].url)
        try:
            ack = await buyer.call("conversation.create", {"participants": [supplier.id]})
            cid = ack["conversation"]["id"]
            sent = await send(buyer, cid, "Hello", "h")
            assert (await supplier.wait_for("message.new"))["message"] == sent
        finally:
            await buyer.close()
            await supplier.close()


@pytest.mark.skipif(
    expected_mode() != NETNS or shutil.which("ip") is None,
    reason="namespaces not in use: not root, or TRADETALK_TEST_HOSTS=loopback",
)
async def test_stale_namespaces_of_a_dead_run_are_removed(tmp_path) -> None:
    """A crashed run's namespace and bridge (owner pid gone) are removed; a live run's are kept."""
    dead_pid = 4_000_000 + os.getpid() % 100_000  # above pid_max on this kind of machine
    assert not os.path.exists(f"/proc/{dead_pid}")
    stale = Network(f"tth{dead_pid:06x}00", 1)
    stale.create()
    mine = Network(f"tth{os.getpid():06x}ff", 1)
    mine.create()
    try:
        assert stale.namespace(0) in namespaces()
        removed = clean_stale()
        assert set(stale.names()) <= set(removed), removed
        assert stale.namespace(0) not in namespaces()
        assert stale.bridge not in ip("-o", "link", "show")
        assert mine.namespace(0) in namespaces()
    finally:
        stale.remove()
        mine.remove()
    assert mine.namespace(0) not in namespaces()
