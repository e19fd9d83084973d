"""A tour host (Korean interface) sees the viewers' questions where they look: beside the video,
above the share link, in view without scrolling, newest first, with a count, translated into
Korean where a pair exists and the original one click away; on a phone right under the video."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, sign_in

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def ask(page, text: str) -> None:
    page.locator("#tour-question").fill(text)
    page.locator("#tour-ask-send").click()


def test_tour_questions_show_prominently_newest_first_with_the_original_one_click_away(
    new_page, web_server, shot, media_browser
) -> None:
    host = new_page(on=media_browser)
    ann = new_page(on=media_browser)
    claire = new_page(on=media_browser)
    sign_in(host, web_server, "박지훈 Factory", "supplier", "ko")
    sign_in(ann, web_server, "Ann Buyer", "buyer", "en")
    sign_in(claire, web_server, "Claire Acheteuse", "buyer", "fr")
    host.locator("#tours-link").click()
    host.locator("#tour-title").fill("Line 3: CNC machining")
    host.locator("#tour-start").click()
    expect(host.locator("#tour-count")).to_have_text("0명 시청 중", timeout=20000)
    share = host.locator("#tour-share").input_value()
    panel = host.locator("#tour-qa")
    expect(panel).to_be_visible()
    expect(panel.locator("li.hint")).to_have_text("아직 질문이 없습니다.")
    expect(host.locator("#tour-question-count")).to_be_hidden()

    for page in (ann, claire):
        page.goto(share)
        expect(page.locator("#tour-question")).to_be_visible(timeout=20000)
    expect(host.locator("#tour-count")).to_have_text("2명 시청 중", timeout=20000)

    ask(ann, "What is the price?")
    first = panel.locator("li.tour-question").first
    expect(first.locator(".tour-question-text")).to_have_text("가격은 얼마입니까?")
    expect(host.locator("#tour-question-count")).to_have_text("1")
    ask(claire, "Quel est le délai de livraison ?")  # no engine translates fr->ko
    expect(host.locator("#tour-question-count")).to_have_text("2")
    expect(host.locator("#tour-question-count")).to_have_attribute("aria-label", "질문 2개")

    # Newest first: Claire's (the original, with why), then Ann's (translated).
    questions = panel.locator("li.tour-question")
    expect(questions).to_have_count(2)
    newest, older = questions.nth(0), questions.nth(1)
    expect(newest.locator(".subtitle-speaker")).to_have_text("Claire Acheteuse (fr)")
    expect(newest.locator(".tour-question-text")).to_have_text("Quel est le délai de livraison ?")
    expect(newest.locator(".subtitle-note")).to_have_text(
        "원문 — 이 서버에는 프랑스어→한국어 번역이 없습니다"
    )
    expect(newest.locator(".tour-question-toggle")).to_have_count(0)  # it is the original
    expect(older.locator(".subtitle-speaker")).to_have_text("Ann Buyer (en)")
    expect(older.locator(".tour-question-text")).to_have_text("가격은 얼마입니까?")
    expect(newest).to_have_class(re.compile(r"\bnew\b"))  # fresh ones stand out

    # Prominent: in view without scrolling, beside the video, above the share link.
    expect(panel).to_be_in_viewport()
    box, video, share_box = (
        host.locator(sel).bounding_box() for sel in ("#tour-qa", "#tour-video", ".tour-share")
    )
    assert box["y"] + box["height"] <= share_box["y"], (box, share_box)
    assert box["x"] >= video["x"] + video["width"] - 1, (box, video)  # to the video's right
    assert box["y"] < video["y"] + video["height"], (box, video)
    shot(host, "host-questions-desktop-ko")

    # The original, one click away (and back).
    original = older.locator(".tour-question-original")
    expect(original).to_be_hidden()
    older.get_by_role("button", name="원문 보기").click()
    expect(original).to_be_visible()
    expect(original).to_have_text("What is the price?")
    expect(original).to_have_attribute("lang", "en")
    expect(older.get_by_role("button", name="원문 숨기기")).to_have_attribute(
        "aria-expanded", "true"
    )
    shot(host, "host-question-original-shown-ko")
    older.get_by_role("button", name="원문 숨기기").click()
    expect(original).to_be_hidden()

    # A phone: right under the video, still in view.
    host.set_viewport_size(PHONE)
    expect(panel).to_be_in_viewport()
    box, video = host.locator("#tour-qa").bounding_box(), host.locator("#tour-video").bounding_box()
    assert box["y"] >= video["y"] + video["height"] - 1, (box, video)
    shot(host, "host-questions-phone-ko")
    host.set_viewport_size(DESKTOP)

    host.locator("#tour-end").click()
    expect(host.locator("#tour-note")).to_have_text("투어가 끝났습니다.", timeout=30000)
    expect(panel.locator("li.tour-question")).to_have_count(2)  # kept after the end
    shot(host, "host-questions-after-end-ko")
    assert HANGUL.search(older.locator(".tour-question-text").inner_text())
    for who, page in (("host", host), ("ann", ann), ("claire", claire)):
        assert not page.errors, (who, page.errors)
