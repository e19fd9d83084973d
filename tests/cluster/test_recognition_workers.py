"""Speech recognition off the media node (issue 21, must-have 1): `tradetalk worker` processes in
other hosts' network namespaces take a Korean call's utterances from Redis Streams.

One call, one run of the cluster (each costs ~30-60 s here), in three acts:
c. no worker alive: `/healthz` says `in-process` and the node recognizes the first line itself;
a. two workers start (on host2 and host3): `/healthz` says `workers: 2`, and a line arrives
   that a worker recognized while the node recognized nothing (its `/metrics` counts);
b. kill -9 of the worker holding an open utterance (it said a partial: speech): the other
   takes it over (two claims on the utterance's result stream), the line arrives once and reads
   as the reference (or the part of it the utterance holds), and the node never fell back to
   recognizing it itself.
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


async def test_recognition_leaves_the_node_and_survives_a_lost_worker(tmp_path) -> None:
    env = {"TRADETALK_METRICS_TOKEN": METRICS_TOKEN}
    async with cluster_room(tmp_path, 3, signalling=(2, 3), env=env) as room:
        c = room.cluster
        media = c[0]
        workers: list[WorkerProcess] = []
        try:
            # c. no worker: the node recognizes in-process, as on one machine

            async def warm() -> bool:  # its recognizers warm (a cold one garbles a first line)
                return bool((await health(media.url))["ready"])

            await wait_async(warm, 90)
            assert (await health(media.url))["recognition"] == "in-process"
            buyer = await room.person(media, "ko")
            supplier = await room.person(media, "en", role="supplier")
            _cid, call_id = await start_call(buyer, supplier)
            speaker = room.call_client(buyer, repeats=20)
            listener = room.call_client(supplier)
            for client in (listener, speaker):
                assert (await client.join(call_id))["ok"]
            await recognized_line(supplier, timeout=60)
            figures = await recognition_figures(media.url)
            print(f"[workers] no worker: {figures}")
            assert figures["utterances_node"] >= 1 and figures["utterances_worker"] == 0, figures

            # a. two workers on the other hosts: lines come through them
            for i in (1, 2):
                data = tmp_path / f"worker{i}"
                worker = WorkerProcess(f"w{i}", data, c.redis_url, netns=c[i].netns)
                workers.append(worker.spawn())
            began = time.monotonic()
            await asyncio.gather(*(w.alive_in_redis() for w in workers))
            print(f"[workers] both alive {time.monotonic() - began:.1f} s after spawning")

            async def says_workers() -> bool:
                return (await health(media.url))["recognition"] == "workers: 2"

            await wait_async(says_workers, 10)

            async def worker_recognized() -> bool:
                return (await recognition_figures(media.url))["utterances_worker"] >= 1

            await wait_async(worker_recognized, 40)
            base = await recognition_figures(media.url)
            seen = len(finals(supplier))
            line = await recognized_line(supplier, after=seen, timeout=40)

            async def another_by_a_worker() -> bool:  # counted when recognized, before sent
                figures = await recognition_figures(media.url)
                return figures["utterances_worker"] > base["utterances_worker"]

            await wait_async(another_by_a_worker, 20)
            now = await recognition_figures(media.url)
            print(f"[workers] through a worker: {line['text']!r}; {now}")
            assert now["utterances_node"] == base["utterances_node"], (base, now)  # none here
            assert now["workers"] == 2, now

            # b. kill -9 of the worker holding the open utterance: the other takes it over
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
            lost = next(w for w in workers if w.id == holder)
            before_kill = len(finals(supplier))
            lost.kill()
            print(f"[workers] killed {holder} holding utterance {uid}")

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
            await wait_until(lambda: len(finals(supplier)) > before_kill, 10)
            after = [s["text"] for s in finals(supplier)[before_kill:]]
            assert text in after[:2], (after, text)  # the taken-over line, as the worker said it
            score = part_cer(text, KO_REFERENCE)
            print(f"[workers] the line after the kill: {text!r} CER {score:.2f} (its part)")
            assert score <= MAX_CER, text
            await asyncio.sleep(1.0)  # a late duplicate would have arrived by now
            no_duplicates(finals(supplier))
            end = await recognition_figures(media.url)
            print(f"[workers] after the kill: {end}")
            assert end["fallbacks"] == 0, end  # the node never recognized it itself
            assert end["utterances_node"] == base["utterances_node"], (base, end)
        finally:
            for worker in workers:
                worker.kill()
                print(f"----- worker {worker.id} log tail -----\n{worker.read_log()[-2000:]}")


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
