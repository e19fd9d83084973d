"""The web client in a real browser: two people chat across languages, safely and reliably."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from server.tokens import issue_token
from tests.browser.conftest import PHONE, sign_in
from tests.support.peers import new_user, token_for

# Switch on once the server translates chat messages (server/handlers/chat.py `translated()`
# with Apertium eng-spa installed): then each side must read the other's message in their own
# language.
EXPECT_TRANSLATION = True

BUYER_TEXT = "Can you ship five hundred bolts next week?"
SUPPLIER_TEXT = "Sí, podemos enviar los pernos la próxima semana."
XSS = "<img src=x onerror=alert(1)>"


def texts(page: Page) -> list[str]:
    """The message texts as shown, oldest first (pending ones included)."""
    return page.locator("#messages li.msg .msg-text").all_inner_texts()


def originals(page: Page) -> list[str]:
    """The original texts of the messages the open conversation holds, by id."""
    return page.evaluate(
        "[...tradetalk.conversation.messages.values()].sort((a, b) => a.id - b.id).map(m => m.text)"
    )


def open_chat(
    buyer: Page, supplier: Page, web_server: str, supplier_lang: str = "es"
) -> tuple[str, str]:
    """Buyer (English, desktop) and supplier (Spanish unless told, phone) sign in; the buyer
    starts a conversation with the supplier's id. Returns (buyer id, supplier id)."""
    buyer_id = sign_in(buyer, web_server, "Ann Buyer", "buyer", "en")
    supplier_id = sign_in(supplier, web_server, "María Proveedora", "supplier", supplier_lang)
    buyer.get_by_label("Start a conversation with (user id)").fill(supplier_id)
    buyer.get_by_label("Subject (optional)").fill("M8 bolts")
    buyer.get_by_role("button", name="Start").click()
    expect(buyer.locator("#conv-title")).to_have_text("M8 bolts")
    expect(buyer).to_have_url(re.compile(r"#/c/c_[0-9a-f]{16}$"))
    return buyer_id, supplier_id


def send(page: Page, text: str) -> None:
    """Type a message and press Enter."""
    page.locator("#composer-text").fill(text)
    page.locator("#composer-text").press("Enter")


def test_buyer_and_supplier_chat(new_page, web_server, shot) -> None:
    buyer, supplier = new_page(), new_page(PHONE)
    _, supplier_id = open_chat(buyer, supplier, web_server)
    shot(buyer, "buyer-started-conversation")

    send(buyer, BUYER_TEXT)
    expect(buyer.locator("#messages li.msg.mine .ticks")).to_have_text("✓")

    # The supplier's inbox updates live: the conversation, its last message, one unread.
    entry = supplier.locator("#inbox-list li.inbox-item")
    expect(entry).to_have_count(1)
    expect(entry.locator(".badge")).to_have_text("1")
    expect(entry.locator(".inbox-title")).to_have_text("M8 bolts")
    shot(supplier, "supplier-inbox-phone")

    entry.locator("a").click()
    incoming = supplier.locator("#messages li.msg.theirs")
    expect(incoming).to_have_count(1)
    expect(incoming.locator(".sender")).to_have_text("Ann Buyer")
    if EXPECT_TRANSLATION:
        shown = incoming.locator(".msg-text")
        expect(shown).not_to_have_text(BUYER_TEXT)
        expect(shown).to_have_attribute("lang", "es")
        # The supplier's interface is in Spanish, like the supplier.
        incoming.get_by_role("button", name="Ver original").click()
        expect(shown).to_have_text(BUYER_TEXT)
        incoming.get_by_role("button", name="Ver traducción").click()
        expect(shown).not_to_have_text(BUYER_TEXT)
    else:
        expect(incoming.locator(".msg-text")).to_have_text(BUYER_TEXT)
    # Opening it read it: the buyer sees read ticks, and presence shows the supplier online.
    expect(buyer.locator("#messages li.msg.mine .ticks")).to_have_text("✓✓")
    expect(buyer.locator("#conv-presence")).to_contain_text("online")
    expect(entry.locator(".badge")).to_have_count(0)
    shot(supplier, "supplier-reads-phone")

    # Typing indicator, then the reply.
    supplier.locator("#composer-text").press_sequentially("Sí", delay=30)
    expect(buyer.locator("#typing")).to_contain_text("María Proveedora is typing")
    shot(buyer, "buyer-sees-typing")
    send(supplier, SUPPLIER_TEXT)
    reply = buyer.locator("#messages li.msg.theirs")
    expect(reply).to_have_count(1)
    if EXPECT_TRANSLATION:
        expect(reply.locator(".msg-text")).not_to_have_text(SUPPLIER_TEXT)
        expect(reply.locator(".msg-text")).to_have_attribute("lang", "en")
    else:
        expect(reply.locator(".msg-text")).to_have_text(SUPPLIER_TEXT)
    expect(buyer.locator("#typing")).to_have_text("")
    shot(buyer, "buyer-sees-reply")
    shot(supplier, "supplier-after-reply-phone")
    assert texts(buyer)[0] == BUYER_TEXT
    assert not buyer.errors and not supplier.errors  # type: ignore[attr-defined]

    # The supplier switches to English: the choice holds for the tab and the server.
    supplier.locator("#lang-select").select_option("en")
    expect(supplier.locator("#messages li.msg.theirs .msg-text")).to_have_text(BUYER_TEXT)
    supplier.reload()
    expect(supplier.locator("#lang-select")).to_have_value("en")
    expect(supplier.locator("#my-id")).to_have_text(supplier_id)
    expect(supplier.locator("#sign-out")).to_have_text("Sign out")  # the interface followed


def test_markup_in_messages_renders_as_text(new_page, web_server, shot) -> None:
    buyer, supplier = new_page(), new_page(PHONE)
    open_chat(buyer, supplier, web_server)
    send(buyer, XSS)
    supplier.locator("#inbox-list a").click()
    expect(buyer.locator("#messages li.msg .msg-text")).to_have_text([XSS])
    incoming = supplier.locator("#messages li.msg")
    expect(incoming).to_have_count(1)
    if EXPECT_TRANSLATION:  # the translation is text too; the original shows literally
        incoming.get_by_role("button", name="Ver original").click()
    expect(incoming.locator(".msg-text")).to_have_text(XSS)
    for page in (buyer, supplier):
        assert page.locator("#messages img, #inbox-list img").count() == 0
    expect(buyer.locator("#inbox-list .inbox-preview")).to_have_text(f"You: {XSS}")
    shot(buyer, "buyer-xss-literal")
    shot(supplier, "supplier-xss-literal-phone")
    time.sleep(0.5)  # an onerror handler would have fired by now
    assert buyer.dialogs == [] and supplier.dialogs == []  # type: ignore[attr-defined]
    assert not buyer.errors and not supplier.errors  # type: ignore[attr-defined]


def test_reload_mid_conversation_loses_nothing(new_page, web_server, shot) -> None:
    buyer, supplier = new_page(), new_page(PHONE)
    buyer_id, _ = open_chat(buyer, supplier, web_server)
    send(buyer, "First: price per piece?")
    supplier.locator("#inbox-list a").click()
    send(supplier, "Segundo: 0,12 USD.")
    expect(buyer.locator("#messages li.msg")).to_have_count(2)  # the buyer reads it, then answers
    send(buyer, "Third: deal.")
    expect(supplier.locator("#messages li.msg")).to_have_count(3)
    url = buyer.url

    buyer.reload()
    assert buyer.url == url
    expect(buyer.locator("#my-id")).to_have_text(buyer_id)
    want = ["First: price per piece?", "Segundo: 0,12 USD.", "Third: deal."]
    expect(buyer.locator("#messages li.msg")).to_have_count(3)
    expect(buyer.locator("#messages li.msg.mine .msg-text")).to_have_text([want[0], want[2]])
    assert originals(buyer) == want
    expect(buyer.locator("#inbox-list li.inbox-item")).to_have_count(1)
    shot(buyer, "buyer-after-reload")

    supplier.reload()
    expect(supplier.locator("#messages li.msg")).to_have_count(3)
    expect(supplier.locator("#conv-body")).to_be_visible()
    assert originals(supplier) == want
    # Still live after the reload, both ways.
    send(supplier, "Cuarto: confirmado.")
    expect(buyer.locator("#messages li.msg")).to_have_count(4)
    shot(supplier, "supplier-after-reload-phone")


def drop_connection(page: Page) -> None:
    """Take the page offline and close its socket; it keeps trying to reconnect."""
    page.context.set_offline(True)
    page.evaluate("window.tradetalk.connection.socket.io.engine.close()")
    expect(page.locator("#status")).to_contain_text("Reconnecting")


def test_sending_while_disconnected_is_delivered_once(new_page, web_server, shot) -> None:
    buyer, supplier = new_page(), new_page(PHONE)
    open_chat(buyer, supplier, web_server, supplier_lang="en")
    send(buyer, "Before the drop")
    supplier.locator("#inbox-list a").click()
    expect(supplier.locator("#messages li.msg")).to_have_count(1)

    drop_connection(buyer)
    send(buyer, "Sent while offline")
    send(buyer, "Also offline")
    pending = buyer.locator("#messages li.pending")
    expect(pending).to_have_count(2)
    expect(pending.first.locator(".ticks")).to_have_text("Sending…")
    shot(buyer, "buyer-offline-queued")
    time.sleep(1)  # reconnect attempts fail meanwhile
    expect(supplier.locator("#messages li.msg")).to_have_count(1)

    buyer.context.set_offline(False)
    expect(buyer.locator("#status")).to_be_hidden(timeout=15000)
    expect(pending).to_have_count(0)
    want = ["Before the drop", "Sent while offline", "Also offline"]
    expect(buyer.locator("#messages li.msg .msg-text")).to_have_text(want)
    expect(supplier.locator("#messages li.msg .msg-text")).to_have_text(want)
    shot(buyer, "buyer-back-online")
    time.sleep(1)
    assert texts(supplier) == want
    supplier.reload()  # what the server stored: each message once
    expect(supplier.locator("#messages li.msg .msg-text")).to_have_text(want)
    assert buyer.evaluate("sessionStorage.getItem(`tradetalk.outbox.${tradetalk.me.id}`)") == "[]"
    shot(supplier, "supplier-got-each-once-phone")


def test_retry_after_a_lost_ack_adds_no_duplicate(new_page, web_server) -> None:
    """A message the server stored but whose ack never arrived stays in the outbox; the retry
    (same client_id, here after a reload) must not create a second message."""
    buyer, supplier = new_page(), new_page(PHONE)
    open_chat(buyer, supplier, web_server, supplier_lang="en")
    buyer.evaluate(
        """async () => {
            const app = window.tradetalk;
            const item = {conversation_id: app.conversation.id, client_id: "w-lost-ack-1",
                          text: "Stored, ack lost", queued_at: new Date().toISOString()};
            await app.connection.request("message.send", item && {
                conversation_id: item.conversation_id, client_id: item.client_id, text: item.text});
            sessionStorage.setItem(`tradetalk.outbox.${app.me.id}`, JSON.stringify([item]));
        }"""
    )
    buyer.reload()
    expect(buyer.locator("#messages li.msg.mine:not(.pending)")).to_have_count(1)
    expect(buyer.locator("#messages li.pending")).to_have_count(0)
    supplier.locator("#inbox-list a").click()
    expect(supplier.locator("#messages li.msg .msg-text")).to_have_text(["Stored, ack lost"])
    time.sleep(0.5)
    assert texts(buyer) == ["Stored, ack lost"]
    assert buyer.evaluate("sessionStorage.getItem(`tradetalk.outbox.${tradetalk.me.id}`)") == "[]"


def test_history_loads_on_scroll_up(new_page, web_server, shot) -> None:
    buyer, supplier = new_page(), new_page(PHONE)
    open_chat(buyer, supplier, web_server, supplier_lang="en")
    count = 70
    buyer.evaluate(
        """async (count) => {
            const app = window.tradetalk;
            for (let i = 1; i <= count; i++) {
                for (;;) {
                    try {
                        await app.connection.request("message.send", {
                            conversation_id: app.conversation.id, client_id: `h-${i}`,
                            text: `History ${i}`});
                        break;
                    } catch (e) {
                        if (e.code !== "rate_limited") throw e;
                        await new Promise((r) => setTimeout(r, 100));
                    }
                }
            }
        }""",
        count,
    )
    supplier.locator("#inbox-list a").click()
    messages = supplier.locator("#messages li.msg")
    expect(messages).to_have_count(50)
    expect(messages.last.locator(".msg-text")).to_have_text(f"History {count}")
    supplier.locator("#messages").evaluate("list => { list.scrollTop = 0; }")
    expect(messages).to_have_count(count)
    expect(messages.first.locator(".msg-text")).to_have_text("History 1")
    assert supplier.locator("#messages").evaluate("list => list.scrollTop") > 0  # kept its place
    shot(supplier, "supplier-history-loaded-phone")


def test_token_from_the_url_fragment_stays_in_the_browser(new_page, web_server, shot) -> None:
    user = new_user(role="agent", lang="es", name="Agente Ventas")
    page = new_page(PHONE)
    page.goto(f"{web_server}/#token={token_for(user)}")
    expect(page.locator("#my-id")).to_have_text(user.id)
    expect(page.locator("#lang-select")).to_have_value("es")
    assert "token" not in page.url  # removed from the address bar
    assert page.evaluate("localStorage.getItem('tradetalk.token')")
    assert page.context.cookies() == []
    expect(page.locator("#inbox-title")).to_have_text("Conversaciones")  # the agent's language
    shot(page, "agent-inbox-phone")

    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page.locator("#signin-view")).to_be_visible()
    assert page.evaluate("localStorage.getItem('tradetalk.token')") is None

    page.goto(f"{web_server}/#token=not-a-valid.token")
    # The sign-in page keeps speaking the language this browser last used (Spanish).
    expect(page.locator("#signin-error")).to_have_text("Ese enlace de acceso no es válido.")
    expect(page.locator("#signin-title")).to_have_text("Iniciar sesión")
    forged = issue_token(b"not-the-server-secret", user)
    page.goto(f"{web_server}/#token={forged}")
    # Refused while the page spoke the token's language (Spanish).
    expect(page.locator("#signin-error")).to_contain_text("Acceso rechazado (bad token signature)")
    expect(page.locator("#app-view")).to_be_hidden()
    assert page.evaluate("localStorage.getItem('tradetalk.token')") is None
    shot(page, "bad-token-refused-phone")
