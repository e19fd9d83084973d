# ruff: noqa: F811  (the fixtures imported from tests.integration.test_calls are parameters here)
"""Translated captions while the speaker talks: real aiortc peers, real Vosk and Whisper, real
Argos (the test ko->en package) and Apertium (es->en). A listener in another language receives
the open line translated before its final, the steady (committed) part never shrinks, and the
final is the direct translation of the final source; a pair with no engine gets no partial
translation (the final says why)."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

from server.media_sessions.live_lines import LiveLine
from tests.integration.test_calls import SPEECH, app_url, people, start_call  # noqa: F401  (fixtures)
from tests.support.call_clients import CallClient, speech_with_pauses
from tests.support.peers import Peer
from translation.retranslation import Shown, SourcePrefix, TargetCommit, normalized_erasure
from translation.service import TranslationService
from translation.translator import Translator


def utterances(peer: Peer) -> list[tuple[list[dict], dict]]:
    """The peer's subtitle events grouped per line: (its partials in order, its final)."""
    lines: list[tuple[list[dict], dict]] = []
    partials: list[dict] = []
    for event in peer.events["subtitle"]:
        if event["final"]:
            lines.append((partials, event))
            partials = []
        else:
            partials.append(event)
    return lines


def assert_steady(partials: list[dict], lang: str) -> None:
    """Each partial's committed part in `lang` starts with the previous one's (never shrinks)."""
    steady = ""
    for partial in partials:
        text = partial["translations"].get(lang)
        if text is None:
            continue
        committed = text[: partial["committed"][lang]]
        assert committed.startswith(steady), (steady, committed)
        steady = committed


def said_twice(clip: str, target: Path) -> Path:
    """`clip` twice without a pause, then 3 s of silence: one long utterance (Whisper agrees
    on a prefix only after a few partial decodes)."""
    with wave.open(str(SPEECH / clip)) as wav:
        params, frames = wav.getparams(), wav.readframes(wav.getnframes())
    with wave.open(str(target), "wb") as out:
        out.setparams(params)
        out.writeframes(frames * 2 + b"\0" * params.framerate * params.sampwidth * 3)
    return target


async def spoken_call(people, wav: Path, speaker_lang: str, *listener_langs: str):
    """`wav` said by a `speaker_lang` speaker to listeners in `listener_langs`, until every
    listener has its final lines; returns the listeners."""
    speaker = await people(speaker_lang)
    listeners = [await people(lang) for lang in listener_langs]
    _, call_id = await start_call(speaker, *listeners)
    clients = [CallClient(p, camera=False) for p in listeners]
    talker = CallClient(speaker, wav, camera=False)
    try:
        for client in clients:
            assert (await client.join(call_id))["ok"]
        assert (await talker.join(call_id))["ok"]
        for listener in listeners:
            await listener.wait_for("subtitle", lambda s: s["final"], timeout=90)
        await asyncio.sleep(4.0)  # nothing of a line may follow its final (a line cut at 15 s)
        assert not [s for s in speaker.events["subtitle"] if not s["final"]]
        return listeners
    finally:
        await talker.close()
        for client in clients:
            await client.close()


async def test_a_korean_line_reaches_an_english_listener_translated_while_spoken(
    app_url, people, tmp_path, translator: Translator
):
    wav = speech_with_pauses(SPEECH / "ko_test.wav", tmp_path / "ko.wav", pause_s=3.0)
    english, french = await spoken_call(people, wav, "ko", "en", "fr")
    [(partials, final)] = utterances(english)
    translated = [p for p in partials if p["translations"].get("en")]
    assert translated, partials  # before the final, in English
    assert_steady(partials, "en")
    for partial in translated:  # the steady part is a prefix of what is shown
        assert 0 <= partial["committed"]["en"] <= len(partial["translations"]["en"])
    expected = await asyncio.to_thread(translator.translate, final["text"], "ko", "en")
    assert final["translations"]["en"] == expected
    # no ko->fr engine: no French partials at all, and the final says why
    assert not [p for p in french.events["subtitle"] if "fr" in p["translations"]]
    [(_, french_final)] = utterances(french)
    assert french_final["translation_error"]["fr"]["code"] == "no_pair"
    assert french_final["text"] == final["text"]


async def test_a_spanish_whisper_line_is_translated_while_spoken(
    app_url, people, tmp_path, translator: Translator
):
    wav = said_twice("es_arenas_blanquecinas.wav", tmp_path / "es.wav")
    [english] = await spoken_call(people, wav, "es", "en")
    lines = utterances(english)
    partials = [p for line_partials, _ in lines for p in line_partials]
    assert [p for p in partials if p["translations"].get("en")], lines
    for line_partials, final in lines:
        assert_steady(line_partials, "en")
        expected = await asyncio.to_thread(translator.translate, final["text"], "es", "en")
        assert final["translations"] == {"en": expected}


def test_the_stable_source_is_what_two_partials_agree_on():
    source = SourcePrefix("en")
    assert source.update("the price") is None  # one partial: nothing agreed yet
    assert source.update("the prices are") == "the"
    assert source.update("the prices are high") == "the prices are"
    assert source.update("the prices are") is None  # no change
    whisper = SourcePrefix("en", agreed=True)
    assert whisper.update("the price") == "the price"


def test_committed_translation_never_shrinks_and_erasure_counts_flicker():
    said = ["the house", "the house is red", "a house is red now", "the house is red now"]
    commit = TargetCommit("en")
    shown = [commit.update(t) for t in said]
    assert [s.text[: s.committed] for s in shown] == ["", "the house", "the house", "the house"]
    # the tail but its last word, dimmed; none while a committed word is contradicted
    assert [s.text for s in shown] == ["the", "the house is", "the house", "the house is red"]
    whole = TargetCommit("en", tail_mask=0)
    assert [whole.update(t).text for t in said][:2] == ["the house", "the house is red"]
    assert normalized_erasure(["a b", "a b c", "a x c d"], "en") == 2 / 4
    assert normalized_erasure(["a", "a b", "a b c"], "en") == 0.0
    chinese = TargetCommit("zh")
    chinese.update("价格很")
    assert chinese.update("价格很高").committed == 3


def test_before_two_partials_agree_a_guess_is_translated_sooner():
    from translation.speech import StreamingRecognizer
    from translation.speech_models import find_speech_model, load_speech_model
    from translation.wav_audio import read_wav_pcm16

    stream = StreamingRecognizer(load_speech_model(find_speech_model("ko", Path("/nonexistent"))))
    pcm = read_wav_pcm16(SPEECH / "ko_test.wav")
    partials = [
        r.text for o in range(0, len(pcm), 640) for r in stream.feed(pcm[o : o + 640]) if r.text
    ]
    stream.close()

    def first_text(source: SourcePrefix) -> tuple[int, bool]:
        """The partial that first gives something to translate, and whether it is a guess."""
        for index, partial in enumerate(partials):
            if source.update(partial):
                return index, source.guess
        raise AssertionError(partials)

    guessed, is_guess = first_text(SourcePrefix("ko", early=True))
    agreed, agreed_guess = first_text(SourcePrefix("ko"))
    assert guessed < agreed and is_guess and not agreed_guess, partials
    # after the first agreement no more guesses; a guess is never longer than its partial
    source = SourcePrefix("en", early=True)
    assert source.update("the") is None  # one word but its last: nothing
    assert source.update("a price") == "a" and source.guess
    assert source.update("the price is") == "the price" and source.guess  # "a" vs "the"
    assert source.update("the price is high") == "the price is" and not source.guess
    assert source.update("a price") is None and not source.guess  # no more guesses
    # a guess's translation is shown whole (its source was masked), dimmed
    commit = TargetCommit("en")
    assert commit.update("the price", guess=True) == Shown("the price", 0)
    assert commit.update("the price is").text == "the price"


async def test_an_open_line_translates_its_newest_text_once_its_turn_comes(translator):
    """While the translation lane is busy (a turn held here, as a final's translation would),
    the open line's partials grow; when the turn comes only the newest is translated (the
    older texts are dropped, never computed), and a line whose final came while it waited
    translates nothing."""
    service = TranslationService(translator)
    tasks: set[asyncio.Task] = set()
    shown: list[dict[str, Shown]] = []

    async def emit(text: str, translations: dict[str, Shown]) -> None:
        shown.append(translations)

    def line() -> LiveLine:
        return LiveLine(
            "es",
            targets=lambda: {"en"},
            agreed=lambda: True,  # each partial as it is (Whisper's agreed text)
            translate=lambda text, lang: service.translate(text, "es", lang, background=True),
            emit=emit,
            spawn=lambda coro: tasks.add(asyncio.ensure_future(coro)),
            interval_s=0.0,
            turn=service.background_turn,
        )

    async def settle() -> None:
        while any(not t.done() for t in tasks):
            await asyncio.gather(*tasks)

    words = "las arenas blanquecinas se extendían hasta el horizonte".split()
    try:
        open_line = line()
        async with service.background_turn():
            for n in range(2, len(words) + 1):
                open_line.partial(" ".join(words[:n]), 0)
                await asyncio.sleep(0)
        await settle()
        newest = await service.translate(" ".join(words), "es", "en")
        assert service.stats.computed == 1, service.stats  # the older texts never translated
        expected = TargetCommit("en").update(newest, False)  # the newest, as the line shows it
        assert shown[-1]["en"] == expected and open_line.translations == 1, shown[-1]

        closed = line()
        async with service.background_turn():
            closed.partial("el precio es final", 0)
            await asyncio.sleep(0)
            async with closed.lock:
                closed.finished(0)  # its final went out while the open line waited
        await settle()
        assert service.stats.computed == 1 and closed.translations == 0, service.stats
    finally:
        service.close()
