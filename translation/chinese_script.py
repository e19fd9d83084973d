"""Chinese script: Whisper often writes Mandarin in Traditional characters; readers of ``zh``
get Simplified, readers who chose ``zh-TW`` / ``zh-Hant`` (or ``zh-HK``) Traditional. OpenCC
(the ``opencc`` package) converts by phrase, not only by character."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

_TRADITIONAL = {"zh-tw": "s2twp", "zh-hant": "s2t", "zh-hk": "s2hk"}
_lock = threading.Lock()


def script_conversion(lang: str) -> str | None:
    """The OpenCC configuration for text in ``lang``: None for non-Chinese languages."""
    lowered = lang.lower()
    if lowered in _TRADITIONAL:
        return _TRADITIONAL[lowered]
    if lowered == "zh" or lowered.startswith(("zh-cn", "zh-hans", "zh-sg")):
        return "t2s"
    return None


@lru_cache(maxsize=8)
def _converter(config: str) -> Any:
    import opencc

    return opencc.OpenCC(config)


def to_script(text: str, lang: str) -> str:
    """``text`` written in the script readers of ``lang`` expect (unchanged for non-Chinese)."""
    config = script_conversion(lang)
    if config is None or not text:
        return text
    with _lock:  # one converter object is not documented as thread-safe
        return _converter(config).convert(text)
