"""A factory tour in real browsers: a Korean supplier hosts with a fake camera and a microphone
playing a real recording; three viewers (English, Spanish, French) join from the live list or a
share link and read the host in their own language, or see (one persistent note) that it is not
translated; a question reaches the host translated; the host ends the tour and downloads its
transcript."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import DESKTOP, PHONE, sign_in

HANGUL = re.compile(r"[\uac00-\ud7a3]")
VIDEO_PLAYS = """() => { const v = document.querySelector('#tour-video');
  return Boolean(v && v.videoWidth > 0 && v.readyState >= 2 && !v.muted); }"""
AUDIO_TRACK_LIVE = """() => { const s = document.querySelector('#tour-video').srcObject;
  return Boolean(s && s.getAudioTracks().some((t) => t.readyState === 'live')); }"""


def wait_watching(page: Page, who: str, timeout_ms: int = 30000) -> None:
    """Until the viewer's page plays the host's video, unmuted, with a live audio track."""
    try:
        page.wait_for_function(VIDEO_PLAYS, timeout=timeout_ms)
        page.wait_for_function(AUDIO_TRACK_LIVE, timeout=timeout_ms)
    except Exception:
        note = page.locator("#tour-note").text_content()
        raise AssertionError(f"{who} sees no tour video; note {note!r}") from None


def first_final(page: Page, timeout_ms: int = 60000):
    """The first final subtitle line of the host's Korean."""
    final = page.locator("#tour-stage .subtitle.final[data-original-lang='ko']").first
    expect(final).to_be_visible(timeout=timeout_ms)
    return final


def test_tour_hosted_watched_in_three_languages(
    new_page, web_server, shot, korean_mic_browser, media_browser
) -> None:
    began = time.monotonic()
    host = new_page(on=korean_mic_browser)
    ann = new_page(on=media_browser)
    luis = new_page(on=media_browser)
    claire = new_page(PHONE, on=media_browser)
    pages = {"host": host, "ann": ann, "luis": luis, "claire": claire}
    for who, page in pages.items():
        page.on(
            "console",
            lambda m, who=who: m.type in ("error", "warning") and print(who, m.type, m.text),
        )
    sign_in(host, web_server, "박지훈 Factory", "supplier", "ko")
    ann_id = sign_in(ann, web_server, "Ann Buyer", "buyer", "en")
    sign_in(luis, web_server, "Luis Comprador", "buyer", "es")
    sign_in(claire, web_server, "Claire Acheteuse", "buyer", "fr")

    # The viewers open the (empty) list first: the tour must appear there live.
    for page in (ann, luis):
        page.locator("#tours-link").click()
        expect(page.locator("#tour-none")).to_be_visible()
    expect(luis.locator("#tours-link")).to_have_text("Visitas")  # Spanish interface text
    expect(ann.locator("#tour-host-form")).to_be_hidden()  # buyers don't host

    # The host starts an open tour (Korean interface, Korean speech).
    host.locator("#tours-link").click()
    expect(host.locator("#tour-host-form h3")).to_have_text("투어 진행하기")
    host.locator("#tour-title").fill("Line 3: CNC machining")
    expect(host.locator("#tour-lang")).to_have_value("ko")
    host.locator("#tour-start").click()
    expect(host.locator("#tour-count")).to_have_text("0명 시청 중", timeout=20000)
    host.wait_for_function(
        "() => { const v = document.querySelector('#tour-video'); return v.videoWidth > 0; }"
    )
    share = host.locator("#tour-share").input_value()
    tid = tradetalk_tour_id(host)
    assert share.endswith(f"#tour={tid}"), share
    print(f"\ntour {tid} published after {time.monotonic() - began:.1f} s")

    # Ann and Luis join from the live list; Claire follows the share link.
    for page in (ann, luis):
        item = page.locator(f"#tour-list li[data-tour='{tid}']")
        expect(item).to_be_visible()
        expect(item.locator(".tour-item-title")).to_have_text("Line 3: CNC machining")
        item.locator(".tour-watch").click()
    claire.goto(share)
    for who in ("ann", "luis", "claire"):
        wait_watching(pages[who], who)
    expect(host.locator("#tour-count")).to_have_text("3명 시청 중")
    expect(ann.locator("#tour-stage-title")).to_have_text("Line 3: CNC machining")
    print(f"three viewers watching after {time.monotonic() - began:.1f} s")

    # Each reads the host in their language; French is not installed: the original + a note.
    ann_line, luis_line, claire_line = (first_final(p) for p in (ann, luis, claire))
    korean = ann_line.get_attribute("data-original") or ""
    assert HANGUL.search(korean), f"no Hangul recognized: {korean!r}"
    english = ann_line.locator(".subtitle-text").inner_text()
    spanish = luis_line.locator(".subtitle-text").inner_text()
    assert english and not HANGUL.search(english), english
    assert spanish and not HANGUL.search(spanish) and spanish != english, (spanish, english)
    expect(ann_line.locator(".subtitle-text")).to_have_attribute("lang", "en")
    expect(luis_line.locator(".subtitle-text")).to_have_attribute("lang", "es")
    assert ann_line.get_attribute("title") == korean  # the original on hover
    expect(ann_line.locator(".subtitle-note")).to_have_count(0)
    expect(claire_line.locator(".subtitle-text")).to_have_attribute("lang", "ko")
    assert HANGUL.search(claire_line.locator(".subtitle-text").inner_text())
    # Claire reads French: one short French note says so, once, and stays (no note under each
    # line), never the operator's install advice.
    note = "Pas de sous-titres en français ; vous voyez l’original."
    expect(claire.locator("#tour-subtitle-note")).to_have_text(note)
    expect(claire.locator("#tour-stage .subtitle-note")).to_have_count(0)
    expect(ann.locator("#tour-subtitle-note")).to_be_hidden()
    assert "install" not in claire.locator("body").inner_text()
    print(f"recognized {korean!r}: en {english!r}, es {spanish!r}, fr {note!r}")

    # Ann asks in English; the host reads it in Korean, the original on hover.
    ann.locator("#tour-question").fill("What is the price?")
    ann.locator("#tour-ask-send").click()
    expect(ann.locator("#tour-note")).to_have_text("Your question was sent.")
    question = host.locator("#tour-questions li.tour-question").first
    expect(question).to_be_visible()
    expect(question.locator(".tour-question-text")).to_have_text("가격은 얼마입니까?")
    expect(question).to_have_attribute("title", "What is the price?")
    expect(question.locator(".subtitle-speaker")).to_have_text("Ann Buyer (en)")
    # Claire asks in French, which nothing translates into Korean: the original and a note.
    claire.locator("#tour-question").fill("Quel est le délai de livraison ?")
    claire.locator("#tour-ask-send").click()
    expect(claire.locator("#tour-note")).to_have_text("Votre question a été envoyée.")
    expect(claire.locator("#tour-subtitle-note")).to_have_text(note)  # still there
    expect(claire.locator("#tour-stage .subtitle-note")).to_have_count(0)
    french = host.locator("#tour-questions li.tour-question").first  # newest first
    expect(french.locator(".tour-question-text")).to_have_text("Quel est le délai de livraison ?")
    expect(french.locator(".subtitle-note")).to_have_text(
        "원문 — 이 서버에는 프랑스어→한국어 번역이 없습니다"
    )
    assert "install" not in host.locator("body").inner_text()

    shot(host, "host-desktop")
    shot(ann, "viewer-en-desktop")
    shot(luis, "viewer-es-desktop")
    shot(claire, "viewer-fr-phone")
    host.set_viewport_size(PHONE)
    shot(host, "host-phone")
    host.set_viewport_size(DESKTOP)

    # The host ends it: everyone sees that; the list empties; the transcript downloads.
    host.locator("#tour-end").click()
    ended_at = time.monotonic()
    # The server lets the recognizer finish the last words (translated for all) before it ends.
    expect(ann.locator("#tour-note")).to_have_text("The tour has ended.", timeout=30000)
    print(f"viewers saw the end {time.monotonic() - ended_at:.1f} s after the click")
    expect(luis.locator("#tour-note")).to_have_text("La visita ha terminado.")
    expect(claire.locator("#tour-note")).to_have_text("La visite est terminée.")
    expect(claire.locator("#tour-subtitle-note")).to_be_hidden()
    expect(ann.locator("#tour-none")).to_be_visible()
    expect(ann.locator(f"#tour-list li[data-tour='{tid}']")).to_have_count(0)
    expect(host.locator("#tour-note")).to_have_text("투어가 끝났습니다.")
    expect(host.locator("#tour-back")).to_be_visible()
    expect(host.locator("#tour-host-form")).to_be_visible()  # ready for the next tour
    with host.expect_download() as info:
        host.locator("#tour-download-txt").click()
    download = info.value
    assert download.suggested_filename == f"tour-{tid}.txt"
    text = Path(download.path()).read_text(encoding="utf-8")
    assert f"박지훈 Factory (ko): {korean}" in text, text
    assert f"    en: {english}" in text, text
    assert f"    es: {spanish}" in text, text
    assert "    fr: non traduit (pas de traduction ko→fr sur ce serveur)\n" in text, text
    assert "Ann Buyer (en): What is the price?" in text and "가격은 얼마입니까?" in text, text
    why = re.escape("(번역되지 않음 (이 서버에는 fr→ko 번역이 없습니다))")  # for the Korean host
    assert re.search(rf"Claire Acheteuse \(fr\): .+\n    {why}$", text, re.M), text
    assert "install" not in text, text
    with ann.expect_download() as info:
        ann.locator("#tour-download-srt").click()
    srt = Path(info.value.path()).read_text(encoding="utf-8")
    assert f"[en] {english}" in srt, srt
    assert "[fr] non traduit (pas de traduction ko→fr sur ce serveur)" in srt, srt

    shot(host, "host-ended-desktop")
    shot(claire, "viewer-fr-ended-phone")
    ann.set_viewport_size(PHONE)
    shot(ann, "viewer-en-ended-phone")
    for who, page in pages.items():
        assert not page.errors, (who, page.errors)
    assert ann_id
    print(f"tour test body took {time.monotonic() - began:.1f} s")


def tradetalk_tour_id(page: Page) -> str:
    """The id of the tour the page hosts."""
    return page.evaluate("() => tradetalk.tour.active.tour.id")


def test_invite_only_tour_is_listed_for_the_invited_only(new_page, web_server, media_browser):
    host = new_page(on=media_browser)
    ann = new_page(on=media_browser)
    bob = new_page(PHONE, on=media_browser)
    sign_in(host, web_server, "Mei Supplier", "supplier", "zh")
    ann_id = sign_in(ann, web_server, "Ann Invited", "buyer", "en")
    sign_in(bob, web_server, "Bob Outsider", "buyer", "en")
    for page in (ann, bob):
        page.locator("#tours-link").click()
    host.locator("#tours-link").click()
    expect(host.locator("#tour-host-form h3")).to_have_text("主持参观")  # Chinese interface
    host.locator("#tour-title").fill("Private: packing line")
    host.locator("#tour-access").select_option("invite")
    host.locator("#tour-start").click()
    expect(host.locator("#tour-host-error")).to_have_text("请至少填写一个要邀请的用户 ID。")
    host.locator("#tour-invite").fill(f" {ann_id}, {ann_id} ")
    host.locator("#tour-start").click()
    expect(host.locator("#tour-count")).to_have_text("0 人观看", timeout=20000)
    tid = tradetalk_tour_id(host)
    assert host.evaluate("() => tradetalk.tour.active.tour.invite") == [ann_id]

    item = ann.locator(f"#tour-list li[data-tour='{tid}']")
    expect(item.locator(".tour-badge")).to_have_text("invite only")
    meta = "by Mei Supplier · speaks Chinese · 0 watching"  # the language named, in English
    expect(item.locator(".tour-item-meta")).to_have_text(meta)
    expect(bob.locator("#tour-none")).to_be_visible()
    expect(bob.locator("#tour-list li")).to_have_count(0)
    # The share link does not let the uninvited in: they are told why.
    bob.goto(host.locator("#tour-share").input_value())
    expect(bob.locator("#tour-note")).to_have_text("Could not open the tour: invite only")
    expect(bob.locator("#tour-download-txt")).to_be_hidden()  # nothing of it to download
    item.locator(".tour-watch").click()
    expect(host.locator("#tour-count")).to_have_text("1 人观看", timeout=20000)
    expect(item).to_be_hidden()  # the list gives way to the tour being watched
    ann.locator("#tour-leave").click()
    expect(host.locator("#tour-count")).to_have_text("0 人观看")
    expect(ann.locator(".tour-item-meta")).to_have_text(meta)
    host.locator("#tour-end").click()
    expect(ann.locator("#tour-list li")).to_have_count(0)
    for who, page in (("host", host), ("ann", ann), ("bob", bob)):
        assert not page.errors, (who, page.errors)


def test_a_link_to_a_tour_that_is_over_says_so_in_the_readers_language(
    new_page, web_server, shot
) -> None:
    """A Japanese buyer opening a share link whose tour is over reads why in Japanese (not the
    server's English, not the raw tour id), and a reload shows the tour list instead of trying
    that tour again."""
    page = new_page()
    sign_in(page, web_server, "山田太郎", "buyer", "ja")
    page.goto(web_server + "/#tour=t_0123456789abcdef")
    note = page.locator("#tour-note")
    expect(note).to_have_text("ツアーを開けませんでした：もう存在しません")
    expect(page.locator("#tour-stage-title")).not_to_contain_text("t_0123456789abcdef")
    page.wait_for_function("location.hash === '#/tours'")
    shot(page, "a-tour-link-that-is-over")
    page.reload()
    expect(page.locator("#my-id")).to_have_text(re.compile(r"\S+"))
    expect(page.get_by_text("ツアーを開けませんでした")).to_have_count(0)
    assert page.evaluate("location.hash") == "#/tours"
