"""Translated partials as a listener received them, for `bench/captions.py`.

`capture_groups()` records the calls `bench.call_harness.run_level` opens (it wraps the
harness's `open_group`, so the harness itself stays as it is); `live_figures` reads, per
utterance of each speaker, the listener's partials between the start of the speech and the
final that closed it:

- first: start of speech (first speech frame sent) -> first partial carrying a translation;
- gap: between successive translated-partial updates (the translation text changed);
- rate: translated-partial updates per second of speech;
- NE: normalized erasure of the translated partials then the final's translation
  (`translation.retranslation.normalized_erasure`), and the same for the source partials;
- identical: finals whose translation equals translating their text directly (`translate`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import call_harness
from bench.call_harness import Group, Layout, Speaker, percentile, utterances
from translation.retranslation import normalized_erasure

_captured: list[Group] = []
_open_group = call_harness.open_group


async def _recording_open_group(*args: Any, **kwargs: Any) -> Group:
    group = await _open_group(*args, **kwargs)
    _captured.append(group)
    return group


def capture_groups() -> list[Group]:
    """From now on, every call the harness opens is appended to the list returned (clear it
    before a level)."""
    call_harness.open_group = _recording_open_group  # type: ignore[assignment]
    return _captured


@dataclass
class LiveFigures:
    """Translated partials over one level."""

    first_ms: list[float] = field(default_factory=list)
    gaps_ms: list[float] = field(default_factory=list)
    rate: list[float] = field(default_factory=list)
    ne_translated: list[float] = field(default_factory=list)
    ne_source: list[float] = field(default_factory=list)
    finals: int = 0
    identical: int = 0
    untranslated: int = 0  # utterances with no translated partial before their final
    checked: bool = False  # whether finals were compared with a direct translation


def _window(speaker: Speaker, layout: Layout, rep: int, latency_ms: float | None) -> tuple:
    began = speaker.track.sent_at(rep * layout.period + layout.speech_start)
    spoken = speaker.track.sent_at(rep * layout.period + layout.speech_end)
    if began is None or spoken is None or latency_ms is None:
        return None, None, None
    return began, spoken, spoken + latency_ms / 1000


def live_figures(
    groups: list[Group],
    layout: Layout,
    src: str,
    dst: str,
    translate: Callable[[str], str] | None = None,
) -> LiveFigures:
    """The figures above over every speaker of `groups` (speaking `src`, read in `dst`)."""
    out = LiveFigures(checked=translate is not None)
    for group in groups:
        for speaker in group.speakers:
            said = utterances(speaker, group.finals, layout, dst)
            mine = [(t, d) for t, d in group.partials if d["speaker"]["id"] == speaker.peer.id]
            finals = [(t, d) for t, d in group.finals if d["speaker"]["id"] == speaker.peer.id]
            previous = 0.0  # the previous utterance's final came then: its partials are before
            for rep, utterance in enumerate(said):
                began, spoken, closed = _window(speaker, layout, rep, utterance.latency_ms)
                if began is None:
                    continue
                window = [(t, d) for t, d in mine if max(began, previous) <= t < closed]
                previous = closed
                lines = [d for t, d in finals if began <= t <= closed + 0.01]
                final_text = " ".join(d["text"] for d in lines)
                final_translation = " ".join(d["translations"].get(dst, "") for d in lines)
                updates: list[tuple[float, str]] = []
                for t, d in window:
                    text = d.get("translations", {}).get(dst)
                    if text and (not updates or updates[-1][1] != text):
                        updates.append((t, text))
                if not updates:
                    out.untranslated += 1
                else:
                    out.first_ms.append((updates[0][0] - began) * 1000)
                    out.gaps_ms += [
                        (b - a) * 1000 for (a, _), (b, _) in itertools.pairwise(updates)
                    ]
                    out.rate.append(len(updates) / max(0.1, spoken - began))
                    shown = [text for _, text in updates]
                    out.ne_translated.append(normalized_erasure([*shown, final_translation], dst))
                sources = [d["text"] for _, d in window]
                if sources:
                    out.ne_source.append(normalized_erasure([*sources, final_text], src))
                for line in lines:
                    out.finals += 1
                    if translate is not None and line["translations"].get(dst) == translate(
                        line["text"]
                    ):
                        out.identical += 1
    return out


def print_live(rows: list[tuple[str, LiveFigures]]) -> None:
    """One line per level."""
    print("\nTranslated partials at the listener (start of speech -> first translated partial;")
    print("updates = translated partials whose text changed; NE = normalized erasure, then final)")
    header = (
        f"{'level':<22} {'first p50':>9} {'first p95':>9} {'gap p50':>7} {'gap p95':>7} "
        f"{'upd/s':>6} {'NE tr.':>6} {'NE src':>6} {'none':>5} {'final = direct':>14}"
    )
    print(header)
    print("-" * len(header))
    for name, f in rows:
        mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
        same = f"{f.identical}/{f.finals}" if f.checked else "(see tests)"
        print(
            f"{name:<22} {call_harness.fmt(percentile(f.first_ms, 50)):>9} "
            f"{call_harness.fmt(percentile(f.first_ms, 95)):>9} "
            f"{call_harness.fmt(percentile(f.gaps_ms, 50)):>7} "
            f"{call_harness.fmt(percentile(f.gaps_ms, 95)):>7} {mean(f.rate):>6.2f} "
            f"{mean(f.ne_translated):>6.3f} {mean(f.ne_source):>6.3f} {f.untranslated:>5} "
            f"{same:>14}"
        )
