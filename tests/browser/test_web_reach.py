"""Reaching each other in real browsers: the dev identity survives closing the browser, invite
links open a conversation, unknown ids are refused, an incoming call rings in another
conversation (also after a reload), and a glossary set in the page changes the next message's
translation."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import Page, Playwright, expect

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    sign_in,
)


def start_with(page: Page, user_id: str) -> None:
    """Start a conversation with `user_id` from the inbox form."""
    page.locator("#new-participants").fill(user_id)
    page.locator("#new-submit").click()


def test_dev_identity_survives_closing_the_browser(
    playwright_driver: Playwright, web_server, tmp_path, shot
) -> None:
    profile = tmp_path / "profile"

    def open_browser():
        context = playwright_driver.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, viewport=PHONE
        )
        return context, context.pages[0] if context.pages else context.new_page()

    context, page = open_browser()
    user_id = sign_in(page, web_server, "Lena Käufer", "buyer", "en")
    context.close()  # closing the browser (not only the tab)

    context, page = open_browser()
    page.goto(web_server + "/")
    expect(page.locator("#my-id")).to_have_text(user_id)  # still signed in, no sign-in form
    expect(page.locator("#signin-view")).to_be_hidden()
    shot(page, "reopened-still-signed-in-phone")
    page.locator("#sign-out").click()
    expect(page.locator("#signin-view")).to_be_visible()
    # Signing in again with the same name on this browser is the same user.
    assert sign_in(page, web_server, "Lena Käufer", "buyer", "en") == user_id
    page.locator("#sign-out").click()
    other = sign_in(page, web_server, "Someone Else", "buyer", "en")
    assert other != user_id
    context.close()


def test_invite_link_opens_a_conversation_and_unknown_ids_are_refused(
    new_page, web_server, shot
) -> None:
    owner = new_page()
    owner_id = sign_in(owner, web_server, "Olga Owner", "supplier", "es")
    owner.context.grant_permissions(["clipboard-read", "clipboard-write"])
    owner.locator("#copy-invite").click()
    note = owner.locator("#invite-copied")
    expect(note).to_contain_text(f"#invite={owner_id}")
    link = re.search(r"(http\S+#invite=\S+)", note.inner_text()).group(1)
    assert owner.evaluate("navigator.clipboard.readText()") == link
    shot(owner, "owner-copied-invite")

    guest = new_page(PHONE)
    guest.goto(link)  # not signed in yet: the invite waits for the sign-in
    expect(guest.locator("#signin-error")).to_have_text(
        "Sign in to open the conversation you were invited to."
    )
    shot(guest, "guest-invited-sign-in-phone")
    sign_in(guest, web_server, "Gus Guest", "buyer", "en")
    expect(guest).to_have_url(re.compile(r"#/c/c_[0-9a-f]{16}$"))
    expect(guest.locator("#conv-title")).to_have_text("Olga Owner")
    expect(guest.locator("#conv-presence")).to_contain_text("Olga Owner (es)")
    entry = owner.locator("#inbox-list li.inbox-item")
    expect(entry.locator(".inbox-title")).to_have_text("Gus Guest")
    expect(entry.locator(".inbox-lang")).to_have_text("en")  # the other side's language
    shot(guest, "guest-conversation-opened-phone")
    shot(owner, "owner-sees-guest-by-name")

    # Following the link again opens the same conversation, not a second one.
    guest.goto(link)
    expect(guest).to_have_url(re.compile(r"#/c/c_[0-9a-f]{16}$"))
    expect(guest.locator("#inbox-list li.inbox-item")).to_have_count(1)

    # A typo in an id is refused, with a message saying so.
    typo = owner_id[:-1] + ("0" if owner_id[-1] != "0" else "1")
    guest.locator("#conv-back").click()
    start_with(guest, typo)
    expect(guest.locator("#new-error")).to_contain_text(
        f"no user with id {typo} has ever signed in"
    )
    expect(guest.locator("#inbox-list li.inbox-item")).to_have_count(1)
    shot(guest, "guest-typo-refused-phone")
    assert not owner.errors and not guest.errors


def test_incoming_call_rings_in_another_conversation(
    new_page, web_server, media_browser, shot
) -> None:
    caller = new_page(on=media_browser)
    callee = new_page(DESKTOP, on=media_browser)
    third = new_page()
    caller_id = sign_in(caller, web_server, "Carla Caller", "buyer", "en")
    callee_id = sign_in(callee, web_server, "Dae Callee", "supplier", "en")
    sign_in(third, web_server, "Tom Third", "agent", "en")
    start_with(caller, callee_id)
    expect(caller.locator("#conv-title")).to_have_text("Dae Callee")
    start_with(third, callee_id)
    # The callee is in the conversation with the third person, not the caller's.
    callee.locator("#inbox-list li.inbox-item", has_text="Tom Third").locator("a").click()
    expect(callee.locator("#conv-title")).to_have_text("Tom Third")

    caller.locator("#call-start").click()
    expect(caller.locator("#call-view")).to_be_visible()
    banner = callee.locator("#call-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Carla Caller is calling you")
    expect(callee).to_have_title(re.compile("Carla Caller is calling"))
    calling = callee.locator("#inbox-list li.inbox-item", has_text="Carla Caller")
    expect(calling.locator(".inbox-calling")).to_be_visible()
    expect(callee.locator("#conv-title")).to_have_text("Tom Third")  # nothing moved under them
    shot(callee, "callee-banner-in-other-conversation")
    callee.set_viewport_size(PHONE)
    shot(callee, "callee-banner-phone")
    callee.set_viewport_size(DESKTOP)

    callee.get_by_role("button", name="Join", exact=True).click()
    expect(banner).to_be_hidden()
    expect(callee.locator("#conv-title")).to_have_text("Carla Caller")
    expect(callee.locator("#call-view .tile.remote .tile-name")).to_have_text(
        "Carla Caller", timeout=20000
    )
    shot(callee, "callee-joined")
    caller.locator("#call-end").click()
    expect(callee.locator("#call-view .call-note")).to_have_text(
        "The call was ended by Carla Caller."
    )
    expect(callee).to_have_title("TradeTalk")

    # Dismiss: a second call rings, the callee dismisses it and stays where they are.
    callee.locator("#inbox-list li.inbox-item", has_text="Tom Third").locator("a").click()
    caller.locator("#call-start").click()
    expect(banner).to_be_visible()
    callee.get_by_role("button", name="Dismiss").click()
    expect(banner).to_be_hidden()
    expect(callee.locator("#conv-title")).to_have_text("Tom Third")
    caller.locator("#call-end").click()
    assert caller_id != callee_id
    assert not caller.errors and not callee.errors, (caller.errors, callee.errors)


def test_a_page_reloaded_while_a_call_rings_shows_the_banner(
    new_page, web_server, media_browser, shot
) -> None:
    """On connect the page asks for the running call of its inbox's conversations (`call.get`),
    so a reload mid-ring rings again without opening the conversation first."""
    caller = new_page(on=media_browser)
    callee = new_page(DESKTOP, on=media_browser)
    sign_in(caller, web_server, "Carla Caller", "buyer", "en")
    callee_id = sign_in(callee, web_server, "Dae Callee", "supplier", "en")
    start_with(caller, callee_id)
    expect(caller.locator("#conv-title")).to_have_text("Dae Callee")
    caller.locator("#call-start").click()
    expect(caller.locator("#call-view .tile.local")).to_be_visible()
    banner = callee.locator("#call-banner")
    expect(banner).to_be_visible()

    callee.reload()  # on the inbox, no conversation open
    expect(callee.locator("#inbox-list li.inbox-item")).to_have_count(1)
    assert callee.evaluate("tradetalk.conversation.id") is None
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Carla Caller is calling you")
    calling = callee.locator("#inbox-list li.inbox-item", has_text="Carla Caller")
    expect(calling.locator(".inbox-calling")).to_be_visible()
    shot(callee, "callee-banner-after-reload")
    callee.get_by_role("button", name="Join", exact=True).click()
    expect(callee.locator("#call-view .tile.remote .tile-name")).to_have_text(
        "Carla Caller", timeout=20000
    )
    caller.locator("#call-end").click()
    expect(banner).to_be_hidden()
    assert not caller.errors and not callee.errors, (caller.errors, callee.errors)


def test_glossary_set_in_the_page_changes_the_next_translation(new_page, web_server, shot) -> None:
    buyer, supplier = new_page(), new_page(PHONE)
    sign_in(buyer, web_server, "Ann Buyer", "buyer", "en")
    supplier_id = sign_in(supplier, web_server, "María Proveedora", "supplier", "es")
    start_with(buyer, supplier_id)
    expect(buyer.locator("#conv-title")).to_have_text("María Proveedora")
    supplier.locator("#inbox-list a").click()

    def send(text: str) -> None:
        buyer.locator("#composer-text").fill(text)
        buyer.locator("#composer-text").press("Enter")

    incoming = supplier.locator("#messages li.msg.theirs .msg-text")
    send("The bolts are ready")
    expect(incoming).to_have_count(1)
    before = incoming.first.inner_text()
    assert "pernos" not in before.lower(), before

    buyer.locator("#glossary-toggle").click()
    row = buyer.locator("#glossary .glossary-row").first
    row.locator(".glossary-term").fill("bolts")
    row.locator(".glossary-fixed").fill("pernos")
    buyer.locator("#glossary-save").click()
    expect(buyer.locator("#glossary")).to_contain_text("Saved: 1 term(s)")
    shot(buyer, "buyer-glossary-saved")

    send("The bolts are ready")
    expect(incoming).to_have_count(2)
    after = incoming.nth(1).inner_text()
    assert "pernos" in after.lower(), (before, after)
    # The supplier sees the glossary too, in Spanish.
    supplier.locator("#glossary-toggle").click()
    expect(supplier.locator("#glossary h3")).to_have_text("Glosario")
    expect(supplier.locator("#glossary .glossary-term").first).to_have_value("bolts")
    expect(supplier.locator("#glossary .glossary-fixed").first).to_have_value("pernos")
    shot(supplier, "supplier-glossary-and-messages-phone")
    print(f"\nwithout glossary: {before!r}; with bolts->pernos: {after!r}")
    assert not buyer.errors and not supplier.errors


def test_claims_decode_from_jwt_only(new_page, web_server) -> None:
    """session.js reads the claims of standard JWTs (`header.payload.signature`); TradeTalk's
    older `claims.signature` tokens (which the server refuses) and unreadable ones are null."""
    page = new_page()
    page.goto(web_server + "/")
    result = page.evaluate(
        """async () => {
          const { decodeClaims } = await import("/static/js/session.js");
          const utf8 = (obj) => new TextEncoder().encode(JSON.stringify(obj));
          const b64 = (obj) => btoa(String.fromCharCode(...utf8(obj)))
            .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
          const claims = { sub: "ann-1a2b3c", name: "Ánn", role: "buyer", lang: "en",
                           exp: 4102444800 };
          return {
            old: decodeClaims(`${b64(claims)}.c2ln`),
            jwt: decodeClaims(`${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}.c2ln`),
            bad: decodeClaims("not.a.token"),
          };
        }"""
    )
    assert result["old"] is None
    assert result["jwt"]["sub"] == "ann-1a2b3c"
    assert result["jwt"]["name"] == "Ánn"
    assert result["bad"] is None


def on_a_subtitle_board(new_page, web_server: str, speaker: str, script: str) -> Any:
    """Run `script` (the body of an async function) on an app page where `board` is a new
    SubtitleBoard and `speaker` a speaker named `speaker`; what it returns."""
    page = new_page()
    page.goto(web_server + "/")
    prelude = (
        'const { SubtitleBoard } = await import("/static/js/subtitles.js");'
        "const board = new SubtitleBoard();"
        f"const speaker = {{ id: 's', name: {json.dumps(speaker)} }};"
    )
    return page.evaluate(f"async () => {{ {prelude} {script} }}")


def test_a_short_subtitle_stays_on_one_line_over_the_video(new_page, web_server) -> None:
    """A line that fits the video is one line (its 90 % limit is of the video's width, not of
    the line's own: every tour line used to drop its last characters onto a line of their
    own), and a long one wraps within the video."""
    result = on_a_subtitle_board(
        new_page,
        web_server,
        "王芳",
        """
          const stage = document.createElement("div");
          stage.style.cssText = "position: relative; width: 850px; height: 480px;";
          stage.append(board.node);
          document.body.append(stage);
          const lines = (text, final = true) => {
            board.show({ speaker, lang: "zh", text, final, translations: {}, committed: {} },
                       "zh", false);
            const node = board.node.querySelector(final ? ".subtitle.final:last-child"
                                                        : ".subtitle.partial");
            const height = parseFloat(getComputedStyle(node).lineHeight);
            return [Math.round(node.getBoundingClientRect().height / height),
                    node.getBoundingClientRect().width];
          };
          return { short: lines("甚至出现交易几乎停滞的情况"),
                   open: lines("甚至出现交易几", false),
                   long: lines("甚至出现交易几乎停滞的情况".repeat(8)) };
        """,
    )
    (short_rows, _), (open_rows, _) = result["short"], result["open"]
    long_rows, long_width = result["long"]
    assert short_rows == 1 and open_rows == 1, result
    assert long_rows >= 2 and long_width <= 0.9 * (850 - 16) + 1, result  # 0.5rem insets


def test_words_selected_in_the_subtitle_history_stay_selected_as_lines_arrive(
    new_page, web_server
) -> None:
    """A buyer selecting a price in the earlier lines to copy it keeps the selection while the
    speaker goes on (new finals, open lines), also once the oldest line leaves the panel; a
    language switch re-renders every line in the new language."""
    result = on_a_subtitle_board(
        new_page,
        web_server,
        "Li",
        """
          document.body.append(board.node, board.history);
          const say = (n, lang = "en") => board.show({ speaker, lang: "zh", text: `第${n}句`,
            final: true, translations: { en: `unit price ${n}.50 USD`, ja: `単価 ${n}` } },
            lang, false);
          for (const n of [1, 2, 3, 4, 5]) say(n);
          const second = board.historyList.children[1].querySelector(".subtitle-text");
          getSelection().selectAllChildren(second);
          const chosen = getSelection().toString();
          say(6);
          board.show({ speaker, lang: "zh", text: "正在", final: false, translations: {},
                       committed: {} }, "en", false);
          say(7);
          const kept = getSelection().toString();
          board.lines.shift();  // the panel is full: the oldest line leaves
          say(8);
          const afterShift = getSelection().toString();
          const firstNow = board.historyList.children[0].querySelector(".subtitle-text");
          say(9, "ja");
          const texts = [...board.historyList.querySelectorAll(".subtitle-text")]
            .map((n) => n.textContent);
          return { chosen, kept, afterShift, firstIsSelected: firstNow === second, texts };
        """,
    )
    assert result["chosen"] == "unit price 2.50 USD"
    assert result["kept"] == result["chosen"] and result["afterShift"] == result["chosen"]
    assert result["firstIsSelected"] is True
    assert result["texts"] == ["単価 2", "単価 3", "単価 4", "単価 5", "単価 6", "単価 7"]


def test_subtitle_board_keeps_two_lines_per_speaker_over_the_video(new_page, web_server) -> None:
    """At most two lines per speaker sit over the video, the one being said counting; older ones
    move to the scrollable panel, a language switch re-renders them, the open line shows its
    committed part steady and its tentative tail apart, and the final replaces it in place."""
    result = on_a_subtitle_board(
        new_page,
        web_server,
        "Li",
        """
          document.body.append(board.node, board.history);
          for (const n of [1, 2, 3, 4]) {
            board.show({ speaker, lang: "zh", text: `第${n}句`, final: true,
                         translations: { en: `line ${n}` } }, "en", false);
          }
          const texts = (root) => [...root.querySelectorAll(".subtitle.final .subtitle-text")]
            .map((n) => n.textContent);
          const beforeOpen = texts(board.finals);
          board.show({ speaker, lang: "zh", text: "正在", final: false, translations: {},
                       committed: {} }, "en", false);
          const untranslated = board.partials.textContent;
          board.show({ speaker, lang: "zh", text: "正在说", final: false,
                       translations: { en: "now saying" }, committed: { en: 3 } }, "en", false);
          const steady = board.partials.querySelector(".subtitle-committed");
          const tail = board.partials.querySelector(".subtitle-tentative");
          const open = { steady: steady.textContent, tentative: tail.textContent };
          board.show({ speaker, lang: "zh", text: "正在说话", final: false,
                       translations: { en: "now saying words" }, committed: { en: 10 } },
                     "en", false);
          const sameNode = board.partials.querySelector(".subtitle-committed") === steady;
          const grown = steady.textContent;
          const over = texts(board.finals), older = texts(board.historyList);
          const partials = board.partials.children.length;
          board.setLanguage("es");
          const notes = [...board.node.querySelectorAll(".subtitle-note")]
            .map((n) => n.textContent);
          const afterSwitch = texts(board.finals);
          board.setLanguage("en");
          board.show({ speaker, lang: "zh", text: "正在说话", final: true,
                       translations: { en: "now saying words" } }, "en", false);
          return { beforeOpen, untranslated, open, sameNode, grown, over, older, partials,
                   panelShown: !board.history.hidden,
                   overflow: getComputedStyle(board.history).overflowY, afterSwitch, notes,
                   afterFinal: texts(board.finals), partialsAfter: board.partials.children.length };
        """,
    )
    assert result["beforeOpen"] == ["line 3", "line 4"]
    assert result["untranslated"] == "Li: 正在"  # the speaker's words until a translation comes
    assert result["open"] == {"steady": "now", "tentative": " saying"}
    assert result["sameNode"] and result["grown"] == "now saying"
    assert result["over"] == ["line 4"] and result["partials"] == 1  # two lines for Li
    assert result["older"] == ["line 1", "line 2", "line 3"] and result["panelShown"]
    assert result["overflow"] == "auto"
    assert result["afterSwitch"] == ["第4句"]  # no Spanish: the original, with a note
    notes = result["notes"]
    assert notes == ["Original — said before you chose this language"], notes
    assert result["afterFinal"] == ["line 4", "now saying words"] and result["partialsAfter"] == 0
