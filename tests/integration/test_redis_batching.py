"""`server/storage/batching.py` on a real Redis: script calls of one event-loop turn go out in
one pipeline, and each caller still gets exactly its own result or error, in order.

The chat path batches its rate-limit tokens, message stores and publishes this way, so these
are the guarantees it leans on: no call's result goes to another caller, a failing call fails
alone, a Redis that lost its scripts (restarted) still runs them, Redis away fails every
caller of the batch (each acks `unavailable`), and calls run in the order they were made.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from server.storage.batching import BatchedScript
from server.storage.embedded_redis import free_port

# KEYS[1]: a list  ARGV[1]: a value -> the list's length after pushing it ("bad": an error)
PUSH = """
if ARGV[1] == 'bad' then return redis.error_reply('bad value') end
return redis.call('RPUSH', KEYS[1], ARGV[1])
"""


@pytest.fixture
async def client(redis_server):
    client = aioredis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


async def test_calls_of_one_turn_share_a_batch_and_keep_their_own_results(client) -> None:
    script = BatchedScript(client, PUSH)
    keys = [f"tt:test:batch:{secrets.token_hex(4)}:{i % 3}" for i in range(30)]
    values = [str(i) for i in range(30)]
    values[7] = "bad"
    results = await asyncio.gather(
        *(script([k], [v]) for k, v in zip(keys, values, strict=True)), return_exceptions=True
    )
    assert script.batch.items == 30 and script.batch.batches == 1, vars(script.batch)
    assert isinstance(results[7], ResponseError) and "bad value" in str(results[7])
    # each call's own result: its list's length right after its push, pushes in call order
    lengths: dict[str, int] = {}
    for i, (k, v) in enumerate(zip(keys, values, strict=True)):
        if v == "bad":
            continue
        lengths[k] = lengths.get(k, 0) + 1
        assert results[i] == lengths[k], (i, results[i], lengths[k])
    for k in set(keys):
        expected = [v for kk, v in zip(keys, values, strict=True) if kk == k and v != "bad"]
        assert await client.lrange(k, 0, -1) == expected

    # a call alone is not held back for company
    assert await script([keys[0]], ["alone"]) == lengths[keys[0]] + 1
    assert script.batch.batches == 2


async def test_a_redis_that_lost_its_scripts_still_runs_the_batch(client) -> None:
    script = BatchedScript(client, PUSH)
    key = f"tt:test:batch:{secrets.token_hex(4)}"
    await script([key], ["warm"])  # loaded once
    await client.script_flush()  # as after a restart
    results = await asyncio.gather(*(script([key], [str(i)]) for i in range(5)))
    assert sorted(results) == [2, 3, 4, 5, 6]
    assert await client.lrange(key, 0, -1) == ["warm", *map(str, range(5))]


async def test_redis_away_fails_every_call_of_the_batch() -> None:
    away = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    script = BatchedScript(away, PUSH)
    try:
        results = await asyncio.gather(
            *(script(["k"], [str(i)]) for i in range(4)), return_exceptions=True
        )
        assert all(isinstance(r, RedisConnectionError) for r in results), results
    finally:
        await away.aclose()
