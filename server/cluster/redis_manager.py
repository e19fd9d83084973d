"""python-socketio's Redis manager on a blocking connection pool, so bursts wait, not fail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
import socketio
from engineio import packet as eio_packet
from socketio import packet

from server import compact_json
from server.storage.batching import TurnBatch
from server.storage.command_packing import FastPackingPool
from server.storage.publication import Publication

log = logging.getLogger("tradetalk.pubsub")

Emit = tuple[str, str | list[str], Any]  # (event, room or rooms, data)

BATCH_EVENT = "\x00batch"


def blocking_pool(url: str, max_connections: int, timeout: float = 20.0) -> aioredis.Redis:
    """A Redis client whose pool makes callers wait for a free connection when all are busy
    (its commands packed by hiredis in one call: `storage/command_packing.py`)."""
    pool = FastPackingPool.from_url(
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
        super().__init__(url, channel=channel, json=compact_json)
        self.max_connections = max_connections
        #: `emit_batch` calls of one event-loop turn (other sockets' messages) share a publish
        self.publishes: TurnBatch[list[Emit], None] = TurnBatch(self._publish_batches)
        self.closing = False
        # How this process's own batches start on the channel (it has emitted them already).
        self._own_batch = f'{{"host_id":"{self.host_id}","method":"emit"'.encode()

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

    async def _listen(self) -> AsyncIterator[Any]:
        """The channel's messages, less this process's own batches: they are dropped by their
        first bytes instead of being decoded in full only to be ignored."""
        async for data in super()._listen():
            if isinstance(data, bytes) and data.startswith(self._own_batch):
                continue
            yield data

    async def emit_batch(self, emits: list[Emit]) -> None:
        """Several `(event, room(s), data)` emits to the default namespace in ONE publish.

        Every emit through the Redis manager is a publish that every process (the sender too)
        decodes; a chat message needs `message.new` plus one `inbox.update` per participant,
        so batching them cuts Redis and decoding work per message to one round.

        Unlike the stock emit (which logs and drops an emit it cannot publish), this raises when
        Redis is away, before any socket got it: the caller can tell the sender and deliver again
        when the sender retries. This process's own sockets get it once it is published.
        Batches of the same event-loop turn go out in one publish, in the order they came.
        """
        await self.publishes(emits)

    def publication(self, emits: list[Emit]) -> Publication:
        """`emits` as the batch a Redis script publishes for them (`storage/publication.py`):
        their values `slot(name)` are left for the script to fill in. The script publishes to
        the other processes only; this one delivers them with `deliver_local`."""
        return Publication.cut(self.channel, self.json.dumps(self._batch(emits)))

    async def deliver_local(self, emits: list[Emit]) -> None:
        """Queue `emits` on this process's sockets (published already, by a script)."""
        for event, room, data in emits:
            await self._queue_emit(event, data, room)

    def _batch(self, emits: list[Emit]) -> dict[str, Any]:
        return {
            "host_id": self.host_id,  # first: see `_listen`
            "method": "emit",
            "event": BATCH_EVENT,
            "data": [[list(item) for item in emits]],
            "binary": False,
            "namespace": "/",
            "room": None,
            "skip_sid": None,
            "callback": None,
        }

    async def _publish_batches(self, batches: list[list[Emit]]) -> list[BaseException | None]:
        message = self._batch([item for batch in batches for item in batch])
        if not self.connected:
            self._redis_connect()
        await self.redis.publish(self.channel, self.json.dumps(message))
        await self._handle_emit(message)
        return [None] * len(batches)

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        if message.get("event") != BATCH_EVENT:
            await super()._handle_emit(message)
            return
        for event, room, data in message["data"][0]:
            await self._queue_emit(event, data, room)

    async def _queue_emit(self, event: str, data: Any, room: str | list[str]) -> None:
        """`AsyncManager.emit` to the default namespace without a task per recipient: the
        packet is encoded once and queued on each socket in turn, so a batch's packets for one
        socket are queued together, in order, and leave in one go of its writer."""
        if "/" not in self.rooms:
            return
        # binary=False: every emit here went through JSON (published, or built to be), so it
        # holds no bytes; python-socketio would otherwise walk all of `data` looking for some.
        encoded = self.server.packet_class(
            packet.EVENT, namespace="/", data=[event, data], binary=False
        ).encode()
        frames = [eio_packet.Packet(eio_packet.MESSAGE, p) for p in _as_list(encoded)]
        for _sid, eio_sid in self.get_participants("/", room):
            for frame in frames:
                try:
                    await self.server._send_eio_packet(eio_sid, frame)
                except Exception as exc:  # a socket closing meanwhile; the others still get it
                    log.debug("emit %s to %s skipped: %s", event, eio_sid, exc)

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


def _as_list(encoded: Any) -> list[Any]:
    """A Socket.IO packet's encoding as a list of Engine.IO payloads."""
    return encoded if isinstance(encoded, list) else [encoded]
