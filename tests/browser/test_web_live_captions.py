"""Translated captions while the speaker talks, in two real browsers: a Korean speaker's fake
microphone plays a real recording; a listener whose page is in Spanish reads the open line in
Spanish (ko→en→es: the test Argos package, then Apertium) before it is final, its steady part
never shrinking, then the final in its place. Also prints the page-side timings: each caption
update's DOM time against the `subtitle` event that caused it."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.browser.test_web_call import RECORD_SUBTITLES, wait_remote_video

# Every change of the listener's caption area: the open line's steady and dimmed parts, and the
# finals over the video, with the page's clock.
RECORD_CAPTIONS = """() => {
  window.captionLog = [];
  const root = document.querySelector("#call-view .subtitles");
  const snap = () => {
    const open = root.querySelector(".subtitle.partial");
    window.captionLog.push({
      at: performance.now(),
      steady: open?.querySelector(".subtitle-committed")?.textContent ?? null,
      tentative: open?.querySelector(".subtitle-tentative")?.textContent ?? null,
      lang: open?.querySelector(".subtitle-text")?.getAttribute("lang") ?? null,
      finals: [...root.querySelectorAll(".subtitle.final .subtitle-text")]
        .map((n) => n.textContent),
    });
  };
  new MutationObserver(snap).observe(root, { subtree: true, childList: true, characterData: true });
}"""


def test_a_spanish_listener_reads_the_korean_line_translated_while_it_is_spoken(
    new_page, web_server, shot, korean_mic_browser, media_browser
) -> None:
    began = time.monotonic()
    listener = new_page(on=media_browser)
    speaker = new_page(on=korean_mic_browser)
    sign_in(listener, web_server, "Ana Compradora", "buyer", "es")
    speaker_id = sign_in(speaker, web_server, "김민수 Supplier", "supplier", "ko")
    listener.locator("#new-participants").fill(speaker_id)
    listener.get_by_role("button", name="Iniciar").click()
    speaker.locator("#inbox-list li.inbox-item a").click()
    listener.evaluate(RECORD_SUBTITLES)
    listener.get_by_role("button", name="Llamar", exact=True).click()
    expect(listener.locator("#call-view")).to_be_visible()
    listener.evaluate(RECORD_CAPTIONS)
    listener.get_by_role("button", name="Silenciar").click()  # its fake beep says nothing
    speaker.locator("#call-start").click()
    wait_remote_video(listener)
    expect(listener.locator("#call-subtitle-lang")).to_have_value("es")

    # The open line, in Spanish, before the final: steady part plus a dimmed tail.
    open_line = listener.locator("#call-view .subtitle.partial.translated")
    expect(open_line).to_be_visible(timeout=45000)
    expect(open_line.locator(".subtitle-text")).to_have_attribute("lang", "es")
    shot(listener, "listener-open-line-in-spanish")
    final = listener.locator("#call-view .subtitle.final[data-original-lang='ko']").first
    expect(final).to_be_visible(timeout=45000)
    shot(listener, "listener-final-in-place")
    korean = final.get_attribute("data-original") or ""
    spanish = final.locator(".subtitle-text").inner_text()
    events = listener.evaluate("() => window.subtitleEvents")
    log = listener.evaluate("() => window.captionLog")
    sent = next(e for e in events if e["final"] and e["text"] == korean)
    assert spanish == sent["translations"]["es"].strip(), (spanish, sent)
    translated = [e for e in events if not e["final"] and e["translations"].get("es")]
    assert translated and translated[0]["at"] < sent["at"], events

    # On the page: the steady part only grows until the final replaces the line.
    steady = ""
    shown = [entry for entry in log if entry["steady"] is not None and entry["lang"] == "es"]
    assert shown, log
    for entry in shown:
        assert entry["steady"].startswith(steady), (steady, entry)
        steady = entry["steady"]
    first_open = shown[0]["at"]
    final_shown = next(e["at"] for e in log if spanish in e["finals"])
    assert first_open < final_shown
    print(
        f"\nfirst translated open line: event {translated[0]['at']:.0f} ms, on screen "
        f"{first_open:.0f} ms; final: event {sent['at']:.0f} ms, on screen {final_shown:.0f} ms "
        f"(page clock); {len(translated)} translated open-line events; "
        f"{time.monotonic() - began:.1f} s in all"
    )
