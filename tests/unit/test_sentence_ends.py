"""Which partials look like finished sentences (the endpointer's adaptive silence)."""

from __future__ import annotations

from translation.sentence_ends import finished_rule, korean_finished


def test_korean_sentence_final_endings_finish_a_sentence():
    # Vosk's Korean model splits the verb and its ending: `걸어갔 다`
    assert korean_finished("그 는 이리저리 피하면서 길 한 옆으로 걸어갔 다")
    assert korean_finished("가격 이 얼마 예요")
    assert korean_finished("언제 보내 주실 수 있습니까")


def test_korean_particles_and_connectives_do_not():
    assert korean_finished("그 는") is False
    assert korean_finished("그 는 디비전 이 피 하면서") is False
    assert korean_finished("길 한 옆으로") is False
    assert korean_finished("") is None


def test_only_languages_with_a_rule_get_one():
    assert finished_rule("ko") is korean_finished
    assert finished_rule("ko-KR") is korean_finished
    assert finished_rule("en") is None
    assert finished_rule(None) is None
