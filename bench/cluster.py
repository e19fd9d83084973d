"""Calls across a cluster: the owner's process vs a forwarded event, and recovery from kill -9.

One run, one cluster of three `tradetalk serve` on one real Redis (tests/support/hosts.py: network
namespaces on one bridge as root, else processes on 127.0.0.x; the output says which):
host1 is signalling-only (`TRADETALK_MEDIA=0`: it never owns a call, so every call event from a
socket on it is forwarded to the owner over Redis), host2 and host3 are media nodes, each with
its own address as `TRADETALK_MEDIA_ADDRESS` (the harness sets it). Node ids are fixed per host
(sig1, media2, media3; `rN` appended after a restart), so the owner a call was placed on
(`tt:media:{call_id}` in Redis) names its host. Clients (Socket.IO + aiortc) run in this process.

1. `call.join` round trip: `call.join {sdp: offer}` emitted → its ack (the answer) received
   (the offer is made before the clock starts), by a joiner whose socket is on the owner's
   process ("owner") vs on host1 ("forwarded"); a new call each trial, trials interleaved
   (which placement goes first alternates).
2. First-subtitle latency: a Korean speaker plays ko_test.wav (../shared/testdata/speech) with
   2 s of silence after it; an English listener records the first final `subtitle`, translated
   by the test ko->en Argos package (tests/support/argos_package.py, installed once and copied into
   every host's data dir; `--no-translate` skips it and the lines go out untranslated). Latency =
   the listener's receive time minus the time the speaker's track handed the last frame of the
   clip's first utterance to its RTP sender (stamped, bench/captions.py's TimedTrack; the first
   utterance ends at the first pause of `TRADETALK_ENDPOINT_SILENCE_S` = 0.25 s in the clip's
   level, -40 dB). Both members' sockets on the owner's process vs both on host1. Each trial is
   a new call, so each first line runs on a fresh recognizer (as the captions bench's "1st").
   Warm-up trials (not counted) run first until both media nodes have loaded the Vosk model.
3. kill -9 of the owner: member A's socket on host1, member B's on the surviving media node;
   both publish audio (silence, still Opus RTP) and receive each other's. After `kill -9` of
   the owner, per member: when `call.moved` arrives, when its re-join (a new peer connection, a
   fresh offer) is acked, when the new peer connection's audio receiver gets its first RTP
   packet (aiortc's receiver handler, stamped in this process), and when the first audio frame
   of the other member comes out of its decoder (after the jitter buffer). The killed host is
   restarted under a new node id before the next trial.
4. The same with SIGTERM instead (a drain: the owner hands its calls over and exits 0; members
   get `call.moved` "media server restarting"); its exit code is checked.

No assertions on timings: this prints numbers. `--quick` is a smoke run (1 trial each).

    sudo .venv/bin/python -m bench.cluster [--joins 15] [--trials 4] [--kills 3] [--drains 1]
                                           [--ttl 3] [--mode netns|loopback] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import redis.asyncio as aioredis
from aiortc import AudioStreamTrack, RTCRtpReceiver

from bench.call_harness import TimedTrack, install_argos_ko_en, percentile, talk_only
from bench.captions import WAV
from tests.support.call_clients import CallClient, speech_with_pauses
from tests.support.hosts import Host, Hosts
from tests.support.peers import Peer, new_user, sign_in_once, start_call

REPO = Path(__file__).resolve().parents[1]

OWNER, FORWARDED = "owner", "forwarded"
ORDERS = ((OWNER, FORWARDED), (FORWARDED, OWNER))
SIGNAL = 0  # host1: signalling-only
MEDIA = (1, 2)  # host2, host3: media nodes
ENDPOINT_SILENCE_S = 0.25  # the server's default TRADETALK_ENDPOINT_SILENCE_S
_handle_rtp = RTCRtpReceiver._handle_rtp_packet


async def _stamped_handle_rtp(self: RTCRtpReceiver, packet, arrival_time_ms: int) -> None:
    """aiortc's RTP packet handler, stamping when each receiver got its first packet (the clients
    in this process; the servers are other processes and unaffected)."""
    if getattr(self, "bench_first_rtp", None) is None:
        self.bench_first_rtp = time.monotonic()
    await _handle_rtp(self, packet, arrival_time_ms)


RTCRtpReceiver._handle_rtp_packet = _stamped_handle_rtp  # type: ignore[method-assign]


def first_utterance_end(wav: Path, gap_s: float = ENDPOINT_SILENCE_S, floor_db: float = -40.0):
    """End (s) of the last loud 20 ms frame before the first quiet run of `gap_s` after speech."""
    with wave.open(str(wav)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64)
    step = int(rate * 0.02)
    frames = samples[: len(samples) // step * step].reshape(-1, step)
    rms = np.sqrt((frames**2).mean(axis=1)) + 1e-9
    loud = 20 * np.log10(rms / rms.max()) >= floor_db
    need, quiet, last = round(gap_s / 0.02), 0, None
    for i, is_loud in enumerate(loud):
        if is_loud:
            last, quiet = i, 0
        elif last is not None:
            quiet += 1
            if quiet >= need:
                break
    assert last is not None, f"no speech in {wav}"
    return (last + 1) * 0.02


@dataclass
class Bench:
    """The cluster, its Redis, and which node id each host has now."""

    cluster: Hosts
    redis: aioredis.Redis
    node_ids: list[str]
    errors: list[str] = field(default_factory=list)

    def host(self, i: int) -> Host:
        return self.cluster[i]

    def url(self, i: int) -> str:
        return self.cluster[i].url

    async def owner_of(self, call_id: str, timeout: float = 5.0) -> int:
        """The index of the host whose node owns the call now (from `tt:media:{call_id}`)."""
        deadline = time.monotonic() + timeout
        while True:
            raw = await self.redis.get(f"tt:media:{call_id}")
            if raw:
                owner = json.loads(raw)["owner"]
                if owner in self.node_ids:
                    return self.node_ids.index(owner)
                raise RuntimeError(f"call {call_id} owned by unknown node {owner!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no tt:media:{call_id} in Redis")
            await asyncio.sleep(0.05)

    async def registered(self, i: int, timeout: float = 20.0) -> None:
        """Wait until host i's node has a live heartbeat key."""
        deadline = time.monotonic() + timeout
        while not await self.redis.exists(f"tt:node:{self.node_ids[i]}"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {self.node_ids[i]} never registered")
            await asyncio.sleep(0.05)

    async def restart(self, i: int, generation: int) -> None:
        """Start host i's server again (after kill -9) under a new node id."""
        server = self.host(i).server
        self.node_ids[i] = f"{self.node_ids[i].split('r')[0]}r{generation}"
        server.env["TRADETALK_NODE_ID"] = self.node_ids[i]
        server.spawn()
        await server.healthy(60)
        await self.registered(i)


async def end_call(peer: Peer, call_id: str, *clients: CallClient) -> None:
    with contextlib.suppress(Exception):
        await peer.call("call.end", {"call_id": call_id}, timeout=10)
    for client in clients:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 10)


# ---------------------------------------------------------------- 1. call.join round trip


async def join_trial(bench: Bench, placement: str) -> tuple[float, int]:
    """One new call; ms from emitting call.join (offer made) to its ack; and the owner host."""
    starter = await Peer(new_user("buyer", "en")).connect(bench.url(SIGNAL))
    joiner_user = new_user("supplier", "en")
    await sign_in_once(bench.url(SIGNAL), joiner_user)
    _, call_id = await start_call(starter, joiner_user)
    owner = await bench.owner_of(call_id)
    joiner = await Peer(joiner_user).connect(bench.url(owner if placement == OWNER else SIGNAL))
    client = CallClient(joiner, None, camera=False)
    try:
        offer = await client.rtc.offer()
        began = time.perf_counter()
        ack = await joiner.call(
            "call.join", {"call_id": call_id, "sdp": offer, "type": "offer"}, timeout=30
        )
        took = (time.perf_counter() - began) * 1000
        assert ack["ok"], ack
        await client.rtc.accept(ack["sdp"])
        return took, owner
    finally:
        await end_call(starter, call_id, client)
        await joiner.close()
        await starter.close()


# ---------------------------------------------------------------- 2. first subtitle


@dataclass
class SubtitleResult:
    latency_ms: float
    owner: int
    text: str
    translated: bool
    join_ms: list[float]


async def subtitle_trial(bench: Bench, placement: str, wav: Path, speech_end: float):
    """A Korean speaker and an English listener, both sockets on the owner's process or both on
    host1; ms from the end of the first utterance sent to the first final subtitle received."""
    speaker_user, listener_user = new_user("supplier", "ko"), new_user("buyer", "en")
    await sign_in_once(bench.url(SIGNAL), listener_user)
    starter = await Peer(speaker_user).connect(bench.url(SIGNAL))
    _, call_id = await start_call(starter, listener_user)
    owner = await bench.owner_of(call_id)
    where = bench.url(owner if placement == OWNER else SIGNAL)
    if placement == OWNER:
        await starter.close()
        speaker = await Peer(speaker_user).connect(where)
    else:
        speaker = starter
    listener = await Peer(listener_user).connect(where)
    finals: list[tuple[float, dict]] = []

    @listener.sio.on("subtitle")
    async def on_subtitle(data: dict) -> None:
        if data.get("final"):
            finals.append((time.monotonic(), data))

    gate = asyncio.Event()
    talker = CallClient(speaker, wav, camera=False)
    assert talker.player is not None
    track = TimedTrack(talker.player.audio, gate)
    talk_only(talker, track)
    hearer = CallClient(listener, None, camera=False)
    clients = [hearer, talker]
    joins = []
    try:
        for client in clients:
            offer = await client.rtc.offer()
            began = time.perf_counter()
            ack = await client.peer.call(
                "call.join", {"call_id": call_id, "sdp": offer, "type": "offer"}, timeout=30
            )
            joins.append((time.perf_counter() - began) * 1000)
            assert ack["ok"], ack
            await client.rtc.accept(ack["sdp"])
        deadline = time.monotonic() + 20
        while not all(
            c.rtc.pc.connectionState == "connected" and c.rtc.pc.signalingState == "stable"
            for c in clients
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("peer connections did not settle within 20 s")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the server's captions thread starts
        gate.set()
        deadline = time.monotonic() + 30
        while not finals and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if not finals:
            raise RuntimeError("no final subtitle within 30 s")
        spoken = track.sent_at(speech_end)
        assert spoken is not None
        received, line = finals[0]
        translated = bool(line.get("translations", {}).get("en"))
        return SubtitleResult((received - spoken) * 1000, owner, line["text"], translated, joins)
    finally:
        await end_call(speaker, call_id, *clients)
        track.stop()
        await listener.close()
        await speaker.close()


# ---------------------------------------------------------------- 3. kill -9 of the owner


@dataclass
class Member:
    """One call member that re-joins by itself when told the call moved."""

    name: str
    peer: Peer
    call_id: str
    client: CallClient | None = None
    moved_at: float | None = None
    rejoined_at: float | None = None
    retries: int = 0
    reason: str = ""
    closing: list[asyncio.Future] = field(default_factory=list)  # the dead connections' close
    task: asyncio.Task | None = None

    def new_client(self) -> CallClient:
        client = CallClient(self.peer, None, camera=False)
        client.rtc.tracks, client.rtc.recv_only = [AudioStreamTrack()], ()
        return client

    async def join(self) -> dict:
        self.client = self.new_client()
        offer = await self.client.rtc.offer()
        ack = await self.peer.call(
            "call.join", {"call_id": self.call_id, "sdp": offer, "type": "offer"}, timeout=30
        )
        if ack["ok"]:
            await self.client.rtc.accept(ack["sdp"])
        return ack

    def listen(self) -> None:
        @self.peer.sio.on("call.moved")
        async def on_moved(data: dict) -> None:
            self.peer.events["call.moved"].append(data)
            if data.get("call_id") == self.call_id and self.moved_at is None:
                self.moved_at = time.monotonic()
                self.reason = data.get("reason", "")
                self.task = asyncio.ensure_future(self.rejoin())

    async def rejoin(self) -> None:
        """Drop the dead peer connection, join with a fresh offer (retry a few errors)."""
        if self.client is not None:
            self.closing.append(asyncio.ensure_future(self.client.close()))
        for attempt in range(10):
            ack = await self.join()
            if ack["ok"]:
                self.rejoined_at = time.monotonic()
                return
            self.retries = attempt + 1
            await self.client.close()
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} could not re-join: {ack}")

    def first_audio(self) -> float | None:
        if self.client is None or self.rejoined_at is None:
            return None
        times = [t for key, t in self.client.rtc.first_frame.items() if key.endswith("/audio")]
        return min(times) if times else None

    def first_rtp(self) -> float | None:
        """When the new peer connection's audio receiver got its first RTP packet."""
        if self.client is None or self.rejoined_at is None:
            return None
        times = [
            getattr(r, "bench_first_rtp", None)
            for r in self.client.rtc.pc.getReceivers()
            if r.track is not None and r.track.kind == "audio"
        ]
        return min((t for t in times if t is not None), default=None)

    def hears(self) -> bool:
        return self.client is not None and self.client.received("audio") > 0


@dataclass
class KillResult:
    owner: int
    survivor: int
    moved_ms: list[float | None]
    rejoined_ms: list[float | None]
    rtp_ms: list[float | None]
    media_ms: list[float | None]
    reasons: list[str]
    retries: int
    exit_code: int | None = None  # the owner's, after SIGTERM (drain trials)


async def kill_trial(
    bench: Bench, generation: int, drain: bool = False, timeout: float = 30.0
) -> KillResult:
    """A call with members A (socket on host1) and B (on the other media node); kill -9 its owner
    (or SIGTERM it: `drain`) and time each member's way back to hearing the other."""
    a_user, b_user = new_user("buyer", "en"), new_user("supplier", "en")
    await sign_in_once(bench.url(SIGNAL), b_user)
    a_peer = await Peer(a_user).connect(bench.url(SIGNAL))
    _, call_id = await start_call(a_peer, b_user)
    owner = await bench.owner_of(call_id)
    survivor = next(i for i in MEDIA if i != owner)
    process = bench.host(owner).server.process
    assert process is not None
    b_peer = await Peer(b_user).connect(bench.url(survivor))
    members = [Member("A@host1", a_peer, call_id), Member(f"B@host{survivor + 1}", b_peer, call_id)]
    try:
        for member in members:
            member.listen()
            ack = await member.join()
            assert ack["ok"], ack
        deadline = time.monotonic() + 20
        while not all(m.hears() for m in members):
            if time.monotonic() > deadline:
                raise RuntimeError("members never heard each other before the kill")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        killed = time.monotonic()
        if drain:
            process.send_signal(signal.SIGTERM)
            exited = asyncio.ensure_future(asyncio.to_thread(process.wait, 60))
        else:
            bench.host(owner).kill()
        deadline = killed + timeout
        while not all(m.first_audio() for m in members) and time.monotonic() < deadline:
            for m in members:
                if m.task is not None and m.task.done() and m.task.exception():
                    raise m.task.exception()  # type: ignore[misc]
            await asyncio.sleep(0.02)

        def since(t: float | None) -> float | None:
            return None if t is None else (t - killed) * 1000

        moved_to = await bench.owner_of(call_id) if all(m.moved_at for m in members) else None
        if moved_to is not None and moved_to != survivor:
            bench.errors.append(f"kill trial: call moved to host{moved_to + 1}, not the survivor")
        code = await exited if drain else None
        if drain and code != 0:
            bench.errors.append(f"drain trial: the owner host{owner + 1} exited {code}, not 0")
        return KillResult(
            owner,
            survivor,
            [since(m.moved_at) for m in members],
            [since(m.rejoined_at) for m in members],
            [since(m.first_rtp()) for m in members],
            [since(m.first_audio()) for m in members],
            [m.reason for m in members],
            sum(m.retries for m in members),
            code,
        )
    finally:
        await end_call(a_peer, call_id, *(m.client for m in members if m.client))
        for m in members:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*m.closing), 10)
        await a_peer.close()
        await b_peer.close()
        if process.poll() is None:  # a drain that did not finish: the port must be free again
            with contextlib.suppress(Exception):
                await asyncio.to_thread(process.wait, 60)
            bench.host(owner).kill()
        await bench.restart(owner, generation)


# ---------------------------------------------------------------- report


def fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.0f}"


def stats(values: list[float], hi: float = 99) -> tuple[int, str, str]:
    return len(values), fmt(percentile(values, 50)), fmt(percentile(values, hi))


def table_row(name: str, owned: list[float], forwarded: list[float]) -> str:
    (n1, a1, b1), (n2, a2, b2) = stats(owned), stats(forwarded)
    return f"{name:30} {n1:>3} {a1:>6} {b1:>6}   {n2:>3} {a2:>6} {b2:>6}"


def server_errors(cluster: Hosts) -> list[str]:
    """Tracebacks in the servers' logs (every host, every restart)."""
    out = []
    for host in cluster.hosts:
        log = host.server.log
        text = log.read_text(errors="replace") if log.exists() else ""
        if "Traceback" in text:
            out.append(f"{host.name} ({log}): {text.count('Traceback')} traceback(s), last:")
            out.append(text[text.rindex("Traceback") :][-1500:])
    return out


async def run(args: argparse.Namespace, root: Path) -> None:
    node_ids = ["sig1", "media2", "media3"]
    env = {
        "TRADETALK_RATE_PER_SECOND": "100000",
        "TRADETALK_RATE_BURST": "100000",
        "TRADETALK_NODE_TTL_S": str(args.ttl),
        "TRADETALK_PROVISION": "off",  # no model downloads during a measurement
    }
    host_env = [{"TRADETALK_NODE_ID": node_ids[0], "TRADETALK_MEDIA": "0"}] + [
        {"TRADETALK_NODE_ID": node_ids[i], "TRADETALK_MEDIA": "1"} for i in MEDIA
    ]
    wav = speech_with_pauses(WAV, root / "ko-pause.wav", repeats=1, pause_s=2.0)
    speech_end = first_utterance_end(WAV)
    began = time.monotonic()
    if args.translate:
        listing = await asyncio.to_thread(install_argos_ko_en, root / "template")
        if "ko->en" not in listing:
            raise RuntimeError(f"the test ko->en Argos package did not install: {listing}")
        for i in range(
            3
        ):  # each host's data dir (tests/support/hosts.py: root / hostN) gets a copy
            shutil.copytree(
                root / "template", root / f"host{i + 1}", ignore=shutil.ignore_patterns("secret")
            )
        print(f"ko->en Argos test package installed in {time.monotonic() - began:.0f} s")
    cluster = Hosts(3, root, mode=args.mode, env=env, host_env=host_env)
    async with cluster:
        bench = Bench(cluster, aioredis.from_url(cluster.redis_url), node_ids)
        try:
            for i in range(3):
                await bench.registered(i)
            up = time.monotonic() - began
            print(
                f"cluster up in {up:.1f} s: host1 signalling-only (TRADETALK_MEDIA=0), host2 and "
                f"host3 media nodes; node TTL {args.ttl:g} s; {os.cpu_count()} CPUs, load "
                f"{os.getloadavg()[0]:.2f}",
                flush=True,
            )
            await body(bench, args, wav, speech_end)
        finally:
            bench.errors += server_errors(cluster)
            await bench.redis.aclose()
            if args.logs:
                for host in cluster.hosts:
                    if host.server.log.exists():
                        Path(args.logs).mkdir(parents=True, exist_ok=True)
                        shutil.copy(host.server.log, Path(args.logs) / f"{host.name}.log")
    print(
        f"\nwhole run {time.monotonic() - began:.0f} s; load average at the end "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    if bench.errors:
        print("\nproblems seen:")
        for line in bench.errors:
            print(line)


async def body(bench: Bench, args: argparse.Namespace, wav: Path, speech_end: float) -> None:
    joins: dict[str, list[float]] = {OWNER: [], FORWARDED: []}
    subs: dict[str, list[SubtitleResult]] = {OWNER: [], FORWARDED: []}
    owners: dict[str, list[int]] = {OWNER: [], FORWARDED: []}

    warmed: set[int] = set()
    for _ in range(4):  # the first call on a node loads its Vosk model: not counted
        result = await subtitle_trial(bench, OWNER, wav, speech_end)
        warmed.add(result.owner)
        print(
            f"warm-up: host{result.owner + 1} first subtitle {result.latency_ms:.0f} ms "
            f"{result.text!r}",
            flush=True,
        )
        if warmed >= set(MEDIA):
            break

    for n in range(args.joins):
        for placement in ORDERS[n % 2]:  # alternate who goes first
            took, owner = await join_trial(bench, placement)
            joins[placement].append(took)
            owners[placement].append(owner)
    print(f"call.join: {args.joins} trials per placement done", flush=True)

    for n in range(args.trials):
        for placement in ORDERS[n % 2]:
            result = await subtitle_trial(bench, placement, wav, speech_end)
            subs[placement].append(result)
            owners[placement].append(result.owner)
            print(
                f"  subtitle {placement:9} #{n}: host{result.owner + 1} "
                f"{result.latency_ms:5.0f} ms  en={'yes' if result.translated else 'no'}  "
                f"{result.text!r}",
                flush=True,
            )

    moves: dict[str, list[KillResult]] = {"kill -9": [], "SIGTERM (drain)": []}
    trials = [("kill -9", False)] * args.kills + [("SIGTERM (drain)", True)] * args.drains
    for n, (how, drain) in enumerate(trials):
        result = await kill_trial(bench, n + 1, drain=drain)
        moves[how].append(result)
        print(
            f"  {how} #{n}: owner host{result.owner + 1} -> host{result.survivor + 1}: "
            f"moved {[fmt(v) for v in result.moved_ms]} re-joined "
            f"{[fmt(v) for v in result.rejoined_ms]} rtp {[fmt(v) for v in result.rtp_ms]} "
            f"audio {[fmt(v) for v in result.media_ms]} "
            f"ms (A@host1, B@survivor); reasons {result.reasons}; retries {result.retries}"
            + (f"; exit code {result.exit_code}" if drain else ""),
            flush=True,
        )

    print(f"\nmode: {bench.cluster.mode} ({bench.cluster.reason})")
    print(bench.cluster.describe())
    print("\n" + " " * 31 + "  socket on owner's process    socket on host1 (forwarded)")
    print(f"{'ms':30} {'n':>3} {'p50':>6} {'p99':>6}   {'n':>3} {'p50':>6} {'p99':>6}")
    print(table_row("call.join offer -> answer ack", joins[OWNER], joins[FORWARDED]))
    sub_joins = {k: [j for r in v for j in r.join_ms] for k, v in subs.items()}
    print(table_row("  (joins in subtitle trials)", sub_joins[OWNER], sub_joins[FORWARDED]))
    print(
        table_row(
            "utterance end -> 1st final sub",
            [r.latency_ms for r in subs[OWNER]],
            [r.latency_ms for r in subs[FORWARDED]],
        )
    )
    spread = {k: {f"host{h + 1}": v.count(h) for h in MEDIA} for k, v in owners.items()}
    print(f"calls placed on (join + subtitle trials): {spread}; p99 = the max below 100 samples")
    translated = sum(r.translated for v in subs.values() for r in v)
    print(f"subtitle finals with an English translation: {translated}/{args.trials * 2}")
    for how, kills in moves.items():
        if not kills:
            continue
        print(
            f"\n{how} of the owner, ms after the signal ({len(kills)} trial(s) x 2 members: "
            f"A's socket on host1, B's on the surviving media node)"
        )
        print(f"{'':30} {'n':>3} {'p50':>6} {'max':>6}  missing")
        for name, attr in [
            ("call.moved seen", "moved_ms"),
            ("re-joined (join ack)", "rejoined_ms"),
            ("first RTP packet received", "rtp_ms"),
            ("first audio frame decoded", "media_ms"),
        ]:
            values = [v for k in kills for v in getattr(k, attr)]
            got = [v for v in values if v is not None]
            n, p50, top = stats(got, 100)
            print(f"{name:30} {n:>3} {p50:>6} {top:>6}  {len(values) - len(got)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=15, help="call.join trials per placement")
    parser.add_argument("--trials", type=int, default=4, help="subtitle trials per placement")
    parser.add_argument("--kills", type=int, default=3, help="kill -9 trials")
    parser.add_argument("--drains", type=int, default=1, help="SIGTERM (drain) trials")
    parser.add_argument("--ttl", type=float, default=3.0, help="TRADETALK_NODE_TTL_S")
    parser.add_argument("--mode", choices=["netns", "loopback"], default=None)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 trial of each")
    parser.add_argument("--logs", default=None, help="copy the servers' logs into this folder")
    parser.add_argument(
        "--no-translate",
        dest="translate",
        action="store_false",
        help="skip installing the test ko->en Argos package (finals go out untranslated)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="abort the run after (s)")
    args = parser.parse_args()
    if args.quick:
        args.joins, args.trials, args.kills, args.drains = 2, 1, 1, 1
    with tempfile.TemporaryDirectory(prefix="tradetalk-bench-cluster-") as tmp:
        try:
            asyncio.run(asyncio.wait_for(run(args, Path(tmp)), args.timeout))
        except TimeoutError:
            print(f"aborted: the run took longer than {args.timeout:.0f} s", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
