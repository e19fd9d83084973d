"""A subtitled video call in two real browsers: a Korean speaker's fake microphone plays a real
recording; the English listener sees the recognized Korean line translated, then the transcript."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from server.config import Settings
from tests.browser.conftest import PHONE, ThreadedServer, open_conversation, sign_in
from tests.support.peers import SECRET
from translation.translator import Translator

# Every `subtitle` event the page receives, as the server sent it.
RECORD_SUBTITLES = """() => {
  window.subtitleEvents = [];
  tradetalk.connection.addEventListener("server", ({ detail: { event, data } }) => {
    if (event === "subtitle") window.subtitleEvents.push({ ...data, at: performance.now() });
  });
}"""

CALL_STATE = """() => { const a = tradetalk.call.active; return a && {
  signaling: a.pc.signalingState, ice: a.pc.iceConnectionState, conn: a.pc.connectionState,
  tiles: [...a.tiles.keys()], participants: a.call.participants }; }"""

REMOTE_VIDEO_PLAYS = """() => [...document.querySelectorAll('#call-view .tile.remote video')]
  .some((v) => v.videoWidth > 0 && v.readyState >= 2)"""


def wait_remote_video(page: Page, timeout_ms: int = 20000) -> None:
    """Until the page plays someone else's video (frames decoded, size known)."""
    try:
        page.wait_for_function(REMOTE_VIDEO_PLAYS, timeout=timeout_ms)
    except Exception:
        note = page.locator("#call-view .call-note").text_content()
        state = page.evaluate(CALL_STATE)
        raise AssertionError(f"no remote video; note {note!r}; {state}") from None


def test_subtitled_call_between_korean_and_english(
    new_page, web_server, shot, korean_mic_browser, media_browser
) -> None:
    began = time.monotonic()
    listener = new_page(on=media_browser)
    speaker = new_page(on=korean_mic_browser)
    for page, who in ((listener, "listener"), (speaker, "speaker")):
        page.on(
            "console",
            lambda m, who=who: m.type in ("error", "warning") and print(who, m.type, m.text),
        )
    sign_in(listener, web_server, "Ann Buyer", "buyer", "en")
    speaker_id = sign_in(speaker, web_server, "김민수 Supplier", "supplier", "ko")
    open_conversation(listener, speaker, speaker_id, "Sample call")
    listener.locator("#composer-text").fill("Is the sample ready?")
    listener.get_by_role("button", name="Send").click()
    expect(speaker.locator("#messages li.msg")).to_have_count(1)
    listener.evaluate(RECORD_SUBTITLES)

    # The listener starts the call; the speaker is offered to join it.
    listener.get_by_role("button", name="Call", exact=True).click()
    expect(listener.locator("#call-view")).to_be_visible()
    join = speaker.locator("#call-start")  # the Korean speaker's page reads "통화 참여"
    expect(join).to_have_text("통화 참여")
    join.click()

    wait_remote_video(listener)
    wait_remote_video(speaker)
    print(f"\nvideo both ways after {time.monotonic() - began:.1f} s")
    expect(listener.locator("#call-view .tile.remote .tile-name")).to_have_text("김민수 Supplier")
    expect(speaker.locator("#call-view .tile.remote .tile-name")).to_have_text("Ann Buyer")
    for page in (listener, speaker):
        expect(page.locator("#call-mute")).to_be_enabled()
        expect(page.locator("#call-subtitle-lang")).to_have_value(
            "en" if page is listener else "ko"
        )

    # The recognized Korean line, translated into English for the listener.
    final = listener.locator("#call-view .subtitle.final[data-original-lang='ko']").first
    expect(final).to_be_visible(timeout=45000)
    korean = final.get_attribute("data-original") or ""
    english = final.locator(".subtitle-text").inner_text()
    sent = listener.evaluate(
        "(text) => window.subtitleEvents.find((s) => s.final && s.text === text)", korean
    )
    assert re.search(r"[\uac00-\ud7a3]", korean), f"no Hangul recognized: {korean!r}"
    assert sent and sent["lang"] == "ko", sent
    assert english == sent["translations"]["en"].strip(), (english, sent)
    assert english and not re.search(r"[\uac00-\ud7a3]", english), english
    assert final.get_attribute("title") == korean
    expect(final.locator(".subtitle-text")).to_have_attribute("lang", "en")
    print(
        listener.evaluate("""() => window.subtitleEvents.map(
      (s) => `${(s.at / 1000).toFixed(1)} ${s.final ? "F" : "p"} ${s.text}`).join("\\n")""")
    )
    print(f"\nrecognized {korean!r} -> {english!r} after {time.monotonic() - began:.1f} s")
    shot(listener, "listener-call-subtitle")
    shot(speaker, "speaker-call")

    # Mute and camera toggles switch the speaker's tracks off and on.
    speaker.get_by_role("button", name="카메라 끄기").click()
    assert speaker.evaluate(
        "() => tradetalk.call.active.stream.getVideoTracks().every((t) => !t.enabled)"
    )
    expect(speaker.get_by_role("button", name="카메라 켜기")).to_have_attribute(
        "aria-pressed", "true"
    )
    speaker.get_by_role("button", name="카메라 켜기").click()

    # The listener switches subtitles to Spanish (`call.subtitles`), then back to English.
    for lang in ("es", "en"):
        listener.locator("#call-subtitle-lang").select_option(lang)
        listener.wait_for_function(
            """(lang) => tradetalk.call.active.call.participants
                 .some((m) => m.id === tradetalk.me.id && m.lang === lang)""",
            arg=lang,
        )

    listener.set_viewport_size(PHONE)
    shot(listener, "listener-call-phone")

    # Leaving: the listener's call view closes; the subtitles stay out of the chat.
    listener.get_by_role("button", name="Leave").click()
    expect(listener.locator("#call-view")).to_be_hidden()
    speaker.get_by_role("button", name="모두 종료").click()
    # call.end answers once every speaker's last line has been closed, translated and sent
    expect(speaker.locator("#call-view")).to_be_hidden(timeout=15_000)
    ending = time.monotonic()
    expect(listener.get_by_role("button", name="Call", exact=True)).to_be_visible(timeout=30_000)
    print(f"the listener saw the call end {time.monotonic() - ending:.1f} s after the click")

    # The conversation: the typed message and ONE entry for the call, in each reader's language.
    entry = listener.locator("#messages li.msg.call-entry")
    expect(entry).to_have_count(1)
    expect(listener.locator("#messages li.msg")).to_have_count(2)
    expect(listener.locator("#messages li.msg.transcript")).to_have_count(0)
    token = listener.evaluate("tradetalk.token")
    cid = listener.evaluate("tradetalk.conversation.id")
    kept = listener.request.get(
        f"{web_server}/api/conversations/{cid}/transcript?format=json",
        headers={"Authorization": f"Bearer {token}"},
    ).json()["lines"]
    said = [x for x in kept if x["speaker"]["name"] == "김민수 Supplier"]  # (and the listener's?)
    assert said and said[0]["text"] == korean, kept
    count = f"{len(kept)} lines" if len(kept) > 1 else "1 line"
    expect(entry).to_have_text(re.compile(rf"📞 Call, \d+ (s|min), {count} — transcript$"))
    speaker_entry = speaker.locator("#messages li.msg.call-entry")
    expect(speaker_entry).to_have_count(1)
    expect(speaker_entry).to_contain_text("📞 통화, ")
    expect(speaker_entry).to_contain_text(f"자막 {len(kept)}줄 — 통화 기록")
    # The inbox previews the typed message, not a subtitle line.
    expect(listener.locator("#inbox-list .inbox-preview")).to_have_text("You: Is the sample ready?")
    expect(speaker.locator("#inbox-list .inbox-preview")).to_contain_text("Ann Buyer: ")
    expect(speaker.locator("#inbox-list .inbox-preview")).not_to_contain_text(korean)
    shot(listener, "listener-call-entry-phone")

    # The entry opens its call's transcript.
    with listener.expect_download() as download_info:
        entry.get_by_role("button", name="transcript").click()
    download = download_info.value
    assert download.suggested_filename.startswith("transcript-k_"), download.suggested_filename
    txt = Path(download.path()).read_text(encoding="utf-8")
    assert f"김민수 Supplier (ko): {korean}" in txt and f"    en: {english}" in txt, txt
    assert txt.count("김민수 Supplier (ko): ") == len(said), txt

    with listener.expect_download() as download_info:
        listener.get_by_role("button", name="Download transcript").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".srt")
    srt = Path(download.path()).read_text(encoding="utf-8")
    assert re.search(r"^1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}$", srt, re.M), srt
    assert f"김민수 Supplier: {korean}" in srt, srt
    assert f"[en] {english}" in srt, srt

    listener.set_viewport_size({"width": 1280, "height": 800})
    shot(listener, "listener-transcript-desktop")
    assert not listener.errors and not speaker.errors, (listener.errors, speaker.errors)
    print(f"call test body took {time.monotonic() - began:.1f} s")


def test_server_offer_extension_ids_keep_the_negotiated_numbers(new_page, web_server) -> None:
    """aiortc renumbers header extensions in each offer; the client maps them back (Chromium
    refuses an id that changes meaning), and gives unknown extensions free ids."""
    page = new_page()
    page.goto(web_server + "/")
    result = page.evaluate(
        r"""async () => {
          const { alignExtmapIds, extmapIds } = await import("/static/js/sdp_extmap.js");
          const browser = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" +
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n" +
            "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n";
          const server = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\n" +
            "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n" +
            "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n" +
            "m=video 9 UDP/TLS/RTP/SAVPF 97\r\n" +
            "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n" +
            "a=extmap:3/sendrecv http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n";
          return alignExtmapIds(server, extmapIds(browser));
        }"""
    )
    lines = [line for line in result.split("\r\n") if line.startswith("a=extmap")]
    assert lines == [
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:2/sendrecv http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    ], result
    assert result.startswith("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\n")


@pytest.fixture(scope="module")
def apertium_only_server(redis_server, tmp_path_factory, apertium_engine) -> Iterator[str]:
    """A dev server whose only engine is Apertium en<->es: Korean speech is recognized (the
    Korean Vosk model is there) but no ko->en pair is installed."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("web-apertium"), secret=SECRET, dev=True)
    server = ThreadedServer(settings, redis_server.url, Translator([apertium_engine]))
    yield server.start()
    server.stop()


def test_untranslatable_call_subtitle_shows_the_original_and_why(
    new_page, apertium_only_server, shot, korean_mic_browser, media_browser
) -> None:
    url = apertium_only_server
    listener = new_page(on=media_browser)
    speaker = new_page(PHONE, on=korean_mic_browser)
    sign_in(listener, url, "Ann Buyer", "buyer", "en")
    speaker_id = sign_in(speaker, url, "김민수 Supplier", "supplier", "ko")
    listener.get_by_label("Start a conversation with (user id)").fill(speaker_id)
    listener.get_by_role("button", name="Start").click()
    expect(listener.locator("#conv-title")).to_have_text("김민수 Supplier")  # a name, not an id
    expect(listener.locator("#conv-presence")).to_contain_text("김민수 Supplier (ko)")
    speaker.locator("#inbox-list li.inbox-item a").click()
    listener.get_by_role("button", name="Call", exact=True).click()
    expect(listener.locator("#call-view")).to_be_visible()
    speaker.locator("#call-start").click()
    wait_remote_video(listener)

    final = listener.locator("#call-view .subtitles .subtitle.final").first
    expect(final).to_be_visible(timeout=45000)
    korean = final.get_attribute("data-original") or ""
    assert re.search(r"[\uac00-\ud7a3]", korean), korean
    # Not translated: the original is shown, and one short note in the reader's language says
    # why, under the video, for as long as it holds (none under each line).
    expect(final.locator(".subtitle-text")).to_have_text(korean)
    expect(final.locator(".subtitle-text")).to_have_attribute("lang", "ko")
    pair_note = listener.locator("#call-subtitle-note")
    expect(pair_note).to_have_text("Original — this server has no Korean→English translation")
    expect(listener.locator("#call-view .subtitle-note")).to_have_count(0)
    shot(listener, "listener-untranslated-subtitle")

    # Switching the subtitle language visibly takes effect, on the lines already shown too.
    listener.locator("#call-subtitle-lang").select_option("es")
    expect(listener.locator("#call-view .call-note")).to_have_text("Subtitles are now in Spanish.")
    expect(final.locator(".subtitle-note")).to_have_text(
        "Original — said before you chose this language"
    )
    expect(pair_note).to_be_hidden()
    shot(listener, "listener-switched-to-spanish")
    listener.locator("#call-subtitle-lang").select_option("en")
    expect(pair_note).to_contain_text("no Korean→English translation")
    expect(listener.locator("#call-view .subtitle-note")).to_have_count(0)

    # The speaker ends it; the listener is told who did.
    speaker.locator("#call-end").click()
    expect(listener.locator("#call-view .call-note")).to_have_text(
        "The call was ended by 김민수 Supplier."
    )
    shot(listener, "listener-told-who-ended")

    # The conversation has the call's one entry; every export carries the reason.
    expect(listener.locator("#messages li.msg.call-entry")).to_have_count(1)
    expect(listener.locator("#messages li.msg.transcript")).to_have_count(0)
    token = listener.evaluate("tradetalk.token")
    cid = listener.evaluate("tradetalk.conversation.id")
    why = "not translated (no ko→en translation on this server)"
    for fmt, marker in (("txt", f"    en: {why}"), ("srt", f"[en] {why}")):
        response = listener.request.get(
            f"{url}/api/conversations/{cid}/transcript?format={fmt}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.ok and marker in response.text(), response.text()
        assert "install" not in response.text(), response.text()
    body = listener.request.get(
        f"{url}/api/conversations/{cid}/transcript?format=json",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert body["lines"][0]["translation_error"]["en"] == {
        "code": "no_pair",
        "from": "ko",
        "to": "en",
    }, body
    listener.set_viewport_size(PHONE)
    shot(listener, "listener-transcript-note-phone")
    shot(speaker, "speaker-after-call-phone")
    assert not listener.errors and not speaker.errors, (listener.errors, speaker.errors)


def test_a_call_that_ends_before_our_join_is_started_again(new_page, web_server, media_browser):
    """The call a Chinese supplier joins ends between its `call.start` and its `call.join` (the
    buyer who started it left: the supplier's join frame is held until then, over the real
    socket). `call.ended` arrives first, then the join is refused `not_found`; the page starts
    the call again by itself and is in the new call, and the buyer is offered to join it — no
    "call ended" teardown, no "join failed" note."""
    buyer = new_page(on=media_browser)
    supplier = new_page(on=media_browser)
    held: list[str] = []
    holding = [False]
    upstream: list = []

    def route(ws) -> None:
        server = ws.connect_to_server()
        upstream.append(server)

        def to_server(message) -> None:
            if holding[0] and isinstance(message, str) and '"call.join"' in message:
                held.append(message)
                return
            server.send(message)

        ws.on_message(to_server)

    supplier.route_web_socket(re.compile(r"/socket\.io/"), route)
    sign_in(buyer, web_server, "Ann Buyer", "buyer", "en")
    supplier_id = sign_in(supplier, web_server, "王芳 Supplier", "supplier", "zh")
    open_conversation(buyer, supplier, supplier_id, "Brackets")

    buyer.get_by_role("button", name="Call", exact=True).click()
    expect(buyer.locator("#call-view")).to_be_visible()
    first = buyer.wait_for_function("() => tradetalk.call.active?.call?.id").json_value()
    join = supplier.locator("#call-start")
    expect(join).to_have_text("加入通话")
    holding[0] = True
    join.click()
    deadline = time.monotonic() + 20
    while not held and time.monotonic() < deadline:
        supplier.wait_for_timeout(100)
    assert held, "the supplier's page never sent call.join"

    buyer.get_by_role("button", name="Leave").click()  # the last member leaves: the call ends
    expect(buyer.locator("#call-start")).to_have_text("Call", timeout=10000)
    holding[0] = False
    upstream[-1].send(held[0])  # now the join arrives, for a call that is gone

    again = supplier.wait_for_function(
        "(first) => { const id = tradetalk.call.active?.call?.id;"
        " return id && id !== first && id; }",
        arg=first,
        timeout=20000,
    ).json_value()
    supplier.wait_for_function(
        "() => tradetalk.call.active?.pc?.connectionState === 'connected'", timeout=20000
    )
    note = supplier.locator("#call-view .call-note").text_content() or ""
    assert "无法加入" not in note, note  # "could not join the call"
    expect(buyer.locator("#call-start")).to_have_text("Join call", timeout=10000)
    assert buyer.evaluate("(id) => tradetalk.call.running.has(id)", again)
    assert not supplier.errors, supplier.errors
