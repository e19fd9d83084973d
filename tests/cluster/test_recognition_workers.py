"""Speech recognition off the media node (issue 21, must-have 1): `tradetalk worker` processes in
other hosts' network namespaces take Korean calls' utterances from Redis Streams.

Four hosts: host1 and host2 are media nodes, host3 and host4 signalling-only and each runs a
worker. One run of the cluster (each costs ~30-60 s here), in three acts:
c. no worker alive: `/healthz` says `in-process` on both media nodes and the first call's node
   recognizes its first line itself;
a. two workers start (on host3 and host4): both nodes say `workers: 2`; a second call is placed
   on the other media node (the first node's speaker no longer counts as its recognition
   load); on each node a line arrives that a worker recognized while the node recognized
   nothing (its `/metrics` counts);
b. kill -9 of the worker holding an open utterance (it said a partial: speech): the other
   takes it over (two claims on the utterance's result stream), the line arrives once at that
   call's listener and reads as the reference (or the part of it the utterance holds), and
   neither node fell back to recognizing it itself.
Live Vosk text is compared to the reference with a tolerance (CER), never word for word.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from server.recognition.streams import key
from tests.cluster.test_cluster_hosts import (
    KO_REFERENCE,
    MAX_CER,
    cluster_room,
    no_duplicates,
    recognized_line,
)
from tests.support import finals, start_call, wait_until
from tests.support.workers import WorkerProcess
from translation.metrics import character_error_rate as cer

METRICS_TOKEN = "recognition-workers-test"


async def health(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as resp:
        return await resp.json()


async def recognition_figures(url: str) -> dict[str, float]:
    """The node's `tradetalk_recognition_*` gauges without labels, from `/metrics`."""
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics", headers=headers) as r:
        assert r.status == 200, await r.text()
        text = await r.text()
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("tradetalk_recognition_") and "{" not in name:
            out[name.removeprefix("tradetalk_recognition_")] = float(value)
    return out


async def utterances(redis) -> dict[str, dict]:
    """Every utterance's result stream: {uid: {claims: [worker...], done, finals: [text...]}}."""
    out = {}
    async for name in redis.scan_iter(match=key("main", "out", "*")):
        uid = name.rsplit(":", 1)[1]
        entries = [fields for _id, fields in await redis.xrange(name)]
        out[uid] = {
            "claims": [f["w"] for f in entries if f.get("k") == "c"],
            "done": any(f.get("k") == "e" for f in entries),
            "finals": [f["t"] for f in entries if f.get("k") == "f"],
            "partials": [f["t"] for f in entries if f.get("k") == "p"],
        }
    return out


async def test_recognition_leaves_the_nodes_and_survives_a_lost_worker(tmp_path) -> None:
    env = {"TRADETALK_METRICS_TOKEN": METRICS_TOKEN}
    async with cluster_room(tmp_path, 4, signalling=(3, 4), env=env) as room:
        c = room.cluster
        nodes = {h.node_id: h for h in (c[0], c[1])}
        workers: list[WorkerProcess] = []
        try:
            # c. no worker: a node recognizes in-process, as on one machine

            async def warm() -> bool:  # its recognizers warm (a cold one garbles a first line)
                return all([(await health(h.url))["ready"] for h in nodes.values()])

            await wait_async(warm, 90)
            for host in nodes.values():
                assert (await health(host.url))["recognition"] == "in-process"
            calls = {}  # owner node id -> (call id, listener)
            first = await start_korean_call(room, c[0], calls)
            await recognized_line(calls[first][1], timeout=60)
            figures = await recognition_figures(nodes[first].url)
            print(f"[workers] no worker, {first}: {figures}")
            assert figures["utterances_node"] >= 1 and figures["utterances_worker"] == 0, figures

            # a. two workers on the other hosts; a call on each media node, lines through them
            for i in (1, 2):
                data = tmp_path / f"worker{i}"
                worker = WorkerProcess(f"w{i}", data, c.redis_url, netns=c[i + 1].netns)
                workers.append(worker.spawn())
            began = time.monotonic()
            await asyncio.gather(*(w.alive_in_redis() for w in workers))
            print(f"[workers] both alive {time.monotonic() - began:.1f} s after spawning")

            async def say_workers() -> bool:
                states = [(await health(h.url))["recognition"] for h in nodes.values()]
                return states == ["workers: 2"] * 2

            await wait_async(say_workers, 10)
            second = await start_korean_call(room, c[1], calls)
            print(f"[workers] calls placed on {first} then {second}")
            assert second != first, (first, second, await room.node(first))
            base = {n: await recognition_figures(h.url) for n, h in nodes.items()}
            for node, host in nodes.items():
                await wait_async(more_by_workers(host.url, base[node]["utterances_worker"]), 40)
                listener = calls[node][1]
                line = await recognized_line(listener, after=len(finals(listener)), timeout=40)
                now = await recognition_figures(host.url)
                print(f"[workers] {node} through a worker: {line['text']!r}; {now}")
                assert now["workers"] == 2, now
            base = {n: await recognition_figures(h.url) for n, h in nodes.items()}
            assert base[second]["utterances_node"] == 0, base  # it never recognized a line

            # b. kill -9 of the worker holding an open utterance: the other takes it over
            known = set(await utterances(room.redis))
            held: tuple[str, str] | None = None

            async def an_open_utterance() -> bool:
                nonlocal held
                for uid, u in (await utterances(room.redis)).items():
                    speech = any(len(p.replace(" ", "")) >= 3 for p in u["partials"])
                    if uid not in known and u["claims"] and not u["done"] and speech:
                        held = (uid, u["claims"][0])
                        return True
                return False

            await wait_async(an_open_utterance, 20, step=0.05)
            assert held is not None
            uid, holder = held
            node = uid.split(".s.", 1)[0]  # the utterance's node: `node.s.<random>.<n>`
            listener = calls[node][1]
            lost = next(w for w in workers if w.id == holder)
            before_kill = len(finals(listener))
            lost.kill()
            print(f"[workers] killed {holder} holding utterance {uid} of {node}")

            async def taken_over() -> bool:
                u = (await utterances(room.redis)).get(uid, {})
                return bool(u.get("done"))

            await wait_async(taken_over, 30)
            u = (await utterances(room.redis))[uid]
            print(f"[workers] utterance {uid}: {u}")
            survivor = next(w.id for w in workers if w is not lost)
            assert u["claims"][0] == holder and u["claims"][-1] == survivor, u
            assert u["finals"], u
            text = " ".join(u["finals"][-1:])
            await wait_until(lambda: len(finals(listener)) > before_kill, 10)
            after = [s["text"] for s in finals(listener)[before_kill:]]
            assert text in after[:2], (after, text)  # the taken-over line, as the worker said it
            score = part_cer(text, KO_REFERENCE)
            print(f"[workers] the line after the kill: {text!r} CER {score:.2f} (its part)")
            assert score <= MAX_CER, text
            await asyncio.sleep(1.0)  # a late duplicate would have arrived by now
            for _call_id, each in calls.values():
                no_duplicates(finals(each))
            for name, host in nodes.items():
                end = await recognition_figures(host.url)
                print(f"[workers] {name} after the kill: {end}")
                assert end["fallbacks"] == 0, end  # no node recognized it itself
                assert end["utterances_node"] == base[name]["utterances_node"], (base, end)
        finally:
            for worker in workers:
                worker.kill()
                print(f"----- worker {worker.id} log tail -----\n{worker.read_log()[-2000:]}")


def more_by_workers(url: str, count: float):
    """A check for `wait_async`: the node at `url` counts more than `count` utterances that
    workers recognized (counted when recognized, before the line is sent)."""

    async def more_by_workers() -> bool:
        return (await recognition_figures(url))["utterances_worker"] > count

    return more_by_workers


async def start_korean_call(room, host, calls: dict) -> str:
    """A call started through `host` (placed on the least-loaded media node): a Korean buyer
    speaking `ko_test.wav` again and again to an English supplier, both on `host`, audio
    only; recorded in `calls` under its owner node. Returns the owner."""
    buyer = await room.person(host, "ko")
    supplier = await room.person(host, "en", role="supplier")
    _cid, call_id = await start_call(buyer, supplier)
    speaker = room.call_client(buyer, repeats=20, camera=False)
    listener = room.call_client(supplier, camera=False)
    for client in (listener, speaker):
        assert (await client.join(call_id))["ok"]
    owner = await room.owner(call_id)
    assert owner is not None
    calls[owner] = (call_id, supplier)
    return owner


def part_cer(text: str, reference: str) -> float:
    """CER of `text` against the part of `reference` it reads best as (the VAD may cut a
    recording in two lines: each is then part of the sentence)."""
    size = len(text)
    starts = range(max(1, len(reference) - size + 1))
    return min(cer(text, reference[i : i + size]) for i in starts)


async def wait_async(check, timeout: float, step: float = 0.2) -> None:
    """Wait until the coroutine function `check()` returns true."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{check.__name__} not true in {timeout} s"
        await asyncio.sleep(step)
