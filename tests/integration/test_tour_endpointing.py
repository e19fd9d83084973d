# ruff: noqa: F811  (the fixtures imported from tests.integration.test_tours are parameters here)
"""Tours close the host's last utterance too: the tour ends mid-sentence (speech that never
paused), and every viewer still gets that line, translated, once (real aiortc, Vosk, Redis)."""

from __future__ import annotations

import asyncio

from tests.integration.test_call_endpointing import speech_only
from tests.integration.test_tours import finals, people, tour_app  # noqa: F401  (fixtures)
from tests.support.tour_clients import TourClient


async def test_ending_a_tour_mid_sentence_still_sends_the_line(tour_app, people, tmp_path):
    host = await people("ko", role="supplier")
    viewer = await people("en")
    started = await host.call("tour.start", {"title": "Line 3", "lang": "ko"})
    tid = started["tour"]["id"]
    host_client = TourClient(host, wav=speech_only(tmp_path / "ko-speech-only.wav"))
    watcher = TourClient(viewer)
    people.clients.extend([host_client, watcher])
    assert (await watcher.join(tid))["ok"]
    assert (await host_client.publish(tid))["ok"]
    await viewer.wait_for("subtitle", lambda s: not s["final"], timeout=30)
    await asyncio.sleep(1.0)  # mid-sentence: no line yet
    assert not finals(viewer)
    assert (await host.call("tour.end", {"tour_id": tid}))["ok"]
    final = await viewer.wait_for("subtitle", lambda s: s["final"], timeout=10)
    assert final["text"] and set(final["translations"]) == {"en"} and final["translations"]["en"]
    await viewer.wait_for("tour.ended", timeout=10)
    await asyncio.sleep(0.5)
    assert len(finals(viewer)) == 1
