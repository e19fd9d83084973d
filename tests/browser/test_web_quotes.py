"""Quotes in the web client: a Spanish supplier (Spanish interface) fills the quote form, a bad
field is named in Spanish; the English buyer reads the quote in English with the original a
click away, accepts it, and both see it accepted; the buyer downloads the PDF. Numbers and dates
read in each reader's format (190,00 USD in Spanish, 190.00 USD in English)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from playwright.sync_api import Page, expect
from pypdf import PdfReader

from tests.browser.conftest import PHONE
from tests.browser.test_web_chat import open_chat


def fill_line(page: Page, n: int, product: str, quantity: str, price: str) -> None:
    row = page.locator("#quote-panel .quote-lines tbody tr").nth(n)
    row.locator(".quote-product").fill(product)
    row.locator(".quote-quantity").fill(quantity)
    row.locator(".quote-unit").select_option("pcs")
    row.locator(".quote-unit_price").fill(price)
    row.locator(".quote-currency").fill("USD")


def day_in(page: Page, lang: str, iso_day: str) -> str:
    """`YYYY-MM-DD` as the page's own Intl writes it in `lang` ("Jan 3, 2027", "3 ene 2027")."""
    written = page.evaluate(
        """([lang, day]) => new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeZone: "UTC" })
          .format(new Date(`${day}T00:00:00Z`))""",
        [lang, iso_day],
    )
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", iso_day) and iso_day not in written, written
    return str(written)


def test_buyer_reads_a_spanish_quote_in_english_and_accepts_it(new_page, web_server, shot) -> None:
    buyer, supplier = new_page(), new_page()
    open_chat(buyer, supplier, web_server)
    supplier.locator("#inbox-list li.inbox-item a").click()
    expect(supplier.locator("#conv-title")).to_have_text("M8 bolts")

    # The supplier's form speaks Spanish; a bad quantity is named, in Spanish, and marked.
    supplier.get_by_role("button", name="Cotización").click()
    expect(supplier.locator("#quote-form-title")).to_have_text("Nueva cotización")
    fill_line(supplier, 0, "pernos de acero inoxidable", "quinientos", "0.35")
    supplier.get_by_role("button", name="Añadir línea").click()
    fill_line(supplier, 1, "tuercas hexagonales", "1200", "0.0125")
    supplier.get_by_label("Lugar convenido").fill("Shenzhen")
    supplier.get_by_label("Condiciones de pago").fill("El pago es por adelantado.")
    valid_until = supplier.locator("#quote-valid").input_value()
    supplier.get_by_role("button", name="Enviar cotización").click()
    error = supplier.locator("#quote-panel .error")
    expect(error).to_have_text("Revise este campo: Cantidad · línea 1.")
    bad = supplier.locator("#quote-panel .quote-lines tbody tr").first.locator(".quote-quantity")
    expect(bad).to_have_attribute("aria-invalid", "true")
    shot(supplier, "supplier-form-names-the-bad-field")
    bad.fill("500")
    supplier.get_by_role("button", name="Enviar cotización").click()
    expect(supplier.locator("#quote-panel")).to_be_hidden()
    mine = supplier.locator("#messages li.quote-card.mine")
    expect(mine.locator(".quote-status")).to_have_text("Abierta")
    # Numbers and the date in the supplier's Spanish format, as the page's own Intl writes them.
    expect(mine.locator(".quote-total")).to_have_text("Total: 190,00 USD")
    expect(mine.locator(".quote-items tbody tr").nth(1)).to_contain_text("0,0125 USD")
    expect(mine.locator(".quote-terms")).to_contain_text(day_in(supplier, "es", valid_until))

    # The buyer reads it in English; numbers, units, currency and Incoterm as written.
    card = buyer.locator("#messages li.quote-card.theirs")
    expect(card).to_have_count(1)
    products = card.locator("td.quote-product")
    expect(products.first).to_have_attribute("lang", "en")
    expect(products.first).to_contain_text(re.compile("bolts", re.I))
    expect(products.nth(1)).to_contain_text(re.compile("nuts", re.I))
    rows = card.locator(".quote-items tbody tr")
    expect(rows.first).to_contain_text("500")
    expect(rows.first).to_contain_text("0.35 USD")
    expect(rows.first).to_contain_text("175.00 USD")
    expect(rows.nth(1)).to_contain_text("1,200")
    expect(rows.nth(1)).to_contain_text("0.0125 USD")
    expect(card.locator(".quote-total")).to_have_text("Total: 190.00 USD")
    expect(card.locator(".quote-terms")).to_contain_text("FOB Shenzhen")
    expect(card.locator(".quote-terms")).to_contain_text(day_in(buyer, "en", valid_until))
    expect(card.locator(".quote-status")).to_have_text("Open")
    english = products.first.inner_text()
    assert "pernos" not in english, english
    shot(buyer, "buyer-reads-the-quote-in-english")

    # The original is one click away, and back.
    card.get_by_role("button", name="Show original").click()
    expect(card.locator("td.quote-product").first).to_have_text("pernos de acero inoxidable")
    expect(card.locator(".quote-terms")).to_contain_text("El pago es por adelantado.")
    card.get_by_role("button", name="Show translation").click()
    expect(card.locator("td.quote-product").first).to_have_text(english)

    # The supplier cannot accept their own quote: no such button on their card.
    expect(mine.get_by_role("button", name="Aceptar")).to_have_count(0)

    card.get_by_role("button", name="Accept").click()
    accepted = buyer.locator("#messages li.quote-event.accept")
    expect(accepted).to_contain_text("You accepted v1")
    expect(card.locator(".quote-status")).to_have_text("Accepted")
    expect(card.get_by_role("button", name="Accept")).to_have_count(0)
    shot(buyer, "buyer-accepted")
    told = supplier.locator("#messages li.quote-event.accept")
    expect(told).to_contain_text("Ann Buyer aceptó v1")
    expect(mine.locator(".quote-status")).to_have_text("Aceptada")
    shot(supplier, "supplier-sees-it-accepted")

    # The buyer's PDF: English, with the Spanish original beside it.
    with buyer.expect_download() as download:
        card.get_by_role("button", name="⬇ PDF").click()
    pdf = download.value
    assert re.fullmatch(r"quote-q_[0-9a-f]{16}-v1-en\.pdf", pdf.suggested_filename)
    reader = PdfReader(io.BytesIO(Path(pdf.path()).read_bytes()))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Accepted by Ann Buyer" in text and "pernos de acero inoxidable" in text, text
    assert "Total: 190.00 USD" in text and english.split()[0] in text, text

    # After a reload the history replays the quote and its acceptance, as before.
    buyer.reload()
    expect(buyer.locator("#messages li.quote-card .quote-status")).to_have_text("Accepted")
    expect(buyer.locator("#messages li.quote-event.accept")).to_have_count(1)
    assert not buyer.errors and not supplier.errors, (buyer.errors, supplier.errors)


def test_request_quote_counter_and_accept_in_the_browser(new_page, web_server, shot) -> None:
    buyer, supplier = new_page(), new_page()
    open_chat(buyer, supplier, web_server)
    supplier.locator("#inbox-list li.inbox-item a").click()

    # A buyer's form starts as a request for quotation: no price column.
    buyer.get_by_role("button", name="Quote").click()
    expect(buyer.locator("#quote-form-title")).to_have_text("Request for quotation")
    row = buyer.locator("#quote-panel .quote-lines tbody tr").first
    row.locator(".quote-product").fill("hexagon nuts")
    row.locator(".quote-quantity").fill("500")
    expect(row.locator(".quote-unit_price")).to_be_hidden()
    buyer.get_by_label("Named place").fill("Shenzhen")
    buyer.get_by_role("button", name="Send request").click()
    expect(buyer.locator("#quote-panel")).to_be_hidden()

    # The supplier answers the request from its card: the form comes prefilled in Spanish.
    request = supplier.locator('#messages li.quote-card.theirs[data-action="request"]')
    expect(request.locator(".quote-head")).to_contain_text("Solicitud de cotización")
    request.get_by_role("button", name="Enviar una cotización").click()
    expect(supplier.locator("#quote-form-title")).to_have_text(
        "Cotización en respuesta a la solicitud"
    )
    line = supplier.locator("#quote-panel .quote-lines tbody tr").first
    expect(line.locator(".quote-product")).to_have_value(re.compile("tuercas", re.I))
    expect(line.locator(".quote-quantity")).to_have_value("500")
    line.locator(".quote-unit_price").fill("0.40")
    supplier.get_by_role("button", name="Enviar cotización").click()
    expect(supplier.locator("#quote-panel")).to_be_hidden()

    # The buyer counters at 0.35: version 2 answers version 1.
    offer = buyer.locator('#messages li.quote-card.theirs[data-action="send"]')
    expect(offer.locator(".quote-total")).to_have_text("Total: 200.00 USD")
    offer.get_by_role("button", name="Counter").click()
    expect(buyer.locator("#quote-form-title")).to_have_text("Counter-offer to version 1")
    buyer.locator("#quote-panel .quote-lines tbody tr").first.locator(".quote-unit_price").fill(
        "0.35"
    )
    buyer.get_by_role("button", name="Send counter-offer").click()
    expect(offer.locator(".quote-status")).to_have_text("Replaced by v2")
    expect(offer.get_by_role("button", name="Accept")).to_have_count(0)

    # The supplier sees the counter in Spanish and accepts it.
    counter = supplier.locator('#messages li.quote-card.theirs[data-action="counter"]')
    expect(counter.locator(".quote-head")).to_contain_text("Contraoferta · v2")
    expect(counter.locator(".quote-total")).to_have_text("Total: 175,00 USD")
    expect(counter.locator("td.quote-product").first).to_contain_text(re.compile("tuercas", re.I))
    mine = supplier.locator('#messages li.quote-card.mine[data-action="send"]')
    expect(mine.locator(".quote-status")).to_have_text("Sustituida por v2")
    expect(request.locator(".quote-status")).to_have_text("Respondida")
    shot(supplier, "supplier-sees-the-counter")
    counter.get_by_role("button", name="Aceptar").click()
    expect(counter.locator(".quote-status")).to_have_text("Aceptada")
    expect(buyer.locator("#messages li.quote-event.accept")).to_contain_text("accepted v2")
    mine_counter = buyer.locator('#messages li.quote-card.mine[data-action="counter"]')
    expect(mine_counter.locator(".quote-status")).to_have_text("Accepted")
    inbox = buyer.locator("#inbox-list li.inbox-item .inbox-preview")
    expect(inbox).to_contain_text("Quote v2 · Accepted")
    shot(buyer, "buyer-counter-accepted")
    assert not buyer.errors and not supplier.errors, (buyer.errors, supplier.errors)


def test_a_phone_fills_a_quote_line_it_can_read(new_page, web_server, shot) -> None:
    """On a phone (Vietnamese), a quote line's quantity and price fields are wide enough to show
    "5000" and "0.11", the open form leaves the composer on the screen, and the sent card gives
    the product a line of its own instead of a column one word wide."""
    buyer, supplier = new_page(), new_page(PHONE)
    open_chat(buyer, supplier, web_server, supplier_lang="vi")
    supplier.locator("#inbox-list li.inbox-item a").click()
    supplier.get_by_role("button", name="Báo giá").click()
    row = supplier.locator("#quote-panel .quote-lines tbody tr").first
    expect(row.locator(".quote-quantity")).to_have_attribute("placeholder", "Số lượng")
    fill_line(supplier, 0, "Bu lông M8x30 mạ kẽm", "5000", "0.11")
    for field in (".quote-quantity", ".quote-unit_price"):
        box = row.locator(field)
        shown, needed = box.evaluate("(n) => [n.clientWidth, n.scrollWidth]")
        assert shown >= needed and shown >= 70, (field, shown, needed)
    composer = supplier.locator("#composer-text").bounding_box()
    assert composer is not None and composer["y"] + composer["height"] <= PHONE["height"]
    shot(supplier, "phone-quote-line")

    # Sent, the card on the phone gives the product room to read and fits the screen.
    supplier.get_by_label("Địa điểm chỉ định").fill("Hải Phòng")
    supplier.get_by_role("button", name="Gửi báo giá").click()
    expect(supplier.locator("#quote-panel")).to_be_hidden()
    card = supplier.locator("#messages li.quote-card.mine")
    product = card.locator("td.quote-product").first
    expect(product).to_have_text("Bu lông M8x30 mạ kẽm")
    table = card.locator(".quote-items")
    product_width, table_width, table_needs = table.evaluate(
        """(t) => [t.querySelector("td.quote-product").clientWidth, t.clientWidth,
                   t.scrollWidth]"""
    )
    shot(supplier, "phone-quote-card")
    assert table_needs <= table_width, (table_needs, table_width)
    assert product_width >= 0.3 * table_width, (product_width, table_width)
