"""One socket's line of ordered events (`server/realtime/turns.py`): commits in arrival order
whatever order the events reach them in, the line holds when an event ends without committing
or its wait is cancelled, and only DEPTH events of a socket are in progress at once."""

from __future__ import annotations

import asyncio

from server.realtime.turns import ArrivalOrder, Ticket


async def commit(ticket: Ticket, n: int, log: list[int], delay: float = 0.0) -> None:
    await asyncio.sleep(delay)
    async with ticket.turn():
        log.append(n)
        await asyncio.sleep(0)


async def test_commits_follow_arrival_not_readiness() -> None:
    line, log = ArrivalOrder(), []
    tickets = [line.ticket() for _ in range(4)]
    # the last ticket is ready first, the first last
    await asyncio.gather(*(commit(t, n, log, 0.01 * (4 - n)) for n, t in enumerate(tickets)))
    assert log == [0, 1, 2, 3]


async def test_an_event_that_ends_without_committing_lets_later_ones_pass_only_in_turn() -> None:
    line, log = ArrivalOrder(), []
    first, second, third = line.ticket(), line.ticket(), line.ticket()
    second.release()  # failed validation: never commits
    late = asyncio.ensure_future(commit(third, 3, log))
    await asyncio.sleep(0.01)
    assert log == []  # the third still waits for the first
    await commit(first, 1, log)
    await late
    assert log == [1, 3]
    assert second.passed.done() and third.passed.done()


async def test_a_cancelled_wait_keeps_the_line() -> None:
    line, log = ArrivalOrder(), []
    first, second, third = line.ticket(), line.ticket(), line.ticket()
    waiting = asyncio.ensure_future(commit(second, 2, log))
    await asyncio.sleep(0.01)
    waiting.cancel()
    second.release()
    late = asyncio.ensure_future(commit(third, 3, log))
    await asyncio.sleep(0.01)
    assert log == [] and not first.passed.done()  # the first's turn was not given away
    await commit(first, 1, log)
    await late
    assert log == [1, 3]


async def test_at_most_depth_events_of_a_socket_are_in_progress() -> None:
    line = ArrivalOrder(depth=2)
    first, second, third = line.ticket(), line.ticket(), line.ticket()
    await asyncio.wait_for(second.admitted(), 1)  # beside the first
    door = asyncio.ensure_future(third.admitted())
    await asyncio.sleep(0.01)
    assert not door.done()  # the first and second are still in progress
    first.release()
    await asyncio.wait_for(door, 1)
