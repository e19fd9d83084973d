"""python-socketio's Redis manager on a blocking connection pool, so bursts wait, not fail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
import socketio

log = logging.getLogger("tradetalk.pubsub")

BATCH_EVENT = "\x00batch"


def blocking_pool(url: str, max_connections: int, timeout: float = 20.0) -> aioredis.Redis:
    """A Redis client whose pool makes callers wait for a free connection when all are busy."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout, socket_connect_timeout=2
    )
    return aioredis.Redis(connection_pool=pool)


class PooledRedisManager(socketio.AsyncRedisManager):
    """Shares rooms and emits across server processes through Redis pub/sub.

    Two changes to the stock manager:
    - its default pool (100 connections) raises "Too many connections" on a burst of concurrent
      emits and then drops the emit after logging it; a blocking pool queues the burst instead;
    - it can be closed: the listener stops for good (the stock one retries forever, and a
      cancellation that lands inside a Redis read can come out as a retried error, which keeps
      the listener alive and hangs event-loop shutdown).
    """

    def __init__(self, url: str, channel: str, max_connections: int) -> None:
        super().__init__(url, channel=channel)
        self.max_connections = max_connections
        self.closing = False

    def _redis_connect(self) -> None:
        self.redis = blocking_pool(self.redis_url, self.max_connections)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.connected = True

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        retry_sleep = 0.25
        while not self.closing:
            try:
                self._redis_connect()
                await self.pubsub.subscribe(self.channel)
                retry_sleep = 0.25
                async for message in self.pubsub.listen():
                    yield message
            except Exception as exc:
                if self.closing:
                    return
                log.error("cannot receive from redis (%s); retrying in %.2f s", exc, retry_sleep)
                await asyncio.sleep(retry_sleep)
                retry_sleep = min(retry_sleep * 2, 5.0)

    async def emit_batch(self, emits: list[tuple[str, str | list[str], Any]]) -> None:
        """Several `(event, room(s), data)` emits to the default namespace in ONE publish.

        Every emit through the Redis manager is a publish that every process (the sender too)
        decodes; a chat message needs `message.new` plus one `inbox.update` per participant,
        so batching them cuts Redis and decoding work per message to one round.

        Unlike the stock emit (which logs and drops an emit it cannot publish), this raises when
        Redis is away, before any socket got it: the caller can tell the sender and deliver again
        when the sender retries. This process's own sockets get it once it is published.
        """
        message = {
            "method": "emit",
            "event": BATCH_EVENT,
            "data": [[list(item) for item in emits]],
            "binary": False,
            "namespace": "/",
            "room": None,
            "skip_sid": None,
            "callback": None,
            "host_id": self.host_id,
        }
        if not self.connected:
            self._redis_connect()
        await self.redis.publish(self.channel, self.json.dumps(message))
        await self._handle_emit(message)

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        if message.get("event") != BATCH_EVENT:
            await super()._handle_emit(message)
            return
        for event, room, data in message["data"][0]:
            await socketio.AsyncManager.emit(self, event, data, namespace="/", room=room)

    async def close(self) -> None:
        """Stop listening and close the Redis connections."""
        self.closing = True
        task = getattr(self, "thread", None)
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=1)
        if getattr(self, "redis", None) is not None:
            with contextlib.suppress(Exception):
                await self.pubsub.aclose()
            with contextlib.suppress(Exception):
                await self.redis.aclose()
        if task is not None and not task.done():  # the cancel was swallowed mid-read: again
            task.cancel()
            await asyncio.wait([task], timeout=4)
