"""Placement counts recognition load (issue 21): a node that recognizes speech in-process is
busier than one whose speakers recognition workers serve.

Two nodes on a real Redis, each with its real `RecognitionHub` (recognizers opened through it on
the real Vosk Korean model) and its real `NodeRegistry` (heartbeat, `NodeTable`'s placement
script), whose load is the app's: sessions, peers and `RecognitionHub.recognition_load`.
- Node b: one speaker mid-utterance, recognized in-process (it began before any worker was up).
- Node a: two speakers, idle between utterances, while a worker is alive: their next utterances
  go to the worker, so they cost node a no recognition.
By peers and speakers alone (the figure before) b is less loaded; counting only the recognition
each node runs itself, placement picks a. When the worker leaves, a's speakers are recognized
in-process again and placement goes back to b.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable

import redis.asyncio as aioredis

from server.cluster.nodes import NodeRegistry, load_figure
from server.recognition.hub import RecognitionHub
from server.recognition.streams import workers_key
from tests.support import SHARED
from translation.wav_audio import read_wav_pcm16

SPEECH = SHARED / "testdata" / "speech" / "ko_test.wav"


def node_load(hub: RecognitionHub, speakers: int, sessions: int = 1) -> Callable[[], dict]:
    """What `TradeTalkApp.load` reports for a node whose members are all speakers."""
    return lambda: {
        "sessions": sessions,
        "peers": speakers,
        "cpu": 0.0,
        **hub.recognition_load(speakers),
    }


async def test_placement_prefers_the_node_whose_speakers_workers_recognize(
    redis_server, tmp_path
) -> None:
    cluster = "p" + secrets.token_hex(4)
    client = aioredis.from_url(redis_server.url, decode_responses=True)
    hub_a = RecognitionHub(redis_server.url, client, "a", cluster)
    hub_b = RecognitionHub(redis_server.url, client, "b", cluster)
    registry_a = NodeRegistry(client, "a", load=node_load(hub_a, 2), cluster=cluster)
    registry_b = NodeRegistry(client, "b", load=node_load(hub_b, 1), cluster=cluster)
    opened = []
    try:
        for hub in (hub_a, hub_b):
            await hub.start()
        # node b: a speaker talking while no worker is alive -> recognized in-process
        _engine, speaking = await asyncio.to_thread(hub_b.open_recognizer, "ko", tmp_path)
        opened.append(speaking)
        pcm = read_wav_pcm16(SPEECH)[:32000]  # 1 s of speech: the utterance stays open
        await asyncio.to_thread(speaking.feed, pcm)
        assert hub_b.recognition_load(1) == {"recognizers": 1, "worker_recognizers": 0}

        # a worker comes up; node a's two speakers (between utterances) are the worker's
        await client.zadd(workers_key(cluster), {"w1": time.time() + 120})
        for hub in (hub_a, hub_b):
            await hub.refresh()
        for _ in range(2):
            _engine, idle = await asyncio.to_thread(hub_a.open_recognizer, "ko", tmp_path)
            opened.append(idle)
        assert hub_a.recognition_load(2) == {"recognizers": 0, "worker_recognizers": 2}
        assert hub_b.recognition_load(1) == {"recognizers": 1, "worker_recognizers": 0}

        for registry in (registry_a, registry_b):
            await registry.beat()
        nodes = {n.id: n for n in await registry_a.live()}
        print(f"[placement] with a worker: {nodes}")
        assert (nodes["a"].recognizers, nodes["a"].worker_recognizers) == (0, 2)
        assert (nodes["b"].recognizers, nodes["b"].worker_recognizers) == (1, 0)
        # counting every recognized speaker (the figure before) would have picked b
        assert load_figure(2, 2, 1, 0) > load_figure(1, 1, 1, 0)
        assert await registry_b.place() == "a"

        # the worker leaves: node a recognizes its speakers itself again -> b is less loaded
        await client.zrem(workers_key(cluster), "w1")
        for hub in (hub_a, hub_b):
            await hub.refresh()
        for registry in (registry_a, registry_b):
            await registry.beat()
        nodes = {n.id: n for n in await registry_a.live()}
        print(f"[placement] no worker: {nodes}")
        assert (nodes["a"].recognizers, nodes["a"].worker_recognizers) == (2, 0)
        assert await registry_a.place() == "b"
    finally:
        for recognizer in opened:
            await asyncio.to_thread(recognizer.close)
        for registry in (registry_a, registry_b):
            await registry.stop()
        for hub in (hub_a, hub_b):
            await hub.stop()
        await client.aclose()
