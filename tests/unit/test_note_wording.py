"""The transcript exports word a missing translation in the language it is missing in, for every
language the interface offers."""

from __future__ import annotations

import re

from server.web.note_wording import WORDING, note_text
from tests.support.peers import REPO
from translation.errors import FAILED, NO_PAIR, translation_note


def offered() -> list[str]:
    source = (REPO / "web_client" / "js" / "languages.js").read_text(encoding="utf-8")
    return re.findall(r'\["([a-z]{2,3})", "', source)


def test_every_interface_language_has_its_own_wording() -> None:
    languages = offered()
    assert len(languages) >= 15 and "ar" in languages and "vi" in languages
    for lang in languages:
        assert lang in WORDING, lang
        if lang != "en":
            assert not set(WORDING[lang]) & set(WORDING["en"]), lang
        for template in WORDING[lang]:
            assert template.count("{pair}") == 1, (lang, template)


def test_a_note_reads_in_the_language_it_is_missing_in() -> None:
    arabic = note_text(translation_note(NO_PAIR, "vi", "ar"))
    assert arabic == "لم يُترجم (لا تتوفر على هذا الخادم ترجمة vi→ar)"
    vietnamese = note_text(translation_note(FAILED, "ar", "vi"))
    assert vietnamese == "chưa dịch (dịch ar→vi không thành công)"
    assert note_text(translation_note(NO_PAIR, "ko", "zh-TW")).startswith("未翻译")
    english = note_text(translation_note(NO_PAIR, "ko", "sw"))  # no wording of its own
    assert english == "not translated (no ko→sw translation on this server)"
