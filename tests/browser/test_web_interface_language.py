"""The interface speaks each user's language from the sign-in page on (Korean; Arabic, right to
left; German; French), and a missing translation is explained to the reader in their own
language — never with the operator's install command. Message times follow the interface
language, not the browser's locale, and follow a switch of it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from server.config import Settings
from tests.browser.conftest import PHONE, ThreadedServer, sign_in
from tests.support.attachment_files import pdf_document
from tests.support.peers import SECRET
from translation.translator import Translator


@pytest.fixture(scope="module")
def apertium_server(redis_server, tmp_path_factory, apertium_engine) -> Iterator[str]:
    """A dev server whose only engine is Apertium en<->es: nothing serves en<->ko."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("web-i18n"), secret=SECRET, dev=True)
    server = ThreadedServer(settings, redis_server.url, Translator([apertium_engine]))
    yield server.start()
    server.stop()


def expect_sign_in_page(page: Page, title: str, name: str, submit: str, lang: str, dir_: str):
    """The sign-in form reads `title` / `name` / `submit`, and the document is `lang`, `dir_`."""
    expect(page.locator("#signin-title")).to_have_text(title)
    expect(page.locator("#dev-signin label span").first).to_have_text(name)
    expect(page.locator("#signin-submit")).to_have_text(submit)
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("html")).to_have_attribute("dir", dir_)


def test_the_sign_in_page_switches_language_at_once_then_the_app_speaks_it(
    new_page, apertium_server, shot
) -> None:
    page = new_page()
    page.goto(apertium_server + "/")
    expect_sign_in_page(page, "Sign in", "Name", "Sign in", "en", "ltr")
    language = page.locator("#signin-lang")

    language.select_option("ko")
    expect_sign_in_page(page, "로그인", "이름", "로그인", "ko", "ltr")
    expect(page.locator("#signin-role option[value='supplier']")).to_have_text("공급업체")
    shot(page, "sign-in-korean")
    for code, title in (("de", "Anmelden"), ("fr", "Connexion"), ("ja", "サインイン")):
        language.select_option(code)
        expect(page.locator("#signin-title")).to_have_text(title)

    language.select_option("ar")
    expect_sign_in_page(page, "تسجيل الدخول", "الاسم", "تسجيل الدخول", "ar", "rtl")
    # Right to left: the form's labels start at the right edge.
    box = page.locator("#signin-title").bounding_box()
    main = page.locator("#signin-view").bounding_box()
    assert box and main and box["x"] + box["width"] > main["x"] + main["width"] - 40, (box, main)
    shot(page, "sign-in-arabic-rtl")
    page.locator("#signin-name").fill("ليلى")
    page.locator("#signin-submit").click()
    expect(page.locator("#inbox-title")).to_have_text("المحادثات")
    expect(page.locator("#sign-out")).to_have_text("تسجيل الخروج")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("#lang-select")).to_have_value("ar")
    shot(page, "app-arabic-rtl")
    # Signed out, the sign-in page still speaks the language this browser last used.
    page.locator("#sign-out").click()
    expect_sign_in_page(page, "تسجيل الدخول", "الاسم", "تسجيل الدخول", "ar", "rtl")
    expect(page.locator("#signin-lang")).to_have_value("ar")

    korean = new_page(PHONE)
    korean.goto(apertium_server + "/")
    korean.locator("#signin-lang").select_option("ko")
    expect(korean.locator("#signin-title")).to_have_text("로그인")
    korean.locator("#signin-name").fill("김민수")
    korean.locator("#signin-role").select_option("supplier")
    korean.locator("#signin-submit").click()
    expect(korean.locator("#inbox-title")).to_have_text("대화")
    expect(korean.locator("#me-name")).to_have_text("김민수 · 공급업체")
    expect(korean.locator("#tours-link")).to_have_text("투어")
    expect(korean.locator("html")).to_have_attribute("dir", "ltr")
    shot(korean, "app-korean-phone")
    assert not page.errors and not korean.errors, (page.errors, korean.errors)


def earlier_day(page: Page) -> str:
    """How the page writes a time three days ago (a day and a time) in its interface language."""
    return str(
        page.evaluate(
            """async () => {
              const { shortTime } = await import("/static/js/messages.js");
              return shortTime(new Date(Date.now() - 3 * 86400000).toISOString());
            }"""
        )
    )


def test_a_korean_reader_reads_why_a_message_is_untranslated_in_korean(
    new_page, apertium_server, shot
) -> None:
    buyer, supplier = new_page(), new_page(PHONE)
    sign_in(buyer, apertium_server, "Ann Buyer", "buyer", "en")
    supplier_id = sign_in(supplier, apertium_server, "김민수 Supplier", "supplier", "ko")
    buyer.locator("#new-participants").fill(supplier_id)
    buyer.locator("#new-submit").click()
    expect(buyer.locator("#conv-title")).to_have_text("김민수 Supplier")
    buyer.locator("#composer-text").fill("The bolts are ready.")
    with buyer.expect_file_chooser() as chooser:
        buyer.locator("#attach-button").click()
    chooser.value.set_files(
        files=[{"name": "drawing.pdf", "mimeType": "application/pdf", "buffer": pdf_document()}]
    )
    expect(buyer.locator("#attach-tray li.tray-item.ready")).to_have_count(1)
    buyer.locator("#composer-text").press("Enter")

    supplier.locator("#inbox-list li.inbox-item a").click()
    bubble = supplier.locator("#messages li.msg.theirs").first
    expect(bubble.locator(".msg-text")).to_have_text("The bolts are ready.")
    expect(bubble.locator(".msg-text")).to_have_attribute("lang", "en")
    expect(bubble.locator("li.attachment")).to_have_count(1)
    note = bubble.locator(".note.untranslated")
    expect(note).to_have_text("원문 — 이 서버에는 영어→한국어 번역이 없습니다")
    # The note says why the text is untranslated right under the text, above the drawing.
    expect(bubble.locator(".msg-text + .note.untranslated")).to_have_count(1)
    # Times in the Korean way on an English-locale browser: "오전 07:44", in the chat and the inbox.
    assert supplier.evaluate("navigator.language").startswith("en")
    korean_time = re.compile(r"(오전|오후) \d{2}:\d{2}$")
    expect(bubble.locator(".msg-meta time")).to_have_text(korean_time)
    expect(supplier.locator("#inbox-list .inbox-time").first).to_have_text(korean_time)
    expect(buyer.locator("#messages li.msg.mine .msg-meta time")).to_have_text(
        re.compile(r"\d{2}:\d{2} (AM|PM)$")
    )
    assert re.fullmatch(r"\d{1,2}월 \d{1,2}일 (오전|오후) \d{2}:\d{2}", earlier_day(supplier))
    shot(supplier, "korean-reader-note-phone")

    supplier.locator("#composer-text").fill("볼트가 준비되었습니다.")
    supplier.locator("#composer-text").press("Enter")
    reply = buyer.locator("#messages li.msg.theirs").first
    expect(reply.locator(".note.untranslated")).to_have_text(
        "Original — this server has no Korean→English translation"
    )
    # The reader's language is the note's language, at once.
    supplier.locator("#lang-select").select_option("es")
    expect(bubble.locator(".note.untranslated")).to_have_text(
        re.compile(r"^Original — (este servidor|sin traducir)")
    )
    # So are the times, the shown ones and the next message's: 24 hours, no 오전 / AM.
    spanish_time = re.compile(r"^(\d{1,2} \w+, )?\d{2}:\d{2}$")
    expect(bubble.locator(".msg-meta time")).to_have_text(spanish_time)
    buyer.locator("#composer-text").fill("Shipping on Monday.")
    buyer.locator("#composer-text").press("Enter")
    expect(supplier.locator("#messages li.msg.theirs")).to_have_count(2)
    latest = supplier.locator("#messages li.msg.theirs").last
    expect(latest.locator(".msg-text")).to_have_text(re.compile("lunes", re.I))  # Apertium en->es
    expect(latest.locator(".msg-meta time")).to_have_text(spanish_time)
    shot(supplier, "times-follow-the-switch-to-spanish")
    assert re.fullmatch(r"\d{1,2} \w+, \d{2}:\d{2}", earlier_day(supplier)), earlier_day(supplier)
    for page in (buyer, supplier):
        assert "install" not in page.locator("body").inner_text()
        assert not page.errors, page.errors


def test_every_note_code_is_worded_in_the_readers_language(new_page, apertium_server) -> None:
    """The page words each code of a note itself (and anything else as a plain "not
    translated"), with the languages named in the reader's language."""
    page = new_page()
    page.goto(apertium_server + "/")
    expect(page.locator("#signin-title")).to_be_visible()
    notes = page.evaluate(
        """async () => {
          const i18n = await import("/static/js/i18n.js");
          const { untranslatedText } = await import("/static/js/translation_notes.js");
          const out = {};
          for (const lang of ["ja", "de", "ar"]) {
            i18n.setUiLanguage(lang);
            out[lang] = [
              untranslatedText({ code: "no_pair", from: "ko", to: lang }, "ko", lang),
              untranslatedText({ code: "failed", from: "ko", to: lang }, "ko", lang),
              untranslatedText("no translation engine serves ko->x; install …", "ko", lang),
            ];
          }
          return out;
        }"""
    )
    assert notes["ja"] == [
        "原文 — このサーバーには韓国語→日本語の翻訳がありません",
        "原文 — 韓国語→日本語の翻訳に失敗しました",
        "原文 — 日本語に翻訳されていません",
    ], notes
    assert notes["de"] == [
        "Original – dieser Server hat keine Übersetzung Koreanisch→Deutsch",
        "Original – die Übersetzung Koreanisch→Deutsch ist fehlgeschlagen",
        "Original – nicht übersetzt (Deutsch)",
    ], notes
    assert notes["ar"][0] == "النص الأصلي — لا تتوفر على هذا الخادم ترجمة من الكورية إلى العربية"
    assert all("install" not in text for texts in notes.values() for text in texts), notes


def test_a_refused_download_is_worded_in_the_readers_language(new_page, apertium_server) -> None:
    """Every download (attachments, transcripts, quote PDFs) fetches through `fetchWithToken`,
    whose refusals carry the protocol's codes, and its note words them with `failureReason`:
    real refusals of this server, read by a Chinese supplier, never the server's English."""
    page = new_page()
    sign_in(page, apertium_server, "李伟", "supplier", "zh")
    reasons = page.evaluate(
        """async () => {
          const { fetchWithToken } = await import("/static/js/http_api.js");
          const { failureReason } = await import("/static/js/failures.js");
          const token = localStorage.getItem("tradetalk.token");
          const refusal = async (token, url) => {
            try {
              await fetchWithToken(token, url);
              return "fetched";
            } catch (error) {
              return [error.code, failureReason(error)];
            }
          };
          return [
            await refusal(token, "/api/attachments/a_0123456789abcdef"),
            await refusal("not-a-token", "/api/attachments/a_0123456789abcdef"),
            await refusal(token, "http://127.0.0.1:9/unreachable"),
          ];
        }"""
    )
    assert reasons == [
        ["not_found", "它已不存在"],
        ["unauthorized", "服务器拒绝了请求（unauthorized）"],
        ["disconnected", "与服务器的连接中断"],
    ], reasons
    assert not page.errors, page.errors
