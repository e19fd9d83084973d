# ruff: noqa: F811  (the fixtures imported from tests.integration.test_calls are parameters here)
"""No utterance is left unfinished in a call: real aiortc peers, real Vosk, real Redis.

The speaker plays `ko_test.wav` cut right after its last word (no trailing silence, so
Vosk's own endpoint rules would never close it) and then: the track ends, or goes silent
without ending (a mute that stops packets), or the speaker leaves. The listener still gets
the final line, translated, exactly once, and the transcript keeps it once.
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

from aiortc.mediastreams import MediaStreamTrack

from tests.integration.test_calls import (  # noqa: F401  (fixtures)
    KO_REFERENCE,
    SPEECH,
    app_url,
    finals,
    people,
    start_call,
    wait_until,
)
from tests.support.call_clients import CallClient, call_transcript
from translation.metrics import character_error_rate as cer
from translation.speech import transcribe_wav

SPEECH_END_S = 3.36  # the last word of ko_test.wav ends here


def speech_only(target: Path) -> Path:
    """ko_test.wav up to the end of its last word: speech that never pauses, then stops."""
    with wave.open(str(SPEECH / "ko_test.wav")) as wav:
        params = wav.getparams()
        frames = wav.readframes(int(params.framerate * SPEECH_END_S))
    with wave.open(str(target), "wb") as out:
        out.setparams(params)
        out.writeframes(frames)
    return target


class GoesQuiet(MediaStreamTrack):
    """Forwards a source track, then sends nothing at all (without ending) once it ends."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.source = source
        self.quiet = asyncio.Event()

    async def recv(self):
        if not self.quiet.is_set():
            try:
                return await self.source.recv()
            except Exception:
                self.quiet.set()
        await asyncio.Event().wait()  # muted: no packets, ever


def direct_result() -> str:
    return " ".join(r.text for r in transcribe_wav(SPEECH / "ko_test.wav", "ko"))


async def talk(people, tmp_path, *, mute: bool = False):
    speaker, listener = await people("ko"), await people("en")
    cid, call_id = await start_call(speaker, listener)
    await listener.wait_for("call.started")
    a = CallClient(speaker, speech_only(tmp_path / "ko-speech-only.wav"), camera=False)
    quiet = None
    if mute:
        quiet = GoesQuiet(a.rtc.tracks[0])
        a.rtc.tracks[0] = quiet
    b = CallClient(listener, camera=False)
    assert (await b.join(call_id))["ok"]
    assert (await a.join(call_id))["ok"]
    return speaker, listener, a, b, cid, call_id, quiet


def check_line(final: dict, direct: str) -> None:
    assert final["lang"] == "ko" and final["translations"].get("en"), final
    assert cer(final["text"], KO_REFERENCE) <= cer(direct, KO_REFERENCE) + 0.06, final["text"]
    # Nothing cut off at the end: the speech's last syllable is there (Vosk's live words vary
    # from run to run with packet timing — "걸어갔 다", "갔다", "으로 다" — its last one does not).
    assert final["text"].replace(" ", "")[-1] == direct.replace(" ", "")[-1], final["text"]


async def transcript_lines(peer, cid: str) -> list[dict]:
    return await call_transcript(peer, cid)


async def test_a_track_that_ends_right_after_the_speech_gets_its_final(people, tmp_path):
    speaker, listener, a, b, cid, call_id, _ = await talk(people, tmp_path)
    direct = await asyncio.to_thread(direct_result)
    try:
        final = await listener.wait_for("subtitle", lambda s: s["final"], timeout=30)
        check_line(final, direct)
        await asyncio.sleep(2.0)  # nothing more comes: the line went out once
        assert len(finals(listener)) == 1
        [line] = await transcript_lines(listener, cid)
        assert line["text"] == final["text"]
    finally:
        await a.close()
        await b.close()
    await speaker.call("call.end", {"call_id": call_id})


async def test_a_speaker_whose_track_goes_silent_gets_the_final(people, tmp_path):
    speaker, listener, a, b, cid, call_id, quiet = await talk(people, tmp_path, mute=True)
    direct = await asyncio.to_thread(direct_result)
    try:
        await wait_until(quiet.quiet.is_set, timeout=30)
        final = await listener.wait_for("subtitle", lambda s: s["final"], timeout=30)
        check_line(final, direct)
        await asyncio.sleep(2.0)
        assert len(finals(listener)) == 1
        assert len(await transcript_lines(listener, cid)) == 1
    finally:
        await a.close()
        await b.close()
    await speaker.call("call.end", {"call_id": call_id})


async def test_a_speaker_who_leaves_mid_sentence_still_gets_the_line(people, tmp_path):
    speaker, listener, a, b, cid, call_id, _ = await talk(people, tmp_path)
    try:
        await listener.wait_for("subtitle", lambda s: not s["final"], timeout=30)
        await asyncio.sleep(1.0)  # mid-sentence
        assert not finals(listener)
        assert (await speaker.call("call.leave", {"call_id": call_id}))["ok"]
        final = await listener.wait_for("subtitle", lambda s: s["final"], timeout=10)
        assert final["text"] and final["translations"].get("en")
        await asyncio.sleep(1.0)
        assert len(finals(listener)) == 1
        [line] = await transcript_lines(listener, cid)
        assert line["text"] == final["text"]
    finally:
        await a.close()
        await b.close()
