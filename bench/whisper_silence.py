"""What each end-of-utterance silence does to a Whisper speaker's accuracy, clip by clip.

Run: .venv/bin/python -m bench.whisper_silence [--silences 0.35,0.45,0.55,0.7] [--clips ...]

Each clip (``../shared/testdata/speech``) + 1 s of silence goes through the server's Whisper
endpointing (``endpoint_for``, ``silence_s`` replaced by each value) and a fresh recognizer,
as fast as it decodes (no partials: they do not change the finals). It prints, per clip, the
pauses inside the speech as the endpointer hears them (``Pause`` → ``Resume``, plus the
``pause_s`` before the ``Pause``: the silence an utterance would need to end there), and per
silence the lines the clip became, the error of their joined text against the reference and
against faster-whisper's own whole-file decode (``transcribe_whole``), and the text. The
latency side is ``bench.whisper_timeline --variants 's45:silence_s=0.45;s70:silence_s=0.7'``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from bench.call_harness import SPEECH, reference_text
from translation.endpoint_driver import UtteranceDriver
from translation.endpointing import EndpointConfig, Endpointer, Event, Pause, Resume
from translation.metrics import error_rate
from translation.speech import SpeechResult
from translation.speech_engines import WHISPER, endpoint_for, load_engine, recognizer_for
from translation.wav_audio import read_wav_pcm16
from translation.whisper_speech import WhisperStreamingRecognizer, transcribe_whole

CHUNK = 640  # 20 ms
NO_DATA = Path("/nonexistent")


def inner_pauses(pcm: bytes, config: EndpointConfig) -> list[tuple[float, float]]:
    """(stream second, silence s) of each pause the endpointer hears that speech follows."""
    paused: list[float] = []
    gaps: list[tuple[float, float]] = []

    def on_event(event: Event, at: float) -> None:
        if isinstance(event, Pause):
            paused.append(at)
        elif isinstance(event, Resume) and paused:
            gaps.append((paused[-1] - config.pause_s, at - paused[-1] + config.pause_s))

    driver = UtteranceDriver(Endpointer(replace(config, silence_s=5.0)), None, None, on_event)
    for offset in range(0, len(pcm), CHUNK):
        driver.process(pcm[offset : offset + CHUNK])
    return gaps


def lines(lang: str, pcm: bytes, config: EndpointConfig) -> list[str]:
    """The clip's final lines through the endpointing `config` and a fresh recognizer."""
    engine, model = load_engine(lang, NO_DATA)
    assert engine == WHISPER, engine
    recognizer = recognizer_for(engine, model, lang)
    assert isinstance(recognizer, WhisperStreamingRecognizer)
    recognizer.first_partial_s = 1e9  # finals only
    out: list[SpeechResult] = []
    driver = UtteranceDriver(
        Endpointer(config), recognizer, lambda result, _: out.append(result), None
    )
    audio = pcm + b"\0" * 32000
    try:
        for offset in range(0, len(audio), CHUNK):
            driver.process(audio[offset : offset + CHUNK])
        driver.flush()
    finally:
        recognizer.close()
    return [r.text for r in out if r.final and r.text]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--silences", default="0.35,0.45,0.55,0.7")
    parser.add_argument(
        "--clips",
        default=",".join(
            sorted(
                p.name for p in SPEECH.glob("*.wav") if p.name.split("_")[0] in ("zh", "en", "es")
            )
        ),
    )
    args = parser.parse_args()
    silences = [float(s) for s in args.silences.split(",")]
    base = endpoint_for(WHISPER, EndpointConfig(), "xx")  # the 0.7 s default
    assert base is not None
    print(f"load average {os.getloadavg()}", flush=True)
    for clip in args.clips.split(","):
        path = SPEECH / clip
        lang = clip.split("_")[0]
        pcm = read_wav_pcm16(path)
        _, model = load_engine(lang, NO_DATA)
        direct = transcribe_whole(str(path), lang, model)
        reference = reference_text(path)
        pauses = ", ".join(f"{s:.2f} s at {at:.2f}" for at, s in inner_pauses(pcm, base))
        print(f"{clip}: pauses inside {pauses or 'none'}; direct {direct!r}", flush=True)
        for silence in silences:
            got = lines(lang, pcm, replace(base, silence_s=silence))
            text = " ".join(got)
            print(
                f"  silence {silence:.2f}: {len(got)} line(s), error vs reference "
                f"{error_rate(text, reference, lang):.3f}, vs direct "
                f"{error_rate(text, direct, lang):.3f} (direct vs reference "
                f"{error_rate(direct, reference, lang):.3f}): {' | '.join(got)}",
                flush=True,
            )
    print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
