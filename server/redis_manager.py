"""python-socketio's Redis manager on a blocking connection pool, so bursts wait, not fail."""

from __future__ import annotations

import redis.asyncio as aioredis
import socketio


def blocking_pool(url: str, max_connections: int, timeout: float = 20.0) -> aioredis.Redis:
    """A Redis client whose pool makes callers wait for a free connection when all are busy."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout
    )
    return aioredis.Redis(connection_pool=pool)


class PooledRedisManager(socketio.AsyncRedisManager):
    """Shares rooms and emits across server processes through Redis pub/sub.

    The stock manager builds its client with a default pool of 100 connections that raises
    "Too many connections" on a burst of concurrent emits, and then drops the emit after
    logging it. A blocking pool queues the burst instead.
    """

    def __init__(self, url: str, channel: str, max_connections: int) -> None:
        super().__init__(url, channel=channel)
        self.max_connections = max_connections

    def _redis_connect(self) -> None:
        self.redis = blocking_pool(self.redis_url, self.max_connections)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.connected = True
