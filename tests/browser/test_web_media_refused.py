"""Camera and microphone refused by the browser (Chromium with a camera, but denying the
permission prompt): a Japanese supplier who starts a call, and a Korean supplier who hosts a tour,
each read that they are blocked and where to allow them, in their own language — not that they
have no camera, nor a browser error in English; the tour is not started."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import PHONE, sign_in


@pytest.fixture(scope="module")
def refusing_browser(launch_browser: Callable[[Sequence[str]], Browser]) -> Browser:
    """A Chromium with a (fake) camera and microphone whose permission prompts are denied."""
    return launch_browser(["--use-fake-device-for-media-stream", "--deny-permission-prompts"])


def test_a_refused_camera_is_said_so_in_a_call_and_a_tour(
    new_page, web_server, shot, refusing_browser, media_browser
) -> None:
    buyer = new_page(on=media_browser)
    supplier = new_page(PHONE, on=refusing_browser)
    sign_in(buyer, web_server, "Luis Comprador", "buyer", "es")
    supplier_id = sign_in(supplier, web_server, "佐藤 サプライヤー", "supplier", "ja")
    buyer.locator("#new-participants").fill(supplier_id)
    buyer.locator("#new-submit").click()
    expect(buyer.locator("#conv-title")).to_have_text("佐藤 サプライヤー")
    supplier.locator("#inbox-list li.inbox-item a").click()
    supplier.locator("#call-start").click()
    expect(supplier.locator("#call-view .call-note")).to_have_text(
        "カメラとマイクがブロックされています：ブラウザのサイト設定で許可してください。"
        "他の人の映像と音声は視聴できます。"
    )
    # The buyer, whose browser allows them, joins and is told nothing of the kind.
    buyer.get_by_role("button", name="Unirse a la llamada").click()
    buyer.wait_for_function("() => tradetalk.call.active?.pc?.connectionState === 'connected'")
    expect(buyer.locator("#call-view .call-note")).to_be_hidden()
    shot(supplier, "call-refused-ja-phone")
    supplier.locator("#call-end").click()

    host = new_page(on=refusing_browser)
    sign_in(host, web_server, "박지훈 Factory", "supplier", "ko")
    host.locator("#tours-link").click()
    host.locator("#tour-title").fill("Line 5")
    host.locator("#tour-start").click()
    # Not started (nobody could see it), and the host is told why in Korean, on the form.
    expect(host.locator("#tour-host-error")).to_have_text(
        "카메라와 마이크가 차단되었습니다: 투어를 진행하려면 브라우저의 사이트 설정에서 허용하세요."
    )
    expect(host.locator("#tour-stage")).to_be_hidden()
    buyer.locator("#tours-link").click()
    expect(buyer.locator("#tour-none")).to_be_visible()
    shot(host, "tour-refused-ko-desktop")
    for page in (buyer, supplier, host):
        assert not page.errors, page.errors
