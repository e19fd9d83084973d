"""Which stability policy for translated partials: flicker (normalized erasure) against lag.

Run: .venv/bin/python -m bench.retranslation

Each source sentence grows word by word (what a streaming recognizer's settled prefix does) and
every prefix is translated by the real engine (Apertium es->en and en->es; deterministic, so the
numbers repeat). The last step is the final: the translation of the whole sentence. Policies
(Arivazhagan et al. 2020; Yao & Haddow 2020), each scored on what a reader sees:

- `raw`: every prefix's translation shown whole;
- `mask-k`: the last k words of each translation hidden;
- `commit`: commit-on-agreement (`translation.retranslation.TargetCommit`): the words two
  successive translations agree on are steady, never taken back, and the tail after them (while
  the translation still agrees with them) dimmed: scored with the whole tail shown, with the
  steady part alone, and with the tail but its last word (the server's choice); `commit mask-1`
  never commits a translation's last word on agreement alone.

Columns: NE = normalized erasure (target words erased from the end of what was shown, summed over
the updates including the final, per word of the final); `ready` = share of the final's words
already shown in place when the final came (1 = the final changed nothing); `area` = mean share
of the final's words shown in place over the updates (higher = less lag). Also: the source-side
erasure of real Vosk partials of ko_test.wav, raw and through the stable-source rule.

Guess or wait (`SourcePrefix(early=...)`, `TRADETALK_OPEN_LINE_GUESS`): for a recognizer whose
partials are unstable, whether the first translated words come sooner when, before two partials
agree, each partial but its last word is translated as a guess (shown whole, dimmed), and what
that costs in flicker. Partials: real Vosk partials of ko_test.wav (source side: when the first
text to translate comes, and its erasure), and Whisper's greedy hypotheses of growing prefixes
(every 0.25 s, each decoded afresh, as unstable as a streaming recognizer's) of the English and
Spanish clips translated by Apertium (first shown translation, seconds of audio after the
speech began; NE of what was shown then the final, the translation of the whole clip's
beam-5 decode).
"""

from __future__ import annotations

import sys
from pathlib import Path

from translation.agreement import agreed_prefix, units
from translation.retranslation import SourcePrefix, TargetCommit, normalized_erasure

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "speech"

SENTENCES = {
    ("es", "en"): [
        "Las arenas son blanquecinas de grano medio y tiene muy poca asistencia",
        "Podemos enviar diez mil piezas el próximo mes si usted confirma el pedido hoy",
        "El precio por unidad incluye el embalaje pero no el transporte hasta el puerto",
        "Necesitamos una muestra de cada color antes de firmar el contrato",
        "Si el pago llega esta semana la fábrica empieza la producción el lunes",
        "La calidad del acero inoxidable cumple la norma que usted nos envió",
    ],
    ("en", "es"): [
        "And so my fellow Americans ask not what your country can do for you",
        "Mister Quilter is the apostle of the middle classes and we are glad to welcome his gospel",
        "We can ship ten thousand units next month if you confirm the order today",
        "The unit price includes packaging but not freight to the port",
        "Please send us a sample of each color before we sign the contract",
        "If the payment arrives this week the factory starts production on Monday",
    ],
}


def translator():  # the engines are imported lazily (a slow start)
    from translation.engines.apertium import ApertiumEngine
    from translation.translator import Translator

    return Translator([ApertiumEngine()])


def words_in_place(shown: str, final: list[str], lang: str) -> int:
    return agreed_prefix(units(shown, lang), final)


def score(steps: list[str], final: str, lang: str) -> tuple[float, float, float]:
    """(NE, ready, area) of the shown texts `steps`, then the final."""
    target = units(final, lang)
    ne = normalized_erasure([*steps, final], lang)
    ready = words_in_place(steps[-1], target, lang) / len(target) if steps else 0.0
    area = sum(words_in_place(s, target, lang) for s in steps) / (len(steps) * len(target))
    return ne, ready, area


def policies(translations: list[str], lang: str) -> dict[str, list[str]]:
    """What each policy shows after each prefix's translation."""
    out: dict[str, list[str]] = {"raw": list(translations)}
    for k in (1, 2, 3):
        out[f"mask-{k}"] = [" ".join(units(t, lang)[:-k]) for t in translations]
    for mask in (0, 1):
        name = f"commit{f' mask-{mask}' if mask else ''}"
        whole, steady = TargetCommit(lang, mask=mask, tail_mask=0), TargetCommit(lang, mask=mask)
        out[f"{name}, whole tail dimmed"] = [whole.update(t).text for t in translations]
        shown = [steady.update(t) for t in translations]
        out[f"{name}, steady only"] = [s.text[: s.committed] for s in shown]
        out[f"{name}, tail but last dimmed"] = [s.text for s in shown]
    return out


def vosk_partials(wav: Path) -> list[str]:
    from translation.speech import StreamingRecognizer
    from translation.speech_models import find_speech_model, load_speech_model
    from translation.wav_audio import read_wav_pcm16

    model = load_speech_model(find_speech_model("ko", Path("/nonexistent")))
    stream = StreamingRecognizer(model)
    pcm = read_wav_pcm16(wav)
    partials = []
    for offset in range(0, len(pcm), 640):
        partials += [r.text for r in stream.feed(pcm[offset : offset + 640]) if not r.final]
    last = stream.finish()
    return [*partials, last.text if last else ""]


def timed_vosk_partials(wav: Path) -> list[tuple[float, str]]:
    """(stream second, text) of each partial Vosk gives for `wav` fed 20 ms at a time."""
    from translation.speech import StreamingRecognizer
    from translation.speech_models import find_speech_model, load_speech_model
    from translation.wav_audio import read_wav_pcm16

    stream = StreamingRecognizer(load_speech_model(find_speech_model("ko", Path("/nonexistent"))))
    pcm = read_wav_pcm16(wav)
    out = []
    for offset in range(0, len(pcm), 640):
        at = (offset + 640) / 32000
        out += [(at, r.text) for r in stream.feed(pcm[offset : offset + 640]) if r.text]
    stream.close()
    return out


def whisper_hypotheses(wav: Path, lang: str, step_s: float = 0.25) -> tuple[list, str]:
    """Greedy decodes of `wav`'s growing prefixes, every `step_s` ((second, text)), and the
    whole clip's beam-5 decode."""
    import numpy as np

    from translation.speech_engines import load_engine
    from translation.wav_audio import read_wav_pcm16
    from translation.whisper_speech import PARTIAL_MIN_WINDOW_S, PARTIAL_PAD_S, WhisperDecoder

    _, model = load_engine(lang, Path("/nonexistent"))
    decoder = WhisperDecoder(model)
    audio = np.frombuffer(read_wav_pcm16(wav), np.int16).astype(np.float32) / 32768
    out = []
    for k in range(1, int(len(audio) / 16000 / step_s) + 1):
        at = k * step_s
        part = audio[: int(at * 16000)]
        got = decoder.decode(part, lang, 1, pad_s=PARTIAL_PAD_S, min_window_s=PARTIAL_MIN_WINDOW_S)
        out.append((at, got.text if got else ""))
    final = decoder.decode(audio, lang, 5, pad_s=3.0)
    return out, final.text if final else ""


def guess_or_wait(engine) -> None:
    """The `Guess or wait` section of the module docstring."""
    from bench.languages import speech_span

    partials = timed_vosk_partials(SPEECH / "ko_test.wav")
    began = speech_span(SPEECH / "ko_test.wav")[0]
    print("\nguess or wait (source side), Vosk ko_test.wav")
    for early in (False, True):
        source = SourcePrefix("ko", early=early)
        shown = [(t, s) for t, s in ((t, source.update(p)) for t, p in partials) if s]
        ne = normalized_erasure([s for _, s in shown] + [partials[-1][1]], "ko")
        name = "guess" if early else "wait"
        print(
            f"  {name:<6} first text {shown[0][0] - began:.2f} s after the speech began "
            f"({shown[0][1]!r}), {len(shown)} updates, NE {ne:.3f}"
        )
    clips = [
        ("en_mr_quilter.wav", "en", "es"),
        ("en_jfk_ask_not.wav", "en", "es"),
        ("es_arenas_blanquecinas.wav", "es", "en"),
    ]
    print("guess or wait, Whisper greedy hypotheses every 0.25 s -> Apertium")
    for clip, src, dst in clips:
        hypotheses, whole = whisper_hypotheses(SPEECH / clip, src)
        began = speech_span(SPEECH / clip)[0]
        final = engine.translate(whole, src, dst)
        for early in (False, True):
            source, commit = SourcePrefix(src, early=early), TargetCommit(dst)
            seen: list[tuple[float, str]] = []
            for at, text in hypotheses:
                stable = source.update(text)
                if stable:
                    shown = commit.update(engine.translate(stable, src, dst), source.guess)
                    if shown.text and (not seen or seen[-1][1] != shown.text):
                        seen.append((at, shown.text))
            ne = normalized_erasure([s for _, s in seen] + [final], dst)
            first = f"{seen[0][0] - began:.2f} s" if seen else "none"
            name = "guess" if early else "wait"
            print(
                f"  {src}>{dst} {clip:<28} {name:<6} first shown {first:>7}, "
                f"{len(seen)} updates, NE {ne:.3f}"
            )


def main() -> int:
    engine = translator()
    totals: dict[str, list[tuple[float, float, float]]] = {}
    print(f"{'pair':<6} {'policy':<32} {'NE':>6} {'ready':>6} {'area':>6}   (mean over sentences)")
    for (src, dst), sentences in SENTENCES.items():
        per_pair: dict[str, list[tuple[float, float, float]]] = {}
        for sentence in sentences:
            words = sentence.split()
            prefixes = [" ".join(words[: i + 1]) for i in range(len(words) - 1)]
            translations = [engine.translate(p, src, dst) for p in prefixes]
            final = engine.translate(sentence, src, dst)
            for name, shown in policies(translations, dst).items():
                per_pair.setdefault(name, []).append(score(shown, final, dst))
        for name, rows in per_pair.items():
            ne, ready, area = (sum(col) / len(rows) for col in zip(*rows, strict=True))
            print(f"{src}>{dst:<3} {name:<32} {ne:>6.3f} {ready:>6.2f} {area:>6.2f}")
            totals.setdefault(name, []).extend(rows)
    print("-" * 52)
    for name, rows in totals.items():
        ne, ready, area = (sum(col) / len(rows) for col in zip(*rows, strict=True))
        print(f"{'all':<6} {name:<32} {ne:>6.3f} {ready:>6.2f} {area:>6.2f}")
    guess_or_wait(engine)
    engine.close()

    partials = vosk_partials(SPEECH / "ko_test.wav")
    source = SourcePrefix("ko")
    stable = [s for s in (source.update(p) for p in partials[:-1]) if s]
    print(
        f"\nsource side, Vosk ko_test.wav: {len(partials) - 1} partials, NE raw "
        f"{normalized_erasure(partials, 'ko'):.3f}; stable prefix: {len(stable)} updates, NE "
        f"{normalized_erasure([*stable, partials[-1]], 'ko'):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
