"""Accuracy on speech that pauses inside sentences: the subtitles' CER through the server's
endpointing and recognizer against a direct decode of the same file, per endpointing option.

Run: .venv/bin/python -m bench.pauses [--variants 8] [--seed 7]

The clips are real recordings with real pauses put in: `ko_test.wav` decoded once for its word
times (Vosk), then, per variant, 1-3 word boundaries (seeded) get 0.3-0.6 s of the clip's own
background (its quietest 0.1 s, tiled) inserted; each variant is followed by 1.5 s of the same
background. Direct = `transcribe_wav` of the whole played file (Vosk's own endpointing on
continuous audio, one recognizer; the ratio's base), and of each variant alone. Through the
pipeline = what `server/media_sessions/captions.py` does with each 20 ms chunk
(`translation.endpointing.Endpointer` -> feed / skip / pause / resume / `end_utterance`), in
this process, no network. CER: spaces removed, against the
reference said once per variant. `lines/utt.` = finals per variant (1 = never split).
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import struct
import sys
import wave
from dataclasses import replace
from pathlib import Path

from bench.call_harness import reference_text
from translation.endpoint_driver import UtteranceDriver
from translation.endpointing import End, EndpointConfig, Endpointer, Event
from translation.metrics import character_error_rate as cer
from translation.sentence_ends import finished_rule
from translation.speech import SpeechResult

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "speech"
RATE = 16000
CHUNK = 640  # 20 ms of s16 mono


def background(pcm: bytes, seconds: float = 0.1) -> bytes:
    """The clip's quietest stretch of `seconds` (its own room noise)."""
    size = int(RATE * seconds) * 2
    best, best_energy = pcm[:size], float("inf")
    for offset in range(0, len(pcm) - size, 320):
        samples = struct.unpack(f"<{size // 2}h", pcm[offset : offset + size])
        energy = sum(s * s for s in samples)
        if energy < best_energy:
            best, best_energy = pcm[offset : offset + size], energy
    return best


def filler(noise: bytes, seconds: float) -> bytes:
    size = int(RATE * seconds) * 2
    return (noise * (size // len(noise) + 1))[:size]


def paused_clip(pcm: bytes, cuts: list[float], pauses: list[float], noise: bytes) -> bytes:
    """`pcm` with `pauses[i]` seconds of background put in at `cuts[i]` seconds."""
    out, last = [], 0
    for cut, pause in sorted(zip(cuts, pauses, strict=True)):
        at = int(cut * RATE) * 2
        out += [pcm[last:at], filler(noise, pause)]
        last = at
    out.append(pcm[last:])
    return b"".join(out)


def through_pipeline(
    model: object, pcm: bytes, config: EndpointConfig, lang: str | None = None
) -> tuple[list[str], list[float]]:
    """The finals the server's captions path makes of `pcm` (its `UtteranceDriver` loop),
    and the stream time (s) of each endpointer `End`. With `lang`, the adaptive rule
    (`translation.sentence_ends.finished_rule`) hears each partial."""
    from translation.speech import StreamingRecognizer

    recognizer = StreamingRecognizer(model)
    finals: list[str] = []
    ends: list[float] = []

    def result(final: SpeechResult, _: End | None) -> None:
        if final.final:
            finals.append(final.text)

    def event(event: Event, position: float) -> None:
        if isinstance(event, End):
            ends.append(position)

    driver = UtteranceDriver(Endpointer(config, finished_rule(lang)), recognizer, result, event)
    for offset in range(0, len(pcm), CHUNK):
        driver.process(pcm[offset : offset + CHUNK])
    driver.flush()
    return [f for f in finals if f.strip()], ends


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from translation.speech import transcribe_wav
    from translation.speech_models import find_speech_model, load_speech_model
    from translation.wav_audio import read_wav_pcm16

    wav = SPEECH / "ko_test.wav"
    reference = reference_text(wav)
    model = load_speech_model(find_speech_model("ko", Path("/nonexistent")))
    pcm = read_wav_pcm16(wav)
    words = [w for r in transcribe_wav(wav, model) for w in r.words]
    bounds = [(a.end + b.start) / 2 for a, b in itertools.pairwise(words)]
    noise = background(pcm)
    rng = random.Random(args.seed)
    played, layout = [], []
    for _ in range(args.variants):
        cuts = sorted(rng.sample(bounds, rng.randint(1, min(3, len(bounds)))))
        pauses = [round(rng.uniform(0.3, 0.6), 2) for _ in cuts]
        layout.append(list(zip(cuts, pauses, strict=True)))
        played += [paused_clip(pcm, cuts, pauses, noise), filler(noise, 1.5)]
    audio = b"".join(played)
    target = Path("/tmp") / f"tradetalk-pauses-{args.seed}.wav"
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(audio)
    expected = " ".join([reference] * args.variants)
    print(f"ko_test.wav: {len(words)} words; {args.variants} variants, pauses put in (s at s):")
    for row in layout:
        print("  " + ", ".join(f"{p:.2f} at {c:.2f}" for c, p in row))

    direct = " ".join(r.text for r in transcribe_wav(target, model))
    baseline = cer(direct, expected)
    print(f"\ndirect decode of the whole file: CER {baseline:.3f}  {direct[:80]!r}")
    alone = []
    for k, piece in enumerate(played[::2]):
        single = Path("/tmp") / f"tradetalk-pauses-{args.seed}-{k}.wav"
        with wave.open(str(single), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(piece)
        alone.append(" ".join(r.text for r in transcribe_wav(single, model)))
        single.unlink()
    print(f"direct decode of each variant alone: CER {cer(' '.join(alone), expected):.3f}")
    # unpaused: the clip as recorded, each followed by 1.5 s of background; end of speech =
    # the direct decode's last word end
    unpaused = pcm + filler(noise, 1.5)
    period = len(unpaused) / (2 * RATE)
    last_word = words[-1].end
    plain = unpaused * args.variants
    print(
        f"\n{'endpointing':<36} {'CER':>6} {'x direct':>8} {'lines/utt.':>10} "
        f"{'unpaused: end->End p50 / max s':>31}"
    )
    default = EndpointConfig()
    options: list[tuple[str, EndpointConfig, str | None]] = [
        (f"VAD, silence {s:.2f} s", replace(default, silence_s=s), None) for s in (0.25, 0.35, 0.45)
    ]
    options.insert(1, ("adaptive 0.25 / 0.45 s (default)", default, "ko"))
    for name, config, lang in options:
        lines, _ = through_pipeline(model, audio, config, lang)
        value = cer(" ".join(lines), expected)
        ratio = value / baseline if baseline else float("nan")
        _, ends = through_pipeline(model, plain, config, lang)
        waits = sorted(e - (k * period + last_word) for k, e in enumerate(ends[: args.variants]))
        wait = f"{statistics.median(waits):.3f} / {max(waits):.3f}" if waits else "-"
        print(
            f"{name:<36} {value:>6.3f} {ratio:>8.2f} {len(lines) / args.variants:>10.2f} {wait:>31}"
        )
        if len(ends) != args.variants:
            print(f"  (unpaused: {len(ends)} ends for {args.variants} clips)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
