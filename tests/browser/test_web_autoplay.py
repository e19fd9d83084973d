"""Received media under Chromium's real autoplay policy (no --autoplay-policy flag): a tour
opened from its share link in a new tab, and a call page reloaded mid-call, have had no click,
so the browser refuses sound. The video must play anyway (muted) with a "Tap for sound" control
in the reader's language, and a click on it must bring the sound. A reload mid-call also joins
the call again by itself, and the inbox's "calling" mark goes once we are in the call.

Nothing here reads the pages through Playwright's evaluate/expect before the check: those run
with a user gesture (see `quiet_eval` in conftest.py)."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.browser.conftest import quiet_eval, sign_in, wait_quietly

TOUR_VIDEO = """(() => { const v = document.querySelector('#tour-video');
  const b = document.querySelector('#tour-sound');
  if (!v || v.paused || v.readyState < 2 || !v.videoWidth) return null;
  return { time: v.currentTime, muted: v.muted, button: b && !b.hidden ? b.textContent : null,
           activated: navigator.userActivation.hasBeenActive }; })()"""

CALL_VIDEO = """(() => { const v = document.querySelector('#call-view .tile.remote video');
  const b = document.querySelector('#call-sound');
  if (!v || v.paused || v.readyState < 2 || !v.videoWidth) return null;
  return { time: v.currentTime, muted: v.muted, button: b && !b.hidden ? b.textContent : null,
           activated: navigator.userActivation.hasBeenActive,
           banner: !document.querySelector('#call-banner').hidden,
           calling: document.querySelectorAll('#inbox-list .inbox-calling').length }; })()"""

# The members of the speaker's call (Ann sends no media, so she has no tile there).
MEMBERS = "() => (tradetalk.call.active?.call.participants || []).map((m) => m.name).sort().join()"


def test_a_tour_share_link_opened_without_a_click_plays_muted_then_with_sound(
    new_page, web_server, shot, korean_mic_browser, browser
) -> None:
    host = new_page(on=korean_mic_browser)
    sign_in(host, web_server, "Mei Supplier", "supplier", "zh")
    host.locator("#tours-link").click()
    host.locator("#tour-title").fill("Line 2: stamping")
    host.locator("#tour-start").click()
    expect(host.locator("#tour-count")).to_have_text("0 人观看", timeout=20000)
    share = host.locator("#tour-share").input_value()

    # A Korean buyer signs in, then opens the share link in a new tab: no click in that tab.
    signin = new_page(on=browser)
    sign_in(signin, web_server, "Jun Viewer", "buyer", "ko")
    viewer = signin.context.new_page()
    errors: list[str] = []
    viewer.on("pageerror", lambda exc: errors.append(str(exc)))
    signin.close()
    viewer.goto(share)

    playing = wait_quietly(viewer, TOUR_VIDEO, 30, "the tour video to play")
    assert playing["activated"] is False, playing  # the browser's real policy applied
    assert playing["muted"] is True, playing  # sound was refused: it plays muted...
    assert playing["button"] == "🔊 눌러서 소리 켜기", playing  # ...and asks for a tap (Korean)
    time.sleep(1.5)
    later = quiet_eval(viewer, TOUR_VIDEO)
    assert later and later["time"] > playing["time"] + 0.5, (playing, later)  # not frozen
    shot(viewer, "viewer-share-link-muted-ko")

    viewer.locator("#tour-sound").click()
    viewer.wait_for_function(
        """() => { const v = document.querySelector('#tour-video');
          return !v.muted && !v.paused && v.srcObject.getAudioTracks().length > 0; }"""
    )
    expect(viewer.locator("#tour-sound")).to_be_hidden()
    shot(viewer, "viewer-share-link-with-sound-ko")
    expect(host.locator("#tour-count")).to_have_text("1 人观看")
    host.locator("#tour-end").click()
    expect(viewer.locator("#tour-note")).to_have_text("투어가 끝났습니다.", timeout=30000)
    assert not errors and not host.errors, (errors, host.errors)


def test_a_call_page_reloaded_mid_call_joins_again_by_itself_and_asks_for_sound(
    new_page, web_server, shot, korean_mic_browser, browser
) -> None:
    """Ann has no camera or microphone (nothing captures, so no autoplay exemption either)."""
    speaker = new_page(on=korean_mic_browser)
    ann = new_page(on=browser)
    speaker_id = sign_in(speaker, web_server, "김민수 Supplier", "supplier", "ko")
    sign_in(ann, web_server, "Ann Buyer", "buyer", "zh")
    ann.locator("#new-participants").fill(speaker_id)
    ann.locator("#new-submit").click()
    expect(ann.locator("#conv-title")).to_have_text("김민수 Supplier")
    speaker.locator("#inbox-list li.inbox-item a").click()
    expect(speaker.locator("#conv-title")).to_have_text("Ann Buyer")

    # The speaker calls: Ann's inbox marks the conversation "calling"; the caller's does not.
    speaker.locator("#call-start").click()
    ann_mark = ann.locator("#inbox-list li.inbox-item .inbox-calling")
    expect(ann_mark).to_have_text("📞 来电中")
    expect(speaker.locator("#call-view")).to_be_visible()
    expect(speaker.locator("#inbox-list .inbox-calling")).to_have_count(0)
    shot(ann, "ann-called-zh")

    # Ann joins (a click: sound is allowed); the mark goes, on both sides.
    ann.locator("#call-start").click()
    expect(ann.locator("#call-view .tile.remote .tile-name")).to_have_text(
        "김민수 Supplier", timeout=20000
    )
    expect(ann_mark).to_have_count(0)
    expect(speaker.locator("#inbox-list .inbox-calling")).to_have_count(0)
    speaker.wait_for_function(f"() => ({MEMBERS})() === 'Ann Buyer,김민수 Supplier'")

    # Ann reloads: the page joins the call again by itself; the browser refuses sound now.
    ann.reload()
    playing = wait_quietly(ann, CALL_VIDEO, 40, "the call to come back and play")
    assert playing["activated"] is False, playing
    assert playing["muted"] is True and playing["button"] == "🔊 点按开启声音", playing
    assert playing["banner"] is False and playing["calling"] == 0, playing  # no ringing
    time.sleep(1.5)
    later = quiet_eval(ann, CALL_VIDEO)
    assert later and later["time"] > playing["time"] + 0.5, (playing, later)
    shot(ann, "ann-rejoined-after-reload-muted-zh")

    ann.locator("#call-sound").click()
    ann.wait_for_function(
        """() => { const v = document.querySelector('#call-view .tile.remote video');
          return v && !v.muted && !v.paused; }"""
    )
    expect(ann.locator("#call-sound")).to_be_hidden()
    speaker.wait_for_function(f"() => ({MEMBERS})() === 'Ann Buyer,김민수 Supplier'")
    shot(ann, "ann-rejoined-with-sound-zh")

    # The speaker ends it: Ann's view says so, no mark stays, and a reload joins nothing.
    speaker.locator("#call-end").click()
    # Ending finishes and stores the last spoken line first: give a loaded machine time.
    expect(ann.locator("#call-view .call-note")).to_have_text(
        "김민수 Supplier 结束了通话。", timeout=30000
    )
    expect(ann_mark).to_have_count(0)
    ann.reload()
    expect(ann.locator("#call-start")).to_have_text("通话")
    expect(ann.locator("#call-view")).to_be_hidden()
    assert ann.evaluate("sessionStorage.getItem('tradetalk.call')") is None
    assert not ann.errors and not speaker.errors, (ann.errors, speaker.errors)
