"""Speech-to-text benchmark: real-time factor and real-time streams per machine (Korean Vosk).

Run: .venv/bin/python -m bench.stt [--wav FILE] [--repeat 2] [--max-streams 4] [--paced-max 6]

Timings are the best of --repeat runs (the least disturbed by other work on the machine).

1. One stream, same audio, same process:
   - baseline: a plain vosk loop (KaldiRecognizer + AcceptWaveform over 4000-byte reads);
   - ours: translation.speech.StreamingRecognizer fed 20 ms chunks (partials included).
   RTF = decode seconds / audio seconds (< 1 is faster than real time).
2. N recognizers in N threads (N = 1..max) each decoding its own copy as fast as it can:
   per-stream RTF = wall seconds / audio seconds of one stream; capacity = total audio
   seconds / wall seconds = how many real-time streams the machine sustains.
3. N streams fed in real time (a 20 ms chunk every 20 ms): held while the final result of
   every stream is ready within --max-lag seconds of the end of its audio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from translation.speech import StreamingRecognizer, find_speech_model, load_speech_model
from translation.speech_models import import_vosk
from translation.wav_audio import read_wav_pcm16

DEFAULT_WAV = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "speech" / "ko_test.wav"
BYTES_PER_SECOND = 32000  # 16 kHz, 16-bit, mono


def plain_vosk(model, pcm: bytes) -> str:
    """Baseline: the loop from vosk's own examples."""
    vosk = import_vosk()
    recognizer = vosk.KaldiRecognizer(model, 16000)
    recognizer.SetWords(True)
    texts = []
    for offset in range(0, len(pcm), 4000):
        if recognizer.AcceptWaveform(pcm[offset : offset + 4000]):
            texts.append(json.loads(recognizer.Result())["text"])
    texts.append(json.loads(recognizer.FinalResult())["text"])
    return " ".join(t for t in texts if t)


def ours(model, pcm: bytes, chunk: int = 640) -> str:
    """StreamingRecognizer fed 20 ms chunks; partial results are produced as in live use."""
    recognizer = StreamingRecognizer(model)
    texts = []
    for offset in range(0, len(pcm), chunk):
        texts.extend(r.text for r in recognizer.feed(pcm[offset : offset + chunk]) if r.final)
    last = recognizer.finish()
    if last is not None:
        texts.append(last.text)
    return " ".join(texts)


def timed(fn, *args) -> tuple[float, str]:
    start = time.perf_counter()
    text = fn(*args)
    return time.perf_counter() - start, text


def parallel(model, pcm: bytes, streams: int) -> float:
    """Wall seconds for ``streams`` threads each decoding ``pcm`` with its own recognizer."""
    barrier = threading.Barrier(streams + 1)

    def work() -> None:
        barrier.wait()
        ours(model, pcm)

    threads = [threading.Thread(target=work) for _ in range(streams)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def paced(model, pcm: bytes, streams: int, chunk: int = 640) -> float:
    """Feed ``streams`` streams in real time (a chunk every 20 ms); the worst final lag, s.

    Lag = how long after the stream's last chunk was due its final result was ready.
    """
    barrier = threading.Barrier(streams + 1)
    lags: list[float] = []
    period = chunk / BYTES_PER_SECOND

    def work() -> None:
        recognizer = StreamingRecognizer(model)
        barrier.wait()
        start = time.perf_counter()
        for i, offset in enumerate(range(0, len(pcm), chunk)):
            due = start + i * period
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            recognizer.feed(pcm[offset : offset + chunk])
        recognizer.finish()
        lags.append(time.perf_counter() - (start + len(pcm) / BYTES_PER_SECOND))

    threads = [threading.Thread(target=work) for _ in range(streams)]
    for thread in threads:
        thread.start()
    barrier.wait()
    for thread in threads:
        thread.join()
    return max(lags)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wav", type=Path, default=DEFAULT_WAV)
    parser.add_argument("--lang", default="ko")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement (best)")
    parser.add_argument("--max-streams", type=int, default=4)
    parser.add_argument("--paced-max", type=int, default=6, help="most paced streams tried")
    parser.add_argument("--max-lag", type=float, default=1.0, help="lag (s) still real time")
    args = parser.parse_args()

    data_dir = Path(os.environ.get("TRADETALK_DATA", "var"))
    start = time.perf_counter()
    model = load_speech_model(find_speech_model(args.lang, data_dir))
    load_s = time.perf_counter() - start
    # Two copies of the recording with 1 s of silence between: two utterances, ~9 s of audio.
    one = read_wav_pcm16(args.wav)
    pcm = one + b"\0" * BYTES_PER_SECOND + one
    audio_s = len(pcm) / BYTES_PER_SECOND
    print(
        f"model {args.lang}: loaded in {load_s:.2f} s; audio {audio_s:.2f} s per stream; "
        f"{os.cpu_count()} CPUs"
    )

    ours(model, pcm)  # warm-up
    print(f"\n== one stream (best of {args.repeat} interleaved runs) ==")
    print(f"{'decoder':<44} {'seconds':>8} {'RTF':>6}  text")
    decoders = (
        ("baseline: plain vosk, 4000-byte reads", plain_vosk),
        ("ours: StreamingRecognizer, 20 ms chunks", ours),
    )
    runs: dict[str, list[tuple[float, str]]] = {label: [] for label, _ in decoders}
    for _ in range(args.repeat):
        for label, fn in decoders:
            runs[label].append(timed(fn, model, pcm))
    for label, _ in decoders:
        seconds = min(r[0] for r in runs[label])
        print(f"{label:<44} {seconds:8.3f} {seconds / audio_s:6.3f}  {runs[label][0][1]}")

    print("\n== N streams in N threads (ours, 20 ms chunks) ==")
    print(f"{'N':>2} {'wall s':>8} {'RTF/stream':>11} {'audio s / wall s':>17}")
    held = 0
    for n in range(1, args.max_streams + 1):
        wall = min(parallel(model, pcm, n) for _ in range(args.repeat))
        rtf = wall / audio_s
        capacity = n * audio_s / wall
        if rtf <= 1.0 and held == n - 1:  # every smaller N held too
            held = n
        print(f"{n:>2} {wall:8.3f} {rtf:11.3f} {capacity:17.2f}")
    print(f"load average after the run: {os.getloadavg()[0]:.2f} (other work skews these numbers)")
    print(f"streams held (N up to which RTF/stream <= 1): {held}")

    print("\n== N streams fed in real time (20 ms every 20 ms), one recording each ==")
    print(f"{'N':>2} {'worst final lag s':>18}")
    live = 0
    for n in range(1, args.paced_max + 1):
        lag = paced(model, one, n)
        print(f"{n:>2} {lag:18.3f}")
        if lag > args.max_lag:
            break
        live = n
    print(f"real-time streams held (final within {args.max_lag:.1f} s of the audio end): {live}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
