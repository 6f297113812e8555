"""Issue 19, point 7 in the product started as bin/run starts it: an image and a PDF dropped into
the composer are uploaded and listed, a file the account cannot send is refused before it is
uploaded, and Send delivers both through a sandbox WhatsApp account: the thread shows the image
preview and the PDF with its name and size, the sandbox phone receives them, and the thread does
not scroll sideways at 390 px. Screenshots under var/."""
import base64
import struct
import zlib

import pytest

from tests.browser.conftest import add_sandbox_whatsapp, log_in_as_admin, write_from_phone

pytestmark = [pytest.mark.browser]



def _png(width: int, height: int) -> bytes:
    """A plain green PNG, made here."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + b"\x20\xc0\x60" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


# a 120x80 PNG and a minimal PDF, made here
PNG = base64.b64encode(_png(120, 80)).decode()
PDF = base64.b64encode(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n" + b" " * 2000).decode()
EXE = base64.b64encode(b"MZ\x90\x00" + b"\x00" * 100).decode()

DROP = """([target, files]) => {
  const dt = new DataTransfer();
  for (const [name, type, data] of files) {
    const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
    dt.items.add(new File([bytes], name, {type}));
  }
  const el = document.querySelector(target);
  el.dispatchEvent(new DragEvent("dragover", {bubbles: true, cancelable: true, dataTransfer: dt}));
  el.dispatchEvent(new DragEvent("drop", {bubbles: true, cancelable: true, dataTransfer: dt}));
}"""


def test_drop_an_image_and_a_pdf_send_and_see_them(running_product, browser):
    from playwright.sync_api import expect

    base = running_product["base"]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    log_in_as_admin(page, running_product)
    phone_url = add_sandbox_whatsapp(page, context, base, name="files-shop", phone="+14155550171")
    phone = context.new_page()
    write_from_phone(phone, phone_url, number="+14155550172", name="Noor Attach", text="Send me the menu please")

    page.goto(base + "/inbox/?view=all")
    page.locator("#conversation-list a.conv", has_text="Noor Attach").click()
    expect(page.locator("#composer")).to_be_visible()

    # a file no backend sends is refused in the composer, before any upload
    page.evaluate(DROP, ["#composer-drop", [["setup.exe", "application/x-msdownload", EXE]]])
    expect(page.locator("#attach-error")).to_contain_text("cannot send application/x-msdownload files")
    expect(page.locator("#composer-attachments .attachment-chip")).to_have_count(0)

    page.evaluate(DROP, ["#composer-drop", [["dot.png", "image/png", PNG], ["menu.pdf", "application/pdf", PDF]]])
    chips = page.locator("#composer-attachments .attachment-chip[data-upload]")
    expect(chips).to_have_count(2, timeout=10_000)
    expect(chips.nth(0).locator("img")).to_be_visible()
    expect(chips.nth(1)).to_contain_text("menu.pdf")
    expect(page.locator("#attach-error")).to_be_hidden()
    page.fill("#composer", "Here is our menu")
    page.screenshot(path="var/attachments-composer-1400.png", full_page=True)
    page.click("#send-reply")

    # the sandbox carries both in one message with the text
    sent_image = page.locator("#thread .bubble.outbound", has_text="Here is our menu")
    expect(sent_image.locator(".media-image img")).to_be_visible(timeout=10_000)
    assert page.evaluate("document.querySelector('#thread .media-image img').naturalWidth") == 120  # the image loads
    pdf = page.locator("#thread .bubble.outbound .media-file", has_text="menu.pdf")
    expect(pdf).to_be_visible()
    expect(pdf.locator(".media-size")).to_have_text("2.0\u00a0KB")
    expect(page.locator("#thread .bubble.outbound").last).to_have_attribute("data-status", "delivered", timeout=10_000)
    expect(page.locator("#composer-attachments .attachment-chip")).to_have_count(0)
    page.screenshot(path="var/attachments-thread-1400.png", full_page=True)

    # the sandbox phone receives both
    phone.reload()
    expect(phone.locator("#sandbox-thread .media-image img")).to_be_visible(timeout=10_000)
    expect(phone.locator("#sandbox-thread .media-file", has_text="menu.pdf")).to_be_visible()

    # and on a phone-sized screen the thread with its files does not scroll sideways
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("#thread .media-file", has_text="menu.pdf")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path="var/attachments-thread-390.png", full_page=True)
    context.close()
