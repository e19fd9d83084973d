"""Machine-translation benchmark: ms per sentence cold, warm and cached; fan-out cost.

Run: .venv/bin/python -m bench.translation [--listeners 50] [--messages 5] [--warm-runs 30]

Engines: Apertium en->es (Debian's apertium-eng-spa) and the test-built Argos packages
en->zh and en->ko (tiny models from tests/support/argos_package.py, cached under .cache/), installed
with argostranslate's own install_from_path into a temporary data dir.

1. Per sentence, per engine:
   - cold: a new engine's first call (Apertium: start the pipeline and load dictionaries;
     Argos: load the CTranslate2 model; argostranslate's import is timed separately);
   - warm: later calls on the same engine (median);
   - cached: TranslationService answering a repeated text (median);
   - baseline: `apertium -u eng-spa` run per call; plain `argostranslate.translate.translate`.
   - glossary: the shipped en->es default trade glossary (a few hundred entries) applied vs
     not, in the same run: matching alone (``protect``) and a whole warm Apertium
     translation (``--glossary-only`` runs just this);
2. One message fanned out to N listeners in 3 languages (es, zh, ko), engines warm:
   - baseline: the engine called once per listener (argostranslate.translate.translate for
     zh/ko, the warm Apertium engine for es), i.e. no cache;
   - ours: TranslationService.translate per listener, all at once (asyncio.gather).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from translation.paths import configure_argos_env

SENTENCE = "Can you meet the delivery date?"
FANOUT_LANGS = ("es", "zh", "ko")
TRADE_SENTENCES = [
    "We need 500 stainless steel bolts, please send a quote FOB Shenzhen.",
    "The lead time is 30 days after the deposit, balance by T/T before shipment.",
    "Please send a sample and the drawing with the tolerance and surface finish.",
    "Can you meet the delivery date?",
    "Our MOQ is 1000 pcs, 12 dollars per unit, packed 50 pcs per carton on pallets.",
    "Zinc-plated carbon steel hex nuts and flat washers, with the commercial invoice.",
]


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def median_ms(fn: Callable[[int], object], runs: int) -> float:
    return statistics.median(timed(lambda i=i: fn(i)) for i in range(runs)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=50)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--warm-runs", type=int, default=30)
    parser.add_argument("--glossary-only", action="store_true")
    args = parser.parse_args()
    if args.glossary_only:
        glossary_overhead(args.warm_runs)
        return

    data_dir = Path(tempfile.mkdtemp(prefix="tradetalk-bench-mt-"))
    try:
        run(args, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run(args: argparse.Namespace, data_dir: Path) -> None:
    configure_argos_env(data_dir)  # before argostranslate is imported
    from tests.support.argos_package import build_argos_package
    from tests.support.argos_phrases import EN_KO, EN_ZH

    archives = [build_argos_package("en", "zh", EN_ZH), build_argos_package("en", "ko", EN_KO)]
    import_s = timed(lambda: __import__("argostranslate.translate"))
    import argostranslate.package
    import argostranslate.translate

    for archive in archives:
        argostranslate.package.install_from_path(archive)

    from translation.engines.apertium import ApertiumEngine
    from translation.engines.argos import ArgosEngine
    from translation.service import TranslationService
    from translation.translator import Translator

    both = sorted(set(dict(EN_ZH)) & set(dict(EN_KO)))
    messages = [s for s in both if not any(c.isdigit() for c in s)][: args.messages]
    print(f"argostranslate import: {import_s * 1000:.0f} ms (once per process)")

    # 1. Per sentence.
    rows: list[tuple[str, float, float, float, float]] = []

    apertium = ApertiumEngine()
    cold = timed(lambda: apertium.translate_batch([SENTENCE], "en", "es")) * 1000
    warm = median_ms(
        lambda i: apertium.translate_batch([f"{SENTENCE} {i}"], "en", "es"), args.warm_runs
    )
    baseline = median_ms(
        lambda i: subprocess.run(
            ["apertium", "-u", "eng-spa"], input=SENTENCE, capture_output=True, text=True
        ),
        max(3, args.warm_runs // 5),
    )
    cached = cached_ms(TranslationService(Translator([apertium])), "es", args.warm_runs)
    rows.append(("apertium en->es", cold, warm, cached, baseline))

    argos = ArgosEngine(data_dir)
    for lang in ("zh", "ko"):
        cold = timed(lambda lang=lang: argos.translate_batch([SENTENCE], "en", lang)) * 1000
        warm = median_ms(
            lambda i, lang=lang: argos.translate_batch([messages[i % len(messages)]], "en", lang),
            args.warm_runs,
        )
        argostranslate.translate.translate(SENTENCE, "en", lang)  # load its model first
        baseline = median_ms(
            lambda i, lang=lang: argostranslate.translate.translate(
                messages[i % len(messages)], "en", lang
            ),
            args.warm_runs,
        )
        cached = cached_ms(TranslationService(Translator([argos])), lang, args.warm_runs)
        rows.append((f"argos en->{lang} (test model)", cold, warm, cached, baseline))

    print("\n== ms per sentence ==")
    print(f"{'engine':<28} {'cold':>8} {'warm':>8} {'cached':>8} {'baseline':>9}")
    for name, cold, warm, cached, baseline in rows:
        print(f"{name:<28} {cold:8.1f} {warm:8.2f} {cached:8.3f} {baseline:9.2f}")
    print(
        "baseline: apertium CLI per call (`apertium -u eng-spa`); "
        "argostranslate.translate.translate (warm)"
    )
    glossary_overhead(args.warm_runs, apertium)

    # 2. Fan-out.
    translator = Translator([argos, apertium])
    listeners = [FANOUT_LANGS[i % len(FANOUT_LANGS)] for i in range(args.listeners)]

    def baseline_message(text: str) -> None:
        for lang in listeners:
            if lang == "es":
                apertium.translate_batch([text], "en", "es")
            else:
                argostranslate.translate.translate(text, "en", lang)

    baseline_s = sum(timed(lambda m=m: baseline_message(m)) for m in messages)
    service = TranslationService(translator)

    async def fan_out(text: str) -> None:
        await asyncio.gather(*(service.translate(text, "en", lang) for lang in listeners))

    async def ours() -> float:
        return sum([await timed_async(fan_out(m)) for m in messages], 0.0)

    ours_s = asyncio.run(ours())
    n = len(messages)
    print(
        f"\n== one message to {args.listeners} listeners in {len(FANOUT_LANGS)} languages "
        f"(mean of {n} messages) =="
    )
    print(f"{'':<44} {'ms/message':>11} {'translations/message':>21}")
    print(f"{'baseline: engine called once per listener':<44} "
          f"{baseline_s / n * 1000:11.1f} {args.listeners:21d}")  # fmt: skip
    print(f"{'ours: TranslationService (cache+coalescing)':<44} "
          f"{ours_s / n * 1000:11.1f} {service.stats.computed / n:21.1f}")  # fmt: skip
    print(f"speed-up: {baseline_s / ours_s:.1f}x  "
          f"(computed {service.stats.computed}, coalesced {service.stats.coalesced}, "
          f"cache hits {service.stats.cache_hits})")  # fmt: skip
    apertium.close()
    argos.close()


def glossary_overhead(runs: int, apertium=None) -> None:  # type: ignore[no-untyped-def]
    """The shipped en->es trade glossary's cost per sentence, with vs without, same run."""
    from translation.engines.apertium import ApertiumEngine
    from translation.glossary import TradeGlossaries
    from translation.protect import protect
    from translation.translator import Translator

    engine = apertium or ApertiumEngine()
    glossaries = TradeGlossaries()
    default = glossaries.get("en", "es")
    assert default is not None
    n = len(TRADE_SENTENCES)
    match_without = median_ms(lambda i: protect(TRADE_SENTENCES[i % n]), runs * n)
    match_with = median_ms(lambda i: protect(TRADE_SENTENCES[i % n], None, default), runs * n)
    plain, glossed = Translator([engine]), Translator([engine], glossaries)
    plain.translate(SENTENCE, "en", "es")  # warm
    without: list[float] = []
    with_: list[float] = []
    for i in range(runs):  # interleaved, so both see the same machine load
        text = TRADE_SENTENCES[i % n]
        without.append(timed(lambda text=text: plain.translate(text, "en", "es")))
        with_.append(timed(lambda text=text: glossed.translate(text, "en", "es")))
    mt_without = statistics.median(without) * 1000
    mt_with = statistics.median(with_) * 1000
    print(f"\n== default trade glossary en->es ({len(default)} entries), ms per sentence ==")
    print(f"{'':<36} {'without':>8} {'with':>8} {'overhead':>9}")
    for name, off, on in (
        ("matching (protect)", match_without, match_with),
        ("apertium en->es translate (warm)", mt_without, mt_with),
    ):
        print(f"{name:<36} {off:8.3f} {on:8.3f} {on - off:+9.3f}")
    if apertium is None:
        engine.close()


async def timed_async(coro) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    await coro
    return time.perf_counter() - started


def cached_ms(service, lang: str, runs: int) -> float:  # type: ignore[no-untyped-def]
    async def go() -> float:
        await service.translate(SENTENCE, "en", lang)  # computed once
        times = []
        for _ in range(runs):
            times.append(await timed_async(service.translate(SENTENCE, "en", lang)))
        assert service.stats.computed == 1
        return statistics.median(times) * 1000

    return asyncio.run(go())


if __name__ == "__main__":
    main()
