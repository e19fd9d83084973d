"""Captions where the user looks: page-side latency of the first translated open line and of the
final, beside a Python client's in the same call on the same server.

Run: .venv/bin/python -m bench.page_captions [--seconds 60]

Set-up (all real): `tradetalk serve` (dev sign-in on) with the Korean Vosk model and the test
ko→en Argos package; Chromium (Playwright) for a Korean speaker whose fake microphone loops
`ko_test.wav` followed by 4 s of silence, and for an English listener (muted); a Python
Socket.IO + aiortc listener (English) in the same call. The speaker's page stamps when its
microphone opened (the fake capture starts its file then); utterance k's speech starts and ends
at that stamp + k periods + the clip's speech span. The listener's page stamps every change of
its caption area (MutationObserver, epoch ms; a final counts when the board's lines of the
speaker grow), the Python client every `subtitle` it receives (epoch ms): per utterance, start
of speech → first translated open line, end of speech → final.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.call_harness import SPEECH, Server, fmt, percentile, speech_span_s, wav_seconds
from tests.browser.conftest import CHROMIUM_ARGS, MEDIA_ARGS
from tests.support.call_clients import CallClient, speech_with_pauses
from tests.support.peers import Peer, new_user

WAV = SPEECH / "ko_test.wav"
PAUSE_S = 4.0
MIC_STAMP = """() => {
  const open = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => {
    const stream = await open(c);
    if (c && c.audio && window.micOpened === undefined) window.micOpened = Date.now();
    return stream;
  };
}"""
CAPTION_LOG = """(speaker) => {
  window.captionLog = [];
  const root = document.querySelector("#call-view .subtitles");
  new MutationObserver(() => {
    const open = root.querySelector(`.subtitle.partial.translated[data-speaker="${speaker}"]`);
    const lines = tradetalk.call.board.lines.filter((l) => l.subtitle.speaker?.id === speaker);
    window.captionLog.push({ at: Date.now(), open: !!open, finals: lines.length });
  }).observe(root, { subtree: true, childList: true, characterData: true });
}"""


async def sign_in(page, url: str, name: str, role: str, lang: str) -> str:
    await page.goto(url + "/")
    await page.locator("#signin-name").fill(name)
    await page.locator("#signin-role").select_option(role)
    await page.locator("#signin-lang").select_option(lang)
    await page.locator("#signin-submit").click()
    await page.wait_for_function("() => document.querySelector('#my-id')?.textContent.trim()")
    return (await page.locator("#my-id").inner_text()).strip()


def figures(windows: list[tuple[float, float, float]], partials: list[float], finals: list[float]):
    """Per utterance (start, end, next start): first translated open line after its start,
    first final after its end (ms)."""
    first, final = [], []
    for start, end, stop in windows:
        seen = [t for t in partials if start <= t < stop]
        done = [t for t in finals if end <= t < stop]
        if done:
            final.append(done[0] - end)
            early = [t for t in seen if t < done[0]]
            if early:
                first.append(early[0] - start)
    return first, final


async def bench(args: argparse.Namespace, root: Path) -> None:
    from playwright.async_api import async_playwright

    clip = speech_with_pauses(WAV, root / "mic.wav", pause_s=PAUSE_S)
    period_ms = (wav_seconds(WAV) + PAUSE_S) * 1000
    speech_start, speech_end = speech_span_s(WAV)
    server = Server(root, "vad", {"TRADETALK_DEV": "1"})
    await asyncio.to_thread(server.install_argos_ko_en)
    await server.start()
    python = await Peer(new_user(lang="en")).connect(server.url)
    heard: list[tuple[float, dict]] = []
    python.sio.on("subtitle", lambda data: heard.append((time.time() * 1000, data)))
    client = None
    try:
        async with async_playwright() as pw:
            talk = await pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[*CHROMIUM_ARGS, *MEDIA_ARGS, f"--use-file-for-fake-audio-capture={clip}"],
            )
            hear = await pw.chromium.launch(
                executable_path="/usr/bin/chromium", args=[*CHROMIUM_ARGS, *MEDIA_ARGS]
            )
            speaker = await (await talk.new_context()).new_page()
            listener = await (await hear.new_context()).new_page()
            await speaker.add_init_script(f"({MIC_STAMP})()")
            speaker_id = await sign_in(speaker, server.url, "Kim Supplier", "supplier", "ko")
            listener_id = await sign_in(listener, server.url, "Ann Buyer", "buyer", "en")
            ack = await python.call(
                "conversation.create", {"participants": [speaker_id, listener_id]}
            )
            cid = ack["conversation"]["id"]
            started = await python.call("call.start", {"conversation_id": cid})
            call_id = started["call"]["id"]
            client = CallClient(python, camera=False)
            assert (await client.join(call_id))["ok"]
            for page in (listener, speaker):
                await page.goto(f"{server.url}/#/c/{cid}")
                await page.locator("#call-start").click()
                await page.wait_for_selector("#call-view .subtitles")
            await listener.locator("#call-mute").click()
            await listener.evaluate(CAPTION_LOG, speaker_id)
            await asyncio.sleep(args.seconds)
            opened = await speaker.evaluate("() => window.micOpened")
            log = await listener.evaluate("() => window.captionLog")
            await talk.close()
            await hear.close()
        count = int(args.seconds * 1000 // period_ms)
        windows = [
            (
                opened + k * period_ms + speech_start * 1000,
                opened + k * period_ms + speech_end * 1000,
                opened + (k + 1) * period_ms + speech_start * 1000,
            )
            for k in range(1, count)  # the first period plays while the call connects
        ]
        page_open = [e["at"] for e in log if e["open"]]
        page_final = [b["at"] for a, b in itertools.pairwise(log) if b["finals"] > a["finals"]]
        mine = [(t, d) for t, d in heard if d["speaker"]["id"] == speaker_id]
        py_open = [t for t, d in mine if not d["final"] and d["translations"].get("en")]
        py_final = [t for t, d in mine if d["final"]]
        page_first, page_done = figures(windows, page_open, page_final)
        py_first, py_done = figures(windows, py_open, py_final)
        print(f"{len(windows)} utterances; page vs Python client in the same call, ms (p50 / p95)")
        for name, page, py in (
            ("start of speech -> first translated open line", page_first, py_first),
            ("end of speech -> final", page_done, py_done),
        ):
            print(
                f"  {name:<46} page {fmt(percentile(page, 50))} / {fmt(percentile(page, 95))}"
                f"   python {fmt(percentile(py, 50))} / {fmt(percentile(py, 95))}"
                f"   (n={len(page)}/{len(py)})"
            )
    finally:
        if client is not None:
            await client.close()
        await python.close()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the speaker talks")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tradetalk-bench-page-"))
    try:
        asyncio.run(bench(args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
