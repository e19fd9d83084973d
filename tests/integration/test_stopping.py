"""Stopping a server process (SIGTERM, Ctrl-C) with calls and tours running: real `tradetalk
serve` processes, real aiortc clients sending `ko_test.wav` (recognized by the real Vosk Korean
model in the server), a real embedded or shared Redis.

Alone, a stop ends every call and tour (`call.ended` / `tour.ended`, "server shutting down")
after finishing the line being spoken, stops its embedded Redis (never restarting it) and exits
0 within `TRADETALK_STOP_TIMEOUT_S` (10 s). In a cluster of two processes on one Redis, the stop
hands the calls and tours to the other process (`call.moved` / `tour.moved`), the open line
first, and exits 0 within the same bound.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiortc import AudioStreamTrack

from server.storage.embedded_redis import free_port
from tests.integration.test_processes import alive, redis_pid
from tests.support import finals, wait_until
from tests.support.call_clients import CallClient, speech_with_pauses
from tests.support.peers import REPO, SHARED, Peer, ServerProcess, new_user
from tests.support.tour_clients import TourClient

KO_WAV = SHARED / "testdata" / "speech" / "ko_test.wav"
BOUND_S = 10.0  # TRADETALK_STOP_TIMEOUT_S's default
WATCHDOG_WORDS = "still running"


class OrderedPeer(Peer):
    """A Peer that also keeps every event in arrival order."""

    def __init__(self, identity: Any) -> None:
        super().__init__(identity)
        self.order: list[tuple[str, Any]] = []

        @self.sio.on("*")
        async def record(event: str, data: Any = None) -> None:
            self.order.append((event, data))
            self.events[event].append(data)
            self._changed.set()

    def position(self, event: str, where: Any = lambda _: True) -> int:
        """Where the first `event` matching `where` came."""
        return next(i for i, (e, d) in enumerate(self.order) if e == event and where(d))


def mid_sentence(peer: Peer, key: str, session_id: str) -> bool:
    """Whether a partial of the session came after its last final (a line is open)."""
    lines = [s for s in peer.events["subtitle"] if s.get(key) == session_id]
    return bool(lines) and not lines[-1]["final"]


class Scene:
    """A call (a Korean speaker and a listener) and a tour (a Korean host and a viewer) on
    `url`; every client is closed by `close()`."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.peers: list[OrderedPeer] = []
        self.clients: list[CallClient | TourClient] = []

    async def person(self, url: str, lang: str, role: str = "buyer") -> OrderedPeer:
        peer = await OrderedPeer(new_user(role=role, lang=lang)).connect(url)
        self.peers.append(peer)
        return peer

    def speech(self, name: str) -> Path:
        return speech_with_pauses(KO_WAV, self.tmp_path / f"{name}.wav", repeats=15)

    async def call(self, speaker: Peer, listener: Peer, call_id: str) -> None:
        talking = CallClient(speaker, self.speech("call"), camera=True)
        hearing = CallClient(listener, None, camera=True)
        hearing.rtc.tracks.insert(0, AudioStreamTrack())
        hearing.rtc.recv_only = ()
        self.clients += [talking, hearing]
        assert (await hearing.join(call_id))["ok"]
        assert (await talking.join(call_id))["ok"]

    async def tour(self, host: Peer, viewer: Peer, tour_id: str) -> None:
        publisher = TourClient(host, self.speech("tour"), camera=True)
        watcher = TourClient(viewer)
        self.clients += [publisher, watcher]
        assert (await publisher.publish(tour_id))["ok"]
        assert (await watcher.join(tour_id))["ok"]

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        for peer in self.peers:
            await peer.close()


async def open_lines(listener: Peer, call_id: str, viewer: Peer, tour_id: str) -> int:
    """Wait until both sessions delivered a line and the call's next one is being spoken;
    returns how many call lines the listener has."""
    await listener.wait_for("subtitle", lambda s: s["final"] and s.get("call_id"), timeout=90)
    await viewer.wait_for("subtitle", lambda s: s["final"] and s.get("tour_id"), timeout=90)
    await wait_until(lambda: mid_sentence(listener, "call_id", call_id), 40)
    await asyncio.sleep(0.3)
    assert mid_sentence(listener, "call_id", call_id), "the sentence ended before the stop"
    return len(finals(listener, call_id))


def stop(server: ServerProcess, sig: int = signal.SIGTERM, also: int | None = None) -> tuple:
    """Send `sig` (to `also` too, at once); wait for the exit; (code, seconds)."""
    assert server.process is not None
    began = time.monotonic()
    server.process.send_signal(sig)
    if also is not None:
        os.kill(also, sig)
    try:
        code = server.process.wait(BOUND_S + 20)
    except subprocess.TimeoutExpired:
        server.kill()
        code = None
    return code, time.monotonic() - began


def read_log(server: ServerProcess) -> str:
    return server.log.read_text(errors="replace")


async def test_sigterm_alone_ends_the_call_and_the_tour_and_exits_within_the_bound(
    tmp_path,
) -> None:
    server = await ServerProcess(tmp_path, None, free_port()).start(120, ready=True)
    scene = Scene(tmp_path)
    try:
        buyer = await scene.person(server.url, "ko")
        supplier = await scene.person(server.url, "en", role="supplier")
        viewer = await scene.person(server.url, "ko")
        cid = (await buyer.call("conversation.create", {"participants": [supplier.id]}))[
            "conversation"
        ]["id"]
        call_id = (await buyer.call("call.start", {"conversation_id": cid}))["call"]["id"]
        started = await supplier.call("tour.start", {"title": "Press line", "lang": "ko"})
        tour_id = started["tour"]["id"]
        await scene.call(buyer, supplier, call_id)
        await scene.tour(supplier, viewer, tour_id)
        n = await open_lines(supplier, call_id, viewer, tour_id)
        database = redis_pid(tmp_path)

        code, took = await asyncio.to_thread(stop, server)
        log = read_log(server)
        print(f"[stop] alone: exit {code} {took:.2f} s after SIGTERM")
        assert code == 0, log[-4000:]
        assert took <= BOUND_S, log[-4000:]
        assert WATCHDOG_WORDS not in log and "; restarting" not in log, log[-4000:]
        for step in ("stopping: end the calls and tours left", "stopping: done in"):
            assert step in log, log[-4000:]

        for peer in (buyer, supplier):
            ended = await peer.wait_for("call.ended", lambda e: e["call_id"] == call_id, 1)
            assert ended["reason"] == "server shutting down", ended
        for peer in (supplier, viewer):
            ended = await peer.wait_for("tour.ended", lambda e: e["tour_id"] == tour_id, 1)
            assert ended["reason"] == "server shutting down", ended
        # the line being spoken was finished and sent before the call ended
        lines = finals(supplier, call_id)
        assert len(lines) > n, (n, lines)
        line_at = supplier.position("subtitle", lambda d: d is lines[n])
        ended_at = supplier.position("call.ended")
        assert line_at < ended_at, supplier.order[-6:]
        assert not alive(database), "the embedded redis-server outlived the server"
    finally:
        await scene.close()
        server.kill()


async def test_a_stop_never_restarts_the_embedded_redis(tmp_path) -> None:
    """Ctrl-C in a terminal signals its whole foreground group: the embedded Redis is in a
    session of its own, so it waits for the server. A Redis that is signalled anyway (a
    service manager stopping the whole group) is not restarted; the server still exits 0."""
    server = await ServerProcess(tmp_path, None, free_port()).start(120, ready=True)
    try:
        database = redis_pid(tmp_path)
        assert server.process is not None
        assert os.getsid(database) != os.getsid(server.process.pid)
        peer = await Peer(new_user()).connect(server.url)
        code, took = await asyncio.to_thread(stop, server, signal.SIGINT, database)
        await peer.close()
        log = read_log(server)
        print(f"[stop] redis signalled too: exit {code} {took:.2f} s")
        assert code == 0 and took <= BOUND_S, log[-4000:]
        assert "; restarting" not in log and "restarted on port" not in log, log[-4000:]
        assert "embedded redis-server exited while stopping: not restarted" in log, log[-4000:]
        pidfile = tmp_path / "redis" / "redis.pid"  # no other redis-server wrote its pid
        assert not pidfile.exists() or redis_pid(tmp_path) == database
        assert not alive(database)
    finally:
        server.kill()


async def test_sigterm_in_a_cluster_of_two_moves_the_call_and_the_tour(
    tmp_path, redis_server
) -> None:
    """Two processes on one Redis; the sockets on b, the media on a. SIGTERM of a hands the
    call and the tour to b (the open line first), and a exits 0 within the bound."""
    cluster = f"stop{os.getpid()}{time.monotonic_ns() % 100000}"
    env = {"TRADETALK_CLUSTER": cluster, "TRADETALK_MAX_CALLS_PER_USER": "10"}
    a, b = (
        ServerProcess(
            tmp_path / n, redis_server.url, free_port(), env={**env, "TRADETALK_NODE_ID": n}
        )
        for n in ("a", "b")
    )
    await asyncio.gather(a.start(120, ready=True), b.start(120, ready=True))
    db = aioredis.from_url(redis_server.url, decode_responses=True)
    scene = Scene(tmp_path)
    try:
        buyer = await scene.person(b.url, "ko")
        supplier = await scene.person(b.url, "en", role="supplier")
        viewer = await scene.person(b.url, "ko")
        cid = (await buyer.call("conversation.create", {"participants": [supplier.id]}))[
            "conversation"
        ]["id"]

        async def owner(session_id: str) -> str | None:
            raw = await db.get(f"tt:media:{session_id}")
            return json.loads(raw)["owner"] if raw else None

        async def placed_on_a(start: Any, end: Any) -> str:
            """Start until the session lands on a (b looks loaded for a moment)."""
            for _ in range(5):
                await db.zadd(f"tt:nodes:{cluster}", {"a": 0, "b": 1000})
                session_id = await start()
                if await owner(session_id) == "a":
                    return session_id
                await end(session_id)
            raise AssertionError("never placed on a")

        async def start_call() -> str:
            return (await buyer.call("call.start", {"conversation_id": cid}))["call"]["id"]

        async def end_call(call_id: str) -> None:
            await buyer.call("call.end", {"call_id": call_id})

        async def start_tour() -> str:
            ack = await supplier.call("tour.start", {"title": "Press line", "lang": "ko"})
            return ack["tour"]["id"]

        async def end_tour(tour_id: str) -> None:
            await supplier.call("tour.end", {"tour_id": tour_id})

        call_id = await placed_on_a(start_call, end_call)
        tour_id = await placed_on_a(start_tour, end_tour)
        await scene.call(buyer, supplier, call_id)
        await scene.tour(supplier, viewer, tour_id)
        n = await open_lines(supplier, call_id, viewer, tour_id)

        code, took = await asyncio.to_thread(stop, a)
        log = read_log(a)
        print(f"[stop] cluster: a exited {code} {took:.2f} s after SIGTERM")
        assert code == 0 and took <= BOUND_S, log[-4000:]
        assert WATCHDOG_WORDS not in log, log[-4000:]
        assert "stopping: handed 2 calls and tours to other nodes" in log, log[-4000:]
        for peer in (buyer, supplier):
            moved = await peer.wait_for("call.moved", lambda e: e["call_id"] == call_id, 5)
            assert moved["reason"] == "media server restarting", moved
        for peer in (supplier, viewer):
            moved = await peer.wait_for("tour.moved", lambda e: e["tour_id"] == tour_id, 5)
            assert moved["reason"] == "media server restarting", moved
        assert not buyer.events["call.ended"] and not viewer.events["tour.ended"]
        lines = finals(supplier, call_id)
        assert len(lines) > n, (n, lines)
        assert supplier.position("subtitle", lambda d: d is lines[n]) < supplier.position(
            "call.moved"
        )
        assert await owner(call_id) == "b" and await owner(tour_id) == "b"
    finally:
        await scene.close()
        a.kill()
        b.kill()
        await db.aclose()


def test_the_watchdog_ends_a_process_that_hangs_on_exit() -> None:
    """The last resort: a non-daemon thread that never ends would hold the interpreter at exit
    forever; the watchdog ends the process at its bound, saying why."""
    script = (
        "import logging, threading, time\n"
        "from server.shutdown import Watchdog\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "threading.Thread(target=time.sleep, args=(600,), name='stuck').start()\n"
        "Watchdog(1.0).arm()\n"
    )
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 70, done
    assert time.monotonic() - began < 10
    assert WATCHDOG_WORDS in done.stderr and "'stuck'" in done.stderr, done.stderr
