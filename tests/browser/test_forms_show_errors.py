"""A refused Add Account form stays on screen with its message in place (the HTMX swap used to
select nothing from the answer, and the whole form vanished)."""

import pytest

from tests.browser.conftest import log_in_as_admin

pytestmark = [pytest.mark.browser]


def test_add_account_errors_are_shown_in_place(running_product, browser):
    from playwright.sync_api import expect

    context = browser.new_context()
    page = context.new_page()
    log_in_as_admin(page, running_product)
    page.goto(running_product["base"] + "/accounts/add/")
    page.click("[data-choice=p2p]")
    page.click("#connect-account")  # nothing filled in
    expect(page.locator("#add-form form")).to_be_visible()
    expect(page.locator("#add-form .errorlist").first).to_be_visible()

    # a phone on the shop's LAN: refused (the server is not allowed to call private addresses)
    page.fill("#id_name", "shop phone")
    page.select_option("#id_device", "android_sms")
    page.fill("#id_phone_number", "+14155550123")
    page.fill("#id_gateway_address", "http://192.168.1.20:8080")
    page.fill("#id_gateway_username", "sms")
    page.fill("#id_gateway_password", "secret")
    page.fill("#id_gateway_signing_key", "signing")
    page.click("#connect-account")
    expect(page.locator("#add-form form")).to_be_visible()
    expect(page.locator("#add-form")).to_contain_text("private network (192.168.1.20)")
    expect(page.locator("#add-form")).to_contain_text("GATEWAY_ALLOW_PRIVATE_URLS")
    context.close()
