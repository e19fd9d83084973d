"""Speech per language and engine: latency, partials, accuracy through a call, CPU, capacity.

Run: .venv/bin/python -m bench.languages [--langs zh,en,es,ko] [--speakers 1,2] [--repeats 3]
                                          [--pause 2.0] [--capacity 1,2,3,4,6] [--verbose]
                                          [--baseline REV]

Runs (one row each): Whisper for zh, en, es and ko, and Vosk for ko. Set-up as in
bench/captions.py (`bench/call_harness.py`, all real): an embedded Redis and `tradetalk serve`
in its own process, one server per Korean engine (`TRADETALK_SPEECH_ENGINES=ko=whisper`, which
also serves zh/en/es by Whisper, then `ko=vosk`), the test-built Argos ko→en package installed
so a Korean line reaches its listener translated by either engine. Per run, after a warm-up
utterance, 1 and then 2 speakers (`--speakers`) talk at once in one call: each plays the
language's clip from ../shared/testdata/speech/ followed by `--pause` s of silence, `--repeats`
times; one listener (English; Spanish for the English speaker) records every `subtitle`.

Columns:
- latency: end of speech (the speaker's last speech frame handed to its RTP sender; speech is
  where both the 40 dB level rule of bench/captions.py and the server's VAD hear it) → the
  listener's receive time of the final holding that utterance, p50/p95/max over every
  utterance of every speaker (translated or not: zh→en has no engine here).
- partials: start of speech (first speech frame sent) → the first partial the listener
  received for that utterance (p50); the median interval between successive partials; the
  mean partials per utterance.
- error: CER (zh, ko) or WER (en, es) (`translation.metrics.error_rate`) of everything each
  speaker said as the listener read it (vs the reference repeated), mean over speakers; beside
  a direct whole-file decode of the clip by the same model in this process
  (`translation.whisper_speech.transcribe_whole`; Vosk: `translation.speech.transcribe_wav`)
  and their ratio.
- CPU: the server process's CPU seconds (from /proc) per second of audio the speakers sent
  (pauses included; the VAD gates silence, so the cost is the speech's).

`--baseline REV` measures another git revision's server beside this tree's in the same run
(`git archive REV` into the run's temporary directory; both servers up at once, each language
run on the baseline and then on this tree, so load drifts hit both alike): its rows are
labelled `<engine>@REV`.

Capacity (`--capacity`, no WebRTC, in this process): N streams, each the Korean clip with its
pauses fed in 20 ms chunks at real-time pace into the server's own `SpeakerCaptions` (VAD
endpointing + a recognizer from `open_recognizer`, one thread per stream) with the starts
spread evenly over one period (conversations do not talk in lockstep). Latency = the final's
arrival − when the chunk ending the speech was fed. A level holds when every utterance got its
final, no audio was dropped and p95 ≤ `--bound` s; levels stop at the first that fails. The
machine is shared: the load average is printed at the start and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.call_harness import (
    REPO,
    SPEECH,
    Layout,
    LevelResult,
    Server,
    covers,
    fmt,
    percentile,
    reference_text,
    run_level,
    speech_span_s,
    wav_seconds,
)
from bench.revisions import baseline_tree
from tests.support.call_clients import speech_with_pauses
from translation.metrics import CER_LANGS, error_rate

CLIPS = {
    "zh": "zh_aishell1_BAC009S0764W0121.wav",
    "en": "en_mr_quilter.wav",
    "es": "es_arenas_blanquecinas.wav",
    "ko": "ko_test.wav",
}
LISTENER = {"en": "es"}  # everyone else's listener reads English
RUNS = (("zh", "whisper"), ("en", "whisper"), ("es", "whisper"), ("ko", "whisper"), ("ko", "vosk"))
CHUNK_S = 0.02


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def metric(lang: str) -> str:
    return "CER" if lang in CER_LANGS else "WER"


# ---------------------------------------------------------------- direct baselines


def direct_decode(wav: Path, lang: str, engine: str, data_dir: Path) -> tuple[str, float]:
    """The clip decoded whole by the engine's model in this process: (text, seconds)."""
    began = time.monotonic()
    if engine == "whisper":
        from translation.whisper_models import find_whisper_model, load_whisper_model
        from translation.whisper_speech import transcribe_whole

        model = load_whisper_model(find_whisper_model(data_dir))
        text = transcribe_whole(str(wav), lang, model)
    else:
        from translation.speech import transcribe_wav
        from translation.speech_models import find_speech_model, load_speech_model

        model = load_speech_model(find_speech_model(lang, data_dir))
        text = " ".join(r.text for r in transcribe_wav(wav, model))
    return text, time.monotonic() - began


# ---------------------------------------------------------------- calls


@dataclass
class Run:
    """One language and engine through calls: one `LevelResult` per speaker count."""

    lang: str
    engine: str
    clip: Path
    layout: Layout
    reference: str
    direct: str
    levels: list[LevelResult]
    warm_ms: float | None = None
    label: str = ""  # the engine, and `@REV` for a baseline revision's server


def vad_span_s(wav: Path) -> tuple[float, float]:
    """Start of the first and end of the last 30 ms frame the server's detector (WebRTC VAD,
    mode 3) calls speech."""
    import webrtcvad

    from translation.endpointing import FRAME_BYTES, FRAME_S, SAMPLE_RATE
    from translation.wav_audio import read_wav_pcm16

    vad, pcm = webrtcvad.Vad(3), read_wav_pcm16(wav)
    frames = range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)
    speech = [
        i for i, o in enumerate(frames) if vad.is_speech(pcm[o : o + FRAME_BYTES], SAMPLE_RATE)
    ]
    return speech[0] * FRAME_S, (speech[-1] + 1) * FRAME_S


def speech_span(wav: Path) -> tuple[float, float]:
    """Where both the level rule (within 40 dB of the loudest frame) and the VAD hear speech:
    each alone is fooled by some clip (the AISHELL clip's noise floor is within 40 dB to its
    last sample, 0.54 s after the voice stops; a fresh VAD calls en_mr_quilter.wav's first
    0.54 s of room tone speech)."""
    (a0, a1), (b0, b1) = speech_span_s(wav), vad_span_s(wav)
    return max(a0, b0), min(a1, b1)


def layout_of(wav: Path, repeats: int, pause: float) -> Layout:
    return Layout(repeats, wav_seconds(wav) + pause, *speech_span(wav))


async def run_language(
    server: Server, lang: str, engine: str, args: argparse.Namespace, root: Path, direct: str
) -> Run:
    """Warm up, then every speaker count for one language on a running server."""
    assert server.process is not None
    clip = SPEECH / CLIPS[lang]
    listener = LISTENER.get(lang, "en")
    layout = layout_of(clip, args.repeats, args.pause)
    played = speech_with_pauses(clip, root / f"{lang}.wav", args.repeats, args.pause)
    warm_wav = speech_with_pauses(clip, root / f"{lang}-warm.wav", 1, args.pause)
    # as many speakers as the largest level: each measured speaker then gets a Vosk recognizer
    # whose first utterance is behind it (the server's pool reuses them), as in a running server
    warm = await run_level(
        server.url,
        server.process.pid,
        max(args.speakers),
        warm_wav,
        layout_of(clip, 1, args.pause),
        args.tail,
        speaker_lang=lang,
        listener_lang=listener,
        settle_s=args.settle,
    )
    label = engine + (f"@{server.label}" if server.label else "")
    run = Run(lang, engine, clip, layout, reference_text(clip), direct, [], label=label)
    run.warm_ms = warm.utterances[0].latency_ms
    print(
        f"  {lang}/{label} warm-up: {fmt(run.warm_ms)} ms {warm.utterances[0].text!r}",
        flush=True,
    )
    for count in args.speakers:
        offset = server.log.stat().st_size if server.log.exists() else 0
        result = await run_level(
            server.url,
            server.process.pid,
            count,
            played,
            layout,
            args.tail,
            speaker_lang=lang,
            listener_lang=listener,
            settle_s=args.settle,
        )
        got = [u.latency_ms for u in result.utterances if u.latency_ms is not None]
        print(
            f"  {lang}/{label} {count} speaker(s): {len(got)}/{len(result.utterances)} "
            f"finals, p50 {fmt(percentile(got, 50))} ms, load {load_avg()}",
            flush=True,
        )
        print_stages(f"  {lang}/{label} {count} speaker(s)", server.log, offset)
        run.levels.append(result)
    return run


def print_stages(name: str, log: Path, offset: int) -> None:
    """With `TRADETALK_CAPTIONS_TRACE=1` (the servers inherit it): the p50 of each stage of
    the finals the server logged after byte `offset` (`bench.captions.read_timings`)."""
    from bench.captions import read_timings

    timings = read_timings(log, offset)
    if timings.finals:
        stages = " ".join(
            f"{stage} {percentile(values, 50):.0f}" for stage, values in timings.stages.items()
        )
        print(f"{name} stage p50 ms over {timings.finals} finals: {stages}", flush=True)


async def run_server(
    engine_env: str, runs: list[tuple[str, str]], args: argparse.Namespace, root: Path, directs
) -> list[Run]:
    """One server (`TRADETALK_SPEECH_ENGINES=engine_env`) for the given (lang, engine) runs;
    with `--baseline`, one more running that revision, measured first for each language."""
    sources = [("", REPO)]
    if args.baseline and any(engine == "whisper" for _, engine in runs):
        sources.insert(0, (args.baseline, baseline_tree(args.baseline, root / engine_env)))
    servers = []
    for label, source in sources:
        server = Server(
            root / engine_env.replace("=", "-") / (label or "this"),
            "vad",
            {"TRADETALK_SPEECH_ENGINES": engine_env},
            source,
            label,
        )
        servers.append(server)
    out = []
    try:
        for server in servers:
            if any(lang == "ko" for lang, _ in runs):
                listing = await asyncio.to_thread(server.install_argos_ko_en)
                if "ko" not in listing:
                    raise RuntimeError(f"the server's data dir lacks ko: {listing}")
            await server.start()
        await asyncio.sleep(3.0)  # a server without a warm-up state preloads its models now
        for lang, engine in runs:
            for server in servers:
                out.append(
                    await run_language(server, lang, engine, args, root, directs[(lang, engine)][0])
                )
    finally:
        for server in servers:
            server.stop()
            log = server.log.read_text(errors="replace") if server.log.exists() else ""
            if "Traceback" in log:
                print(f"server log ({engine_env}): {log.count('Traceback')} traceback(s):")
                print(log[-3000:])
            engines = [line for line in log.splitlines() if "speech" in line.lower()][:3]
            for line in engines:
                print(f"  server: {line[:200]}")
    return out


# ---------------------------------------------------------------- capacity


@dataclass
class Capacity:
    """One level of the direct capacity loop."""

    streams: int
    latencies_ms: list[float]
    expected: int
    dropped_bytes: int
    cores: float  # this process's CPU over the level / wall
    lag_s: float  # how far the feeder fell behind real time at worst
    load: float

    def p95(self) -> float:
        return percentile(self.latencies_ms, 95)

    def holds(self, bound_ms: float) -> bool:
        # the feeder's own lag (this process starved) is shown, not counted: latencies are
        # measured from when each chunk was actually fed
        return (
            len(self.latencies_ms) == self.expected
            and self.dropped_bytes == 0
            and self.p95() <= bound_ms
        )


def warm_recognizers(
    engine: str, lang: str, pcm: bytes, layout: Layout, streams: int, data_dir: Path
) -> None:
    """Decode one utterance on as many recognizers as the level opens (one for Whisper, whose
    recognizers hold no model state): a Vosk recognizer's first utterance costs ~4x the CPU,
    and a running server's pool hands out warm ones."""
    from translation.speech_engines import open_recognizer

    opened = [
        open_recognizer(lang, data_dir)[1] for _ in range(1 if engine == "whisper" else streams)
    ]
    for recognizer in opened:
        recognizer.feed(pcm[: int(layout.period * 32000)])
        recognizer.end_utterance()
    for recognizer in opened:
        recognizer.close()


async def capacity_level(
    engine: str, lang: str, pcm: bytes, layout: Layout, streams: int, data_dir: Path
) -> Capacity:
    """`streams` speakers of `pcm` recognized at once in real time (see the module docstring)."""
    from server.media_sessions.captions import SpeakerCaptions
    from translation.endpointing import EndpointConfig
    from translation.speech_engines import endpoint_for, open_recognizer

    os.environ["TRADETALK_SPEECH_ENGINES"] = f"{lang}={engine}"
    await asyncio.to_thread(warm_recognizers, engine, lang, pcm, layout, streams, data_dir)
    loop = asyncio.get_running_loop()
    chunk = int(CHUNK_S * 32000)
    stagger = [round(i * layout.period / streams / CHUNK_S) * chunk for i in range(streams)]
    tail = int(3.0 * 32000)
    total = max(stagger) + len(pcm) + tail
    finals: list[list[tuple[float, float, float]]] = [[] for _ in range(streams)]
    captions = []
    for i in range(streams):
        chosen, recognizer = await asyncio.to_thread(open_recognizer, lang, data_dir)
        assert chosen == engine, (chosen, engine)

        def on_result(result, i=i) -> None:
            if result.final and result.text:
                finals[i].append((time.monotonic(), result.start or 0.0, result.end or 0.0))

        captions.append(
            SpeakerCaptions(
                recognizer,
                loop,
                on_result,
                name=f"capacity-{i}",
                endpoint=endpoint_for(engine, EndpointConfig(), lang),
                lang=lang,
            )
        )
    silence = bytes(chunk)
    fed_at: list[float] = []
    cpu0, wall0 = time.process_time(), time.monotonic()
    lag = 0.0
    for k, offset in enumerate(range(0, total, chunk)):
        for i, cap in enumerate(captions):
            start = offset - stagger[i]
            piece = pcm[start : start + chunk] if 0 <= start < len(pcm) else b""
            cap.feed(piece.ljust(chunk, b"\0") if piece else silence)
        fed_at.append(time.monotonic())
        due = wall0 + (k + 1) * CHUNK_S
        lag = max(lag, time.monotonic() - due)
        await asyncio.sleep(max(0.0, due - time.monotonic()))
    await asyncio.sleep(1.0)
    for cap in captions:
        await asyncio.to_thread(cap.close)
    cores = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    latencies = []
    for i in range(streams):
        shift = stagger[i] / 32000
        for rep in range(layout.repeats):
            shifted = Layout(
                layout.repeats,
                layout.period,
                layout.speech_start + shift,
                layout.speech_end + shift,
            )
            got = [t for t, s, e in finals[i] if covers(s, e, rep, shifted)]
            end_chunk = math.ceil((shift + rep * layout.period + layout.speech_end) / CHUNK_S) - 1
            if got and end_chunk < len(fed_at):
                latencies.append((max(got) - fed_at[end_chunk]) * 1000)
    dropped = sum(cap.dropped_bytes for cap in captions)
    return Capacity(
        streams, latencies, streams * layout.repeats, dropped, cores, lag, os.getloadavg()[0]
    )


async def capacity(args: argparse.Namespace, root: Path) -> dict[str, list[Capacity]]:
    """For each engine serving Korean: the capacity levels, up to the first that fails."""
    from translation.wav_audio import read_wav_pcm16

    clip = SPEECH / CLIPS["ko"]
    layout = layout_of(clip, args.capacity_repeats, args.pause)
    pcm = read_wav_pcm16(
        speech_with_pauses(clip, root / "capacity.wav", layout.repeats, args.pause)
    )
    out: dict[str, list[Capacity]] = {}
    for engine in ("whisper", "vosk"):
        out[engine] = []
        for streams in args.capacity:
            level = await capacity_level(engine, "ko", pcm, layout, streams, root / "data")
            out[engine].append(level)
            print(
                f"  capacity {engine} {streams} stream(s): {len(level.latencies_ms)}/"
                f"{level.expected} finals, p95 {fmt(level.p95())} ms, dropped "
                f"{level.dropped_bytes} B, load {load_avg()}",
                flush=True,
            )
            if not level.holds(args.bound * 1000):
                break
    os.environ.pop("TRADETALK_SPEECH_ENGINES", None)
    return out


# ---------------------------------------------------------------- report


def print_runs(runs: list[Run]) -> None:
    print("\nThrough a call (WebRTC, server in its own process); times in ms")
    header = (
        f"{'lang':>4} {'engine':>16} {'spk':>3} {'utt':>4} {'got':>4} {'p50':>5} {'p95':>5} "
        f"{'max':>5} {'1st-part':>8} {'gap':>5} {'part/u':>6} {'err':>4} {'call':>6} "
        f"{'direct':>6} {'ratio':>5} {'cpu/s':>6} {'srv':>5} {'load1':>5} {'pace':>5}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        base = error_rate(run.direct, run.reference, run.lang)
        for r in run.levels:
            every = [u.latency_ms for u in r.utterances if u.latency_ms is not None]
            firsts = [c.first_ms for c in r.cadence if c.first_ms is not None]
            gaps = [g for c in r.cadence for g in c.gaps_ms]
            parts = sum(c.count for c in r.cadence) / max(1, len(r.cadence))
            expected = " ".join([run.reference] * run.layout.repeats)
            errs = [error_rate(text, expected, run.lang) for text in r.texts]
            err = sum(errs) / len(errs) if errs else math.nan
            # the direct decode may be perfect: then the call's excess is shown as +difference
            ratio = f"{err / base:.2f}" if base else ("1.00" if err == 0 else f"+{err:.2f}")
            cpu = r.server_cpu_s / r.audio_s if r.audio_s else math.nan
            print(
                f"{run.lang:>4} {run.label or run.engine:>16} {r.speakers:>3} "
                f"{len(r.utterances):>4} "
                f"{len(every):>4} {fmt(percentile(every, 50)):>5} {fmt(percentile(every, 95)):>5} "
                f"{fmt(max(every) if every else None):>5} {fmt(percentile(firsts, 50)):>8} "
                f"{fmt(percentile(gaps, 50)):>5} {parts:>6.1f} {metric(run.lang):>4} "
                f"{err:>6.3f} {base:>6.3f} {ratio:>5} {cpu:>6.3f} {r.server_cores:>5.2f} "
                f"{r.load:>5.2f} {r.pace:>5.2f}"
            )
    print(
        "got = utterances whose final arrived; 1st-part = start of speech -> first partial "
        "(p50); gap = median interval between partials; part/u = partials per utterance;\n"
        "call/direct = error rate through the call (mean over speakers) / of a direct whole-file "
        "decode by the same model (ratio +x: direct is 0, the call x);\n"
        "cpu/s = server CPU s per audio s sent; srv = server cores."
    )


def print_texts(runs: list[Run]) -> None:
    print("\nTexts (direct whole-file decode; then what the listener read, per speaker)")
    for run in runs:
        print(f"  {run.lang}/{run.label or run.engine} reference {run.reference!r}")
        print(f"    direct {run.direct!r}")
        for r in run.levels:
            for text in r.texts:
                print(f"    {r.speakers} spk: {text!r}")


def print_capacity(levels: dict[str, list[Capacity]], bound_s: float) -> None:
    print(
        f"\nStreams held in real time (Korean clip, direct SpeakerCaptions loop, no WebRTC; "
        f"holds = every final, nothing dropped, p95 <= {bound_s:.1f} s)"
    )
    header = (
        f"{'engine':>7} {'streams':>7} {'finals':>7} {'p50':>6} {'p95':>6} {'max':>6} "
        f"{'dropped':>8} {'cores':>5} {'lag':>5} {'load1':>5} holds"
    )
    print(header)
    print("-" * len(header))
    for engine, rows in levels.items():
        for c in rows:
            print(
                f"{engine:>7} {c.streams:>7} {len(c.latencies_ms):>3}/{c.expected:<3} "
                f"{fmt(percentile(c.latencies_ms, 50)):>6} {fmt(c.p95()):>6} "
                f"{fmt(max(c.latencies_ms) if c.latencies_ms else None):>6} {c.dropped_bytes:>8} "
                f"{c.cores:>5.2f} {c.lag_s:>5.2f} {c.load:>5.2f} "
                f"{'yes' if c.holds(bound_s * 1000) else 'no'}"
            )
        held = [c.streams for c in rows if c.holds(bound_s * 1000)]
        print(f"  {engine}: holds {max(held) if held else 0} stream(s) on this machine now")


def print_extra_ko(texts: dict[str, dict[str, str]]) -> None:
    print("\nKorean clips decoded whole by each engine (CER)")
    for clip, by_engine in texts.items():
        reference = by_engine.pop("reference")
        for engine, text in by_engine.items():
            print(f"  {clip:40} {engine:>7} {error_rate(text, reference, 'ko'):.3f}  {text!r}")


# ---------------------------------------------------------------- main


async def bench(args: argparse.Namespace, root: Path) -> None:
    print(f"{os.cpu_count()} CPUs; load average at the start {load_avg()}", flush=True)
    for lang in args.langs:
        clip = SPEECH / CLIPS[lang]
        (a0, a1), (b0, b1), (c0, c1) = speech_span_s(clip), vad_span_s(clip), speech_span(clip)
        print(
            f"{clip.name}: {wav_seconds(clip):.2f} s; speech {c0:.2f}-{c1:.2f} s (level rule "
            f"{a0:.2f}-{a1:.2f}, VAD {b0:.2f}-{b1:.2f})",
            flush=True,
        )
    runs = [
        (lang, engine) for lang, engine in RUNS if lang in args.langs and engine in args.engines
    ]
    directs = {}
    for lang, engine in runs:
        directs[(lang, engine)] = await asyncio.to_thread(
            direct_decode, SPEECH / CLIPS[lang], lang, engine, root / "data"
        )
        print(
            f"direct {lang}/{engine}: {directs[(lang, engine)][1]:.2f} s "
            f"{directs[(lang, engine)][0]!r}",
            flush=True,
        )
    extra = {}
    for clip in args.ko_clips:
        extra[clip.name] = {"reference": reference_text(clip)}
        for engine in args.engines:
            extra[clip.name][engine] = (
                await asyncio.to_thread(direct_decode, clip, "ko", engine, root / "data")
            )[0]

    results: list[Run] = []
    whisper_runs = [r for r in runs if r[1] == "whisper"]
    vosk_runs = [r for r in runs if r[1] == "vosk"]
    if whisper_runs:
        results += await run_server("ko=whisper", whisper_runs, args, root, directs)
    if vosk_runs:
        results += await run_server("ko=vosk", vosk_runs, args, root, directs)
    levels = await capacity(args, root) if args.capacity else {}

    if args.verbose:
        print_texts(results)
    print_runs(results)
    if levels:
        print_capacity(levels, args.bound)
    if extra:
        print_extra_ko(extra)
    print(f"\nload average at the end: {load_avg()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--langs", default="zh,en,es,ko", help="comma-separated languages")
    parser.add_argument("--engines", default="whisper,vosk", help="comma-separated engines")
    parser.add_argument("--speakers", default="1,2", help="comma-separated speaker counts")
    parser.add_argument("--repeats", type=int, default=3, help="utterances per speaker")
    parser.add_argument("--pause", type=float, default=2.0, help="silence after each utterance")
    parser.add_argument("--tail", type=float, default=10.0, help="wait for late finals (s)")
    parser.add_argument(
        "--settle", type=float, default=2.0, help="after every utterance was heard, wait (s)"
    )
    parser.add_argument(
        "--capacity", default="1,2,3,4,6", help="stream counts for the capacity loop ('' = skip)"
    )
    parser.add_argument("--capacity-repeats", type=int, default=3, help="utterances per stream")
    parser.add_argument("--bound", type=float, default=1.3, help="capacity: p95 bound (s)")
    parser.add_argument(
        "--ko-clips", default="", help="more Korean WAVs (in a manifest.json beside them) to decode"
    )
    parser.add_argument("--verbose", action="store_true", help="print every text")
    parser.add_argument(
        "--baseline", default="", help="a git revision whose server is measured beside this one"
    )
    parser.add_argument("--timeout", type=float, default=1200.0, help="abort the run after (s)")
    args = parser.parse_args()
    args.langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    args.engines = [x.strip() for x in args.engines.split(",") if x.strip()]
    args.speakers = [int(x) for x in args.speakers.split(",") if x.strip()]
    args.capacity = [int(x) for x in args.capacity.split(",") if x.strip()]
    args.ko_clips = [Path(x) for x in args.ko_clips.split(",") if x.strip()]
    root = Path(tempfile.mkdtemp(prefix="tradetalk-bench-languages-"))
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
