"""The JSON module python-socketio decodes every packet with (its `json=` parameter).

Stricter than `json`: a packet whose values hold a lone surrogate (not encodable as UTF-8), an
integer of more than `MAX_INT_DIGITS` digits, NaN/Infinity, or more than `MAX_DEPTH` levels of
nesting is not passed on as is. When the packet is still an event (a list starting with a clean
event name) its arguments are replaced by one `Rejected` value, so the event is answered with an
`invalid` ack naming the reason; any other such packet raises `ValueError`, which closes the
connection (see `socket_server.py`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from server import compact_json

MAX_DEPTH = 32
MAX_INT_DIGITS = 20

# The start of an event packet's JSON: `["name",` (a plain name: no escapes).
EVENT_HEAD_RE = re.compile(r'\[\s*"([A-Za-z0-9_.:-]{1,64})"\s*,')

dumps = compact_json.dumps  # what the server writes: compact, fast (`server/compact_json.py`)


@dataclass(frozen=True)
class Rejected:
    """What an event's payload became because it broke a rule; `reason` says which."""

    reason: str


class _Bad:
    """A decoded number that breaks a rule (found again by `problem`)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _parse_int(text: str) -> int | _Bad:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return _Bad(f"integers may have at most {MAX_INT_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float | _Bad:
    value = float(text)
    return value if math.isfinite(value) else _Bad("numbers must be finite")


def _parse_constant(text: str) -> _Bad:
    return _Bad(f"{text} is not JSON")


def problem(value: Any) -> str | None:
    """Why a decoded value breaks the rules, or None when it doesn't."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "strings must be valid Unicode (no lone surrogates)"
        elif isinstance(item, _Bad):
            return item.reason
        elif isinstance(item, list | dict):
            if depth >= MAX_DEPTH:
                return f"payloads may nest at most {MAX_DEPTH} levels"
            if isinstance(item, dict):
                stack.extend((k, depth + 1) for k in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
    return None


def loads(text: str | bytes, **kwargs: Any) -> Any:
    """Decode like `json.loads`, applying the rules above."""
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except RecursionError:
        reason = f"payloads may nest at most {MAX_DEPTH} levels"
        head = EVENT_HEAD_RE.match(
            text if isinstance(text, str) else text.decode("utf-8", "replace")
        )
        if head:  # still an event: answer it
            return [head.group(1), Rejected(reason)]
        raise ValueError(reason) from None
    fault = problem(value)
    if fault is None:
        return value
    if isinstance(value, list) and value and isinstance(value[0], str):
        if problem(value[0]) is None:
            return [value[0], Rejected(fault)]
    raise ValueError(fault)
