"""Tour relays benchmark: the owner node's CPU with viewers on it vs viewers on relay nodes.

Real `tradetalk serve` processes on one Redis (tests/support/hosts.py: processes on 127.0.0.x,
or network namespaces with `--netns`, as root). One host publishes 640x480 30 fps video (a
moving noise texture, so the encoder works as on a camera) and speech audio; viewers are
Socket.IO + aiortc clients in this process that do not decode (bench/tour.py's counting
decoder), so they stay light. Cases, each on a fresh cluster:

  local    1 node: N viewers served by the owner itself (the baseline, `--local 5`)
  relayed  3 nodes, `TRADETALK_TOUR_LOCAL_VIEWERS=0`: M viewers whose sockets are on the two
           other nodes, each served by its socket's node from the owner's one encoder
           (`--relayed 30`)

Printed per case: each node's CPU (process time per second of stream), viewers' fps, video
encoders in the cluster (`/metrics`), and the clients' CPU (this process) apart. Target
(issue 21): the owner's CPU with 30 relayed viewers <= its CPU with 5 local viewers.

    python -m bench.tour_relay [--local 5] [--relayed 30] [--seconds 8] [--netns]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.tour import (  # noqa: E402
    WAV,
    Pool,
    Viewer,
    _no_decoding,
    all_counts,
    answer_counts,
    proc_cpu,
)
from tests.support.gauges import gauges as read_gauges  # noqa: E402
from tests.support.hosts import LOOPBACK, NETNS, Host, Hosts  # noqa: E402
from tests.support.peers import SECRET, Peer, new_user, token_for  # noqa: E402

METRICS_TOKEN = "bench-tour-relay"
ENV = {
    "TRADETALK_METRICS_TOKEN": METRICS_TOKEN,
    "TRADETALK_RATE_PER_SECOND": "500",
    "TRADETALK_RATE_BURST": "500",
    "TRADETALK_TOUR_MAX_VIEWERS": "200",
    "TRADETALK_FORWARD_TIMEOUT_S": "10",  # 2 shared cores: 30 joins at once are slow
    "TRADETALK_NODE_TTL_S": "10",  # and a loaded node must not be taken for dead
}


class CountingViewer(Viewer):
    """bench/tour.py's counting viewer, signalled over Socket.IO (`tour.join`, re-offers)."""

    def __init__(self, peer: Peer) -> None:
        from aiortc import RTCSessionDescription

        super().__init__(peer.identity.id)
        self.peer = peer

        @peer.sio.on("tour.offer")
        async def on_offer(data: dict) -> None:  # a re-offer (tracks added later)
            await self.pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            answer = {"tour_id": data["tour_id"], "sdp": self.pc.localDescription.sdp}
            await peer.call("tour.answer", answer)

    async def join(self, tour_id: str) -> None:
        from aiortc import RTCSessionDescription

        self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.addTransceiver("video", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = {"tour_id": tour_id, "sdp": self.pc.localDescription.sdp, "type": "offer"}
        for wait in (0.5, 1, 2, 4, 8):  # as the web client: node_unavailable is asked again
            ack = await self.peer.call("tour.join", offer, timeout=30)
            if ack.get("ok") or ack.get("error", {}).get("code") != "node_unavailable":
                break
            await asyncio.sleep(wait)
        if not ack.get("ok"):
            raise RuntimeError(f"tour.join: {ack}")
        await self.pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], "answer"))

    async def close(self) -> None:
        await super().close()
        await self.peer.close()


async def pool(urls: list[str], tour_id: str, count: int) -> None:
    """A viewer process: `count` viewers (sockets alternating over `urls`); on each stdin line
    "counts", print their [video, audio] frame counts."""
    _no_decoding()
    viewers = []
    for i in range(count):
        peer = Peer(new_user("buyer", "en"))
        secret = os.environb[b"BENCH_SECRET"]  # the servers' (the parent's test secret)
        viewer = CountingViewer(
            await peer.connect(urls[i % len(urls)], token_for(peer.identity, secret))
        )
        viewers.append(viewer)
        await viewer.join(tour_id)
    await answer_counts(viewers, lambda v: [v.video, v.audio])
    for viewer in viewers:
        with contextlib.suppress(Exception):
            await viewer.close()


def relay_pool(urls: list[str], tour_id: str, count: int) -> Pool:
    """A viewer pool subprocess of this module."""
    args = [json.dumps(urls), tour_id, str(count)]
    return Pool(args, "bench.tour_relay", {"BENCH_SECRET": SECRET.decode()})


async def gauges(host: Host) -> dict[str, float]:
    """The host's unlabelled `tradetalk_*` gauges."""
    return await read_gauges(host.url, METRICS_TOKEN)


async def run_case(
    name: str, nodes: int, viewers: int, seconds: float, mode: str, per_pool: int = 8
) -> dict:
    """A fresh cluster of `nodes`, a publishing host, `viewers` viewers; CPU over `seconds`."""
    from aiortc.contrib.media import MediaPlayer

    from tests.support.rtc_clients import MovingPatternTrack, RtcClient

    env = {**ENV, "TRADETALK_TOUR_LOCAL_VIEWERS": "0" if nodes > 1 else "1000"}
    with tempfile.TemporaryDirectory(prefix="tour-relay-bench-") as tmp:
        async with Hosts(nodes, Path(tmp), mode=mode, env=env) as cluster:
            # warm first (speech models, recognizers, codecs): a warming node is CPU-bound
            await asyncio.gather(*(h.server.healthy(300, ready=True) for h in cluster.hosts))
            supplier = await Peer(new_user("supplier", "ko")).connect(cluster[0].url)
            started = await supplier.call("tour.start", {"title": "bench", "lang": "ko"})
            tid = started["tour"]["id"]
            owner_id = await owner_of(cluster, tid)
            owner = next(h for h in cluster.hosts if h.node_id == owner_id)
            others = [h for h in cluster.hosts if h is not owner] or [owner]
            player = MediaPlayer(str(WAV), loop=True)
            camera = MovingPatternTrack(640, 480, fps=30, texture=True)
            host = RtcClient("host", [player.audio, camera])
            ack = await supplier.call(
                "tour.publish", {"tour_id": tid, "sdp": await host.offer(), "type": "offer"}, 30
            )
            await host.accept(ack["sdp"])
            urls = [h.url for h in others]
            sizes = [min(per_pool, viewers - i) for i in range(0, viewers, per_pool)]
            pools: list[Pool] = []
            try:
                offset = 0
                for size in sizes:  # each pool's viewers alternate over the other nodes
                    pools.append(
                        relay_pool(
                            urls[offset % len(urls) :] + urls[: offset % len(urls)], tid, size
                        )
                    )
                    offset += size
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    if all(v > 5 for v, _ in await all_counts(pools)):
                        break
                await asyncio.sleep(2.0)  # steady state
                pids = {h.name: h.pid for h in cluster.hosts}
                cpu0 = {n: proc_cpu(p) for n, p in pids.items()}
                clients0 = sum(proc_cpu(p.proc.pid) for p in pools)
                own0, wall0 = time.process_time(), time.monotonic()
                counts0 = [v for v, _ in await all_counts(pools)]
                await asyncio.sleep(seconds)
                counts1 = [v for v, _ in await all_counts(pools)]
                cpu1 = {n: proc_cpu(p) for n, p in pids.items()}
                clients1 = sum(proc_cpu(p.proc.pid) for p in pools)
                own1, wall = time.process_time(), time.monotonic() - wall0
                figures = {h.name: await gauges(h) for h in cluster.hosts}
            except Exception:
                for h in cluster.hosts:  # what the nodes said, for the failure report
                    print(f"--- {h.name} log ---\n{h.log()[-4000:]}", file=sys.stderr)
                raise
            finally:
                for pool in pools:
                    pool.stop()
                await host.close()
                camera.stop()
                with contextlib.suppress(Exception):
                    await supplier.close()
    fps = [(b - a) / wall for a, b in zip(counts0, counts1, strict=True)]
    cpu = {n: (cpu1[n] - cpu0[n]) / wall for n in cpu1}
    return {
        "case": name,
        "nodes": nodes,
        "viewers": viewers,
        "owner": owner.name,
        "cpu": cpu,
        "owner_cpu": cpu[owner.name],
        "client_cpu": (own1 - own0 + clients1 - clients0) / wall,
        "fps_min": min(fps),
        "fps_mean": sum(fps) / len(fps),
        "video_encoders": sum(f.get("video_encoders", 0) for f in figures.values()),
        "per_sender_encoders": sum(f.get("per_sender_encoders", 0) for f in figures.values()),
        "relayed": {n: f.get("tour_relayed_viewers", 0) for n, f in figures.items()},
        "on_owner": figures[owner.name].get("tour_viewers", 0)
        - sum(f.get("tour_relayed_viewers", 0) for f in figures.values()),
        "stalled": sum(1 for f in fps if f < 1),
        "keyframes": figures[owner.name].get("video_keyframes", 0),
    }


async def owner_of(cluster: Hosts, tour_id: str) -> str:
    """The tour's owner node id, from its record in Redis."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(cluster.redis_url, decode_responses=True)
    try:
        return str(json.loads(await client.get(f"tt:media:{tour_id}"))["owner"])
    finally:
        await client.aclose()


def show(row: dict) -> None:
    nodes = ", ".join(f"{n} {c:.2f}" for n, c in sorted(row["cpu"].items()))
    print(
        f"{row['case']:<8}{row['nodes']:>6}{row['viewers']:>8}{row['owner_cpu']:>11.2f}s"
        f"{row['fps_min']:>8.1f}/{row['fps_mean']:<6.1f}{row['video_encoders']:>9.0f}"
        f"{row['per_sender_encoders']:>11.0f}{row['keyframes']:>10.0f}"
        f"{row['client_cpu']:>12.2f}s   {nodes}",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--local", type=int, default=5, help="viewers on the owner alone")
    parser.add_argument("--relayed", type=int, default=30, help="viewers on 2 relay nodes")
    parser.add_argument(
        "--local-many", type=int, default=30, help="also: this many on the owner alone (0: no)"
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--netns", action="store_true", help="network namespaces (root)")
    args = parser.parse_args()
    _no_decoding()
    mode = NETNS if args.netns else LOOPBACK
    print(
        f"tour relay bench: host 640x480 30 fps VP8 + Opus, {os.cpu_count()} CPUs, "
        f"{args.seconds:g} s per case, hosts as {mode}; CPU = process time per second of stream"
    )
    print(
        f"{'case':<8}{'nodes':>6}{'viewers':>8}{'owner CPU':>12}{'fps min/mean':>15}"
        f"{'encoders':>9}{'per-viewer':>11}{'keyframes':>10}{'clients CPU':>13}   every node's CPU"
    )
    local = await run_case("local", 1, args.local, args.seconds, mode)
    show(local)
    if args.local_many:  # the same audience on the owner alone, under the same load
        show(await run_case("local", 1, args.local_many, args.seconds, mode))
    relayed = await run_case("relayed", 3, args.relayed, args.seconds, mode)
    show(relayed)
    print(
        f"relayed case: viewers served per relay node {relayed['relayed']}, by the owner "
        f"{relayed['on_owner']:.0f} (a relay too slow to answer a join leaves it to the owner); "
        f"viewers under 1 fps: {relayed['stalled']}; load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    ratio = relayed["owner_cpu"] / max(local["owner_cpu"], 1e-9)
    verdict = "met" if relayed["owner_cpu"] <= local["owner_cpu"] else "NOT met"
    print(
        f"owner CPU, {args.relayed} relayed viewers / {args.local} local viewers = {ratio:.2f} "
        f"(target <= 1: {verdict}); video encoders in the cluster: {relayed['video_encoders']:.0f}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--pool":
        asyncio.run(pool(json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
    else:
        asyncio.run(main())
