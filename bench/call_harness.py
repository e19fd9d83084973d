"""What the call benchmarks share (bench/captions.py, bench/languages.py): a `tradetalk serve`
child process on a throw-away data dir, speakers whose microphone is a WAV played in real time
with every 20 ms frame stamped as it leaves for the encoder (`TimedTrack`), a listener that
records every `subtitle`, and the matching of finals (and partials) to the played utterances.

Latency of one utterance = the listener's receive time of the final `subtitle` holding it minus
the time the speaker's last speech sample was handed to its RTP sender; both stamps are on this
process's monotonic clock. A final is matched to the repetitions its `start`..`end` span
overlaps (seconds since the call started, minus when the speaker's first frame left).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiortc import RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from server.storage.embedded_redis import EmbeddedRedis, free_port
from tests.support.call_clients import CallClient
from tests.support.peers import SECRET, Peer, new_user

REPO = Path(__file__).resolve().parents[1]

SPEECH = REPO.parent / "shared" / "testdata" / "speech"

MAX_SPEAKERS_PER_CALL = 5  # 6 members per call: 5 speakers + the listener
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- measures


def reference_text(wav: Path) -> str:
    """The manifest's reference transcript of `wav`."""
    files = json.loads((wav.parent / "manifest.json").read_text())["files"]
    return next(f["reference"] for f in files if f["file"] == wav.name)


def speech_span_s(wav: Path, floor_db: float = -40.0, frame_s: float = 0.02) -> tuple[float, float]:
    """Start of the first and end of the last `frame_s` frame whose level is within
    `floor_db` of the loudest one."""
    with wave.open(str(wav)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64)
    step = int(rate * frame_s)
    frames = samples[: len(samples) // step * step].reshape(-1, step)
    rms = np.sqrt((frames**2).mean(axis=1)) + 1e-9
    loud = np.nonzero(20 * np.log10(rms / rms.max()) >= floor_db)[0]
    return float(loud[0] * frame_s), float((loud[-1] + 1) * frame_s)


def wav_seconds(wav: Path) -> float:
    """Duration of a WAV file."""
    with wave.open(str(wav)) as w:
        return w.getnframes() / w.getframerate()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def covers(start: float, end: float, rep: int, layout: Layout, slack: float = 0.3) -> bool:
    """Whether a final spanning [start, end] s of the played audio holds repetition `rep`."""
    first = rep * layout.period + layout.speech_start - slack
    last = rep * layout.period + layout.speech_end + slack
    return start <= last and end >= first


# ---------------------------------------------------------------- clients


class TimedTrack(MediaStreamTrack):
    """A speaker's microphone: `MediaPlayer`'s audio held behind a gate, every frame stamped
    with the monotonic time it is handed to the RTP sender (the encoder). When the file ends
    the microphone stays open and sends silence, as a real one would, so nothing the server
    still buffers is cut off by the end of the stream."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack, gate: asyncio.Event) -> None:
        super().__init__()
        self.source, self.gate = source, gate
        self.sent: list[tuple[float, float]] = []  # (audio seconds played so far, monotonic)
        self.finished: float | None = None
        self._samples = 0
        self._last: tuple[int, int, fractions.Fraction] = (0, 48000, fractions.Fraction(1, 48000))

    async def recv(self) -> Any:
        await self.gate.wait()
        if self.finished is None:
            try:
                frame = await self.source.recv()
            except MediaStreamError:
                self.finished = time.monotonic()
            else:
                self._samples += frame.samples
                self.sent.append((self._samples / frame.sample_rate, time.monotonic()))
                self._last = (frame.pts or 0, frame.sample_rate, frame.time_base)
                return frame
        return await self._silence()

    async def _silence(self, samples: int = 960) -> AudioFrame:
        pts, rate, time_base = self._last
        pts += int(samples / rate / time_base)
        self._last = (pts, rate, time_base)
        assert self.finished is not None
        self._samples += samples
        played = int(self.sent[-1][0] * rate) if self.sent else 0
        wait = self.finished + (self._samples - played) / rate
        await asyncio.sleep(max(0.0, wait - time.monotonic()))
        frame = AudioFrame(format="s16", layout="stereo", samples=samples)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts, frame.time_base = rate, pts, time_base
        return frame

    def pace(self) -> float:
        """Wall seconds per second of the file sent (1.0 = real time; more = the client lagged)."""
        if len(self.sent) < 2:
            return math.nan
        (a0, t0), (a1, t1) = self.sent[0], self.sent[-1]
        return (t1 - t0) / (a1 - a0)

    def sent_at(self, audio_s: float) -> float | None:
        """When the frame holding audio second `audio_s` left for the encoder."""
        return next((t for end, t in self.sent if end >= audio_s - 1e-6), None)

    def stop(self) -> None:
        super().stop()
        self.source.stop()


@dataclass
class Speaker:
    """One speaking participant."""

    peer: Peer
    client: CallClient
    track: TimedTrack
    call_started: float


@dataclass
class Group:
    """One call: a listener and its speakers."""

    listener: Peer
    listener_client: CallClient
    call_id: str
    listener_lang: str = "en"
    speakers: list[Speaker] = field(default_factory=list)
    finals: list[tuple[float, dict]] = field(default_factory=list)  # (received, subtitle)
    partials: list[tuple[float, dict]] = field(default_factory=list)  # (received, subtitle)


@dataclass
class Utterance:
    """One repetition of the WAV by one speaker, as the listener read it."""

    latency_ms: float | None
    text: str  # the final(s) holding it
    translated: bool
    pieces: int
    speaker: str = ""
    rep: int = 0


def talk_only(client: CallClient, track: TimedTrack) -> None:
    """Make a speaker send its microphone and decline everyone else's media (its offer's m-line
    is sendonly; m-lines the server adds later are answered inactive)."""
    pc = client.rtc.pc
    client.rtc.tracks = []  # the offer then carries only the transceiver added here
    pc.addTransceiver(track, direction="sendonly")

    async def answer(offer_sdp: str) -> str:
        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        for transceiver in pc.getTransceivers():
            if transceiver.sender.track is None:
                transceiver.direction = "inactive"
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    client.rtc.answer = answer  # type: ignore[method-assign]


async def open_group(
    url: str,
    speakers: int,
    wav: Path,
    gate: asyncio.Event,
    full_media: bool,
    speaker_lang: str = "ko",
    listener_lang: str = "en",
) -> Group:
    """Connect a listener (`listener_lang`) and `speakers` speakers (`speaker_lang`), start a
    call and join it; the listener records every final and partial `subtitle`."""
    listener = await Peer(new_user(lang=listener_lang)).connect(url)
    talkers = [
        await Peer(new_user(role="supplier", lang=speaker_lang)).connect(url)
        for _ in range(speakers)
    ]
    ack = await listener.call("conversation.create", {"participants": [p.id for p in talkers]})
    assert ack["ok"], ack
    started = await listener.call("call.start", {"conversation_id": ack["conversation"]["id"]})
    assert started["ok"], started
    call_started = time.monotonic()
    listener_client = CallClient(listener, None, camera=False)
    group = Group(listener, listener_client, started["call"]["id"], listener_lang)

    @listener.sio.on("subtitle")
    async def on_subtitle(data: dict) -> None:
        (group.finals if data.get("final") else group.partials).append((time.monotonic(), data))

    joined = await listener_client.join(group.call_id)
    assert joined["ok"], joined
    for peer in talkers:
        client = CallClient(peer, wav, camera=False)
        assert client.player is not None
        track = TimedTrack(client.player.audio, gate)
        if full_media:
            client.rtc.tracks = [track]
        else:
            talk_only(client, track)
        group.speakers.append(Speaker(peer, client, track, call_started))
        joined = await client.join(group.call_id)
        assert joined["ok"], joined
        assert joined["captions"]["available"], joined["captions"]
    return group


async def close_group(group: Group) -> None:
    """End the call, close every peer connection and socket."""
    with contextlib.suppress(Exception):
        await group.listener.call("call.end", {"call_id": group.call_id}, timeout=10)
    for client in [group.listener_client, *(s.client for s in group.speakers)]:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 10)
    for speaker in group.speakers:
        speaker.track.stop()
    for peer in [group.listener, *(s.peer for s in group.speakers)]:
        with contextlib.suppress(Exception):
            await peer.close()


def settled(groups: list[Group]) -> bool:
    """Every peer connection is connected and no renegotiation is half done."""
    clients = [c for g in groups for c in [g.listener_client, *(s.client for s in g.speakers)]]
    return all(
        c.rtc.pc.connectionState == "connected" and c.rtc.pc.signalingState == "stable"
        for c in clients
    )


def speaker_stream(speaker: Speaker, finals: list[tuple[float, dict]]) -> list[tuple]:
    """The speaker's finals as (received, start, end, subtitle), start/end in seconds of the
    speaker's played audio (the subtitle's are since the call started)."""
    first_sent = speaker.track.sent[0][1] if speaker.track.sent else speaker.call_started
    audio_offset = first_sent - speaker.call_started  # ≈ the server's `audio_offset`
    mine = [
        (received, d["start"] - audio_offset, d["end"] - audio_offset, d)
        for received, d in finals
        if d["speaker"]["id"] == speaker.peer.id
    ]
    return sorted(mine, key=lambda f: f[2])


def utterances(
    speaker: Speaker, finals: list[tuple[float, dict]], layout: Layout, listener_lang: str = "en"
) -> list[Utterance]:
    """One `Utterance` per repetition: the latency to the last final holding it (`translated`:
    every such final carried a translation into `listener_lang`)."""
    mine = speaker_stream(speaker, finals)
    out = []
    for rep in range(layout.repeats):
        got = [f for f in mine if covers(f[1], f[2], rep, layout)]
        spoken = speaker.track.sent_at(rep * layout.period + layout.speech_end)
        if not got or spoken is None:
            out.append(Utterance(None, "", False, 0, speaker.peer.id, rep))
            continue
        received = max(f[0] for f in got)
        text = " ".join(f[3]["text"] for f in got)
        translated = all(f[3].get("translations", {}).get(listener_lang) for f in got)
        latency = (received - spoken) * 1000
        out.append(Utterance(latency, text, translated, len(got), speaker.peer.id, rep))
    return out


def stream_text(speaker: Speaker, finals: list[tuple[float, dict]]) -> str:
    """Everything the listener read from this speaker, in order."""
    return " ".join(f[3]["text"] for f in speaker_stream(speaker, finals))


@dataclass
class Cadence:
    """The partials of one utterance as the listener received them."""

    first_ms: float | None  # start of speech (first speech frame sent) -> first partial
    gaps_ms: list[float]  # between successive partials
    count: int


def partial_cadence(
    speaker: Speaker, group: Group, layout: Layout, found: list[Utterance]
) -> list[Cadence]:
    """Per repetition: the speaker's partials received after its speech began and before the
    final that closed it (`found`: this speaker's utterances, for the final's receive time)."""
    mine = [(t, d) for t, d in group.partials if d["speaker"]["id"] == speaker.peer.id]
    out = []
    for rep in range(layout.repeats):
        began = speaker.track.sent_at(rep * layout.period + layout.speech_start)
        spoken = speaker.track.sent_at(rep * layout.period + layout.speech_end)
        if began is None or spoken is None:
            out.append(Cadence(None, [], 0))
            continue
        latency = found[rep].latency_ms if rep < len(found) else None
        closed = spoken + latency / 1000 if latency is not None else math.inf
        times = sorted(t for t, _ in mine if began <= t < closed)
        gaps = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
        out.append(Cadence((times[0] - began) * 1000 if times else None, gaps, len(times)))
    return out


@dataclass
class Layout:
    """Where the speech is in the played file."""

    repeats: int
    period: float
    speech_start: float
    speech_end: float


@dataclass
class LevelResult:
    """One concurrency level."""

    speakers: int
    calls: int
    utterances: list[Utterance]
    texts: list[str]  # per speaker: all it said, as the listener read it
    server_cores: float
    client_cores: float
    load: float
    pace: float  # the slowest speaker's wall seconds per second of audio sent
    server_cpu_s: float = 0.0  # the server's CPU seconds over the level
    audio_s: float = 0.0  # seconds of audio every speaker sent, summed
    cadence: list[Cadence] = field(default_factory=list)  # per utterance, like `utterances`


async def run_level(
    url: str,
    server_pid: int,
    speakers: int,
    wav: Path,
    layout: Layout,
    tail_s: float,
    full_media: bool = False,
    speaker_lang: str = "ko",
    listener_lang: str = "en",
    settle_s: float = 0.0,
) -> LevelResult:
    """`speakers` speakers (`speaker_lang`) talk at once, each call with one listener
    (`listener_lang`); collect every utterance's latency, text and partials. With `settle_s`
    the level ends only once no final came for that long after every utterance was heard
    (an utterance split in two pieces then counts its last one)."""
    gate = asyncio.Event()
    sizes = [speakers // math.ceil(speakers / MAX_SPEAKERS_PER_CALL)] * math.ceil(
        speakers / MAX_SPEAKERS_PER_CALL
    )
    for i in range(speakers - sum(sizes)):
        sizes[i] += 1
    groups: list[Group] = []
    try:
        for size in sizes:
            groups.append(
                await open_group(url, size, wav, gate, full_media, speaker_lang, listener_lang)
            )
        deadline = time.monotonic() + 30
        while not settled(groups) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if not settled(groups):
            raise RuntimeError("peer connections did not settle within 30 s")
        await asyncio.sleep(1.0)  # let the server's captions threads start
        cpu0, own0, wall0 = process_cpu_s(server_pid), sum(os.times()[:2]), time.monotonic()
        gate.set()
        tracks = [s.track for g in groups for s in g.speakers]
        audio_s = layout.repeats * layout.period
        hard_deadline = time.monotonic() + 3 * audio_s + tail_s  # clients far behind: give up

        def deadline() -> float:
            """`tail_s` after the last speaker's file ended (or after it should have)."""
            ends = [t.finished for t in tracks]
            if None in ends:
                return hard_deadline
            return min(hard_deadline, max(wall0 + audio_s, *ends) + tail_s)  # type: ignore[arg-type]

        def complete() -> bool:
            done = all(t.finished for t in tracks)
            heard = all(
                all(
                    u.latency_ms is not None for u in utterances(s, g.finals, layout, listener_lang)
                )
                for g in groups
                for s in g.speakers
            )
            return done and heard

        def quiet() -> bool:
            last = max((t for g in groups for t, _ in g.finals), default=0.0)
            return time.monotonic() - last >= settle_s

        while not (complete() and quiet()) and time.monotonic() < deadline():
            await asyncio.sleep(0.1)
        wall = time.monotonic() - wall0
        server_cpu_s = process_cpu_s(server_pid) - cpu0
        client_cores = (sum(os.times()[:2]) - own0) / wall
        found, cadence = [], []
        for g in groups:
            for s in g.speakers:
                said = utterances(s, g.finals, layout, listener_lang)
                found += said
                cadence += partial_cadence(s, g, layout, said)
        texts = [stream_text(s, g.finals) for g in groups for s in g.speakers]
        load = os.getloadavg()[0]
        pace = max(t.pace() for t in tracks)
        sent = sum(t.sent[-1][0] for t in tracks if t.sent)
        return LevelResult(
            speakers,
            len(groups),
            found,
            texts,
            server_cpu_s / wall,
            client_cores,
            load,
            pace,
            server_cpu_s,
            sent,
            cadence,
        )
    finally:
        for group in groups:
            await close_group(group)


# ---------------------------------------------------------------- server


def install_argos_ko_en(data_dir: Path) -> str:
    """Build (cached) the test ko→en Argos package and install it into `data_dir` with the CLI
    (`tradetalk models install`); the CLI's `models list` of that data dir."""
    from tests.support.argos_package import build_argos_package
    from tests.support.argos_phrases import KO_EN

    archive = build_argos_package("ko", "en", KO_EN)
    cli = [sys.executable, "-m", "server.cli", "models"]
    env = {**os.environ, "TRADETALK_DATA": str(data_dir)}
    subprocess.run(
        [*cli, "install", str(archive)],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    listing = subprocess.run(
        [*cli, "list"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return listing.stdout


class Server:
    """Embedded Redis plus `tradetalk serve` in a child process, on a throw-away data dir."""

    def __init__(
        self,
        root: Path,
        endpoint: str = "vad",
        extra_env: dict[str, str] | None = None,
        source: Path = REPO,
        label: str = "",
    ) -> None:
        """`extra_env`: more environment for the server (e.g. `TRADETALK_SPEECH_ENGINES`);
        `source`: the source tree it runs (another revision's, to compare in one run), named
        `label` in reports."""
        self.root = root
        self.source = source
        self.label = label
        self.endpoint = endpoint
        self.extra_env = dict(extra_env or {})
        self.data = root / "data"
        self.redis = EmbeddedRedis(root / "redis")
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "TRADETALK_DATA": str(self.data),
            "TRADETALK_SECRET": SECRET.decode(),
            "TRADETALK_RATE_PER_SECOND": "1000",
            "TRADETALK_RATE_BURST": "1000",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
            "TRADETALK_ENDPOINT": self.endpoint,
            "TRADETALK_PROVISION": "off",  # no model downloads during a measurement
        }
        env["REDIS_URL"] = self.redis.url
        env.update(self.extra_env)
        return env

    def install_argos_ko_en(self) -> str:
        """Build (cached) the test ko→en Argos package and install it into the data dir."""
        return install_argos_ko_en(self.data)

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.redis.start()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve"],
                cwd=self.source,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        async with aiohttp.ClientSession() as http:
            for _ in range(1200):
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError, OSError, ValueError):
                    async with http.get(self.url + "/healthz") as resp:
                        body = await resp.json(content_type=None)
                        # warm (models loaded) too, so the warm-up is not measured
                        if body["redis"] and body.get("ready", True):
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError("server not healthy and warm within 120 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.redis.stop()


# ---------------------------------------------------------------- report


def fmt(value: float | None, spec: str = ".0f") -> str:
    """A number, or '-' when missing."""
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else format(value, spec)
    )
