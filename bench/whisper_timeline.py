"""Where a Whisper speaker's final and first partial spend their time, utterance by utterance.

Run: .venv/bin/python -m bench.whisper_timeline [--clips en_mr_quilter.wav,...] [--repeats 2]
                                                [--pause 2.0] [--baseline]

Each clip (``../shared/testdata/speech``) is played `--repeats` times with `--pause` s of
silence after it, in 20 ms chunks at real-time pace, through what the server's captions thread
runs (``UtteranceDriver``: the server's Whisper endpointing and a recognizer from
``recognizer_for``), in this process, no WebRTC. Per utterance it prints, in ms from the end of
speech (``bench.languages.speech_span``: where both the level rule and the VAD hear speech, as
the call benchmark measures), the endpointer's ``Pause`` and ``End``, every decode (kind, beam,
window, start → end, whether it was the final) and the final's arrival; from the start of
speech, the first partial. ``--baseline`` runs the recognizer with the previous settings
(``--old-*`` knobs) beside the current one, interleaved.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from bench.call_harness import SPEECH, percentile
from bench.languages import speech_span
from translation.endpoint_driver import UtteranceDriver
from translation.endpointing import EndpointConfig, Endpointer, Event
from translation.speech import SpeechResult
from translation.speech_engines import WHISPER, endpoint_for, load_engine
from translation.wav_audio import read_wav_pcm16
from translation.whisper_speech import WhisperDecoder, WhisperStreamingRecognizer

CHUNK = 640  # 20 ms


@dataclass
class Decode:
    began: float
    ended: float = 0.0
    beam: int = 1
    audio_s: float = 0.0
    text: str | None = None
    logprob: float = 0.0
    no_speech: float = 0.0


@dataclass
class Trace:
    """Wall times (monotonic) of one stream."""

    decodes: list[Decode] = field(default_factory=list)
    events: list[tuple[str, float, float]] = field(default_factory=list)  # name, stream s, wall
    results: list[tuple[SpeechResult, float]] = field(default_factory=list)
    fed_at: list[float] = field(default_factory=list)  # wall time each chunk was fed


class TimedDecoder(WhisperDecoder):
    """A decoder that records when each decode started and ended."""

    def __init__(self, model, trace: Trace) -> None:
        super().__init__(model)
        self.trace = trace

    def decode(self, audio, lang, beam_size=None, **kwargs):  # type: ignore[override]
        record = Decode(time.monotonic(), beam=beam_size or 1, audio_s=len(audio) / 16000)
        self.trace.decodes.append(record)
        try:
            out = super().decode(audio, lang, beam_size, **kwargs)
        finally:
            record.ended = time.monotonic()
        if out is not None:
            record.text, record.logprob, record.no_speech = (
                out.text,
                out.avg_logprob,
                out.no_speech_prob,
            )
        return out


ENDPOINT_KNOBS = {f.name for f in fields(EndpointConfig)}


def play(
    lang: str, pcm: bytes, repeats: int, pause: float, knobs: dict[str, float]
) -> tuple[Trace, WhisperStreamingRecognizer]:
    """`pcm` + `pause` s of silence, `repeats` times, at real-time pace through the server's
    Whisper endpointing and a recognizer; `knobs` set the recognizer's keyword arguments and
    the endpointing's fields (`pause_s`, ...)."""
    _, model = load_engine(lang, Path("/nonexistent"))
    trace = Trace()
    ours = {k: v for k, v in knobs.items() if k not in ENDPOINT_KNOBS}
    recognizer = WhisperStreamingRecognizer(TimedDecoder(model, trace), lang, **ours)  # type: ignore[arg-type]
    config = endpoint_for(WHISPER, EndpointConfig(), lang)
    assert config is not None
    config = replace(config, **{k: v for k, v in knobs.items() if k in ENDPOINT_KNOBS})

    def on_event(event: Event, at: float) -> None:
        trace.events.append((type(event).__name__, at, time.monotonic()))

    driver = UtteranceDriver(
        Endpointer(config),
        recognizer,
        lambda result, _: trace.results.append((result, time.monotonic())),
        on_event,
    )
    one = pcm + b"\0" * int(pause * 32000)
    audio = one * repeats
    began = time.monotonic()
    try:
        for offset in range(0, len(audio), CHUNK):
            time.sleep(max(0.0, began + offset / 32000 - time.monotonic()))
            trace.fed_at.append(time.monotonic())
            driver.process(audio[offset : offset + CHUNK])
        driver.flush()
    finally:
        recognizer.close()
    return trace, recognizer


def report(
    name: str, trace: Trace, span: tuple[float, float], period: float, repeats: int, quiet: bool
) -> tuple[list[float], list[float]]:
    """Print one stream's timeline; return (final latencies, first-partial delays) in ms."""
    finals, firsts = [], []
    for rep in range(repeats):
        s0, s1 = rep * period + span[0], rep * period + span[1]
        w_end = trace.fed_at[min(len(trace.fed_at) - 1, int(s1 / 0.02))]
        w_start = trace.fed_at[min(len(trace.fed_at) - 1, int(s0 / 0.02))]
        w_next = w_end + period - (span[1] - span[0])  # the next utterance's start of speech
        lines = [f"  {name} utt {rep}:"]
        for ev, _, wall in trace.events:
            if w_start <= wall < w_next:
                lines.append(f"{ev}@{(wall - w_end) * 1000:+.0f}")
        for d in trace.decodes:
            if w_start <= d.began < w_next:
                kind = "F" if d.beam > 1 else "p"
                lines.append(
                    f"{kind}{d.beam}[{d.audio_s:.1f}s] {(d.began - w_end) * 1000:+.0f}.."
                    f"{(d.ended - w_end) * 1000:+.0f}{'' if d.text is not None else ' x'}"
                )
        final = [w for r, w in trace.results if r.final and w_start <= w < w_next]
        partial = [w for r, w in trace.results if not r.final and w_start <= w < w_next]
        if final:
            finals.append((final[-1] - w_end) * 1000)
            lines.append(f"FINAL@{finals[-1]:+.0f}")
        if partial:
            firsts.append((partial[0] - w_start) * 1000)
            lines.append(f"1st-partial {firsts[-1]:.0f} from start")
        if not quiet:
            print(" ".join(lines), flush=True)
    return finals, firsts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clips",
        default="en_mr_quilter.wav,zh_aishell1_BAC009S0764W0121.wav,es_arenas_blanquecinas.wav",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pause", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds")
    parser.add_argument(
        "--variants",
        default="now:",
        help="name:knob=value,... separated by ';' (recognizer arguments or EndpointConfig "
        "fields), e.g. 'now:;b2:final_beam_size=2;p60:pause_s=0.06'",
    )
    parser.add_argument("--quiet", action="store_true", help="only the summaries")
    args = parser.parse_args()
    variants = {}
    for spec in filter(None, args.variants.split(";")):
        name, _, rest = spec.partition(":")
        knobs = {}
        for item in filter(None, rest.split(",")):
            key, _, value = item.partition("=")
            knobs[key] = float(value) if "." in value else int(value)
        variants[name] = knobs
    print(f"load average {os.getloadavg()}", flush=True)
    for clip in args.clips.split(","):
        path = SPEECH / clip
        lang = clip.split("_")[0]
        pcm = read_wav_pcm16(path)
        span = speech_span(path)
        period = len(pcm) / 32000 + args.pause
        print(f"{clip}: speech {span[0]:.2f}-{span[1]:.2f} s", flush=True)
        got: dict[str, tuple[list[float], list[float], int]] = {v: ([], [], 0) for v in variants}
        for _ in range(args.rounds):
            for name, knobs in variants.items():
                trace, recognizer = play(lang, pcm, args.repeats, args.pause, knobs)
                f, p = report(f"{name}", trace, span, period, args.repeats, args.quiet)
                finals, firsts, decodes = got[name]
                got[name] = (finals + f, firsts + p, decodes + recognizer.decodes)
        for name, (finals, firsts, decodes) in got.items():
            print(
                f"  {clip[:12]} {name:>8}: final p50 {median(finals):.0f} p95 "
                f"{percentile(finals, 95):.0f} ms ({len(finals)}); first partial p50 "
                f"{median(firsts):.0f} ms ({len(firsts)}); decodes {decodes}",
                flush=True,
            )
    print(f"load average {os.getloadavg()}")
    return 0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


if __name__ == "__main__":
    sys.exit(main())
