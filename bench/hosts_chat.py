"""Chat latency across hosts: buyer on host 1 -> supplier on host 2, vs both on host 1, same run.

Uses the tests' multi-host harness (tests/support/hosts.py): network namespaces on one bridge as
root, else processes on 127.0.0.x. Prints the harness's own timings (create namespaces, start
servers, remove namespaces), p50/p99 of `message.send` -> partner's `message.new` for both
placements (one message at a time, Apertium en->es translating), and what `call.get` /
`call.join` answer today from a host that did not start the call (issue 12).

    sudo .venv/bin/python -m bench.hosts_chat [--messages 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from tests.support.hosts import Hosts
from tests.support.peers import Peer, new_user

REPO = Path(__file__).resolve().parents[1]


async def latencies(buyer: Peer, supplier: Peer, count: int, tag: str) -> list[float]:
    """Milliseconds from send to the partner's message.new, one message at a time."""
    ack = await buyer.call("conversation.create", {"participants": [supplier.id]})
    cid = ack["conversation"]["id"]
    result = []
    for n in range(count):
        text = f"The price of lot {n} is too high."
        began = time.perf_counter()
        await buyer.sio.emit(
            "message.send", {"conversation_id": cid, "client_id": f"{tag}{n}", "text": text}
        )
        await supplier.wait_for(
            "message.new", lambda e, c=f"{tag}{n}": e["message"]["client_id"] == c
        )
        result.append((time.perf_counter() - began) * 1000)
    return result


def row(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{name:34} n={len(values):4}  p50 {statistics.median(ordered):6.1f} ms  p99 {p99:6.1f} ms"
    )


async def calls_across_hosts(buyer: Peer, supplier: Peer) -> None:
    """What a socket on another host is told about a call started on host 1."""
    ack = await buyer.call("conversation.create", {"participants": [supplier.id]})
    cid = ack["conversation"]["id"]
    started = await buyer.call("call.start", {"conversation_id": cid})
    print("call.start on host1:", {k: started.get(k) for k in ("ok", "error")})
    print("call.get from host2:", await supplier.call("call.get", {"conversation_id": cid}))
    call_id = started.get("call", {}).get("id")
    offer = "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    joined = await supplier.call("call.join", {"call_id": call_id, "sdp": offer, "type": "offer"})
    print("call.join from host2:", joined)
    await buyer.call("call.end", {"call_id": call_id})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--mode", choices=["netns", "loopback"], default=None)
    args = parser.parse_args()
    env = {"TRADETALK_RATE_PER_SECOND": "100000", "TRADETALK_RATE_BURST": "100000"}
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        cluster = Hosts(3, Path(tmp), mode=args.mode, env=env)
        async with cluster:
            up = time.perf_counter() - began
            print(cluster.describe())
            peers = [
                await Peer(new_user("buyer", "en")).connect(cluster[0].url),
                await Peer(new_user("supplier", "es")).connect(cluster[1].url),
                await Peer(new_user("buyer", "en")).connect(cluster[0].url),
                await Peer(new_user("supplier", "es")).connect(cluster[0].url),
            ]
            try:
                await latencies(peers[0], peers[1], 10, "warm-a")  # warm caches, connections
                await latencies(peers[2], peers[3], 10, "warm-b")
                across, same = [], []
                for rnd in range(4):  # interleaved, so load hits both rows alike
                    n = args.messages // 4
                    across += await latencies(peers[0], peers[1], n, f"x{rnd}-")
                    same += await latencies(peers[2], peers[3], n, f"s{rnd}-")
                await calls_across_hosts(peers[0], peers[1])
            finally:
                for peer in peers:
                    await peer.close()
        down = time.perf_counter() - began - up
    t = cluster.timings
    print(f"\nmode: {cluster.mode} ({cluster.reason})")
    if "create_network_s" in t:
        print(f"create bridge + 3 namespaces   {t['create_network_s'] * 1000:7.0f} ms")
    print(f"start 3 servers (parallel)     {t['start_servers_s'] * 1000:7.0f} ms")
    print(f"whole bring-up (net+redis+srv) {up * 1000:7.0f} ms")
    if "remove_network_s" in t:
        print(f"remove 3 namespaces + bridge   {t['remove_network_s'] * 1000:7.0f} ms")
    print(f"whole tear-down                {down * 1000:7.0f} ms\n")
    print(row("buyer host1 -> supplier host2", across))
    print(row("baseline: both on host1", same))


if __name__ == "__main__":
    asyncio.run(main())
