"""The node registry and the request/reply bus, on a real Redis (no mocks).

Registry tests use their own database of the session's Redis (flushed around each test) so
nodes of servers other tests run never take part; bus channels are global, so bus tests use
fresh random node ids.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from server.cluster.bus import Bus, BusError, NodeUnavailable
from server.cluster.nodes import NODES_KEY, NodeInfo, NodeRegistry, load_figure, node_key
from server.storage.embedded_redis import EmbeddedRedis

REGISTRY_DB = 11


def new_id(tag: str = "n") -> str:
    return f"{tag}{secrets.token_hex(4)}"


@pytest.fixture
async def redis(redis_server) -> AsyncIterator[aioredis.Redis]:
    """A client on a database of its own, empty at the start and end of the test."""
    base, _, _ = redis_server.url.rpartition("/")
    client = aioredis.from_url(f"{base}/{REGISTRY_DB}")
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def registries(redis) -> AsyncIterator[Callable[..., NodeRegistry]]:
    """Make NodeRegistry objects on the test's database; all are stopped at the end."""
    made: list[NodeRegistry] = []

    def make(node_id: str, sessions: int = 0, **kwargs: Any) -> NodeRegistry:
        load = kwargs.pop("load", lambda: {"sessions": sessions, "cpu": 0.0})
        registry = NodeRegistry(redis, node_id, load=load, **kwargs)
        made.append(registry)
        return registry

    yield make
    for registry in made:
        await registry.stop()


@pytest.fixture
async def buses(redis_server) -> AsyncIterator[Callable[..., Awaitable[Bus]]]:
    """Start Bus objects on the session's Redis; all are closed at the end."""
    made: list[Bus] = []

    async def make(node_id: str | None = None, **kwargs: Any) -> Bus:
        bus = Bus(redis_server.url, node_id or new_id("b"), **kwargs)
        await bus.start()
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.close()


# --- the registry ---


async def test_beat_writes_the_node_with_a_ttl_and_its_load(redis, registries) -> None:
    def counts() -> dict[str, float]:
        return {"peers": 3, "recognizers": 2, "sessions": 1, "cpu": 0.5}

    node = registries("a1", ttl_s=2.0, media_address="10.0.0.3", url="http://h3:8080", load=counts)
    await node.beat()
    info = NodeInfo.from_json(await redis.get(node_key("a1")))
    assert info.id == "a1" and info.media and not info.draining
    assert (info.media_address, info.url) == ("10.0.0.3", "http://h3:8080")
    assert (info.peers, info.recognizers, info.sessions, info.cpu) == (3, 2, 1, 0.5)
    assert info.load == load_figure(3, 2, 1, 0.5) == 1 + 3 + 4 + 2
    assert abs(info.beat - time.time()) < 5
    assert 0 < await redis.pttl(node_key("a1")) <= 2000
    assert await redis.zscore(NODES_KEY, "a1") == info.load
    assert [n.id for n in await node.live()] == ["a1"]
    assert await node.alive("a1") and not await node.alive("nobody")


async def test_cpu_share_is_measured_when_load_does_not_give_it(redis, registries) -> None:
    node = registries("c1", load=lambda: {})
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # burn some CPU between construction and the beat
        pass
    await node.beat()
    info = NodeInfo.from_json(await redis.get(node_key("c1")))
    assert info.cpu > 0 and info.load == 4 * info.cpu


async def test_a_node_stopped_without_forgetting_expires(redis, registries) -> None:
    # only the dying node has the short TTL, so a loaded machine cannot expire the other one
    dying, staying = registries("d1", ttl_s=0.3), registries("d2", sessions=50)
    dying.start()
    staying.start()
    await asyncio.sleep(0.05)
    assert {n.id for n in await staying.live()} == {"d1", "d2"}
    assert await staying.place() == "d1"  # the less loaded one
    await dying.stop(forget=False)
    assert await staying.alive("d1")  # not forgotten: its key lives out its TTL
    await asyncio.sleep(0.5)  # > d1's ttl
    assert not await staying.alive("d1")
    assert [n.id for n in await staying.live()] == ["d2"]
    assert await redis.zscore(NODES_KEY, "d1") is None  # live() dropped the dead id
    assert all([await staying.place() == "d2" for _ in range(3)])


async def test_stop_forgets_the_node_at_once(redis, registries) -> None:
    node = registries("f1")
    node.start()
    await asyncio.sleep(0.05)
    assert await node.alive("f1")
    await node.stop()
    assert not await node.alive("f1") and await redis.zscore(NODES_KEY, "f1") is None
    assert await node.place() is None


async def test_place_picks_the_least_loaded_and_drops_dead_ids(redis, registries) -> None:
    for node_id, sessions in (("p1", 5), ("p2", 1), ("p3", 3)):
        await registries(node_id, sessions=sessions).beat()
    await redis.zadd(NODES_KEY, {"p0-dead": 0})  # in the index, but no heartbeat key
    assert await registries("p1").place() == "p2"
    assert await redis.zscore(NODES_KEY, "p0-dead") is None
    assert await redis.zscore(NODES_KEY, "p2") == 2  # the placement counts until the next beat
    assert await registries("p1").place(exclude=["p2"]) == "p3"


async def test_ties_go_to_the_smallest_id(registries) -> None:
    for node_id in ("t3", "t1", "t2"):
        await registries(node_id).beat()
    assert await registries("t9").place() == "t1"


async def test_placements_in_quick_succession_spread_two_each(registries) -> None:
    nodes = [registries(node_id) for node_id in ("s1", "s2", "s3")]
    for node in nodes:
        await node.beat()
    placed = await asyncio.gather(*(nodes[0].place() for _ in range(6)))
    assert Counter(placed) == {"s1": 2, "s2": 2, "s3": 2}


async def test_place_never_picks_draining_or_signalling_only_nodes(registries) -> None:
    signalling = registries("m1", media=False)
    draining = registries("m2")
    busy = registries("m3", sessions=100)
    for node in (signalling, draining, busy):
        await node.beat()
    assert await signalling.place() == "m2"
    await draining.set_draining()
    assert {n.id: n.draining for n in await busy.live()}["m2"] is True
    assert [await signalling.place() for _ in range(3)] == ["m3"] * 3
    assert await signalling.place(exclude=["m3"]) is None


async def test_place_is_none_without_nodes(registries) -> None:
    assert await registries("e1").place() is None


async def test_node_info_reads_the_json_the_brief_describes() -> None:
    raw = json.dumps(
        {
            "id": "n1",
            "media": True,
            "media_address": None,
            "url": None,
            "draining": False,
            "load": 2.5,
            "peers": 1,
            "recognizers": 0,
            "sessions": 1,
            "cpu": 0.125,
            "beat": 1.5,
        }
    ).encode()
    info = NodeInfo.from_json(raw)
    assert info == NodeInfo("n1", True, None, None, False, 2.5, 1, 0, 1, 0.125, 1.5)
    assert NodeInfo.from_json(info.to_json()) == info


# --- the bus ---


async def test_request_and_reply_between_two_nodes(buses) -> None:
    a, b = await buses(), await buses()

    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return {"echo": body, "on": b.node_id}

    async def nothing(body: dict[str, Any]) -> None:
        return None

    b.on("echo", echo)
    b.on("nothing", nothing)
    big = "x" * 1_000_000  # reply size is not limited
    assert await a.request(b.node_id, "echo", {"n": 1}) == {"echo": {"n": 1}, "on": b.node_id}
    assert (await a.request(b.node_id, "echo", {"big": big}))["echo"]["big"] == big
    assert await a.request(b.node_id, "nothing", {}) == {}
    many = await asyncio.gather(*(a.request(b.node_id, "echo", {"i": i}) for i in range(50)))
    assert [reply["echo"]["i"] for reply in many] == list(range(50))


async def test_a_request_to_itself_calls_the_handler_directly(buses) -> None:
    a = await buses()

    async def where(body: dict[str, Any]) -> dict[str, Any]:
        return {"task": asyncio.current_task() is not None, **body}

    a.on("where", where)
    await a.redis.aclose()  # no Redis needed
    assert await a.request(a.node_id, "where", {"k": "v"}) == {"task": True, "k": "v"}


async def test_a_node_with_no_listener_fails_at_once(buses) -> None:
    a = await buses()
    started = time.monotonic()
    with pytest.raises(NodeUnavailable, match="no listener") as failure:
        await a.request("gone-node", "echo", {}, timeout=5)
    elapsed = time.monotonic() - started
    assert "gone-node" in str(failure.value)
    print(f"\nrequest to a node with no listener failed in {elapsed * 1000:.1f} ms")
    assert elapsed < 0.2


async def test_a_handler_that_never_answers_times_out(buses) -> None:
    a, b = await buses(), await buses(timeout_s=0.3)
    release = asyncio.Event()

    async def stuck(body: dict[str, Any]) -> dict[str, Any]:
        await release.wait()
        return {}

    b.on("stuck", stuck)
    started = time.monotonic()
    with pytest.raises(NodeUnavailable, match=r"no answer to 'stuck' in 0.3 s"):
        await a.request(b.node_id, "stuck", {}, timeout=0.3)
    assert time.monotonic() - started >= 0.3
    with pytest.raises(NodeUnavailable, match="no answer"):  # the default timeout, to itself
        await b.request(b.node_id, "stuck", {})
    release.set()


async def test_a_failing_handler_or_unknown_op_is_a_bus_error(buses) -> None:
    a, b = await buses(), await buses()

    async def broken(body: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("no such call c1")

    b.on("broken", broken)
    with pytest.raises(BusError, match="no such call c1"):
        await a.request(b.node_id, "broken", {})
    with pytest.raises(BusError, match="no handler for 'missing'"):
        await a.request(b.node_id, "missing", {})
    with pytest.raises(BusError, match="no such call c1"):
        await b.request(b.node_id, "broken", {})


async def test_broadcast_reaches_every_other_node_but_not_itself(buses) -> None:
    op = f"hello-{secrets.token_hex(3)}"
    nodes = [await buses() for _ in range(3)]
    heard: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    for bus in nodes:

        async def hear(body: dict[str, Any], me: str = bus.node_id) -> None:
            await heard.put((me, body))

        bus.on(op, hear)
    await nodes[0].broadcast(op, {"from": nodes[0].node_id})
    got = [await asyncio.wait_for(heard.get(), 2) for _ in range(2)]
    assert sorted(me for me, _ in got) == sorted(bus.node_id for bus in nodes[1:])
    assert all(body == {"from": nodes[0].node_id} for _, body in got)
    await asyncio.sleep(0.2)
    assert heard.empty()  # the sender did not hear itself


async def test_close_fails_pending_requests(buses) -> None:
    a, b = await buses(), await buses()

    async def slow(body: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(10)
        return {}

    b.on("slow", slow)
    pending = asyncio.create_task(a.request(b.node_id, "slow", {}, timeout=10))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await a.close()
    with pytest.raises(NodeUnavailable, match="closed"):
        await pending
    assert time.monotonic() - started < 2
    with pytest.raises(NodeUnavailable, match="closed"):
        await a.request(b.node_id, "slow", {})
    with pytest.raises(NodeUnavailable, match="no listener"):  # a closed bus listens no more
        await b.request(a.node_id, "slow", {})


async def test_the_listener_comes_back_after_redis_restarts(tmp_path) -> None:
    own = EmbeddedRedis(tmp_path / "redis")
    own.start()
    a, b = Bus(own.url, new_id("r")), Bus(own.url, new_id("r"), timeout_s=1)

    async def ping(body: dict[str, Any]) -> dict[str, Any]:
        return {"pong": True}

    async def slow(body: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(30)
        return {}

    try:
        with pytest.raises(NodeUnavailable, match="not listening"):
            await a.request(b.node_id, "ping", {})  # before start()
        await a.start()
        await b.start()
        b.on("ping", ping)
        b.on("slow", slow)
        assert await a.request(b.node_id, "ping", {}) == {"pong": True}
        waiting = asyncio.create_task(a.request(b.node_id, "slow", {}, timeout=20))
        await asyncio.sleep(0.1)
        assert own.process is not None
        own.process.kill()
        own.process.wait()
        with pytest.raises(NodeUnavailable, match="lost redis"):  # at once, not in 20 s
            await asyncio.wait_for(waiting, 5)
        own.start()  # the same port
        deadline = time.monotonic() + 15
        while True:
            try:
                assert await a.request(b.node_id, "ping", {}, timeout=1) == {"pong": True}
                break
            except (NodeUnavailable, aioredis.RedisError):
                assert time.monotonic() < deadline, "the bus did not come back"
                await asyncio.sleep(0.2)
    finally:
        await a.close()
        await b.close()
        own.stop()


async def test_round_trip_p50(buses) -> None:
    a, b = await buses(), await buses()

    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    b.on("echo", echo)
    times = []
    for i in range(200):
        started = time.perf_counter()
        await a.request(b.node_id, "echo", {"i": i, "text": "hello"})
        times.append(time.perf_counter() - started)
    times.sort()
    p50, p99 = statistics.median(times) * 1000, times[197] * 1000
    print(f"\nbus round trip over 200 requests: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
