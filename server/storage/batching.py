"""Redis calls made in the same event-loop turn, sent in one round trip.

A busy chat process calls the same few things (the rate-limit token, the message store, the
fan-out's publish) for many sockets at once. `TurnBatch` queues each call; the calls queued
before the loop gets to the batch are sent together (one write, one read wake-up, one
connection from the pool) instead of one round trip each. Each caller still gets its own
result or error, in the order queued. Under light load a batch holds one call; the busier the
process, the more calls a batch holds, so the saving grows with the load. `BatchedScript` is
a Lua script whose calls are batched this way: each call is still its own atomic script run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

T = TypeVar("T")
R = TypeVar("R")


class TurnBatch(Generic[T, R]):
    """Items added in one event-loop turn go to `send` together on the next turn.

    `send(items)` returns one result per item, or an exception instance for an item that
    failed; when `send` itself raises, every item of the batch fails with that error.
    """

    def __init__(self, send: Callable[[list[T]], Awaitable[list[R | BaseException]]]) -> None:
        self._send = send
        self._queued: list[tuple[T, asyncio.Future[R]]] = []
        self._flushes: set[asyncio.Task[None]] = set()  # held until done (the loop holds weakly)
        #: items and batches sent (calls / batches: how much batching saved)
        self.items = 0
        self.batches = 0

    async def __call__(self, item: T) -> R:
        """Send `item` with the others of this turn; its result (or its error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queued.append((item, future))
        if len(self._queued) == 1:  # the first of this turn: send them all on the next one
            task = loop.create_task(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        return await future

    async def _flush(self) -> None:
        batch, self._queued = self._queued, []
        self.items += len(batch)
        self.batches += 1
        try:
            results = await self._send([item for item, _future in batch])
        except BaseException as exc:  # connection lost, cancelled: every caller learns it
            for _item, future in batch:
                _settle(future, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (_item, future), result in zip(batch, results, strict=True):
            _settle(future, result)


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if future.done():  # its caller gave up (cancelled)
        return
    if isinstance(result, asyncio.CancelledError):
        future.cancel()
    elif isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


Call = tuple[list[Any], list[Any]]  # (keys, args)


class BatchedScript:
    """A registered Lua script whose calls in one event-loop turn share a pipeline."""

    def __init__(self, client: aioredis.Redis, source: str) -> None:
        self.redis = client
        self.script = client.register_script(source)
        self.batch: TurnBatch[Call, Any] = TurnBatch(self._send)

    async def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        """Run the script on `keys`/`args`; its result (or its error)."""
        return await self.batch((keys, args))

    async def _send(self, calls: list[Call]) -> list[Any]:
        if len(calls) == 1:  # alone: as an unbatched call (loads the script if Redis lacks it)
            keys, args = calls[0]
            return [await self._one(keys, args)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self.script.sha, len(keys), *keys, *args)
            results = await pipe.execute(raise_on_error=False)
        return [
            await self._one(keys, args) if isinstance(result, NoScriptError) else result
            for (keys, args), result in zip(calls, results, strict=True)
        ]

    async def _one(self, keys: list[Any], args: list[Any]) -> Any:
        """One call on its own (Redis restarted and lost the script: it is loaded again)."""
        try:
            return await self.script(keys=keys, args=args)
        except Exception as exc:
            return exc
