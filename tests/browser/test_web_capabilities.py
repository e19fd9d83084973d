"""The language pickers show what this server can do per language (GET /api/capabilities)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import sign_in


def option_text(page, select: str, code: str) -> str:
    return page.locator(f"{select} option[value='{code}']").inner_text()


def test_sign_in_picker_marks_speech_and_translation(new_page, web_server, shot) -> None:
    page = new_page()
    page.goto(web_server + "/")
    legend = page.locator("#signin-lang-caps-legend")
    expect(legend).to_have_text(re.compile(r"^🎙 speech is subtitled · ⇄N translated"))
    caps = page.evaluate("fetch('/api/capabilities').then(r => r.json())")
    # The session's engines: Apertium en<->es, Argos ko->en, en->ko, en->zh (one way only).
    assert option_text(page, "#signin-lang", "en").endswith("⇄2")  # es, ko
    assert option_text(page, "#signin-lang", "es").endswith("⇄2")  # en, ko (through English)
    assert "⇄" not in option_text(page, "#signin-lang", "zh")  # en->zh, but not zh->en
    assert "⇄" not in option_text(page, "#signin-lang", "vi")
    for code in ("ko", "zh", "en", "vi", "ar"):
        has_speech = "🎙" in option_text(page, "#signin-lang", code)
        assert has_speech == (code in caps["speech"]), code
    assert "🎙" in option_text(page, "#signin-lang", "ko")  # the Korean model is installed
    shot(page, "sign-in-picker-marks")

    sign_in(page, web_server, "Kim Min", "supplier", "ko")
    top = page.locator("#lang-select")
    expect(top).to_have_attribute("title", re.compile("🎙"))
    assert option_text(page, "#lang-select", "ko").startswith("한국어 (ko) 🎙")
    assert page.errors == []
