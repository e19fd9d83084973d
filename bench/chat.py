"""Chat benchmark: end-to-end latency and highest sustained rate, TradeTalk vs a bare relay.

N clients in two-party conversations send at a fixed total rate; the partner's `message.new`
arrival time gives end-to-end latency. Each server runs in its own process on this machine (the
clients share the bench process); the same client code drives every server, so the ratio shows
what auth, validation, Redis storage (`appendfsync always`) and cross-process fan-out cost.
`minimal` (`bench/minimal_server.py`, left out with `--no-minimal`) is the relay plus one
durable Redis write per message and the frames TradeTalk's protocol sends for it, written the
plain python-socketio way: what the guarantees and the protocol cost on this stack before any
of TradeTalk's own code; `vs minimal` compares to it.

    python -m bench.chat [--pairs 10] [--seconds 4] [--rates 100,250,500,...]
                         [--baseline REV [--baseline-without hiredis]] [--profile RATE,...]
                         [--tmpfs-aof] [--nodes N] [--no-minimal]

The servers take turns at each offered rate (relay, then the baseline, then this tree), so a
load drift on the shared machine hits all of them alike; a server leaves the run at the first
rate it cannot hold (p99 > 1 s or a lost message). Each TradeTalk server has its own embedded
Redis. `cpu ms/msg` is the server process's CPU per delivered message, `clients` the bench
process's (all the clients of that server; they share the 2 cores with it).

`--baseline REV` adds another git revision's server (`git archive REV`), measured beside this
tree's in the same run; `--baseline-without MOD,...` runs it with those modules hidden (as it
ran before they were installed: `hiredis`, which redis-py uses whenever it is there).
`--profile RATE,...` samples each TradeTalk server with py-spy during the levels offered at
those rates and prints, per level, where the event loop's thread spent its samples (the raw
stacks stay in $TMPDIR/chat-profile-SERVER-RATE.txt).
`--tmpfs-aof` (MEASUREMENT ONLY, never a deployment setting) adds this tree's server once more,
named `tmpfs-aof`, whose embedded Redis keeps its append-only file on /dev/shm (RAM): still
`appendfsync always`, but an fsync there costs next to nothing, so the difference to
`tradetalk` is what the disk's fsync costs and what is left is the code's own cost.
`--nodes N` adds this tree's server once more as N processes on ONE embedded Redis (named
`tradetalk×N`): how a deployment spreads chat over a machine's cores (the cluster: any node
serves any conversation). Each client connects to a node drawn at random, as behind a load
balancer, so about (N-1)/N of the conversations span two nodes and reach the partner through
Redis pub/sub; `cpu ms/msg` then adds up every node's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import socketio

from bench.call_harness import process_cpu_s
from bench.revisions import baseline_tree
from server.storage.embedded_redis import EmbeddedRedis, free_port
from server.tokens import Identity, issue_token

REPO = Path(__file__).resolve().parents[1]

SECRET = "bench-secret-of-thirty-two-bytes!"
RELAY_READY = "/socket.io/?EIO=4&transport=polling"


@dataclass
class Server:
    """One server under test: its process, its address and its measured rows."""

    name: str
    kind: str  # "relay", "minimal" (clients talk to it as to the relay) or "tradetalk"
    url: str
    proc: subprocess.Popen
    rows: list[tuple] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    arrivals: dict[str, float] = field(default_factory=dict)
    profiles: dict[float, collections.Counter] = field(default_factory=dict)
    done: bool = False
    #: further nodes of the same server (`--nodes`): (process, url), sharing the first's Redis
    more: list[tuple[subprocess.Popen, str]] = field(default_factory=list)

    def urls(self) -> list[str]:
        """Every node's address (the first is `url`)."""
        return [self.url, *(url for _proc, url in self.more)]

    def cpu_s(self) -> float:
        """CPU seconds used so far by every node's process."""
        return sum(process_cpu_s(p.pid) for p in (self.proc, *(p for p, _url in self.more)))


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


async def connect_pairs(server: Server, count: int) -> None:
    """Connect clients, set up conversations; arrivals go to `server.arrivals` (client_id->t).
    With several nodes each client picks one at random (the same draw in every run)."""
    urls, draw = server.urls(), random.Random(7)
    for i in range(count):
        clients = []
        ids = [f"bench{i}a", f"bench{i}b"]
        for uid in ids:
            client = socketio.AsyncClient(reconnection=False)

            @client.on("message.new")
            async def on_new(data: dict) -> None:
                server.arrivals[data["message"]["client_id"]] = time.perf_counter()

            if server.kind == "tradetalk":
                token = issue_token(SECRET.encode(), Identity(uid, uid, "buyer", "en"), 3600)
                auth = {"token": token}
            else:
                auth = {"user": uid}
            url = urls[draw.randrange(len(urls))]
            await client.connect(url, auth=auth, transports=["websocket"])
            clients.append(client)
        if server.kind == "tradetalk":
            ack = await clients[0].call("conversation.create", {"participants": [ids[1]]})
            payload = {"conversation_id": ack["conversation"]["id"]}
        else:
            payload = {"to": ids[1]}
        server.pairs.append(Pair(clients[0], clients[1], payload))


async def redis_commands(server: Server) -> int:
    """Read events the server's embedded Redis has processed so far (0 for the relay): about
    one per round trip the server made (a pipeline is one; this reading's own few: noise)."""
    redis = getattr(server.proc, "redis", None)
    if redis is None:
        return 0
    client = aioredis.Redis.from_url(redis.url)
    try:
        stats = await client.info("stats")
        return int(stats["total_reads_processed"])
    finally:
        await client.aclose()


def redis_cpu_s(server: Server) -> float:
    """CPU seconds used so far by the server's embedded Redis (0 for the relay)."""
    redis = getattr(server.proc, "redis", None)
    process = getattr(redis, "process", None)
    return process_cpu_s(process.pid) if process is not None else 0.0


async def run_level(server: Server, rate: float, seconds: float, tag: str) -> tuple:
    """Send at `rate` msgs/s in total for `seconds`; the row
    (server, rate, p50 ms, p99 ms, delivered/s, lost, server cpu ms per message, p95 ms,
    the clients' cpu ms per message, Redis reads per message (0 for the relay), Redis's own
    cpu ms per message (its fsyncs' kernel time included))."""
    pairs, arrivals = server.pairs, server.arrivals
    sent: dict[str, float] = {}
    interval = len(pairs) / rate
    per_pair = int(rate * seconds) // len(pairs)

    async def sender(index: int, pair: Pair) -> None:
        start = time.perf_counter() + index * interval / len(pairs)
        for n in range(per_pair):
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            cid = f"{tag}-{index}-{n}"
            sent[cid] = time.perf_counter()
            await pair.a.emit("message.send", {**pair.payload, "client_id": cid, "text": "bench"})

    cpu_before, redis_before = server.cpu_s(), redis_cpu_s(server)
    clients_before = time.process_time()  # the bench process: every client of this server
    commands_before = await redis_commands(server)
    began = time.perf_counter()
    await asyncio.gather(*(sender(i, p) for i, p in enumerate(pairs)))
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline and sum(c in arrivals for c in sent) < len(sent):
        await asyncio.sleep(0.05)
    cpu = server.cpu_s() - cpu_before
    redis_cpu = redis_cpu_s(server) - redis_before
    clients_cpu = time.process_time() - clients_before
    commands = await redis_commands(server) - commands_before
    elapsed = max(arrivals.get(c, 0) for c in sent) - began
    latencies = sorted((arrivals[c] - t) * 1000 for c, t in sent.items() if c in arrivals)
    if not latencies:
        inf = float("inf")
        return (server.name, rate, inf, inf, 0.0, len(sent), 0.0, inf, 0.0, 0.0, 0.0)
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    delivered = len(latencies)
    return (
        server.name,
        rate,
        statistics.median(latencies),
        p99,
        delivered / elapsed,
        len(sent) - delivered,
        cpu * 1000 / delivered,
        p95,
        clients_cpu * 1000 / delivered,
        commands / delivered,
        redis_cpu * 1000 / delivered,
    )


def sustained(rows: list[tuple]) -> float:
    """Highest offered rate delivered in full with p99 under 250 ms (the relay's is often the
    highest rate offered: the default levels go to 8,000 msg/s so that its figure is not cut
    short at 4,000, which halved the ratio's gap in earlier runs)."""
    ok = [r[4] for r in rows if r[3] < 250 and r[5] == 0 and r[4] >= 0.95 * r[1]]
    return max(ok, default=0.0)


def py_spy() -> str:
    """The py-spy executable (beside this Python, or on PATH)."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    return found


async def record_profile(server: Server, rate: float, seconds: float, out: Path) -> None:
    """Sample the server's event-loop thread with py-spy for `seconds`; add the stacks up."""
    proc = await asyncio.create_subprocess_exec(
        py_spy(),
        "record",
        "-p",
        str(server.proc.pid),
        "-d",
        str(max(1, int(seconds))),
        "-r",
        "200",
        "-f",
        "raw",
        "--nonblocking",  # never pause the server: the level's numbers stay as they are
        "-o",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await proc.wait()
    stacks: collections.Counter = collections.Counter()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "run_forever" in stack:  # the event loop's thread (not idle pool threads)
            stacks[stack] += int(count)
    server.profiles[rate] = stacks


# Where a sample of the event loop's thread is spent: the first part whose frame is on its stack.
PARTS = (
    ("rate limit token", ("UserRateLimit.allow",)),
    ("read before the send (prepare)", ("Store.prepare_send",)),
    ("store the message (Lua, fsync)", ("Store.add_message",)),
    ("this process's fan-out emits", ("PooledRedisManager._handle_emit",)),
    ("publish to other processes", ("PooledRedisManager.emit_batch", "._publish_batches")),
    # batched (server/storage/batching.py): the token and the store run in the batch's task
    ("token + store, batched (Lua)", ("BatchedScript._send",)),
    ("other handler work (validation...)", ("Dispatcher.register.<locals>.entry",)),
    ("ack packet", ("AsyncServer._send_packet",)),
    ("websocket writes", ("_websocket_handler.<locals>.writer",)),
    ("packet decode (engine.io, JSON)", ("_handle_eio_message", "WebSocketResponse.receive")),
    ("pub/sub listener", ("AsyncPubSubManager._thread",)),
)


def print_profile(server: Server, rate: float, top: int) -> None:
    """Where the event loop's time went at `rate`, by part of the chat path, and the frames
    with the most own samples."""
    stacks = server.profiles[rate]
    total = sum(stacks.values()) or 1
    own: collections.Counter = collections.Counter()
    parts: collections.Counter = collections.Counter()
    for stack, count in stacks.items():
        own[stack.rsplit(";", 1)[-1]] += count
        part = next(
            (n for n, marks in PARTS if any(m in stack for m in marks)), "event loop, other"
        )
        parts[part] += count
    print(
        f"\nprofile of {server.name} at {rate:.0f} msg/s offered "
        f"({total} samples of the event loop's thread)"
    )
    for part, count in parts.most_common():
        print(f"  {100 * count / total:5.1f}%  {part}")
    print("  frames with the most own time:")
    for frame, count in own.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {frame}")


def hiding(modules: list[str], root: Path) -> list[str]:
    """A folder of stubs that make `import MODULE` fail for each of `modules` (put first on a
    server's PYTHONPATH: it runs as before those packages were installed); [] for none."""
    if not modules:
        return []
    root.mkdir(parents=True, exist_ok=True)
    for name in modules:
        (root / f"{name}.py").write_text(f"raise ImportError('{name} hidden by bench.chat')\n")
    return [str(root)]


def start_tradetalk(
    tree: Path,
    root: Path,
    env: dict[str, str],
    hide: tuple[str, ...] | list[str] = (),
    redis_dir: Path | None = None,
    redis: EmbeddedRedis | None = None,
) -> tuple[subprocess.Popen, str]:
    """`tradetalk serve` from `tree` on its own embedded Redis under `root` (or `redis_dir`),
    or on `redis` (another node's, left running: its first node stops it); (process, url).
    `hide`: modules the server must not import (`hiding`)."""
    shared = redis is not None
    if redis is None:
        redis = EmbeddedRedis(redis_dir or root / "redis")
        redis.start()
    port = free_port()
    server_env = {
        **env,
        "PYTHONPATH": os.pathsep.join([*hiding(list(hide), root / "hidden"), str(tree)]),
        "PORT": str(port),
        "REDIS_URL": redis.url,
        "TRADETALK_DATA": str(root),
        "TRADETALK_SECRET": SECRET,
        "TRADETALK_RATE_PER_SECOND": "100000",
        "TRADETALK_RATE_BURST": "100000",
        "TRADETALK_PROVISION": "off",  # no model downloads during a measurement
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve"],
        cwd=tree,
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if not shared:
        proc.redis = redis  # type: ignore[attr-defined]  # stopped with the server
    return proc, f"http://127.0.0.1:{port}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument(
        "--rates", default="100,250,500,750,1000,1500,2000,2500,3000,4000,6000,8000"
    )
    parser.add_argument("--baseline", default="", help="a git revision measured beside this one")
    parser.add_argument(
        "--baseline-without",
        default="",
        help="modules hidden from the baseline server (e.g. hiredis: as before it was installed)",
    )
    parser.add_argument("--profile", default="", help="py-spy at these offered rates (a,b,...)")
    parser.add_argument(
        "--tmpfs-aof",
        action="store_true",
        help="MEASUREMENT ONLY: also this tree with its Redis AOF on /dev/shm (the fsync floor)",
    )
    parser.add_argument(
        "--no-minimal",
        action="store_true",
        help="leave out the minimal durable server (bench/minimal_server.py)",
    )
    parser.add_argument("--top", type=int, default=15, help="frames shown per profile list")
    parser.add_argument(
        "--nodes", type=int, default=1, help="also this tree as N nodes on one Redis (N > 1)"
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    profiled = {float(r) for r in args.profile.split(",") if r}

    servers: list[Server] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        tempfile.TemporaryDirectory(dir="/dev/shm", prefix="bench-chat-") as shm,
    ):
        root = Path(tmp)
        try:
            port = free_port()
            relay = subprocess.Popen(
                [sys.executable, "-m", "bench.relay_server", str(port)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            servers.append(Server("relay", "relay", f"http://127.0.0.1:{port}", relay))
            if not args.no_minimal:
                minimal_redis = EmbeddedRedis(root / "minimal-redis")
                minimal_redis.start()
                port = free_port()
                minimal_proc = subprocess.Popen(
                    [sys.executable, "-m", "bench.minimal_server", str(port), minimal_redis.url],
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                minimal_proc.redis = minimal_redis  # type: ignore[attr-defined]  # stopped with it
                servers.append(
                    Server("minimal", "minimal", f"http://127.0.0.1:{port}", minimal_proc)
                )
            trees = (
                [(f"@{args.baseline}", baseline_tree(args.baseline, root))] if args.baseline else []
            )
            hidden = [m for m in args.baseline_without.split(",") if m]
            for name, tree in [*trees, ("tradetalk", REPO)]:
                hide = hidden if name != "tradetalk" else []
                proc, url = start_tradetalk(tree, root / name, dict(os.environ), hide)
                servers.append(Server(name, "tradetalk", url, proc))
            if args.tmpfs_aof:  # measurement only: the AOF in RAM, fsync next to free
                proc, url = start_tradetalk(
                    REPO, root / "tmpfs", dict(os.environ), redis_dir=Path(shm) / "redis"
                )
                servers.append(Server("tmpfs-aof", "tradetalk", url, proc))
            if args.nodes > 1:  # the cluster on one machine: N processes, one Redis
                proc, url = start_tradetalk(REPO, root / "nodes-0", dict(os.environ))
                cluster = Server(f"tradetalk×{args.nodes}", "tradetalk", url, proc)
                for n in range(1, args.nodes):
                    cluster.more.append(
                        start_tradetalk(
                            REPO,
                            root / f"nodes-{n}",
                            dict(os.environ),
                            redis=proc.redis,  # type: ignore[attr-defined]
                        )
                    )
                servers.append(cluster)
            for server in servers:
                path = "/healthz" if server.kind == "tradetalk" else RELAY_READY
                for proc, url in [(server.proc, server.url), *server.more]:
                    await wait_healthy(url, proc, path)
                await connect_pairs(server, args.pairs)
            print(
                f"{args.pairs} two-party conversations, {args.seconds:g} s per level, "
                f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
            )
            for level, rate in enumerate(rates):
                for server in servers:
                    if server.done:
                        continue
                    work: list[Awaitable[Any]] = [
                        run_level(server, rate, args.seconds, f"{level}-{rate:.0f}")
                    ]
                    if rate in profiled and server.kind == "tradetalk":
                        out = (
                            Path(tempfile.gettempdir())
                            / f"chat-profile-{server.name}-{rate:.0f}.txt"
                        )
                        work.append(record_profile(server, rate, args.seconds, out))
                    row, *_ = await asyncio.gather(*work)
                    server.rows.append(row)
                    print(
                        f"{row[0]:14} offered {rate:6.0f}/s  p50 {row[2]:7.1f} ms  "
                        f"p95 {row[7]:7.1f} ms  p99 {row[3]:7.1f} ms  "
                        f"delivered {row[4]:7.0f}/s  lost {row[5]}  "
                        f"cpu {row[6]:5.2f} ms/msg  clients {row[8]:5.2f} ms/msg  "
                        f"redis {row[9]:4.2f} reads/msg {row[10]:4.2f} cpu ms/msg",
                        flush=True,
                    )
                    server.done = row[3] > 1000 or row[5] > 0
                if all(s.done for s in servers):
                    break
        finally:
            for server in servers:
                for pair in server.pairs:
                    await pair.a.disconnect()
                    await pair.b.disconnect()
                for proc in (*(p for p, _url in server.more), server.proc):
                    proc.terminate()
                    proc.wait()
                if hasattr(server.proc, "redis"):
                    server.proc.redis.stop()

    for server in servers:
        for rate in sorted(server.profiles):
            print_profile(server, rate, args.top)
    print(f"\nsummary (at {rates[0]:.0f} msg/s offered, and the highest sustained rate)")
    print(
        f"{'server':14} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'cpu ms/msg':>10} "
        f"{'sustained msg/s':>16} {'vs relay':>24} {'vs minimal':>24}"
    )

    def versus(server: Server, base: Server | None) -> str:
        if base is None or not base.rows:
            return ""
        ratio = sustained(server.rows) / (sustained(base.rows) or 1)
        return f"p50 x{server.rows[0][2] / base.rows[0][2]:.2f}, rate x{ratio:.2f}"

    bare = servers[0]
    minimal = next((s for s in servers if s.kind == "minimal"), None)
    for server in servers:
        first = server.rows[0]
        print(
            f"{server.name:14} {first[2]:8.1f} {first[7]:8.1f} {first[3]:8.1f} {first[6]:10.2f} "
            f"{sustained(server.rows):16.0f} {versus(server, bare):>24} "
            f"{versus(server, minimal) if server is not bare else '':>24}"
        )


if __name__ == "__main__":
    asyncio.run(main())
