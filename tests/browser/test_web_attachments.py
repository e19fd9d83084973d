"""Files in the web client, in Chromium, in German and Spanish: the buyer drops a photo and a
drawing into the chat (drag-and-drop, upload progress, thumbnails inline), the supplier sees
them, is refused an HTML page named .png with a clear Spanish error, pastes a photo and attaches
a price list by the button; the buyer downloads it byte for byte. File sizes read naturally in
every interface language (a Korean chat says "45바이트", not "45byte")."""

from __future__ import annotations

import base64
import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, sign_in
from tests.support.attachment_files import HTML_PAGE, pdf_document, png_with_gps, xlsx_price_list

REFUSED_ES = "fue rechazado: este tipo de archivo no se acepta"


def drop_files(
    page: Page, target: str, files: list[tuple[str, bytes, str]], leave_hovering: bool = False
):
    """Drag files from outside the page onto `target`: dragenter, dragover, drop, with a
    DataTransfer holding real File objects (what a desktop file manager hands Chromium)."""
    payload = [
        {"name": name, "data": base64.b64encode(data).decode(), "type": mime}
        for name, data, mime in files
    ]
    transfer = page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
                dt.items.add(new File([bytes], f.name, { type: f.type }));
            }
            return dt;
        }""",
        payload,
    )
    page.dispatch_event(target, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(target, "dragover", {"dataTransfer": transfer})
    if leave_hovering:
        return transfer
    page.dispatch_event(target, "drop", {"dataTransfer": transfer})
    return transfer


def paste_file(page: Page, name: str, data: bytes, mime: str) -> None:
    """Paste a file into the composer (as a screenshot tool's copy puts it on the clipboard)."""
    page.evaluate(
        """([name, data, type]) => {
            const dt = new DataTransfer();
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            dt.items.add(new File([bytes], name, { type }));
            const event = new ClipboardEvent(
                "paste", { clipboardData: dt, bubbles: true, cancelable: true }
            );
            document.getElementById("composer-text").dispatchEvent(event);
        }""",
        [name, base64.b64encode(data).decode(), mime],
    )


def thumbnails_loaded(page: Page, message) -> None:
    """Every thumbnail in the message decoded in the browser (a real image, 320 px a side)."""
    thumbs = message.locator("img.att-thumb")
    for i in range(thumbs.count()):
        # its src comes once the authorized fetch is done (an img with no src is "complete")
        page.wait_for_function(
            "img => img.getAttribute('src') && img.complete",
            arg=thumbs.nth(i).element_handle(),
            timeout=15000,
        )
        size = thumbs.nth(i).evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert max(size) == 320, size


def stays_at_the_end(page: Page) -> None:
    """The message list is scrolled to its end (a thumbnail that loaded after its message was
    shown did not leave the newest message cut off)."""
    page.wait_for_function(
        """() => { const list = document.getElementById("messages");
                   return list.scrollHeight - list.scrollTop - list.clientHeight < 2; }""",
        timeout=5000,
    )


def test_drop_a_drawing_and_photo_then_refusal_paste_and_button(new_page, web_server, shot) -> None:
    buyer, supplier = new_page(), new_page(PHONE)
    sign_in(buyer, web_server, "Anna Käuferin", "buyer", "de")
    supplier_id = sign_in(supplier, web_server, "María Proveedora", "supplier", "es")
    buyer.locator("#new-participants").fill(supplier_id)
    buyer.locator("#new-title").fill("Flansch DN50")
    buyer.locator("#new-submit").click()
    expect(buyer.locator("#conv-title")).to_have_text("Flansch DN50")
    expect(buyer.locator("#attach-button")).to_have_attribute("aria-label", "Dateien anhängen")

    # Drag-and-drop: the conversation shows where to drop while files hover over it.
    photo, drawing = png_with_gps(), pdf_document("blue")
    files = [
        ("muster.png", photo, "image/png"),
        ("zeichnung-rev-b.pdf", drawing, "application/pdf"),
    ]
    hovering = drop_files(buyer, "#conv-body", files, leave_hovering=True)
    expect(buyer.locator(".drop-hint")).to_be_visible()
    expect(buyer.locator(".drop-hint")).to_have_text("Dateien hier ablegen, um sie anzuhängen")
    shot(buyer, "buyer-drag-over-de")
    buyer.dispatch_event("#conv-body", "drop", {"dataTransfer": hovering})
    expect(buyer.locator(".drop-hint")).to_be_hidden()
    tray = buyer.locator("#attach-tray li.tray-item")
    expect(tray).to_have_count(2)
    expect(buyer.locator("#attach-tray li.tray-item.ready")).to_have_count(2)
    shot(buyer, "buyer-tray-uploaded-de")
    buyer.locator("#send").click()  # no text: the files are the message
    expect(buyer.locator("#attach-tray")).to_be_hidden()
    mine = buyer.locator("#messages li.msg.mine")
    expect(mine).to_have_count(1)
    expect(mine.locator("li.attachment")).to_have_count(2)
    thumbnails_loaded(buyer, mine)
    stays_at_the_end(buyer)
    expect(mine.locator(".att-download").first).to_have_text("Herunterladen")

    # The supplier (Spanish, phone) sees both files with their thumbnails.
    supplier.locator("#inbox-list li.inbox-item a").click()
    theirs = supplier.locator("#messages li.msg.theirs")
    expect(theirs).to_have_count(1)
    expect(theirs.locator("li.attachment .att-name")).to_have_text(
        ["muster.png", "zeichnung-rev-b.pdf"]
    )
    expect(theirs.locator("li.attachment.image")).to_have_count(1)
    thumbnails_loaded(supplier, theirs)
    stays_at_the_end(supplier)
    expect(theirs.locator(".att-download").first).to_have_text("Descargar")
    shot(supplier, "supplier-sees-photo-and-drawing-es")

    # An HTML page renamed .png is refused, with the reason in Spanish.
    drop_files(supplier, "#conv-body", [("foto.png", HTML_PAGE, "image/png")])
    refused = supplier.locator("#attach-tray li.tray-item.failed .att-error")
    expect(refused).to_contain_text(REFUSED_ES)
    expect(refused).to_contain_text("foto.png")
    shot(supplier, "supplier-refused-html-es")
    supplier.locator("#attach-tray .tray-remove").click()
    expect(supplier.locator("#attach-tray")).to_be_hidden()

    # Paste a photo, attach a price list with the button, add a caption, send.
    paste_file(supplier, "captura.png", png_with_gps((400, 300), "green"), "image/png")
    with supplier.expect_file_chooser() as chooser:
        supplier.locator("#attach-button").click()
    chooser.value.set_files(
        files=[
            {
                "name": "precios.xlsx",
                "mimeType": "application/octet-stream",
                "buffer": xlsx_price_list(),
            }
        ]
    )
    expect(supplier.locator("#attach-tray li.tray-item.ready")).to_have_count(2)
    supplier.locator("#composer-text").fill("Aquí está la lista de precios.")
    supplier.locator("#composer-text").press("Enter")

    reply = buyer.locator("#messages li.msg.theirs")
    expect(reply).to_have_count(1)
    expect(reply.locator(".msg-text")).to_have_attribute("lang", "es")  # no Spanish→German
    expect(reply.locator("li.attachment .att-name")).to_have_text(["captura.png", "precios.xlsx"])
    with buyer.expect_download() as download:
        reply.locator("li.attachment").nth(1).locator(".att-download").click()
    path = download.value.path()
    assert download.value.suggested_filename == "precios.xlsx"
    assert open(path, "rb").read() == xlsx_price_list()
    shot(buyer, "buyer-got-price-list-de")

    # The inbox preview of a message without text names the files.
    expect(buyer.locator("#inbox-list li.inbox-item")).to_contain_text(re.compile(r"precios|lista"))
    assert not buyer.errors and not supplier.errors, (buyer.errors, supplier.errors)


# Languages whose own word for a byte is the Latin "byte" ("bytes", "Byte"); every other
# interface language must show its own word or symbol, never ICU's untranslated "byte".
BYTE_IS_NATIVE = {"en", "es", "pt", "it", "de", "vi", "id"}


def test_file_sizes_read_naturally_in_every_interface_language(new_page, web_server) -> None:
    """45 bytes, 830 kB and 2.4 MB as the page words them in each of its 15 languages: the
    number, and a unit in the reader's language ("45바이트", "45 バイト", "45 octets")."""
    page = new_page()
    page.goto(web_server + "/")  # the modules load their own catalogues
    sizes = page.evaluate(
        """async () => {
          const i18n = await import("/static/js/i18n.js");
          const { fileSize } = await import("/static/js/attachments.js");
          const { LANGUAGES } = await import("/static/js/languages.js");
          const out = {};
          for (const [lang] of LANGUAGES) {
            if (i18n.setUiLanguage(lang) !== lang) throw new Error(`no catalogue for ${lang}`);
            out[lang] = [45, 830_000, 2_400_000].map(fileSize);
          }
          return out;
        }"""
    )
    assert len(sizes) == 15, sizes
    for lang, (small, medium, large) in sizes.items():
        assert "45" in small and "830" in medium and re.search(r"2[.,]4", large), (lang, sizes)
        if lang not in BYTE_IS_NATIVE:
            assert not re.search("byte", small + medium + large, re.I), (lang, sizes)
    assert sizes["ko"] == ["45바이트", "830kB", "2.4MB"], sizes["ko"]


def test_a_korean_chat_shows_file_sizes_in_korean(new_page, web_server, shot) -> None:
    """A Korean supplier attaches a short note and a long price list: the tray and the message
    say "45바이트" and "1.2MB" (not "45byte"); the English buyer reads "45 bytes"."""
    buyer, supplier = new_page(), new_page()
    buyer_id = sign_in(buyer, web_server, "Ann Buyer", "buyer", "en")
    sign_in(supplier, web_server, "김민준 공급사", "supplier", "ko")
    supplier.locator("#new-participants").fill(buyer_id)
    supplier.locator("#new-title").fill("단가표")
    supplier.locator("#new-submit").click()
    expect(supplier.locator("#conv-title")).to_have_text("단가표")
    note = b"Flange DN50: 12.40 USD, MOQ 500, 30 days.\n"
    note += b"." * (45 - len(note))
    prices = b"".join(b"DN%05d;%02d.40\n" % (i, i % 90) for i in range(1_200_000 // 14))
    prices = prices.ljust(1_200_000, b"\n")
    with supplier.expect_file_chooser() as chooser:
        supplier.locator("#attach-button").click()
    chooser.value.set_files(
        files=[
            {"name": "memo.txt", "mimeType": "text/plain", "buffer": note},
            {"name": "prices.csv", "mimeType": "text/csv", "buffer": prices},
        ]
    )
    tray_sizes = supplier.locator("#attach-tray li.tray-item.ready .att-size")
    expect(tray_sizes).to_have_text(["✓ 45바이트", "✓ 1.2MB"])
    shot(supplier, "supplier-tray-ko")
    supplier.locator("#send").click()
    sizes = supplier.locator("#messages li.msg.mine li.attachment .att-size")
    expect(sizes).to_have_text(["45바이트", "1.2MB"])
    assert not re.search("byte", " ".join(sizes.all_inner_texts()), re.I)
    shot(supplier, "supplier-sent-note-and-price-list-ko")

    buyer.locator("#inbox-list li.inbox-item a").click()
    expect(buyer.locator("#messages li.msg.theirs li.attachment .att-size")).to_have_text(
        ["45 bytes", "1.2 MB"]
    )
    shot(buyer, "buyer-reads-sizes-en")
    assert not buyer.errors and not supplier.errors, (buyer.errors, supplier.errors)


def test_cancelling_a_slow_upload_while_its_progress_moves(new_page, web_server, shot) -> None:
    """A Spanish supplier cancels a slow upload with ×: progress events redraw the tray while
    the button is pressed, and the press still cancels it (the tray used to rebuild the item,
    × included, on every progress event, and the click was lost)."""
    buyer, supplier = new_page(), new_page()
    buyer_id = sign_in(buyer, web_server, "Ann Buyer", "buyer", "en")
    sign_in(supplier, web_server, "Lucía Proveedora", "supplier", "es")
    supplier.locator("#new-participants").fill(buyer_id)
    supplier.locator("#new-submit").click()
    expect(supplier.locator("#conv-title")).to_have_text("Ann Buyer")
    cdp = supplier.context.new_cdp_session(supplier)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 200_000},
    )
    with supplier.expect_file_chooser() as chooser:
        supplier.locator("#attach-button").click()
    catalogue = pdf_document() + b"\n%" + b"0" * 4_000_000
    chooser.value.set_files(
        files=[{"name": "catálogo.pdf", "mimeType": "application/pdf", "buffer": catalogue}]
    )
    item = supplier.locator("#attach-tray li.tray-item.uploading")
    expect(item.locator("progress")).not_to_have_attribute("value", "0")
    shot(supplier, "supplier-uploading-es")
    box = item.locator(".tray-remove").bounding_box()
    assert box is not None
    supplier.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    supplier.mouse.down()
    seen = supplier.evaluate("document.querySelector('#attach-tray progress').value")
    supplier.wait_for_function(  # progress drawn again while × is held down
        "seen => document.querySelector('#attach-tray progress')?.value > seen", arg=seen
    )
    supplier.mouse.up()
    expect(supplier.locator("#attach-tray li.tray-item")).to_have_count(0)
    expect(supplier.locator("#attach-tray")).to_be_hidden()
    assert not supplier.errors, supplier.errors
