"""Background tasks a service starts and must be able to account for and stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("tradetalk.tasks")


class TaskSet:
    """Keeps a reference to every task it spawns until the task ends (asyncio only keeps weak
    ones), counts the live ones for leak checks, and cancels them all on shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run `coro` in the background."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_report)

    def running(self) -> int:
        """Tasks not finished yet."""
        return sum(1 for t in self._tasks if not t.done())

    async def cancel(self, timeout: float = 5.0) -> None:
        """Cancel every task and wait (at most `timeout`) for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)


class Periodic:
    """Runs `step()` every `interval` seconds in one background task until `stop()`. A failing
    step is logged (once per run of failures) and the loop goes on."""

    def __init__(self, name: str, interval: float, step: Callable[[], Awaitable[Any]]) -> None:
        self.name = name
        self.interval = interval
        self.step = step
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        """Start the loop (the first step runs after one interval)."""
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop the loop and wait for it. A cancellation that lands inside a Redis call can come
        out as a Redis error (which the loop would log and go on from), so the loop also checks
        a flag, and the cancel is repeated until the task is done."""
        self._stopping = True
        task, self._task = self._task, None
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=1)

    async def _run(self) -> None:
        failing = False
        while not self._stopping:
            await asyncio.sleep(self.interval)
            try:
                await self.step()
            except Exception as exc:
                if not failing:
                    log.warning(
                        "%s failed (%s); retrying every %.2f s", self.name, exc, self.interval
                    )
                failing = True
            else:
                if failing:
                    log.info("%s works again", self.name)
                failing = False


def _report(task: asyncio.Task[Any]) -> None:
    """Log a task that failed, so no background failure goes unobserved."""
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        log.error("background task %s failed", task.get_name(), exc_info=exc)
