"""A pub/sub message that Redis completes and publishes inside the script that stores a chat
message, so the store and the fan-out to other processes are one round trip and happen
together or not at all.

The message is encoded once, with a placeholder (`slot(name)`, as a whole JSON string) where a
value only the script knows goes: the stored message with its new id (`MESSAGE`) or the unread
count of the n-th participant (`unread_slot(n)`). The text is cut at the placeholders; the
script joins the pieces with the values.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

# Unguessable per process: no user text (a title, a name) can hold a placeholder.
MARK = f"tt-slot-{secrets.token_hex(12)}-"
MESSAGE = "m"


def slot(name: str) -> str:
    """The placeholder value for slot `name`."""
    return MARK + name


def unread_slot(n: int) -> str:
    """The placeholder for the unread count of the `n`-th participant (from 1)."""
    return slot(str(n))


_CUT = re.compile(f'"{re.escape(MARK)}([^"]*)"')


@dataclass(frozen=True)
class Publication:
    """What to publish on `channel`: `pieces[0]`, the value of `slots[0]`, `pieces[1]`, ...,
    `pieces[-1]` (one piece more than slots)."""

    channel: str
    pieces: list[str]
    slots: list[str]

    @classmethod
    def cut(cls, channel: str, text: str) -> Publication:
        """The publication of JSON `text` whose placeholders (`slot`) are left to fill."""
        parts = _CUT.split(text)
        return cls(channel, parts[0::2], parts[1::2])

    def args(self) -> list[str | int]:
        """The script's arguments: channel, number of slots, piece, slot, piece, ..."""
        args: list[str | int] = [self.channel, len(self.slots), self.pieces[0]]
        for name, piece in zip(self.slots, self.pieces[1:], strict=True):
            args += [name, piece]
        return args
