"""Compact JSON for what the server writes on its busy paths: Socket.IO packets, stored chat
messages and the publications that carry them to other processes.

`orjson` encodes about fifteen times faster than `json.dumps` (bench/chat.py profile: the
standard encoder was the chat path's largest single frame). The text is what
`json.dumps(value, ensure_ascii=False, separators=(",", ":"))` gives, except that NaN and
Infinity become `null` (valid JSON, which `json.dumps` would not write). A value orjson refuses
(an integer beyond 64 bits, a string with a lone surrogate) is written by `json` instead, with
non-ASCII escaped, so nothing that encoded before fails and the text is always valid UTF-8.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # {1: ...} keys become "1", as json.dumps writes them


def dumps(value: Any, separators: tuple[str, str] | None = None) -> str:
    """`value` as compact JSON text (`separators` is accepted for python-socketio and
    python-engineio, which ask for the compact ones)."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except TypeError:  # an int beyond 64 bits, a lone surrogate, a type orjson doesn't know
        return json.dumps(value, separators=(",", ":"))


def loads(text: str | bytes, **_kwargs: Any) -> Any:
    """Decode JSON text (from this server's own processes: pub/sub publications)."""
    return orjson.loads(text)
