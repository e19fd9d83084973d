"""Where a final caption line's time went, stage by stage (`TRADETALK_CAPTIONS_TRACE=1`).

Each final carries monotonic stamps (`SpeechResult.timing`, then `FinalLine.timing`): its last
audio chunk queued for the recognizer thread, that batch taken off the queue, the endpointer's
`End` reached (the batch decoded up to it), the recognizer's final ready, the result on the
event loop, its delivery started (the speaker's earlier finals out), translated, kept, sent.
With tracing on, one log line per final gives the stages in ms (`bench/captions.py` reads
them); off, nothing is logged.
"""

from __future__ import annotations

import json
import logging
import os

log = logging.getLogger("tradetalk.captions.trace")

#: stage name -> (from stamp, to stamp)
STAGES: dict[str, tuple[str, str]] = {
    "queue": ("queued", "dequeued"),  # audio waiting for the recognizer thread
    "decode": ("dequeued", "ended"),  # decoding the batch up to the End
    "close": ("ended", "closed"),  # the recognizer's final (end_utterance)
    "loop": ("closed", "loop"),  # posted to the event loop until it ran
    "order": ("loop", "delivering"),  # waiting for the speaker's earlier finals
    "translate": ("delivering", "translated"),
    "keep": ("translated", "kept"),  # stored in the transcript
    "emit": ("kept", "emitted"),  # Socket.IO emits (after the open line's last snapshot)
}
PREFIX = "final-timing "


def tracing() -> bool:
    """Whether `TRADETALK_CAPTIONS_TRACE` asks for one timing line per final."""
    return (os.environ.get("TRADETALK_CAPTIONS_TRACE") or "0").strip().lower() in (
        "1",
        "true",
        "yes",
        "on",
    )


def stage_ms(timing: dict[str, float]) -> dict[str, float]:
    """The stages present in `timing`, in ms; plus the endpointer's silence and the backlog."""
    out = {
        name: round((timing[b] - timing[a]) * 1000, 1)
        for name, (a, b) in STAGES.items()
        if a in timing and b in timing
    }
    if "silence" in timing:
        out["silence"] = round(timing["silence"] * 1000, 1)
    if "backlog" in timing:
        out["backlog"] = timing["backlog"]
    return out


def log_final(speaker: str, utterance: int, timing: dict[str, float]) -> None:
    """One line: `final-timing {"speaker", "utterance", <stage>: ms...}`."""
    payload = {"speaker": speaker, "utterance": utterance, **stage_ms(timing)}
    log.info("%s%s", PREFIX, json.dumps(payload))
