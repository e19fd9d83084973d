"""The interface every translation engine implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Engine(Protocol):
    """A machine-translation engine.

    ``translate_batch`` is synchronous and CPU-bound; it is called from worker threads, so
    implementations must be thread-safe. Inputs are plain text segments (already split and
    with protected terms removed by the caller); codes are ISO 639-1 (``en``, ``es``, ``zh``).
    """

    name: str

    def pairs(self) -> set[tuple[str, str]]:
        """The (src, dst) language pairs this engine translates directly."""
        ...

    def translate_batch(self, texts: list[str], src: str, dst: str) -> list[str]:
        """Translate every text from ``src`` to ``dst``; same length and order as ``texts``."""
        ...

    def close(self) -> None:
        """Release processes and models."""
        ...
