"""One socket's ordered events (message sends) in the order they arrived, without running them
one at a time.

Each ordered event takes a `Ticket` the moment it arrives (before its first await) and is
admitted once fewer than `DEPTH` earlier ones are in progress. Its work up to the commit (rate
limit, validation, reading, translating) runs alongside the socket's previous event; only its
commit (store, then deliver) waits its turn: it starts once every earlier ticket of the socket
has committed or ended without committing. So ids are given and `message.new` leaves in arrival
order, while a send is translated as the one before it is being written to disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import deque
from collections.abc import AsyncIterator

# How many of one socket's ordered events are in progress at once (one committing, the next
# reading and translating); later ones wait at the door, as they did behind one lock.
DEPTH = 2


class Ticket:
    """One ordered event's place in its socket's line."""

    def __init__(
        self, before: asyncio.Future[None] | None, door: asyncio.Future[None] | None = None
    ) -> None:
        self._before = before  # the previous ticket's `passed`, or None
        self._door = door  # `passed` of the ticket DEPTH places ahead, or None
        self.passed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def admitted(self) -> None:
        """Wait until fewer than DEPTH earlier events of the socket are still in progress."""
        if self._door is not None:
            await asyncio.shield(self._door)
            self._door = None

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait until every earlier ticket passed, commit, then let the next one go."""
        if self._before is not None:
            await asyncio.shield(self._before)  # a cancelled wait leaves the line intact
            self._before = None
        try:
            yield
        finally:
            self.release()

    def release(self) -> None:
        """This ticket will not commit (again): it passes once every earlier ticket has."""
        if self.passed.done():
            return
        before = self._before
        if before is None or before.done():
            self.passed.set_result(None)
        else:
            before.add_done_callback(lambda _: self._pass())
        self._before = None

    def _pass(self) -> None:
        if not self.passed.done():
            self.passed.set_result(None)


class ArrivalOrder:
    """The line of one socket's ordered events."""

    def __init__(self, depth: int = DEPTH) -> None:
        self._recent: deque[asyncio.Future[None]] = deque(maxlen=depth)

    def ticket(self) -> Ticket:
        """A place at the end of the line (take it before the event's first await)."""
        recent = self._recent
        door = recent[0] if len(recent) == recent.maxlen else None
        ticket = Ticket(recent[-1] if recent else None, door)
        recent.append(ticket.passed)
        return ticket


# The ticket of the ordered event the running task serves (None for other events).
CURRENT: contextvars.ContextVar[Ticket | None] = contextvars.ContextVar("turn", default=None)


@contextlib.asynccontextmanager
async def commit_turn() -> AsyncIterator[None]:
    """The running ordered event's turn to commit (no wait for an event without a ticket)."""
    ticket = CURRENT.get()
    if ticket is None:
        yield
        return
    async with ticket.turn():
        yield
