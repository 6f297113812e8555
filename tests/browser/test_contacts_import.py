"""Contacts -> Import CSV as an admin would: upload, the columns guessed and shown with the first
rows, Import, the report fills in (the worker runs it) with the skipped rows and why; the
contacts are in the list with their tags, and the list's Export carries its filters. At 390 px
the mapping page does not scroll sideways (its preview table scrolls inside its card)."""
import re

import pytest

from tests.browser.conftest import log_in_as_admin

pytestmark = [pytest.mark.browser]

CSV = ("Full Name,Mobile,Labels\n"
       "Imported Ada,+1 415 555 0191,import-vip\n"
       "Imported Bob,(415) 555-0192,import-vip; import-late\n"
       "Nobody,call me,\n"
       "Ada Twice,+14155550191,\n")


def test_import_contacts_from_a_csv_file(running_product, browser):
    from playwright.sync_api import expect

    base = running_product["base"]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    log_in_as_admin(page, running_product)
    page.goto(base + "/contacts/")
    page.click("#import-contacts")
    page.set_input_files("#id_file", files=[{"name": "leads.csv", "mimeType": "text/csv", "buffer": CSV.encode()}])
    page.click("#import-form button")
    page.wait_for_url(re.compile(r".*/contacts/import/\d+/$"))
    expect(page.locator("select[name=col_0]")).to_have_value("name")  # guessed from the headers
    expect(page.locator("select[name=col_1]")).to_have_value("phone")
    expect(page.locator("select[name=col_2]")).to_have_value("tags")
    expect(page.locator(".import-preview")).to_contain_text("(415) 555-0192")
    page.screenshot(path="var/contacts-import-map-1400.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path="var/contacts-import-map-390.png", full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})

    page.click("#start-import")
    page.wait_for_url(re.compile(r".*/contacts/import/\d+/report/$"))
    expect(page.locator("#import-status")).to_contain_text("Done", timeout=20_000)
    expect(page.locator("#import-counts")).to_contain_text("2 contacts added")
    expect(page.locator("#skipped-rows")).to_contain_text("“call me” is not a phone number")
    expect(page.locator("#skipped-rows")).to_contain_text("the same phone as row 2")
    page.screenshot(path="var/contacts-import-report-1400.png", full_page=True)

    page.goto(base + "/contacts/?q=Imported")
    expect(page.locator("#contact-table")).to_contain_text("Imported Bob")
    expect(page.locator("#contact-table")).to_contain_text("import-late")
    expect(page.locator("#export-contacts")).to_have_attribute("href", "/contacts/export.csv?q=Imported")
    context.close()
