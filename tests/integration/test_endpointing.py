"""Server-side endpointing: the VAD endpointer on real speech with constructed pauses, and a
speaker's captions thread (real Vosk) closing every utterance, whatever follows the speech."""

from __future__ import annotations

import asyncio
import json
import time
import wave

import pytest

from server.media_sessions.captions import SpeakerCaptions, endpoint_config_from_env
from tests.support.peers import SHARED
from translation.endpoint_driver import UtteranceDriver
from translation.endpointing import FRAME_BYTES, End, EndpointConfig, Endpointer, Event, Feed, Skip
from translation.metrics import character_error_rate as cer
from translation.sentence_ends import korean_finished
from translation.speech import RECOGNIZERS, SpeechResult, StreamingRecognizer, transcribe_wav
from translation.speech_models import find_speech_model, load_speech_model
from translation.wav_audio import read_wav_pcm16

KO_WAV = SHARED / "testdata" / "speech" / "ko_test.wav"
SECOND = 32000  # bytes of 16 kHz s16 mono


def silence(seconds: float) -> bytes:
    return b"\0" * (int(seconds * SECOND) // 2 * 2)


@pytest.fixture(scope="module")
def ko_pcm() -> bytes:
    assert KO_WAV.is_file(), f"missing test recording {KO_WAV}"
    return read_wav_pcm16(KO_WAV)


@pytest.fixture(scope="module")
def speech(ko_pcm) -> bytes:
    """ko_test.wav cut right after its last word (3.36 s): no trailing silence at all."""
    return ko_pcm[: int(3.36 * SECOND) // 2 * 2]


@pytest.fixture(scope="module")
def voiced(speech) -> bytes:
    """Only the words: ko_test.wav from 0.62 s (its first word starts at 0.65 s) to 3.36 s."""
    return speech[int(0.62 * SECOND) // 2 * 2 :]


@pytest.fixture(scope="module")
def ko_model(tmp_path_factory):
    return load_speech_model(find_speech_model("ko", tmp_path_factory.mktemp("empty")))


@pytest.fixture(scope="module")
def direct_text(ko_model) -> str:
    """The recognizer's own result for the recording decoded directly."""
    return " ".join(r.text for r in transcribe_wav(KO_WAV, ko_model))


REFERENCE = json.loads((KO_WAV.parent / "manifest.json").read_text(encoding="utf-8"))
KO_REFERENCE = next(f["reference"] for f in REFERENCE["files"] if f["file"] == KO_WAV.name)


def like_direct(text: str, direct: str) -> bool:
    """As good as the direct decode (a pooled recognizer may differ by a word, for the
    better: it keeps its speaker adaptation), and nothing cut off at either end."""
    words, expected = text.split(), direct.split()
    return (
        cer(text, KO_REFERENCE) <= cer(direct, KO_REFERENCE) + 0.06
        and words[:1] == expected[:1]
        and words[-1:] == expected[-1:]
    )


def run(endpointer: Endpointer, pcm: bytes, chunk: int = 640) -> list[tuple[str, float]]:
    """('end', stream second) for each End, in 20 ms chunks like the media room's."""
    ends: list[tuple[str, float]] = []

    def ended(event: Event, position: float) -> None:
        if isinstance(event, End):
            ends.append((event.reason, round(position, 2)))

    driver = UtteranceDriver(endpointer, None, on_event=ended)
    for offset in range(0, len(pcm), chunk):
        driver.process(pcm[offset : offset + chunk])
    return ends


def test_each_utterance_closes_shortly_after_its_speech(speech):
    pcm = silence(1.0) + speech + silence(1.5) + speech + silence(1.5)
    ends = run(Endpointer(EndpointConfig(silence_s=0.3)), pcm)
    assert [reason for reason, _ in ends] == ["silence", "silence"]
    first_end, second_end = 1.0 + 3.36, 1.0 + 3.36 + 1.5 + 3.36
    assert first_end <= ends[0][1] <= first_end + 0.3 + 0.1
    assert second_end <= ends[1][1] <= second_end + 0.3 + 0.1


def test_silence_time_is_a_setting(speech):
    pcm = speech + silence(2.0)
    [(_, short)] = run(Endpointer(EndpointConfig(silence_s=0.3)), pcm)
    [(_, long)] = run(Endpointer(EndpointConfig(silence_s=0.8)), pcm)
    assert long - short == pytest.approx(0.5, abs=0.07)


def test_a_pause_shorter_than_the_silence_time_does_not_split(speech):
    half = len(speech) // 2 // FRAME_BYTES * FRAME_BYTES
    pcm = speech[:half] + silence(0.2) + speech[half:] + silence(1.0)
    assert len(run(Endpointer(EndpointConfig(silence_s=0.3)), pcm)) == 1


def test_silence_is_gated_but_the_clock_is_kept(speech):
    endpointer = Endpointer(EndpointConfig(preroll_s=0.3))
    pcm = silence(5.0) + speech + silence(5.0)
    events = endpointer.process(pcm) + endpointer.flush()
    fed = sum(len(e.pcm) for e in events if isinstance(e, Feed))
    skipped = sum(e.nbytes for e in events if isinstance(e, Skip))
    assert fed + skipped == len(pcm)
    assert fed < len(speech) + SECOND  # ~speech + 0.3 s preroll + 0.3 s trailing silence
    first_feed = next(i for i, e in enumerate(events) if isinstance(e, Feed))
    onset = sum(e.nbytes for e in events[:first_feed] if isinstance(e, Skip)) / SECOND
    # the clip's first word starts 0.65 s in (webrtcvad and silero agree): the recognizer
    # gets the 0.3 s before it
    assert 5.0 + 0.65 - 0.33 <= onset <= 5.0 + 0.65 - 0.27


def test_ungated_feeds_everything(speech):
    endpointer = Endpointer(EndpointConfig(gate=False))
    pcm = silence(2.0) + speech + silence(2.0)
    events = endpointer.process(pcm) + endpointer.flush()
    assert sum(len(e.pcm) for e in events if isinstance(e, Feed)) == len(pcm)
    assert sum(isinstance(e, End) for e in events) == 1


def test_an_utterance_longer_than_the_cap_is_cut_at_the_next_short_pause(voiced):
    # words, short (0.15 s) pauses, words... never a pause as long as the silence time
    pcm = (voiced + silence(0.15)) * 3 + silence(1.0)
    config = EndpointConfig(silence_s=0.5, max_utterance_s=5.0)
    ends = run(Endpointer(config), pcm)
    assert ends[0][0] == "cap"
    second_pause_end = 2 * (len(voiced) / SECOND + 0.15)
    assert 5.0 <= ends[0][1] <= second_pause_end + 0.06  # in the first short pause after 5 s
    assert ends[-1][0] == "silence" and len(ends) == 2
    uncapped = run(Endpointer(EndpointConfig(silence_s=0.5, max_utterance_s=60.0)), pcm)
    assert [r for r, _ in uncapped] == ["silence"]


def test_speech_that_never_pauses_is_cut_at_the_hard_limit(voiced):
    pcm = voiced * 5  # 13.7 s of words
    config = EndpointConfig(silence_s=2.0, max_utterance_s=3.0, cap_pause_s=2.0, hard_extra_s=2.0)
    ends = run(Endpointer(config), pcm)
    assert ends and ends[0][0] == "cap"
    assert 5.0 <= ends[0][1] <= 5.0 + 0.4  # onset within the first frames, + 3 s + 2 s


def test_flush_closes_speech_without_any_trailing_silence(speech):
    endpointer = Endpointer()
    assert not any(isinstance(e, End) for e in endpointer.process(speech))
    assert endpointer.open
    assert endpointer.flush()[-1] == End("flush")
    assert not endpointer.open and endpointer.flush() == []


def heard_run(endpointer: Endpointer, parts: list[tuple[bytes, str]]) -> list[tuple[str, float]]:
    """`run` over each part in turn, then telling the endpointer the partial it gave."""
    ends, offset = [], 0.0
    for pcm, partial in parts:
        ends += [(reason, at + offset) for reason, at in run(endpointer, pcm)]
        endpointer.heard(partial)
        offset += len(pcm) / SECOND
    return ends


def paused_speech(speech: bytes, pause_s: float) -> list[tuple[bytes, str]]:
    """ko_test.wav with `pause_s` of silence after `피하면서` (2.46 s), each part with the
    partial Vosk shows after it."""
    cut = int(2.46 * SECOND) // 2 * 2
    return [
        (speech[:cut], "그 는 이리저리 피하면서"),
        (silence(pause_s), "그 는 이리저리 피하면서"),
        (speech[cut:], "그 는 이리저리 피하면서 길 한 옆으로 걸어갔 다"),
        (silence(1.0), "그 는 이리저리 피하면서 길 한 옆으로 걸어갔 다"),
    ]


def test_a_pause_after_an_unfinished_partial_waits_longer(speech):
    """0.45 s inside the sentence (the VAD hears ~0.33 s of it: it holds speech on for ~0.12 s):
    the fixed 0.25 s rule splits it, the adaptive one doesn't."""
    parts = paused_speech(speech, 0.45)
    assert len(heard_run(Endpointer(EndpointConfig()), parts)) == 2
    assert len(heard_run(Endpointer(EndpointConfig(), korean_finished), parts)) == 1
    long_pause = paused_speech(speech, 0.8)  # a real stop still ends the line
    assert len(heard_run(Endpointer(EndpointConfig(), korean_finished), long_pause)) == 2


def test_a_finished_partial_closes_after_the_short_silence(speech):
    parts = [(speech, "그 는 이리저리 피하면서 길 한 옆으로 걸어갔 다"), (silence(1.0), "")]
    fixed = heard_run(Endpointer(EndpointConfig()), parts)
    adaptive = heard_run(Endpointer(EndpointConfig(), korean_finished), parts)
    assert adaptive == fixed and len(fixed) == 1
    unfinished = [(speech, "그 는 이리저리 피하면서"), (silence(1.0), "")]
    [(_, later)] = heard_run(Endpointer(EndpointConfig(), korean_finished), unfinished)
    assert later >= fixed[0][1] + 0.15  # waits for unfinished_silence_s instead
    long_utterance = EndpointConfig(long_speech_s=1.0)  # a long line ends at the short silence
    assert heard_run(Endpointer(long_utterance, korean_finished), unfinished) == fixed


def test_settings_from_the_environment():
    config = endpoint_config_from_env(
        {
            "TRADETALK_ENDPOINT_SILENCE_S": "0.4",
            "TRADETALK_ENDPOINT_UNFINISHED_S": "0.6",
            "TRADETALK_UTTERANCE_MAX_S": "20",
        }
    )
    assert config is not None and config.silence_s == 0.4 and config.max_utterance_s == 20
    assert config.unfinished_silence_s == 0.6
    assert endpoint_config_from_env({"TRADETALK_ENDPOINT": "model"}) is None
    with pytest.raises(ValueError):
        endpoint_config_from_env({"TRADETALK_ENDPOINT_SILENCE_S": "0"})
    with pytest.raises(ValueError):
        endpoint_config_from_env({"TRADETALK_ENDPOINT": "psychic"})


# ---------------------------------------------------------------- with the recognizer


def recognized_ends(model, pcm: bytes, chunk: int) -> list[float]:
    """Stream seconds of each `End` for Korean (adaptive silence) with the real recognizer,
    `pcm` given to the driver `chunk` bytes at a time."""
    ends: list[float] = []
    driver = UtteranceDriver(
        Endpointer(EndpointConfig(), korean_finished),
        StreamingRecognizer(model),
        on_event=lambda event, at: ends.append(round(at, 2)) if isinstance(event, End) else None,
    )
    for offset in range(0, len(pcm), chunk):
        driver.process(pcm[offset : offset + chunk])
    return ends


def test_audio_taken_in_big_batches_ends_where_20ms_chunks_do(ko_model, speech):
    """A captions thread behind real time takes 250 ms of audio at once; the adaptive rule
    still decides on a partial of the audio before each pause (the driver feeds the
    recognizer between 90 ms steps), so the lines end where they do in real time, not at the
    longer unfinished-sentence silence the partial from before the batch would ask for."""
    pcm = silence(1.0) + (speech + silence(2.0)) * 3
    live = recognized_ends(ko_model, pcm, 640)
    assert len(live) == 3, live
    assert recognized_ends(ko_model, pcm, 8000) == live


async def captions_of(
    model,
    chunks,
    *,
    config=None,
    gap_s=0.5,
    wait_s=3.0,
    close=False,
    lang=None,
    pool=RECOGNIZERS,
    on_closing=None,
):
    """Feed `chunks` (bytes, or a float: sleep that long) in real time; collect finals."""
    loop = asyncio.get_running_loop()
    finals: list[tuple[float, SpeechResult]] = []

    def on_result(result: SpeechResult) -> None:
        if result.final:
            finals.append((time.monotonic(), result))

    captions = SpeakerCaptions(
        StreamingRecognizer(model, pool=pool),
        loop,
        on_result,
        endpoint=config or EndpointConfig(),
        gap_s=gap_s,
        lang=lang,
        on_closing=on_closing,
    )
    last = time.monotonic()
    for chunk in chunks:
        if isinstance(chunk, float):
            await asyncio.sleep(chunk)
            continue
        for offset in range(0, len(chunk), 640):  # 20 ms frames, paced like a live track
            captions.feed(chunk[offset : offset + 640])
            await asyncio.sleep(0.004)
        last = time.monotonic()
    if close:
        await asyncio.to_thread(captions.close)
        await asyncio.sleep(0.05)
    else:
        await asyncio.sleep(wait_s)
        await asyncio.to_thread(captions.close)
    return finals, last, captions


async def test_digital_silence_after_the_clip_gives_its_final(ko_model, speech, direct_text):
    finals, _, captions = await captions_of(ko_model, [speech + silence(2.0)])
    [(_, final)] = finals
    assert like_direct(final.text, direct_text), (final.text, direct_text)
    assert captions.closed_by == {"silence": 1}


async def test_a_closing_line_is_announced_with_its_last_partial_before_its_final(ko_model, speech):
    """When the endpointer closes a line, its latest partial is posted at once (the server
    translates it while the recognizer decodes the closing silence): before the final, with
    what the final says (a tolerance: live recognizer words)."""
    closing: list[tuple[float, str]] = []
    finals, _, _ = await captions_of(
        ko_model,
        [speech + silence(1.5), speech + silence(1.5)],
        lang="ko",
        on_closing=lambda text: closing.append((time.monotonic(), text)),
    )
    assert len(finals) == 2 and len(closing) == 2, (finals, closing)
    for (announced, text), (arrived, final) in zip(closing, finals, strict=True):
        assert announced <= arrived and cer(text, final.text) <= 0.2, (text, final.text)


async def test_audio_that_stops_arriving_gives_the_final(ko_model, speech, direct_text):
    """Speech that never pauses, then nothing (a muted track, a dropped network)."""
    finals, last, captions = await captions_of(ko_model, [speech], gap_s=0.5)
    [(arrived, final)] = finals
    assert like_direct(final.text, direct_text), (final.text, direct_text)
    assert captions.closed_by == {"gap": 1}
    assert arrived - last >= 0.45


async def test_flush_and_close_give_the_final(ko_model, speech, direct_text):
    loop = asyncio.get_running_loop()
    finals: list[SpeechResult] = []
    captions = SpeakerCaptions(
        StreamingRecognizer(ko_model, pool=RECOGNIZERS),
        loop,
        lambda r: r.final and finals.append(r),
        gap_s=30.0,
    )
    captions.feed(speech)
    captions.flush()  # the track ended
    for _ in range(200):  # decoding takes ~1 s on a quiet machine, longer on a busy one
        if finals:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # and no second final follows
    assert [like_direct(f.text, direct_text) for f in finals] == [True]
    captions.feed(speech)
    await asyncio.to_thread(captions.close)  # the speaker left
    await asyncio.sleep(0.05)
    assert len(finals) == 2 and captions.closed_by == {"flush": 2}


async def test_gated_results_keep_stream_times(ko_model, speech):
    finals, _, captions = await captions_of(
        ko_model, [silence(3.0) + speech + silence(3.0) + speech + silence(1.0)]
    )
    assert len(finals) == 2, [f.text for _, f in finals]
    first, second = finals[0][1], finals[1][1]
    assert 3.0 <= first.start < first.end <= 3.0 + 3.36 + 0.1
    assert 9.36 <= second.start < second.end <= 9.36 + 3.36 + 0.1
    assert captions.decoded_bytes < 0.7 * captions.fed_bytes  # the silence was not decoded


async def test_audio_dropped_when_recognition_falls_behind_keeps_stream_times(ko_model, speech):
    """A speaker whose recognizer is far behind (here: each clip arrives at once, the backlog
    holds 1 s) loses the oldest audio, half the backlog at a time; the lines from what was
    kept are stamped where that audio was in the stream, not shifted back by what was
    dropped (with a recognizer fresh or reused: a reused one's clock counts on)."""
    loop = asyncio.get_running_loop()
    finals: list[SpeechResult] = []
    captions = SpeakerCaptions(
        StreamingRecognizer(ko_model, pool=RECOGNIZERS),
        loop,
        lambda r: r.final and finals.append(r),
        max_backlog_s=1.0,
        endpoint=EndpointConfig(),
        gap_s=30.0,
    )
    period = len(speech) / SECOND + 3.0
    for _ in range(3):
        for part in (speech, silence(3.0)):
            for offset in range(0, len(part), 640):
                captions.feed(part[offset : offset + 640])
            for _ in range(300):
                if captions.backlog == 0:
                    break
                await asyncio.sleep(0.05)
    await asyncio.to_thread(captions.close)
    await asyncio.sleep(0.05)
    assert captions.dropped_bytes > 3 * SECOND, captions.dropped_bytes
    assert finals, "the audio kept was not recognized"
    for final in finals:  # each line lies inside one of the three clips, where it was said
        k = int(final.start // period)
        assert k * period <= final.start < final.end <= k * period + 3.36 + 0.1, (
            [(f.start, f.end, f.text) for f in finals],
            period,
        )


async def test_audio_kept_while_the_model_loads_loses_no_words(speech, direct_text, tmp_path):
    """12 s of a speaker's audio (the clip, then silence) arrive while their model loads: all of
    it is recognized once it has loaded (more 20-ms chunks than the recognizer's backlog holds
    must not push the first words out), and the line keeps where it was said."""
    from server.media_sessions.subtitles import SpeakerSubtitles
    from translation.speech_engines import open_recognizer

    finals, tasks = [], []

    def slow_open(lang, data_dir):
        time.sleep(0.5)  # a model that takes its time to load
        return open_recognizer(lang, data_dir)

    async def on_final(line) -> None:
        finals.append(line)

    async def on_partial(text, utterance) -> None:
        pass

    subtitles = SpeakerSubtitles(
        "ko",
        tmp_path,
        spawn=lambda c: tasks.append(asyncio.get_running_loop().create_task(c)),
        on_partial=on_partial,
        on_final=on_final,
        endpoint=EndpointConfig(),
        recognizers=slow_open,
    )
    starting = asyncio.get_running_loop().create_task(subtitles.start())
    audio = speech + silence(12.0 - len(speech) / SECOND)
    for offset in range(0, len(audio), 640):
        subtitles.feed(audio[offset : offset + 640])
    await starting
    captions = subtitles.captions
    for _ in range(300):
        if finals:
            break
        await asyncio.sleep(0.1)
    await subtitles.stop()
    assert captions is not None and captions.dropped_bytes == 0
    assert [like_direct(f.text, direct_text) for f in finals] == [True], finals
    said = finals[0].start - (subtitles.audio_offset or 0.0)
    assert 0.3 < said < 1.0, said  # the first word, 0.63 s into the clip


async def test_a_pause_inside_a_sentence_keeps_it_one_line(ko_model, ko_pcm, speech, direct_text):
    """0.45 s of the clip's own background after `그는` (1.32 s) and after `피하면서` (2.46 s):
    a Korean speaker's line stays whole, nothing dropped (one short sentence's CER moves by
    0.15 run to run on a loaded machine: the accuracy bound is the deterministic test below);
    the fixed 0.25 s rule (no language) splits it."""
    room = ko_pcm[:3200] * 4 + ko_pcm[:1600]  # its first 0.1 s (room noise), 0.45 s
    a, b = int(1.32 * SECOND) // 2 * 2, int(2.46 * SECOND) // 2 * 2
    paused = speech[:a] + room + speech[a:b] + room + speech[b:] + silence(1.5)
    finals, _, _ = await captions_of(ko_model, [paused], lang="ko", pool=None)
    text = " ".join(f.text for _, f in finals)
    assert len(finals) == 1, [f.text for _, f in finals]
    assert cer(text, KO_REFERENCE) <= cer(direct_text, KO_REFERENCE) + 0.25, text
    split, _, _ = await captions_of(ko_model, [paused], pool=None)
    assert len(split) > 1, [f.text for _, f in split]


#: bench/pauses.py's seed-11 layout (the one where the fixed 0.25 s rule loses accuracy: 1.17 x):
#: per variant, (word boundary s, pause s) of the clip's own background put in
SEED_11 = [
    [(2.79, 0.44), (3.18, 0.56)],
    [(1.32, 0.54)],
    [(0.96, 0.43), (1.32, 0.34)],
    [(0.75, 0.50), (1.38, 0.48), (2.46, 0.35)],
    [(3.18, 0.32)],
    [(1.38, 0.56)],
    [(0.75, 0.43), (1.32, 0.55), (2.79, 0.46)],
    [(0.75, 0.50), (1.53, 0.44), (2.79, 0.38)],
]


ROUNDS = 3


def test_paused_speech_is_as_accurate_as_a_direct_decode(ko_model, ko_pcm, tmp_path):
    """The server's endpointing + recognizer in process (20 ms chunks, no thread), as
    `bench/pauses.py`: CER within 1.05 x a direct decode of the same file, and fewer lines than
    the fixed rule makes of it. The Korean Vosk model's text varies from run to run on the
    same audio (measured in one process: direct CER 0.349-0.362, adaptive 0.309-0.375), so
    both sides are the mean of `ROUNDS` decodes, not one draw each."""
    from bench.pauses import background, filler, paused_clip, through_pipeline

    noise = background(ko_pcm)
    played = b"".join(
        paused_clip(ko_pcm, [c for c, _ in row], [p for _, p in row], noise) + filler(noise, 1.5)
        for row in SEED_11
    )
    target = tmp_path / "paused.wav"
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(played)
    expected = " ".join([KO_REFERENCE] * len(SEED_11))
    direct, paused = [], []
    for _ in range(ROUNDS):
        direct.append(cer(" ".join(r.text for r in transcribe_wav(target, ko_model)), expected))
        adaptive, _ = through_pipeline(ko_model, played, EndpointConfig(), "ko")
        paused.append(cer(" ".join(adaptive), expected))
    fixed, _ = through_pipeline(ko_model, played, EndpointConfig(), None)
    assert sum(paused) / ROUNDS <= 1.05 * sum(direct) / ROUNDS, (paused, direct, adaptive)
    assert len(adaptive) < len(fixed)
