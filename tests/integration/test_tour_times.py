# ruff: noqa: F811  (the fixtures imported from tests.integration.test_tours are parameters here)
"""A tour's transcript runs on the tour's wall clock (real aiortc host, Vosk, Redis, engines).

The host says ko_test.wav three times, at 0 s, 8.7 s and 24 s of its microphone's clock: up to
13 s it sends digital silence between the utterances (gated: never decoded), from 13 s to 23 s
it sends no packets at all (a muted sender, silence suppression, a network outage). A viewer
asks a question in between the second and the third. The stamped lines are as far apart as
they were spoken, the question sits between them in the export, and each line has one "not
translated" note for the French viewer (no engine serves ko->fr here)."""

from __future__ import annotations

import asyncio
import re
import time
import wave

import aiohttp

from tests.integration.test_tours import SPEECH, finals, people, tour_app  # noqa: F401  (fixtures)
from tests.support.peers import token_for
from tests.support.rtc_clients import wait_until
from tests.support.tour_clients import ScheduledSpeech, TourClient

SAID_AT = (0.0, 8.7, 24.0)  # seconds of the host's microphone clock
MUTED = (13.0, 23.0)  # no packets at all
ASK_AT = 18.0
FIRST_WORD_S = 0.63  # where Vosk puts the first word of ko_test.wav
TOLERANCE_S = 0.6


async def test_tour_lines_and_questions_are_stamped_on_the_tours_wall_clock(tour_app, people):
    _, url = tour_app
    host = await people("ko", role="supplier")
    english, french = await people("en"), await people("fr")
    began = time.monotonic()
    started = await host.call("tour.start", {"title": "Line 3", "lang": "ko"})
    tid = started["tour"]["id"]
    with wave.open(str(SPEECH / "ko_test.wav")) as clip:
        speech = ScheduledSpeech(clip.readframes(clip.getnframes()), SAID_AT, [MUTED])
    host_client = TourClient(host)
    host_client.rtc.tracks, host_client.rtc.recv_only = [speech], ()
    watchers = [TourClient(english), TourClient(french)]
    people.clients.extend([host_client, *watchers])
    for watcher in watchers:
        assert (await watcher.join(tid))["ok"]
    assert (await host_client.publish(tid))["ok"]

    await wait_until(lambda: speech.started is not None, 20)
    await asyncio.sleep(max(0.0, speech.started + ASK_AT - time.monotonic()))
    asked = await english.call("tour.ask", {"tour_id": tid, "text": "What is the price?"})
    assert asked["ok"], asked
    await wait_until(lambda: len(finals(english)) >= 3, 60)
    assert (await host.call("tour.end", {"tour_id": tid}))["ok"]
    await english.wait_for("tour.ended")

    async with aiohttp.ClientSession() as http:
        base = f"{url}/api/tours/{tid}/transcript"
        auth = {"Authorization": f"Bearer {token_for(english.identity)}"}
        exports = {}
        for fmt in ("json", "txt", "srt"):
            async with http.get(f"{base}?format={fmt}", headers=auth) as resp:
                assert resp.status == 200
                exports[fmt] = await resp.json() if fmt == "json" else await resp.text()
    lines, [question] = exports["json"]["lines"], exports["json"]["questions"]
    starts = [line["start"] for line in lines]
    print(f"\nstamped {starts}; question at {question['at']}; said at {SAID_AT}")
    assert len(lines) == 3, lines

    # as far apart as they were said, on the tour's clock (not the audio decoded)
    for start, said in zip(starts, SAID_AT, strict=True):
        assert abs((start - starts[0]) - said) < TOLERANCE_S, (starts, SAID_AT)
    assert speech.started is not None
    first_said = speech.started - began + FIRST_WORD_S
    assert abs(starts[0] - first_said) < 1.0, (starts[0], first_said)
    assert [s["start"] for s in finals(english)] == starts  # what viewers saw is what is kept

    # the question, asked between the second and the third line, is stamped there
    assert lines[1]["end"] < question["at"] < lines[2]["start"], (lines, question)
    assert abs(question["at"] - (speech.started - began + ASK_AT)) < TOLERANCE_S
    entries = [x for x in exports["txt"].splitlines() if x.startswith("[")]
    kinds = ["Q" if "] Q: " in x else "line" for x in entries]
    assert kinds == ["line", "line", "Q", "line"], exports["txt"]

    # one "not translated" note per line for French, in every export
    assert all(set(line["translation_error"]) == {"fr"} for line in lines), lines
    assert len(re.findall(r"^    fr: ", exports["txt"], re.M)) == 3, exports["txt"]
    assert len(re.findall(r"^\[fr\] ", exports["srt"], re.M)) == 3, exports["srt"]
    assert len(re.findall(r"^    en: ", exports["txt"], re.M)) == 3, exports["txt"]
