"""Log in -> Add Account -> WhatsApp (sandbox) -> QR -> sandbox phone links -> the first page
flips to Connected without reload; then a message from the phone appears live in the inbox,
the agent replies, and the phone sees the reply delivered."""

import pytest

from tests.browser.conftest import log_in_as_admin

pytestmark = [pytest.mark.browser]


def test_connect_whatsapp_sandbox_and_reply_live(running_product, browser):
    from playwright.sync_api import expect

    base = running_product["base"]
    context = browser.new_context()
    page = context.new_page()
    log_in_as_admin(page, running_product)

    page.goto(base + "/accounts/add/")
    page.click("[data-choice=whatsapp]")
    page.fill("#id_name", "sales")
    page.select_option("#id_backend", "sandbox")
    page.click("#connect-account")
    expect(page.locator("#qr svg")).to_be_visible(timeout=10_000)
    expect(page.locator("#account-tag")).to_have_text("whatsnap-account-sales")
    page.evaluate("window.__noReload = true")
    expect(page.locator("#live-state")).to_have_text("Live", timeout=10_000)
    link = page.locator("#sandbox-link").get_attribute("href")

    phone = context.new_page()
    phone.goto(link)
    phone.fill("#id_phone_number", "+14155550142")
    phone.click("#link-device")

    expect(page.locator("#connected-as")).to_have_text("Connected as +14155550142", timeout=10_000)
    assert page.evaluate("window.__noReload") is True

    # a person writes in; the agent's open inbox shows it without reload
    page.goto(base + "/inbox/")
    expect(page.locator("#live-state")).to_have_text("Live", timeout=10_000)
    page.evaluate("window.__noReload = true")
    phone.goto(link.split("?")[0] + "?phone=%2B14155550177&name=Grace")
    phone.fill("#sandbox-text", "Do you ship to Canada?")
    phone.click("#sandbox-send")
    row = page.locator("#conversation-list a.conv", has_text="Grace")
    expect(row).to_contain_text("Do you ship to Canada?", timeout=15_000)
    assert page.evaluate("window.__noReload") is True

    row.click()
    page.fill("#composer", "Yes, we do!")
    page.click("#send-reply")
    expect(page.locator("#thread [data-status=delivered]", has_text="Yes, we do!")).to_be_visible(timeout=15_000)
    expect(phone.locator("#sandbox-thread")).to_contain_text("Yes, we do!", timeout=15_000)
    expect(phone.locator("#sandbox-thread")).to_contain_text("delivered", timeout=15_000)
    context.close()
