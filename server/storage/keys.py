"""The one key prefix every TradeTalk key in Redis starts with, and reading Redis replies."""

from __future__ import annotations

PREFIX = "tt:"


def text(raw: object) -> str:
    """A Redis string reply as text (the clients here return bytes; a decoding client, str)."""
    if isinstance(raw, bytes):
        return raw.decode()
    if isinstance(raw, str):
        return raw
    raise TypeError(f"not a Redis string: {raw!r}")
