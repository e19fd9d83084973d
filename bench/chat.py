"""Chat benchmark: end-to-end latency and highest sustained rate, TradeTalk vs a bare relay.

N clients in two-party conversations send at a fixed total rate; the partner's `message.new`
arrival time gives end-to-end latency. Each server runs in its own process on this machine (the
clients share the bench process); the same client code drives both servers, so the ratio shows
what auth, validation, Redis storage and cross-process fan-out cost.

    python -m bench.chat [--pairs 10] [--seconds 4] [--rates 200,500,1000,1500,2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import socketio

from server.storage.embedded_redis import EmbeddedRedis, free_port
from server.tokens import Identity, issue_token

REPO = Path(__file__).resolve().parents[1]

SECRET = "bench-secret"


async def wait_healthy(url: str, proc: subprocess.Popen, path: str) -> None:
    """Wait until the server answers 200 (a TradeTalk node: once it is warm, so its warm-up
    does not compete with the measurement)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(1200):
            if proc.poll() is not None:
                raise RuntimeError("server exited early")
            try:
                async with http.get(url + path) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


class Pair:
    """Two connected clients; `a` sends to `b`."""

    def __init__(self, a: socketio.AsyncClient, b: socketio.AsyncClient, payload: dict) -> None:
        self.a, self.b, self.payload = a, b, payload


async def connect_pairs(kind: str, url: str, pairs: int) -> tuple[list[Pair], dict[str, float]]:
    """Connect clients, set up conversations; record arrivals into `arrivals` (client_id->t)."""
    arrivals: dict[str, float] = {}
    result = []
    for i in range(pairs):
        clients = []
        ids = [f"bench{i}a", f"bench{i}b"]
        for uid in ids:
            client = socketio.AsyncClient(reconnection=False)

            @client.on("message.new")
            async def on_new(data: dict) -> None:
                arrivals[data["message"]["client_id"]] = time.perf_counter()

            if kind == "tradetalk":
                token = issue_token(SECRET.encode(), Identity(uid, uid, "buyer", "en"), 3600)
                auth = {"token": token}
            else:
                auth = {"user": uid}
            await client.connect(url, auth=auth, transports=["websocket"])
            clients.append(client)
        if kind == "tradetalk":
            ack = await clients[0].call("conversation.create", {"participants": [ids[1]]})
            payload = {"conversation_id": ack["conversation"]["id"]}
        else:
            payload = {"to": ids[1]}
        result.append(Pair(clients[0], clients[1], payload))
    return result, arrivals


async def run_level(pairs: list[Pair], arrivals: dict, rate: float, seconds: float, tag: str):
    """Send at `rate` msgs/s in total for `seconds`; return (p50 ms, p99 ms, delivered/s)."""
    sent: dict[str, float] = {}
    interval = len(pairs) / rate
    total = int(rate * seconds)
    per_pair = total // len(pairs)

    async def sender(index: int, pair: Pair) -> None:
        start = time.perf_counter() + index * interval / len(pairs)
        for n in range(per_pair):
            due = start + n * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            cid = f"{tag}-{index}-{n}"
            sent[cid] = time.perf_counter()
            await pair.a.emit("message.send", {**pair.payload, "client_id": cid, "text": "bench"})

    began = time.perf_counter()
    await asyncio.gather(*(sender(i, p) for i, p in enumerate(pairs)))
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline and sum(c in arrivals for c in sent) < len(sent):
        await asyncio.sleep(0.05)
    elapsed = max(arrivals.get(c, 0) for c in sent) - began
    latencies = sorted((arrivals[c] - t) * 1000 for c, t in sent.items() if c in arrivals)
    delivered = len(latencies)
    if not latencies:
        return float("inf"), float("inf"), 0.0, 0
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return statistics.median(latencies), p99, delivered / elapsed, len(sent) - delivered


async def bench_server(kind: str, url: str, args) -> list[tuple]:
    """All rate levels against one server."""
    pairs, arrivals = await connect_pairs(kind, url, args.pairs)
    rows = []
    try:
        for level, rate in enumerate(args.rates):
            p50, p99, throughput, lost = await run_level(
                pairs, arrivals, rate, args.seconds, f"{kind}{level}-{rate:.0f}"
            )
            rows.append((kind, rate, p50, p99, throughput, lost))
            print(
                f"{kind:10} offered {rate:6.0f}/s  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
                f"delivered {throughput:7.0f}/s  lost {lost}",
                flush=True,
            )
            if p99 > 1000 or lost:
                break
    finally:
        for pair in pairs:
            await pair.a.disconnect()
            await pair.b.disconnect()
    return rows


def sustained(rows: list[tuple]) -> float:
    """Highest offered rate delivered in full with p99 under 250 ms."""
    ok = [r[4] for r in rows if r[3] < 250 and r[5] == 0 and r[4] >= 0.95 * r[1]]
    return max(ok, default=0.0)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--rates", default="100,250,500,750,1000,1500,2000,3000,4000")
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        redis = EmbeddedRedis(Path(tmp) / "redis")
        redis.start()
        procs = []
        try:
            ours_port, relay_port = free_port(), free_port()
            env = {
                **os.environ,
                "PORT": str(ours_port),
                "REDIS_URL": redis.url,
                "TRADETALK_DATA": tmp,
                "TRADETALK_SECRET": SECRET,
                "TRADETALK_RATE_PER_SECOND": "100000",
                "TRADETALK_RATE_BURST": "100000",
                "TRADETALK_PROVISION": "off",  # no model downloads during a measurement
            }
            ours = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve"],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            relay = subprocess.Popen(
                [sys.executable, "-m", "bench.relay_server", str(relay_port)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs = [ours, relay]
            await wait_healthy(f"http://127.0.0.1:{ours_port}", ours, "/healthz")
            await wait_healthy(
                f"http://127.0.0.1:{relay_port}", relay, "/socket.io/?EIO=4&transport=polling"
            )
            print(f"{args.pairs} two-party conversations, {args.seconds:.0f} s per level\n")
            relay_rows = await bench_server("relay", f"http://127.0.0.1:{relay_port}", args)
            ours_rows = await bench_server("tradetalk", f"http://127.0.0.1:{ours_port}", args)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
            redis.stop()

    print("\nsummary (at the lowest common offered rate, and highest sustained rate)")
    base, mine = relay_rows[0], ours_rows[0]
    print(f"{'server':10} {'p50 ms':>8} {'p99 ms':>8} {'sustained msg/s':>16}")
    for name, row, rows in (("relay", base, relay_rows), ("tradetalk", mine, ours_rows)):
        print(f"{name:10} {row[2]:8.1f} {row[3]:8.1f} {sustained(rows):16.0f}")
    ratio = sustained(ours_rows) / sustained(relay_rows) if sustained(relay_rows) else 0
    print(f"tradetalk/relay: p50 x{mine[2] / base[2]:.2f}, sustained rate x{ratio:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
