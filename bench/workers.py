"""Recognition workers benchmark: real-time Korean streams recognized in-process vs by 1 and 2
`tradetalk worker` processes, and the latency the worker hop adds.

Run: .venv/bin/python bench/workers.py [--streams 1,2,4,6] [--utterances 3] [--max-lag 1.0]

One process plays the media node: per stream, the real pipeline (`SpeakerCaptions` with the VAD
endpointer, fed a 20 ms chunk every 20 ms) on a recognizer from `RecognitionHub`, as in a call.
Each stream says `ko_test.wav` --utterances times with 1.5 s of silence after each. One
embedded Redis; with 1 worker, then with 2 (spawned here), --rounds rounds of: per N,
`in-process` (the node is told it sees no worker, so it recognizes) then the workers, so the
machine's other load hits baseline and workers alike (`[k]`: measured beside k workers).

Per mode and N streams: latency = end of the speech -> its final line back at the node
(p50 and worst over every utterance of every stream; the VAD's 0.25 s of silence is in all
modes alike), held = every final within --max-lag of its recording's end, node CPU (this
process) and each worker's CPU (its heartbeat's `cpu_seconds`), as cores over the wall time.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis.asyncio as aioredis

from server.media_sessions.captions import SpeakerCaptions, endpoint_config_from_env
from server.recognition.hub import RecognitionHub
from server.recognition.streams import worker_key, workers_key
from server.storage.embedded_redis import EmbeddedRedis
from tests.support.peers import spawn_cli
from translation.wav_audio import read_wav_pcm16

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WAV = REPO.parent / "shared" / "testdata" / "speech" / "ko_test.wav"
BYTES_PER_SECOND = 32000
CHUNK = 640  # 20 ms
PAUSE_S = 1.5
CLUSTER = "bench"


def speech_end(pcm: bytes) -> int:
    """Where the recording's speech ends (bytes): the end of its last voiced 30 ms frame (the
    endpointer's detector), so latency counts from the end of speech, not of the file."""
    import webrtcvad

    from translation.endpointing import FRAME_BYTES, SAMPLE_RATE

    vad = webrtcvad.Vad(3)
    last = 0
    for offset in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        if vad.is_speech(pcm[offset : offset + FRAME_BYTES], SAMPLE_RATE):
            last = offset + FRAME_BYTES
    return last


async def one_stream(hub: RecognitionHub, data_dir: Path, wav: bytes, utterances: int) -> list:
    """Feed one stream in real time; the latency of each final (s after its speech ended)."""
    loop = asyncio.get_running_loop()
    _engine, recognizer = await asyncio.to_thread(hub.open_recognizer, "ko", data_dir)
    finals: list[float] = []
    captions = SpeakerCaptions(
        recognizer,
        loop,
        lambda r: finals.append(time.perf_counter()) if r.final else None,
        endpoint=endpoint_config_from_env({}),
    )
    silence = b"\0" * int(PAUSE_S * BYTES_PER_SECOND)
    spoken = speech_end(wav)
    ends: list[float] = []
    start = time.perf_counter()
    fed = 0
    for _ in range(utterances):
        for part in (wav, silence):
            for offset in range(0, len(part), CHUNK):
                fed += CHUNK
                delay = start + fed / BYTES_PER_SECOND - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                captions.feed(part[offset : offset + CHUNK])
                if part is wav and offset < spoken <= offset + CHUNK:
                    ends.append(time.perf_counter())
    deadline = time.perf_counter() + 15
    while len(finals) < utterances and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.to_thread(captions.close)
    lags = []
    for end, next_end in zip(ends, [*ends[1:], float("inf")], strict=True):
        got = [f for f in finals if end <= f < next_end]  # the first final after the speech
        lags.append(got[0] - end if got else float("inf"))
    return lags


async def worker_cpu(client: aioredis.Redis) -> dict[str, float]:
    ids = await client.zrange(workers_key(CLUSTER), 0, -1)
    out = {}
    for raw in ids:
        worker = raw.decode() if isinstance(raw, bytes) else raw
        cpu = await client.hget(worker_key(CLUSTER, worker), "cpu_seconds")
        out[worker] = float(cpu or 0)
    return out


async def measure(hub, client, data_dir, wav, n, utterances) -> dict:
    cpu0, wall0, workers0 = time.process_time(), time.perf_counter(), await worker_cpu(client)
    counts0 = dict(hub.utterances)
    hub.hops.clear()
    runs = await asyncio.gather(*(one_stream(hub, data_dir, wav, utterances) for _ in range(n)))
    wall = time.perf_counter() - wall0
    await asyncio.sleep(1.2)  # one more heartbeat: the workers' CPU up to now
    workers1 = await worker_cpu(client)
    lags = [lag for run in runs for lag in run]
    return {
        "lags": lags,
        "node_cores": (time.process_time() - cpu0) / wall,
        # a worker stopped (SIGSTOP) for this mode has no load hash left: not counted
        "worker_cores": {
            w: max(0.0, workers1[w] - workers0[w]) / wall
            for w in workers1
            if w in workers0 and workers1[w] >= workers0[w] > 0
        },
        "counts": {k: hub.utterances[k] - counts0.get(k, 0) for k in hub.utterances},
        "hops": list(hub.hops),
    }


def spawn_worker(i: int, url: str, tmp: Path) -> subprocess.Popen:
    """`tradetalk worker` on the bench's Redis (it dies with the bench)."""
    env = {**os.environ, "REDIS_URL": url, "TRADETALK_CLUSTER": CLUSTER}
    env.setdefault("TRADETALK_DATA", str(tmp / f"worker{i}"))
    env.setdefault("TRADETALK_SECRET", "bench-secret-" + "x" * 20)
    args = ["worker", "--id", f"bench{i}", "--languages", "ko"]
    return spawn_cli(args, env, tmp / f"worker{i}.log")


async def wait_alive(hub: RecognitionHub, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while hub.alive < count:
        assert time.monotonic() < deadline, f"{count} workers not alive in {timeout} s"
        await asyncio.sleep(0.2)
        await hub.refresh()


def row(mode: str, n: int, result: dict, max_lag: float) -> tuple[str, float]:
    lags = result["lags"]
    p50 = statistics.median(lags)
    worst = max(lags)
    held = "yes" if worst <= max_lag else "no"
    workers = " ".join(f"{w}={c:.2f}" for w, c in sorted(result["worker_cores"].items()))
    counts = result["counts"]
    where = f"w{counts.get('worker', 0)}/n{counts.get('node', 0)}/f{counts.get('fallback', 0)}"
    hops = result["hops"]
    hop = f"{statistics.median(hops) * 1000:6.1f}" if hops else "     -"
    print(
        f"{mode:<11} {n:>2} {p50 * 1000:8.0f} {worst * 1000:8.0f} {held:>5} "
        f"{result['node_cores']:6.2f}  {workers or '-':<24} {hop}  {where}"
    )
    return held, p50


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wav", type=Path, default=DEFAULT_WAV)
    parser.add_argument("--streams", default="1,2,4,6", help="N streams tried per mode")
    parser.add_argument("--utterances", type=int, default=3, help="recordings per stream")
    parser.add_argument("--max-lag", type=float, default=1.0, help="lag (s) still real time")
    parser.add_argument("--max-workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="rounds per worker count")
    args = parser.parse_args()
    counts = [int(n) for n in args.streams.split(",")]
    data_dir = Path(os.environ.get("TRADETALK_DATA", "var"))
    wav = read_wav_pcm16(args.wav)
    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    redis_server = EmbeddedRedis(tmp / "redis")
    url = redis_server.start()
    client = aioredis.from_url(url)
    hub = RecognitionHub(url, client, "benchnode", CLUSTER)
    await hub.start()
    workers: list[subprocess.Popen] = []
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start")
    print(
        f"{'mode':<11} {'N':>2} {'p50 ms':>8} {'worst ms':>8} {'held':>5} {'node':>6}  "
        f"{'worker cores':<24} hop ms  where (worker/node/fallback)"
    )
    try:
        from server.warmup import warm_recognizers

        await asyncio.to_thread(warm_recognizers, data_dir, {"ko": "vosk"})
        await hub._refresh.stop()  # the bench says when the node sees its workers
        results: dict[tuple[str, int], list[dict]] = {}
        for n_workers in range(1, args.max_workers + 1):
            workers.append(spawn_worker(n_workers, url, tmp))
            await wait_alive(hub, n_workers)
            for _round in range(args.rounds):
                for n in counts:
                    for mode in ("in-process", f"{n_workers} worker(s)"):
                        if mode == "in-process":
                            hub.alive = 0  # the node sees no worker: it recognizes in-process
                        else:
                            await hub.refresh()
                        result = await measure(hub, client, data_dir, wav, n, args.utterances)
                        row(mode, n, result, args.max_lag)
                        results.setdefault((f"{mode} [{n_workers}]", n), []).append(result)
        print(f"\n== all {args.rounds} rounds: latency from the end of speech to the final ==")
        base: dict[int, float] = {}
        for (mode, n), runs in results.items():
            lags = [lag for r in runs for lag in r["lags"]]
            hops = [h for r in runs for h in r["hops"]]
            p50 = statistics.median(lags)
            held = all(lag <= args.max_lag for lag in lags)
            cores = {}
            for r in runs:
                for w, c in r["worker_cores"].items():
                    cores.setdefault(w, []).append(c)
            per_worker = " ".join(f"{w}={statistics.mean(c):.2f}" for w, c in sorted(cores.items()))
            node = statistics.mean(r["node_cores"] for r in runs)
            if mode.startswith("in-process"):
                base[n] = p50  # the baseline measured beside these workers
            versus = f"{(p50 - base[n]) * 1000:+6.0f}" if not mode.startswith("in-") else ""
            hop = f"hop p50 {statistics.median(hops) * 1000:.1f} ms" if hops else ""
            print(
                f"{mode:<15} N={n}: p50 {p50 * 1000:5.0f} ms {versus:>6} vs in-process, "
                f"held {'yes' if held else 'no '}, node {node:.2f} cores, "
                f"workers {per_worker or '-'} {hop}"
            )
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
        await hub.stop()
        await client.aclose()
        redis_server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
