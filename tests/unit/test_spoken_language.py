"""Which language a Whisper final is decoded in: the speaker's, or English when Whisper's
language probabilities clearly say so (`translation.whisper_speech.spoken_in`)."""

from __future__ import annotations

from translation.whisper_speech import WhisperStreamingRecognizer, spoken_in


def test_the_speakers_language_stands_unless_english_is_likelier_and_likely() -> None:
    assert spoken_in({"zh": 1.0, "en": 0.0}, "zh", ("en",)) == "zh"
    assert spoken_in({"en": 0.97, "zh": 0.01}, "zh", ("en",)) == "en"
    # read digits in English, measured: en 0.52, zh 0.27
    assert spoken_in({"en": 0.52, "zh": 0.27}, "zh", ("en",)) == "en"
    # likelier but not likely: a mumble stays in the speaker's language
    assert spoken_in({"en": 0.3, "zh": 0.2, "ja": 0.25}, "zh", ("en",)) == "zh"
    # another language Whisper prefers is not an alternative (only English is)
    assert spoken_in({"fr": 0.9, "zh": 0.05}, "zh", ("en",)) == "zh"
    # our codes are mapped to Whisper's
    assert spoken_in({"zh": 0.9, "en": 0.05}, "zh-TW", ("en",)) == "zh-TW"
    assert spoken_in({"en": 0.9, "zh": 0.05}, "zh-TW", ("en",)) == "en"


def test_an_english_speaker_has_no_alternative() -> None:
    class Decoder:  # never called: construction only
        pass

    for lang, alternatives in (("en", ()), ("en-US", ()), ("vi", ("en",)), ("zh", ("en",))):
        recognizer = WhisperStreamingRecognizer(Decoder(), lang)  # type: ignore[arg-type]
        assert recognizer.or_in == alternatives
        recognizer.close()
