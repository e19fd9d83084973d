"""Stopping one server process within a bound (SIGTERM, Ctrl-C).

`Stopping` runs the steps of a stop against one deadline (`TRADETALK_STOP_TIMEOUT_S` after the
signal), logs each with how long it took, and goes on when one overruns its share. `Watchdog`
is the last resort: a process still alive at the deadline has every thread's stack logged, its
last words run (the embedded Redis is stopped) and is ended with `os._exit`.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger("tradetalk.stop")

WATCHDOG_EXIT = 70  # the exit code when the watchdog had to end the process (EX_SOFTWARE)


class Stopping:
    """The clock of one stop: `begin()` at the signal, then `step()`s until the deadline."""

    def __init__(self, bound_s: float) -> None:
        self.bound_s = bound_s
        self.began: float | None = None
        #: run once by `begin()` (the command line arms its watchdog, holds its Redis)
        self.hooks: list[Callable[[], None]] = []

    def begin(self, why: str = "stop requested") -> None:
        """Start the clock (once) and run the hooks."""
        if self.began is not None:
            return
        self.began = time.monotonic()
        log.info("stopping (%s): exit within %.1f s", why, self.bound_s)
        for hook in self.hooks:
            try:
                hook()
            except Exception:
                log.exception("stopping: a hook failed")

    def left(self, until: float = 1.0) -> float:
        """Seconds left until `until` × the bound after `begin()` (at least 0.05)."""
        if self.began is None:
            self.begin()
        assert self.began is not None
        return max(0.05, self.began + self.bound_s * until - time.monotonic())

    def elapsed(self) -> float:
        """Seconds since `begin()`."""
        return 0.0 if self.began is None else time.monotonic() - self.began

    async def step(self, name: str, work: Awaitable[Any], until: float = 0.9) -> Any:
        """Run one step of the stop, at most until `until` × the bound; log how it went.
        Returns its result, or None when it failed or overran (the stop goes on). Each step
        gets at least half a second (the watchdog still holds the process to the bound)."""
        timeout = max(0.5, self.left(until))
        began = time.monotonic()
        try:
            result = await asyncio.wait_for(work, timeout)
        except TimeoutError:
            log.warning("stopping: %s did not finish in %.2f s; going on", name, timeout)
            return None
        except (ConnectionError, RedisError) as exc:  # Redis went first: nothing to keep
            log.warning("stopping: %s failed (%s); going on", name, exc)
            return None
        except Exception:
            log.exception("stopping: %s failed; going on", name)
            return None
        log.info("stopping: %s (%.2f s)", name, time.monotonic() - began)
        return result


class Watchdog:
    """Ends the process `bound_s` after `arm()` unless it has exited by then (a daemon thread,
    so it also covers the interpreter's wait for non-daemon threads at exit)."""

    def __init__(
        self,
        bound_s: float,
        last_words: Callable[[], None] | None = None,
        exit_code: int = WATCHDOG_EXIT,
    ) -> None:
        self.bound_s = bound_s
        self.last_words = last_words
        self.exit_code = exit_code
        self._armed = False

    def arm(self) -> None:
        """Start counting (once)."""
        if self._armed:
            return
        self._armed = True
        threading.Thread(target=self._run, name="stop-watchdog", daemon=True).start()

    def _run(self) -> None:
        time.sleep(self.bound_s)
        log.error(
            "stopping: still running %.1f s after the signal; every thread's stack follows, "
            "then the process ends (exit %d)",
            self.bound_s,
            self.exit_code,
        )
        for thread in threading.enumerate():
            log.error("stopping: thread %r daemon=%s alive", thread.name, thread.daemon)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        if self.last_words is not None:
            try:
                self.last_words()
            except Exception:
                log.exception("stopping: last words failed")
        logging.shutdown()
        os._exit(self.exit_code)


def lingering_threads(wait_s: float = 1.0) -> list[str]:
    """Names of the non-daemon threads other than this one that are still alive after up to
    `wait_s` (the interpreter waits for them at exit; idle executor workers end by then)."""
    me = threading.current_thread()
    deadline = time.monotonic() + wait_s
    threads = [t for t in threading.enumerate() if t is not me and not t.daemon]
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t.name for t in threads if t.is_alive()]
