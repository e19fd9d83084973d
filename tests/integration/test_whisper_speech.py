"""The Whisper engine on real speech: the packaged weights (verified), live decoding through the
server's endpointing, partials by local agreement, Simplified Chinese. Real model, real audio."""

from __future__ import annotations

import itertools
import json
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.support.peers import SHARED
from translation import whisper_models
from translation.agreement import LocalAgreement, agreed_prefix, collapse_repeats, units
from translation.chinese_script import to_script
from translation.endpoint_driver import UtteranceDriver
from translation.endpointing import EndpointConfig, Endpointer
from translation.metrics import error_rate
from translation.speech_engines import (
    VOSK,
    WHISPER,
    endpoint_for,
    engine_for,
    open_recognizer,
    speech_languages,
)
from translation.speech_models import SpeechModelMissing
from translation.voice_presence import SpeechMeter
from translation.whisper_speech import (
    FIRST_INTERVAL_S,
    SpeechResult,
    WhisperDecoder,
    WhisperStreamingRecognizer,
    transcribe_whole,
)

SPEECH = SHARED / "testdata" / "speech"
MANIFEST = {f["file"]: f for f in json.loads((SPEECH / "manifest.json").read_text())["files"]}
TRADE_LANGS = ("zh", "en", "es", "ko", "ja", "de", "fr", "vi", "ar", "pt", "ru", "tr")
CLIPS = {
    "zh": "zh_aishell1_BAC009S0764W0121.wav",
    "en": "en_mr_quilter.wav",
    "es": "es_arenas_blanquecinas.wav",
}


def pcm_of(name: str) -> bytes:
    with wave.open(str(SPEECH / name)) as wav:
        return wav.readframes(wav.getnframes())


@pytest.fixture(scope="module")
def model():
    _, loaded = __import__("translation.speech_engines", fromlist=["x"]).load_engine(
        "zh", Path("/nonexistent")
    )
    return loaded


def live(
    lang: str,
    pcm: bytes,
    realtime: bool = False,
    recognizer: WhisperStreamingRecognizer | None = None,
) -> tuple[list[SpeechResult], WhisperStreamingRecognizer, list[str]]:
    """Audio through the server's endpointing into a Whisper recognizer (default: the
    server's), 20 ms at a time: the results, the (closed) recognizer and the endpointer's
    events by name."""
    engine = WHISPER
    if recognizer is None:
        engine, opened = open_recognizer(lang, Path("/nonexistent"))
        assert engine == WHISPER and isinstance(opened, WhisperStreamingRecognizer)
        recognizer = opened
    out: list[SpeechResult] = []
    events: list[str] = []
    driver = UtteranceDriver(
        Endpointer(endpoint_for(engine, EndpointConfig(), lang)),  # the server's settings
        recognizer,
        lambda result, _: out.append(result),
        lambda event, _: events.append(type(event).__name__),
    )
    began = time.monotonic()
    audio = pcm + b"\0" * 32000
    try:
        for offset in range(0, len(audio), 640):
            if realtime:
                time.sleep(max(0.0, began + offset / 32000 - time.monotonic()))
            driver.process(audio[offset : offset + 640])
    finally:
        recognizer.close()
    return out, recognizer, events


def run_live(lang: str, pcm: bytes, realtime: bool = False) -> list[SpeechResult]:
    """The results of `live`."""
    return live(lang, pcm, realtime)[0]


class RecordingDecoder(WhisperDecoder):
    """The server's decoder, noting each decode: (began, ended, beam, seconds of audio)."""

    def __init__(self, model) -> None:
        super().__init__(model)
        self.calls: list[tuple[float, float, int, float]] = []

    def decode(self, audio, lang, beam_size=None, **kwargs):  # type: ignore[no-untyped-def]
        began = time.monotonic()
        try:
            return super().decode(audio, lang, beam_size, **kwargs)
        finally:
            beam = beam_size or self.beam_size
            self.calls.append((began, time.monotonic(), beam, len(audio) / 16000))


class TimedRecognizer(WhisperStreamingRecognizer):
    """The server's recognizer, noting when each piece of audio (and each result) came."""

    def __init__(self, decoder: WhisperDecoder, lang: str) -> None:
        super().__init__(decoder, lang)
        self.fed_at: list[float] = []
        self.partial_at: list[float] = []

    def feed(self, pcm: bytes) -> list[SpeechResult]:
        self.fed_at.append(time.monotonic())
        results = super().feed(pcm)
        self.partial_at += [time.monotonic() for r in results if not r.final]
        return results


def test_packaged_weights_are_verified_and_a_wrong_digest_leaves_nothing(tmp_path, monkeypatch):
    folder = whisper_models.assemble_packaged()
    assert whisper_models.is_whisper_model_dir(folder)
    assert (folder / "model.bin").stat().st_size == 145_217_532
    target = tmp_path / "whisper-base"
    monkeypatch.setitem(whisper_models.PACKAGED_DIGESTS, "config.json", "0" * 64)
    with pytest.raises(whisper_models.WhisperModelInvalid, match=r"config\.json"):
        whisper_models.assemble_packaged(target)
    assert not target.exists() and not list(tmp_path.iterdir())


def test_a_deployers_own_model_in_the_data_dir_wins(tmp_path):
    own = whisper_models.whisper_models_dir(tmp_path)
    own.mkdir(parents=True)
    for name in whisper_models.MODEL_FILES:
        (own / name).symlink_to(whisper_models.assemble_packaged() / name)
    assert whisper_models.find_whisper_model(tmp_path) == own
    assert whisper_models.find_whisper_model(tmp_path / "other") != own


def test_every_common_trade_language_is_recognized_out_of_the_box(monkeypatch):
    languages = speech_languages(Path("/nonexistent"))
    assert {lang for lang in TRADE_LANGS if lang in languages} == set(TRADE_LANGS)
    assert languages["ko"] == VOSK  # chosen by measurement (docs/architecture.md)
    assert languages["zh"] == languages["en"] == WHISPER
    assert engine_for("zh-TW", Path("/nonexistent")) == WHISPER
    with pytest.raises(SpeechModelMissing):
        engine_for("xx", Path("/nonexistent"))
    monkeypatch.setenv("TRADETALK_SPEECH_ENGINES", "ko=whisper")
    assert engine_for("ko", Path("/nonexistent")) == WHISPER
    monkeypatch.setenv("TRADETALK_SPEECH_ENGINES", "ko=cloud")
    with pytest.raises(ValueError, match="TRADETALK_SPEECH_ENGINES"):
        speech_languages(Path("/nonexistent"))


@pytest.mark.parametrize("lang", sorted(CLIPS))
def test_live_finals_match_a_direct_whole_file_decode(lang, model):
    clip = CLIPS[lang]
    pcm = pcm_of(clip)
    direct = transcribe_whole(SPEECH / clip, lang, model)
    finals = [r for r in run_live(lang, pcm) if r.final]
    live = " ".join(r.text for r in finals)
    reference = MANIFEST[clip]["reference"]
    direct_error, live_error = (
        error_rate(direct, reference, lang),
        error_rate(live, reference, lang),
    )
    print(f"{lang}: direct {direct!r} ({direct_error:.3f}); live {live!r} ({live_error:.3f})")
    assert live_error <= max(1.1 * direct_error, direct_error + 0.1), (live, direct)
    assert all(0 <= r.start < r.end <= len(pcm) / 32000 + 1.0 for r in finals)


def test_mandarin_is_written_in_simplified_characters(model):
    live = " ".join(r.text for r in run_live("zh", pcm_of(CLIPS["zh"])) if r.final)
    assert live and to_script(live, "zh") == live
    assert "交易" in live and "現" not in live
    assert to_script("我認為這個價錢太貴了", "zh") == "我认为这个价钱太贵了"
    assert to_script("我认为这个价钱太贵了", "zh-TW") == "我認為這個價錢太貴了"
    assert to_script("price", "en") == "price"


def test_partials_come_while_speaking_and_only_grow(model):
    results = run_live("en", pcm_of("en_jfk_ask_not.wav"), realtime=True)
    partials = [r for r in results if not r.final]
    assert partials, results
    assert results.index(partials[0]) < next(i for i, r in enumerate(results) if r.final)
    # within an utterance a partial is never taken back: each extends the one before
    for before, after in itertools.pairwise(partials):
        if before.start == after.start:
            a, b = units(before.text, "en"), units(after.text, "en")
            assert agreed_prefix(a, b) == len(a), (before.text, after.text)


def test_local_agreement_commits_what_two_hypotheses_share():
    agreement = LocalAgreement("en")
    assert agreement.update("we can ship") is None  # nothing to agree with yet
    assert agreement.update("We can shop five") == "We can"
    assert agreement.update("we can ship five hundred") is None  # "ship" vs "shop": no growth
    assert agreement.update("we can ship five hundred pieces") == "we can ship five hundred"
    assert agreement.update("we could") is None  # a commitment is never taken back
    zh = LocalAgreement("zh")
    zh.update("甚至出现")
    assert zh.update("甚至出现交易") == "甚至出现"
    assert units("甚至 出现", "zh") == ["甚", "至", "出", "现"]


def test_decoder_loops_are_cut():
    looped = "las arenas son blanquecinas las arenas son blanquecinas las arenas son blanquecinas"
    assert collapse_repeats(looped) == "las arenas son blanquecinas"
    assert collapse_repeats("好的好的好的好的好的") == "好的"
    assert collapse_repeats("very very good") == "very very good"


def test_silence_gives_no_final_and_no_text(model):
    noise = (np.random.default_rng(1).normal(0, 30, 16000 * 2)).astype(np.int16).tobytes()
    assert [r for r in run_live("en", noise) if r.final] == []


def tone(seconds: float, freq: float, on_s: float, every_s: float, amplitude: float) -> np.ndarray:
    """A square wave of `freq` Hz sounding `on_s` of every `every_s` (float32, 16 kHz)."""
    t = np.arange(int(seconds * 16000)) / 16000
    square = amplitude * np.sign(np.sin(2 * np.pi * freq * t))
    return np.where(t % every_s < on_s, square, 0.0).astype(np.float32)


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes()


#: Chromium's fake microphone (--use-fake-device-for-media-stream): 20 ms of 400 Hz every 0.5 s
#: (media/audio/fake_audio_input_stream.cc); Whisper wrote "I'm sorry." / "I don't know." for it
BEEPS = tone(6.0, 400, 0.02, 0.5, 0.5)
NON_SPEECH = {
    "chromium beep": BEEPS,
    "1 kHz tone": np.concatenate([np.zeros(16000), tone(2.0, 1000, 2.0, 2.0, 0.3)]),
    "noise": np.random.default_rng(1).normal(0, 0.02, 16000 * 4).astype(np.float32),
}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_beep_a_tone_or_noise_give_no_line(lang, model):
    for name, samples in NON_SPEECH.items():
        results, recognizer, events = live(lang, pcm16(samples))
        assert "End" in events or name == "noise", (name, events)  # the endpointer opened one
        assert results == [], (name, results)  # no final, no partial
        assert recognizer.decodes == 0, name  # and no CPU spent on it


def test_speech_between_beeps_is_still_recognized(model):
    speech = np.frombuffer(pcm_of(CLIPS["en"]), np.int16).astype(np.float32) / 32768
    finals = [r for r in run_live("en", pcm16(np.concatenate([BEEPS, speech, BEEPS]))) if r.final]
    assert len(finals) == 1, finals
    assert error_rate(finals[0].text, MANIFEST[CLIPS["en"]]["reference"], "en") == 0, finals


def test_a_knock_after_the_last_word_does_not_void_the_early_final(model):
    # es_arenas_blanquecinas.wav ends on two knocks (8.09-8.66 s) that the WebRTC VAD calls
    # speech and Silero does not: the decode started at the pause before them stays the final
    knock = pcm_of(CLIPS["es"])[int(8.09 * 16000) * 2 :]
    speech = pcm_of(CLIPS["en"])  # its voice ends 0.44 s before the file does
    results, recognizer, events = live("en", speech + knock)
    finals = [r for r in results if r.final]
    assert events[-4:] == ["Pause", "Resume", "Pause", "End"], events  # the knock resumed it
    assert len(finals) == 1 and recognizer.speculative_hits == 1, finals
    assert finals[0].end < len(speech) / 32000, finals  # decoded up to the pause before it
    assert error_rate(finals[0].text, MANIFEST[CLIPS["en"]]["reference"], "en") == 0, finals


def test_the_speech_meter_hears_speech_not_beeps_fed_in_any_pieces():
    speech = np.frombuffer(pcm_of(CLIPS["zh"]), np.int16).astype(np.float32) / 32768
    whole, pieces, beeps = SpeechMeter(), SpeechMeter(), SpeechMeter()
    whole.feed(speech)
    for offset in range(0, len(speech), 320):
        pieces.feed(speech[offset : offset + 320])
    beeps.feed(BEEPS)
    assert whole.speech_s > 2.5 and abs(whole.speech_s - pieces.speech_s) <= 0.064
    assert beeps.speech_s < 0.1
    pieces.reset()
    assert pieces.speech_s == 0


def test_until_a_first_word_is_agreed_partial_decodes_follow_each_other_at_once(model):
    # the first partial needs two decodes that agree: each early decode starts as soon as the
    # one before it ended (at most FIRST_INTERVAL_S after its start), not after twice its time
    decoder = RecordingDecoder(model)
    recognizer = TimedRecognizer(decoder, "zh")
    results, _, _ = live("zh", pcm_of(CLIPS["zh"]), realtime=True, recognizer=recognizer)
    first = recognizer.partial_at[0]
    early = sorted(c for c in decoder.calls if c[2] == 1 and c[1] <= first)
    assert len(early) >= 2, early
    for (began, ended, _, _), (after, _, _, _) in itertools.pairwise(early):
        due = max(ended, began + FIRST_INTERVAL_S)
        idle = [t for t in recognizer.fed_at if due < t < after]
        # one feed may find the decode's future not yet done, one starts the next decode
        assert len(idle) <= 2, (len(idle), ended - began)
    first_text = next(r.text for r in results if not r.final)
    final = next(r.text for r in results if r.final)
    assert final.startswith(first_text), (first_text, final)
