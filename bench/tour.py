"""Tour fan-out benchmark: server CPU per second of stream vs number of viewers.

One host publishes 640x480 30 fps video (a moving noise texture, so the encoder works as on a
camera) plus speech audio (the Korean test WAV, looped); N viewers receive both. The server
runs in its own process, in one of two modes, so its process time is measured alone:

  fanout  `media.MediaRoom`: the host's video is decoded once and encoded once (VP8, PyAV);
          every viewer's sender only packetizes and encrypts the shared packets.
  naive   plain aiortc: one `MediaRelay` subscription and one `RTCRtpSender` encoder per
          viewer (upstream aiortc#1155), the usual way to serve many viewers.

Viewers live in this process and do not decode (their receiver's decoder thread is replaced
by one that counts VP8 frames), so the client side stays light and cannot starve the server.
A late joiner's time to first keyframe is measured after the steady-state window.

    python -m bench.tour [--viewers 1,10,25,50] [--seconds 5] [--modes fanout,naive]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

WAV = REPO.parent / "shared" / "testdata" / "speech" / "ko_test.wav"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- server process


async def serve(mode: str, sock: str) -> None:
    """The server: JSON-lines signalling on a unix socket (join / stats / quit)."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay

    from media.room import MediaRoom

    room = MediaRoom("bench", video_bitrate=800_000)
    relay = MediaRelay()
    sources: dict[str, object] = {}
    pcs: list[RTCPeerConnection] = []
    drains: list[asyncio.Future] = []
    done = asyncio.Event()

    async def naive_join(offer: str, host: bool) -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pcs.append(pc)
        if host:

            @pc.on("track")
            def on_track(track) -> None:
                sources[track.kind] = track

        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        if not host:
            for kind in ("audio", "video"):
                pc.addTrack(relay.subscribe(sources[kind]))
        await pc.setLocalDescription(await pc.createAnswer())
        if host:  # keep the host's tracks drained before anyone watches (as the room does)
            for track in sources.values():
                drains.append(asyncio.ensure_future(_drain(relay.subscribe(track))))
        return pc.localDescription.sdp

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await answer_requests(reader, writer)
        writer.close()

    async def answer_requests(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            request = json.loads(line)
            if request["op"] == "join":
                host = request["host"]
                if mode == "fanout":
                    sdp = await room.add_peer(
                        request["id"], request["sdp"], publish=host, subscribe=not host
                    )
                else:
                    sdp = await naive_join(request["sdp"], host)
                reply: dict = {"sdp": sdp}
            elif request["op"] == "stats":
                reply = {"stats": room.stats()}
                if mode == "fanout" and "host" in room.peer_ids:
                    video = next(f for f in room.fanouts("host") if f.kind == "video")
                    reply["keyframes"] = video.keyframes
            else:
                done.set()
                reply = {}
            writer.write((json.dumps(reply) + "\n").encode())
            await writer.drain()

    server = await asyncio.start_unix_server(handle, sock)
    await done.wait()
    server.close()
    await room.close()
    for pc in pcs:
        await pc.close()


async def _drain(track) -> None:
    from aiortc.mediastreams import MediaStreamError

    try:
        while True:
            await track.recv()
    except MediaStreamError:
        pass


# ---------------------------------------------------------------- clients


def _counting_decoder_worker(loop, input_q, output_q, decode_error) -> None:
    """Stand-in for aiortc's decoder thread: hands on (is_keyframe, size) per VP8 frame."""
    while True:
        task = input_q.get()
        if task is None:
            asyncio.run_coroutine_threadsafe(output_q.put(None), loop)
            break
        codec, encoded = task
        data = encoded.data
        keyframe = codec.mimeType.lower() == "video/vp8" and bool(data) and not data[0] & 1
        asyncio.run_coroutine_threadsafe(output_q.put((keyframe, len(data))), loop)


def _no_decoding() -> None:
    import aiortc.rtcrtpreceiver

    aiortc.rtcrtpreceiver.decoder_worker = _counting_decoder_worker


class Signal:
    """A JSON-lines connection to the server's signalling socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.lock = asyncio.Lock()

    @classmethod
    async def connect(cls, sock: str) -> Signal:
        return cls(*await asyncio.open_unix_connection(sock))

    async def call(self, **request) -> dict:
        async with self.lock:
            self.writer.write((json.dumps(request) + "\n").encode())
            await self.writer.drain()
            return json.loads(await self.reader.readline())

    def close(self) -> None:
        self.writer.close()


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Viewer:
    """A receive-only client counting video/audio frames (no decoding)."""

    def __init__(self, name: str) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection

        self.name = name
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video = 0
        self.audio = 0
        self.first_keyframe: float | None = None
        self.connected: float | None = None
        self.tasks: list[asyncio.Task] = []
        self.pc.on("track", lambda t: self.tasks.append(asyncio.ensure_future(self._count(t))))

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            if self.pc.connectionState == "connected" and self.connected is None:
                self.connected = time.monotonic()

    async def _count(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                item = await track.recv()
                if track.kind == "video":
                    self.video += 1
                    if item[0] and self.first_keyframe is None:
                        self.first_keyframe = time.monotonic()
                else:
                    self.audio += 1
        except (MediaStreamError, asyncio.CancelledError):
            pass

    async def join(self, signal: Signal) -> None:
        from aiortc import RTCSessionDescription

        self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.addTransceiver("video", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        reply = await signal.call(
            op="join", id=self.name, sdp=self.pc.localDescription.sdp, host=False
        )
        await self.pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))

    async def close(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()


async def answer_counts(viewers: list, row) -> None:
    """A viewer process's loop: on each stdin line "counts", print `row(viewer)` for every
    viewer as one JSON line; any other line (or EOF) ends it."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while (await reader.readline()).strip() == b"counts":
        sys.stdout.write(json.dumps([row(v) for v in viewers]) + "\n")
        sys.stdout.flush()


async def pool(sock: str, count: int, prefix: str) -> None:
    """A viewer process: `count` viewers; on each stdin line, print their frame counts."""
    _no_decoding()
    signal = await Signal.connect(sock)
    viewers = [Viewer(f"{prefix}{i}") for i in range(count)]
    for viewer in viewers:
        await viewer.join(signal)
    await answer_counts(viewers, lambda v: [v.video, v.audio, v.first_keyframe is not None])
    for viewer in viewers:
        await viewer.close()
    signal.close()


class Pool:
    """A viewer pool subprocess (`python -m MODULE --pool ARGS...`): the clients' CPU stays
    apart from the servers'."""

    def __init__(self, args: list[str], module: str = "bench.tour", env: dict | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--pool", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, **(env or {})},
        )

    async def counts(self) -> list[list]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("counts\n")
        self.proc.stdin.flush()
        line = await asyncio.get_running_loop().run_in_executor(None, self.proc.stdout.readline)
        return json.loads(line) if line else []

    def stop(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(20)
        except Exception:
            self.proc.kill()
            self.proc.wait()


async def all_counts(pools: list[Pool]) -> list[list]:
    """Every pool's viewers' counts (a pool still joining answers late)."""
    return [row for p in pools for row in await p.counts()]


async def run_case(mode: str, viewers: int, seconds: float, per_pool: int) -> dict:
    """One server process, one host, `viewers` viewers in pool processes, one late joiner."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer

    from tests.support.rtc_clients import MovingPatternTrack

    tmp = tempfile.mkdtemp(prefix="tour-bench-")
    sock = os.path.join(tmp, "signal.sock")
    server = subprocess.Popen([sys.executable, __file__, "--serve", mode, sock], cwd=REPO)
    for _ in range(400):  # the socket file appears at bind(), before listen()
        try:
            signal = await Signal.connect(sock)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            await asyncio.sleep(0.05)
    else:
        raise RuntimeError("bench server did not start")
    host = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    player = MediaPlayer(str(WAV), loop=True)
    camera = MovingPatternTrack(640, 480, fps=30, texture=True)
    late = Viewer("late")
    pools: list[Pool] = []
    try:
        host.addTrack(player.audio)
        host.addTrack(camera)
        await host.setLocalDescription(await host.createOffer())
        reply = await signal.call(op="join", id="host", sdp=host.localDescription.sdp, host=True)
        await host.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        await asyncio.sleep(0.5)
        sizes = [min(per_pool, viewers - i) for i in range(0, viewers, per_pool)]
        pools = [Pool([sock, str(n), f"p{i}v"]) for i, n in enumerate(sizes)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            if all(row[2] for row in await all_counts(pools)):
                break
        await asyncio.sleep(1.0)  # steady state
        procs = [server.pid, *(p.proc.pid for p in pools)]
        cpu0 = [proc_cpu(pid) for pid in procs]
        own0, wall0 = time.process_time(), time.monotonic()
        counts0 = await all_counts(pools)
        await asyncio.sleep(seconds)
        counts1 = await all_counts(pools)
        cpu1 = [proc_cpu(pid) for pid in procs]
        own1, wall = time.process_time(), time.monotonic() - wall0
        fps = [(b[0] - a[0]) / wall for a, b in zip(counts0, counts1, strict=True)]
        _no_decoding()  # the late joiner, in this process, counts frames too
        started = time.monotonic()
        await late.join(signal)
        while late.first_keyframe is None and time.monotonic() - started < 10:
            await asyncio.sleep(0.005)
        ttff = (late.first_keyframe - started) if late.first_keyframe else float("nan")
        connect = (late.connected - started) if late.connected else float("nan")
        stats = await signal.call(op="stats")
        return {
            "mode": mode,
            "viewers": viewers,
            "server_cpu": (cpu1[0] - cpu0[0]) / wall,
            "client_cpu": (sum(cpu1[1:]) - sum(cpu0[1:]) + own1 - own0) / wall,
            "fps_min": min(fps),
            "fps_mean": sum(fps) / len(fps),
            "ttff_ms": ttff * 1000,
            "connect_ms": connect * 1000,
            "stats": stats,
        }
    finally:
        for p in pools:
            p.stop()
        await late.close()
        await host.close()
        camera.stop()
        with contextlib.suppress(Exception):
            await signal.call(op="quit")
        signal.close()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def per_frame(row: dict) -> float:
    """Server CPU milliseconds per video frame delivered to one viewer."""
    delivered = row["fps_mean"] * row["viewers"]
    return row["server_cpu"] * 1000 / delivered if delivered else float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", default="1,10,25,50")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--modes", default="fanout,naive")
    parser.add_argument("--per-pool", type=int, default=13, help="viewers per client process")
    args = parser.parse_args()

    print(
        f"tour bench: host 640x480 30 fps VP8 + Opus, {os.cpu_count()} CPUs, "
        f"{args.seconds:g} s per case; server CPU = server process time per second of stream"
    )
    header = (
        f"{'mode':<8}{'viewers':>8}{'server CPU':>12}{'per viewer':>12}{'fps min/mean':>15}"
        f"{'ms/frame':>10}{'late: connect':>15}{'1st keyframe':>14}{'clients CPU':>13}"
    )
    print(header)
    print("(ms/frame = server CPU ms per video frame delivered to one viewer: naive falls behind)")
    rows = []
    for n in [int(x) for x in args.viewers.split(",")]:
        for mode in args.modes.split(","):
            row = await run_case(mode, n, args.seconds, args.per_pool)
            rows.append(row)
            print(
                f"{mode:<8}{n:>8}{row['server_cpu']:>11.2f}s{row['server_cpu'] / n:>11.3f}s"
                f"{row['fps_min']:>8.1f}/{row['fps_mean']:<6.1f}{per_frame(row):>10.2f}"
                f"{row['connect_ms']:>13.0f}ms"
                f"{row['ttff_ms']:>12.0f}ms{row['client_cpu']:>12.2f}s",
                flush=True,
            )
    by = {(r["mode"], r["viewers"]): r for r in rows}
    for n in sorted({r["viewers"] for r in rows}):
        if ("fanout", n) in by and ("naive", n) in by:
            naive, fanout = by[("naive", n)], by[("fanout", n)]
            ratio = naive["server_cpu"] / max(fanout["server_cpu"], 1e-9)
            frame_ratio = per_frame(naive) / max(per_frame(fanout), 1e-9)
            print(
                f"{n:>3} viewers: naive/fanout server CPU = {ratio:.1f}x, "
                f"per delivered frame = {frame_ratio:.1f}x"
            )
    for r in rows:
        if r["mode"] == "fanout":
            st = r["stats"].get("stats", {})
            print(
                f"fanout {r['viewers']:>3} viewers: video encoders {st.get('video_encoders')}, "
                f"per-sender encoders {st.get('per_sender_encoders')}, "
                f"keyframes {r['stats'].get('keyframes')}"
            )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        asyncio.run(serve(sys.argv[2], sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "--pool":
        asyncio.run(pool(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    else:
        asyncio.run(main())
