"""Translation engines: each turns batches of plain sentences from one language into another."""

from .base import Engine

__all__ = ["Engine"]
