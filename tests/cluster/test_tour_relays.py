"""Tour relays (issue 21, must-have 2): a tour's viewers beyond the owner's share
(`TRADETALK_TOUR_LOCAL_VIEWERS`, 1 here) are served by another media node, which gets the
host's already-encoded packets once over a node-to-node link and fans them out without
re-encoding. Real `tradetalk serve` processes on one Redis: host1 and host2 are media nodes,
host3 only signals; the tour's host and two viewers have their sockets on host3.

Run twice: as processes on 127.0.0.x (loopback) and, as root, in network namespaces (viewers'
sockets on three hosts, media served by two nodes, answers' candidates on the serving node's
own address).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cluster.test_cluster_hosts import (
    COMMON_ENV,
    SIGNALLING,
    Room,
    candidate_addresses,
    expected_mode,
)
from tests.support import wait_until
from tests.support.gauges import gauges
from tests.support.hosts import LOOPBACK, NETNS, Host, Hosts
from tests.support.peers import Peer
from tests.support.tour_clients import TourClient

METRICS_TOKEN = "relay-test-metrics"
ENV = {
    **COMMON_ENV,
    "TRADETALK_TOUR_LOCAL_VIEWERS": "1",
    "TRADETALK_METRICS_TOKEN": METRICS_TOKEN,
}


async def metrics(host: Host) -> dict[str, float]:
    """The host's `tradetalk_*` gauges without labels."""
    return await gauges(host.url, METRICS_TOKEN)


async def cluster_figures(hosts: list[Host], name: str) -> dict[str, float]:
    """One gauge on every live host."""
    return {h.name: (await metrics(h)).get(name, 0.0) for h in hosts if h.alive()}


@contextlib.asynccontextmanager
async def relay_room(tmp_path: Path, mode: str) -> AsyncIterator[Room]:
    host_env: list[dict[str, str]] = [{}, {}, dict(SIGNALLING)]
    async with Hosts(3, tmp_path, mode=mode, env=ENV, host_env=host_env) as cluster:
        room = Room(cluster, tmp_path)
        try:
            yield room
        except BaseException:
            for host in cluster.hosts:
                print(f"----- {host.name} log tail -----\n{host.log()[-4000:]}")
            raise
        finally:
            await room.close()


async def joined(client: TourClient, tid: str) -> dict:
    """tour.join, which must succeed; its ack."""
    ack = await client.join(tid)
    assert ack["ok"], ack
    return ack


async def watching(clients: list[TourClient], kind: str = "video", timeout: float = 30) -> None:
    """Every client receives more than 10 frames of `kind` (their counts when not)."""
    with contextlib.suppress(TimeoutError):
        await wait_until(lambda: all(w.received(kind) > 10 for w in clients), timeout)
    assert all(w.received(kind) > 10 for w in clients), [
        (w.peer.id, w.received("video"), w.received("audio")) for w in clients
    ]


def served_by(ack: dict, host: Host, room: Room) -> None:
    """In namespaces an answer's candidates are on the serving node's address only."""
    if room.cluster.mode == NETNS:
        assert candidate_addresses(ack["sdp"]) == {host.address}, (host.name, ack["sdp"])


MODES = [LOOPBACK] + ([NETNS] if expected_mode() == NETNS else [])


@pytest.mark.parametrize("mode", MODES)
async def test_relayed_viewers_watch_with_one_encoder_and_move_when_the_relay_dies(
    tmp_path, mode
) -> None:
    """Viewers past the owner's one local place get video and audio from the other media node
    (one joined before the host published: its relay re-offers the tracks) and subtitles; the
    cluster has one video encoder and no per-viewer encoder; a viewer joining the relay
    late decodes frames (its keyframe request reached the owner's encoder, which makes no
    keyframe otherwise); kill -9 of the relay: its viewers get `tour.moved` ("media server
    lost"), re-join and watch again (served by the owner), the owner's local viewer never
    stops."""
    async with relay_room(tmp_path, mode) as room:
        c = room.cluster
        print(f"[relay] {c.describe()}")
        host = await room.person(c[2], "ko", role="supplier")
        tid, owner_id = await room.start_tour(host, "Welding line")
        owner = room.host_of(owner_id)
        relay = next(h for h in c.hosts[:2] if h is not owner)
        print(f"[relay] owner {owner.name}, relay {relay.name}")
        local_viewer = await room.person(owner, "ko")  # the owner's one local place
        relayed_viewers = [await room.person(relay, "ko"), await room.person(c[2], "ko")]
        local = room.tour_client(local_viewer)
        watchers = [room.tour_client(v) for v in relayed_viewers]
        # before the host publishes: the relay answers without tracks and re-offers them later
        served_by(await joined(local, tid), owner, room)
        served_by(await joined(watchers[0], tid), relay, room)
        publisher = room.tour_client(host, repeats=2, camera=True)
        assert (await publisher.publish(tid))["ok"]
        served_by(await joined(watchers[1], tid), relay, room)
        everyone = [local, *watchers]
        await watching(everyone)
        await watching(everyone, "audio", 15)
        assert relayed_viewers[0].events["tour.offer"]  # the relay's re-offer, answered through
        # the owner; subtitles reach relayed viewers as any (Socket.IO rooms, unchanged)
        line = await relayed_viewers[1].wait_for("subtitle", timeout=30)
        assert line["tour_id"] == tid and line["lang"] == "ko", line
        encoders = await cluster_figures(c.hosts, "video_encoders")
        assert sum(encoders.values()) == 1 and encoders[owner.name] == 1, encoders
        per_viewer = await cluster_figures(c.hosts, "per_sender_encoders")
        assert sum(per_viewer.values()) == 0, per_viewer
        on_relay = await metrics(relay)
        assert on_relay["tours_relayed"] == 1 and on_relay["tour_relayed_viewers"] == 2, on_relay
        assert (await metrics(owner))["tour_relay_links"] == 1

        await asyncio.sleep(1.5)  # the encoder's last keyframe is well behind
        late_viewer = await room.person(c[2], "es")
        late = room.tour_client(late_viewer)
        ack = await joined(late, tid)
        served_by(ack, relay, room)
        await wait_until(lambda: late.received("video") > 5, 25)
        assert (await metrics(relay))["tour_relayed_viewers"] == 3

        relay.kill()
        killed = time.monotonic()
        moved_peers: list[Peer] = [relayed_viewers[1], late_viewer]
        for peer in moved_peers:
            moved = await peer.wait_for("tour.moved", lambda e: e["tour_id"] == tid, timeout=10)
            assert moved["reason"] == "media server lost", moved
        print(f"[relay] relayed viewers told to re-join {time.monotonic() - killed:.2f} s after")
        before = local.received("video")
        again = []
        for peer, old in ((relayed_viewers[1], watchers[1]), (late_viewer, late)):
            await old.close()
            client = room.tour_client(peer)
            ack = await joined(client, tid)
            served_by(ack, owner, room)  # the only media node left
            again.append(client)
        await watching(again)
        print(f"[relay] watching again {time.monotonic() - killed:.2f} s after kill -9")
        assert local.received("video") > before  # the owner's own viewer never stopped
        assert (await metrics(owner))["tour_relay_links"] == 0
        assert (await host.call("tour.end", {"tour_id": tid}))["ok"]


async def test_a_draining_relay_moves_its_viewers_as_a_restart(tmp_path) -> None:
    """SIGTERM of a relay: before it exits it tells the owner, whose viewers there get
    `tour.moved` ("media server restarting": a restart, not a loss), join again and watch,
    served by the owner; the relay exits 0 and the owner's own viewer never stops."""
    async with relay_room(tmp_path, LOOPBACK) as room:
        c = room.cluster
        host = await room.person(c[2], "ko", role="supplier")
        tid, owner_id = await room.start_tour(host, "Paint line")
        owner = room.host_of(owner_id)
        relay = next(h for h in c.hosts[:2] if h is not owner)
        local = room.tour_client(await room.person(owner, "ko"))
        viewer = await room.person(c[2], "es")
        relayed = room.tour_client(viewer)
        served_by(await joined(local, tid), owner, room)
        publisher = room.tour_client(host, repeats=2, camera=True)
        assert (await publisher.publish(tid))["ok"]
        served_by(await joined(relayed, tid), relay, room)
        await watching([local, relayed])

        code = await asyncio.to_thread(relay.terminate)
        moved = await viewer.wait_for("tour.moved", lambda e: e["tour_id"] == tid, timeout=15)
        assert moved["reason"] == "media server restarting", moved
        assert code == 0, relay.log()[-3000:]
        before = local.received("video")
        await relayed.close()
        again = room.tour_client(viewer)
        served_by(await joined(again, tid), owner, room)
        await watching([again])
        assert local.received("video") > before
        assert (await host.call("tour.end", {"tour_id": tid}))["ok"]
