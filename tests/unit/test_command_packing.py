"""server/storage/command_packing.py: the same bytes as redis-py's packer, in one call."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.exceptions import DataError

from server.storage.command_packing import FastPacker, FastPackingPool


def packers() -> tuple[FastPacker, aioredis.Connection]:
    connection = aioredis.Connection()
    return FastPacker(connection._command_packer), connection


@pytest.mark.parametrize(
    "args",
    [
        (
            "EVALSHA",
            "f" * 40,
            2,
            "tt:conv:1:seq",
            b"tt:inbox:a",
            "价格 — Größe",
            1796400607123,
            -5,
            "",
        ),
        ("SET", "k", 0.1),
        ("ZADD", "k", 1e-07, "m"),
        ("CONFIG GET", "maxmemory"),  # a name with a space: split into two words
        ("SET", "k", memoryview(b"value")),
        ("SET", "k", bytearray(b"value")),
    ],
)
def test_packs_what_redis_py_packs(args: tuple) -> None:
    fast, connection = packers()
    assert b"".join(fast.pack(*args)) == b"".join(connection._command_packer.pack(*args))


@pytest.mark.parametrize("bad", [True, None, object()])
def test_what_redis_py_refuses_is_still_refused(bad: object) -> None:
    fast, _connection = packers()
    with pytest.raises(DataError):
        fast.pack("SET", "k", bad)


def test_the_pool_gives_its_connections_the_fast_packer() -> None:
    pool = FastPackingPool.from_url("redis://127.0.0.1:1")
    assert isinstance(pool.make_connection()._command_packer, FastPacker)
    latin = FastPackingPool.from_url("redis://127.0.0.1:1", encoding="latin-1")
    assert not isinstance(latin.make_connection()._command_packer, FastPacker)
