"""People's words keep their own order in a page of the other direction: an Arabic buyer (right
to left) and a Vietnamese supplier (left to right) chat with product codes, prices and quantities
in their messages, and each reads the other's words as written — not with the full stop, the
price or the first word moved to the wrong end by the page's direction. Times read in the
interface language; our own words carry no "not translated" note."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import PHONE, sign_in

VIETNAMESE = "Giá 0,11 USD/cái, M8x30."
ARABIC = "نحتاج M8x30 بسعر 0.12 USD."
ENGLISH_FROM_ARABIC_WRITER = "Please confirm: 5000 pcs M8x30, FOB."

# The x of each of `words` (left edge of its first occurrence; `.` means the last full stop) in
# the element's first text node: where the reader sees it.
WORD_X = """(node, words) => {
  const text = [...node.childNodes].find((child) => child.nodeType === Node.TEXT_NODE);
  return words.map((word) => {
    const at = word === "." ? text.data.lastIndexOf(".") : text.data.indexOf(word);
    const range = document.createRange();
    range.setStart(text, at);
    range.setEnd(text, at + word.length);
    return range.getBoundingClientRect().left;
  });
}"""


def xs(node: Locator, *words: str) -> list[float]:
    return node.evaluate(WORD_X, list(words))


def send(page: Page, text: str) -> None:
    page.locator("#composer-text").click()
    page.keyboard.type(text)
    page.locator("#send").click()


def test_mixed_direction_messages_keep_their_order(new_page, web_server, shot) -> None:
    buyer, supplier = new_page(), new_page(PHONE)
    sign_in(buyer, web_server, "أحمد الخطيب", "buyer", "ar")
    supplier_id = sign_in(supplier, web_server, "Nguyễn Thị Hương", "supplier", "vi")
    expect(buyer.locator("html")).to_have_attribute("dir", "rtl")
    buyer.locator("#new-participants").fill(supplier_id)
    buyer.locator("#new-submit").click()
    supplier.locator("#inbox-list li.inbox-item a").click()

    # Empty, the Arabic composer is right to left; Latin typed into it runs left to right.
    composer = buyer.locator("#composer-text")
    assert composer.evaluate("(n) => getComputedStyle(n).direction") == "rtl"
    composer.click()
    buyer.keyboard.type(ENGLISH_FROM_ARABIC_WRITER)
    assert composer.evaluate("(n) => getComputedStyle(n).direction") == "ltr"
    buyer.locator("#send").click()
    send(buyer, ARABIC)
    send(supplier, VIETNAMESE)
    for page in (buyer, supplier):
        expect(page.locator("#messages li.msg")).to_have_count(3)

    # The Arabic reader reads the Vietnamese line left to right, its full stop at the end.
    vietnamese = buyer.locator("#messages li.msg.theirs .msg-text")
    giá, price, code, stop = xs(vietnamese, "Giá", "0,11", "M8x30", ".")
    assert giá < price < code < stop, (giá, price, code, stop)
    # ... and the Vietnamese reader the Arabic one right to left: its first word rightmost.
    arabic = supplier.locator("#messages li.msg.theirs .msg-text").nth(1)
    first, code, word = xs(arabic, "نحتاج", "M8x30", "بسعر")
    assert first > code > word, (first, code, word)
    shot(buyer, "arabic-reader")
    shot(supplier, "vietnamese-reader")

    # Our own English words, read back by their Arabic writer: no "not translated" note; the
    # Vietnamese reader, who has no engine for them, gets one.
    mine = buyer.locator("#messages li.msg.mine").first
    expect(mine.locator(".msg-text")).to_have_text(ENGLISH_FROM_ARABIC_WRITER)
    expect(mine.locator(".note.untranslated")).to_have_count(0)
    theirs = supplier.locator("#messages li.msg.theirs").first
    expect(theirs.locator(".note.untranslated")).to_have_count(1)

    # Times in the interface language (Arabic), not the browser's ("07:42 AM" turned "AM 07:42").
    time = mine.locator("time")
    arabic_time = time.evaluate(
        """(n) => new Intl.DateTimeFormat("ar", {hour: "2-digit", minute: "2-digit"})
              .format(new Date(n.getAttribute("datetime")))"""
    )
    expect(time).to_have_text(arabic_time)

    # A subtitle (calls and tours render them with the same board): the Vietnamese speaker's
    # English line ends in its full stop on the right, under the Arabic page too.
    line = buyer.evaluate_handle(
        """async () => {
          const { SubtitleBoard } = await import("/static/js/subtitles.js");
          const board = new SubtitleBoard();
          board.lang = "ar";
          const node = board.line({speaker: {id: "v", name: "Nguyễn Thị Hương"}, lang: "vi",
                                   text: "And so, my fellow Americans."}, false);
          document.querySelector("#messages").append(node);
          return node.querySelector(".subtitle-text");
        }"""
    ).as_element()
    assert line is not None
    start, stop = line.evaluate(WORD_X, ["And", "."])
    assert start < stop, (start, stop)
    assert buyer.errors == [] and supplier.errors == []  # type: ignore[attr-defined]
