"""A first-come, first-served pool: a returned item goes straight to the longest waiter.

`queue.Queue` lets a thread that puts an item back take it again at once, ahead of a thread
that was already waiting (it only notifies the waiter, which must then win the race). With one
Apertium pipeline per pair, a background worker re-translating an open line one text after
another would keep winning that race against a final line's translation. Here `put` hands the
item to the oldest waiter itself, so a waiter is served after at most the holders ahead of it.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class _Waiter(Generic[T]):
    __slots__ = ("event", "item")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.item: T | None = None


class HandoffPool(Generic[T]):
    """Items taken and returned by threads, in the order the threads asked for them."""

    def __init__(self, items: list[T]) -> None:
        self._lock = threading.Lock()
        self._free: list[T] = list(items)
        self._waiters: deque[_Waiter[T]] = deque()

    def get(self) -> T:
        """Take a free item, or wait behind earlier askers for one."""
        with self._lock:
            if self._free and not self._waiters:
                return self._free.pop()
            waiter: _Waiter[T] = _Waiter()
            self._waiters.append(waiter)
        waiter.event.wait()
        assert waiter.item is not None
        return waiter.item

    def put(self, item: T) -> None:
        """Return an item: to the oldest waiter if there is one, else to the free list."""
        with self._lock:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.item = item
                waiter.event.set()
                return
            self._free.append(item)
