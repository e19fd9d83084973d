"""When a Whisper speaker's next partial decode may start (pure rule, no model)."""

from translation.whisper_speech import FIRST_INTERVAL_S, partial_due


def test_until_a_word_is_agreed_partial_decodes_run_back_to_back():
    # a 0.4 s decode started at t=10: the next may start when it ends, not 0.4 s later
    assert partial_due(10.0, 0.4, agreed=False) == 10.4
    assert partial_due(10.0, 0.1, agreed=False) == 10.0 + FIRST_INTERVAL_S  # never closer


def test_after_the_first_agreement_a_speaker_is_at_most_half_busy():
    assert partial_due(10.0, 0.4, agreed=True, interval_s=0.5) == 10.8
    assert partial_due(10.0, 0.1, agreed=True, interval_s=0.5) == 10.5
