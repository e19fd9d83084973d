"""Silence gating benchmark: real-time speech streams held with conversational audio that is
half pauses, the recognizer fed only speech (gated, the server's default) vs fed everything.

Run: .venv/bin/python -m bench.gating [--wav FILE] [--pause 1.5] [--repeats 6] [--threads 2]

Each stream is `--wav` followed by `--pause` s of pause, `--repeats` times, pushed
through what a speaker's captions thread runs (`translation.endpointing.Endpointer` in 20 ms
chunks, then `StreamingRecognizer`, each utterance closed with `end_utterance()`), as fast as
it can, in `--threads` threads at once. Streams held = audio seconds decoded / wall seconds
(how many real-time speakers this machine keeps up with). Both rows run in the same process,
same audio, one after the other (best of `--runs`); the text of each is checked against the
other (CER) so gating is seen not to cost accuracy. The detector's own cost is printed apart.
A pause is the recording's own room tone (its first 0.6 s, before the first word, tiled), as
a microphone gives it; `--digital` uses zeros instead (which Vosk decodes very cheaply).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

from translation.endpoint_driver import UtteranceDriver
from translation.endpointing import EndpointConfig, Endpointer
from translation.metrics import character_error_rate as cer
from translation.speech import StreamingRecognizer, find_speech_model, load_speech_model
from translation.wav_audio import read_wav_pcm16

DEFAULT_WAV = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "speech" / "ko_test.wav"
SECOND = 32000
CHUNK = 640  # 20 ms, as the media room delivers it


def one_stream(model, pcm: bytes, gate: bool) -> str:
    """Decode one stream as a captions thread would; return everything it said."""
    texts: list[str] = []
    driver = UtteranceDriver(
        Endpointer(EndpointConfig(gate=gate)),
        StreamingRecognizer(model),
        lambda result, _: texts.append(result.text) if result.final else None,
    )
    for offset in range(0, len(pcm), CHUNK):
        driver.process(pcm[offset : offset + CHUNK])
    driver.flush()
    return " ".join(texts)


def held(model, pcm: bytes, threads: int, gate: bool) -> tuple[float, float, str]:
    """(streams held, CPU s per audio s per stream, text of stream 0)."""
    texts: list[str] = [""] * threads

    def work(i: int) -> None:
        texts[i] = one_stream(model, pcm, gate)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    audio_s = len(pcm) / SECOND
    return threads * audio_s / wall, cpu / (threads * audio_s), texts[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wav", type=Path, default=DEFAULT_WAV)
    parser.add_argument("--pause", type=float, default=1.5, help="silence after each clip (s)")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2, help="streams decoded at once")
    parser.add_argument("--runs", type=int, default=2, help="best of")
    parser.add_argument("--digital", action="store_true", help="pauses of digital silence")
    args = parser.parse_args()
    model = load_speech_model(find_speech_model("ko", Path("var")))
    clip = read_wav_pcm16(args.wav, 16000)
    pause_bytes = int(args.pause * SECOND) // 2 * 2
    if args.digital:
        pause = b"\0" * pause_bytes
    else:
        tone = clip[: int(0.6 * SECOND) // 2 * 2]
        pause = (tone * (pause_bytes // len(tone) + 1))[:pause_bytes]
    pcm = (clip + pause) * args.repeats
    kind = "digital silence" if args.digital else "room tone"
    probe = Endpointer()
    t0 = time.process_time()
    probe.process(pcm)
    vad_ms = (time.process_time() - t0) / (len(pcm) / SECOND) * 1000
    voiced = probe.fed_bytes / len(pcm)
    print(
        f"audio: {args.wav.name} + {args.pause:.1f} s {kind}, x{args.repeats} = "
        f"{len(pcm) / SECOND:.1f} s per stream; the recognizer gets {voiced:.0%} of it when "
        f"gated; webrtcvad costs {vad_ms:.2f} ms CPU per audio second"
    )
    one_stream(model, clip, True)  # warm the model's caches
    rows = {}
    for gate in (True, False):
        best = max(
            (held(model, pcm, args.threads, gate) for _ in range(args.runs)), key=lambda r: r[0]
        )
        rows[gate] = best
    cores = os.cpu_count() or 1
    print(f"\n{'':28} {'streams held':>12} {'CPU s / audio s / stream':>25} {'by CPU':>7}")
    for gate, label in ((True, "gated (speech + 0.3 s)"), (False, "baseline: fed everything")):
        streams, cpu, _ = rows[gate]
        print(f"{label:28} {streams:>12.1f} {cpu:>25.3f} {cores / cpu:>7.1f}")
    ratio = rows[True][0] / rows[False][0]
    print(f"(by CPU = {cores} cores / CPU per stream: the capacity if this benchmark had the")
    print(" machine alone; streams held = measured wall clock, shared with whatever else runs)")
    print(
        f"\ngated / fed everything: {ratio:.2f}x streams held ({args.threads} threads, this load)"
    )
    print(f"CER of the gated text vs the ungated text: {cer(rows[True][2], rows[False][2]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
