"""The media node's side of recognition workers (server/recognition/remote.py) on a real Redis
and the real Vosk Korean model, without a worker process: a speaker's pipeline
(`SpeakerCaptions` with the VAD endpointer, fed `ko_test.wav` in 20 ms chunks) on a recognizer
from `RecognitionHub`.

- No worker alive: the node recognizes in-process and writes nothing to the workers' streams.
- A worker registered as alive that never takes the job (hung, or every slot busy): after
  `CLAIM_WAIT_S` the node cancels the job and recognizes the utterance itself from its first
  chunk; the line reads as the reference (CER tolerance, never exact words).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import redis.asyncio as aioredis

from server.media_sessions.captions import SpeakerCaptions, endpoint_config_from_env
from server.recognition.hub import RecognitionHub
from server.recognition.streams import jobs_key, key, workers_key
from tests.support import SHARED, wait_until
from translation.metrics import character_error_rate as cer
from translation.speech import SpeechResult
from translation.wav_audio import read_wav_pcm16

SPEECH = SHARED / "testdata" / "speech"
KO_REFERENCE = next(
    f["reference"]
    for f in json.loads((SPEECH / "manifest.json").read_text())["files"]
    if f["file"] == "ko_test.wav"
)
MAX_CER = 0.5
CHUNK = 640  # 20 ms


async def speak(hub: RecognitionHub, data_dir, pace: float = 0.0) -> list[SpeechResult]:
    """`ko_test.wav` and 1 s of silence through one speaker's pipeline; its final results."""
    _engine, recognizer = await asyncio.to_thread(hub.open_recognizer, "ko", data_dir)
    results: list[SpeechResult] = []
    loop = asyncio.get_running_loop()
    captions = SpeakerCaptions(
        recognizer, loop, results.append, endpoint=endpoint_config_from_env({})
    )
    pcm = read_wav_pcm16(SPEECH / "ko_test.wav") + b"\0" * 32000
    for offset in range(0, len(pcm), CHUNK):
        captions.feed(pcm[offset : offset + CHUNK])
        await asyncio.sleep(pace)
    await wait_until(lambda: any(r.final for r in results), 30)
    await asyncio.to_thread(captions.close)
    return [r for r in results if r.final]


async def test_the_node_recognizes_when_no_worker_serves(redis_server, tmp_path) -> None:
    cluster = "t" + secrets.token_hex(4)
    client = aioredis.from_url(redis_server.url, decode_responses=True)
    hub = RecognitionHub(redis_server.url, client, "node1", cluster)
    await hub.start()
    try:
        # no worker: in-process, nothing in the workers' streams
        assert hub.describe() == "in-process"
        finals = await speak(hub, tmp_path)
        text = " ".join(r.text for r in finals)
        print(f"[fallback] in-process: {text!r} CER {cer(text, KO_REFERENCE):.2f}")
        assert cer(text, KO_REFERENCE) <= MAX_CER, text
        assert hub.utterances == {"worker": 0, "node": 1, "fallback": 0}, hub.utterances
        assert not [k async for k in client.scan_iter(match=key(cluster, "*"))]

        # a worker alive that never takes the job: the node recognizes it after all
        await client.zadd(workers_key(cluster), {"hung": time.time() + 120})
        await hub.refresh()
        assert hub.alive == 1 and hub.describe() == "workers: 1"
        finals = await speak(hub, tmp_path, pace=0.02)  # real time: the claim wait runs out
        text = " ".join(r.text for r in finals)
        print(f"[fallback] unclaimed: {text!r} CER {cer(text, KO_REFERENCE):.2f}")
        assert cer(text, KO_REFERENCE) <= MAX_CER, text
        assert hub.utterances["fallback"] == 1 and hub.utterances["worker"] == 0, hub.utterances
        [(_id, job)] = await client.xrange(jobs_key(cluster))
        assert job["lang"] == "ko" and job["node"] == "node1", job
        audio = hub.sync.xrange(key(cluster, "utt", job["uid"]))  # PCM: bytes
        assert any(b"x" in fields for _id, fields in audio), (
            "not cancelled"
        )  # a late worker drops it
    finally:
        await hub.stop()
        await client.aclose()
