"""Inbox -> New conversation -> a number nobody wrote from yet, through a sandbox account: a bad
number is refused in place, the draft kept; then the agent lands in the new thread with the
message shown, assigned to them, and the sandbox phone receives it; picking the same person by
name afterwards adds to that conversation (and says so) instead of opening a second one."""
import re

import pytest

from tests.browser.conftest import add_sandbox_android, log_in_as_admin

pytestmark = [pytest.mark.browser]


def test_start_a_new_conversation_from_the_inbox(running_product, browser):
    from playwright.sync_api import expect

    base = running_product["base"]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    log_in_as_admin(page, running_product)

    # a simulated Android phone, linked at once
    pk = str(add_sandbox_android(page, base, name="front desk", phone="+14155550180"))

    page.goto(base + "/inbox/")
    page.click("#new-conversation")
    page.wait_for_url(re.compile(r".*/inbox/new/$"))
    page.select_option("#new-account", pk)
    expect(page.locator("#new-account option:checked")).to_contain_text("front desk · SMS · +1 415-555-0180")
    page.fill("#new-to", "555")
    page.fill("#new-name", "Rosa Parks")
    page.fill("#new-text", "Hi {{first_name|there}}, your table is ready.")
    page.click("#new-conversation-form button[type=submit]")
    expect(page.locator("#new-to-error")).to_contain_text("Enter the number with its country code", timeout=10_000)
    expect(page.locator("#new-text")).to_have_value("Hi {{first_name|there}}, your table is ready.")
    assert "/inbox/new/" in page.url  # refused in place, nothing left the page

    page.fill("#new-to", "(415) 555-0181")  # no country code: the location's country (US)
    page.click("#new-conversation-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/inbox/\d+/$"), timeout=15_000)
    expect(page.locator(".messages")).to_contain_text("Conversation with Rosa Parks started")
    expect(page.locator("#thread")).to_contain_text("Hi Rosa, your table is ready.", timeout=15_000)
    # assigned to the starter, shown by name (the demo admin is "Admin")
    expect(page.locator("#conversation-list a.conv.active .assignee")).to_have_attribute("title", "Assigned to Admin")

    conversation_url = page.url

    # again, the contact picked by name this time: the same conversation, and the page says so
    page.click("#new-conversation")
    page.wait_for_url(re.compile(r".*/inbox/new/$"))
    page.fill("#new-to", "Rosa P")
    page.locator("#new-to-matches a", has_text="Rosa Parks").click(timeout=10_000)
    expect(page.locator("#new-existing")).to_contain_text("front desk (open, admin)", timeout=10_000)
    page.select_option("#new-account", pk)
    page.fill("#new-text", "See you at 7.")
    page.click("#new-conversation-form button[type=submit]")
    page.wait_for_url(conversation_url, timeout=15_000)
    expect(page.locator(".messages")).to_contain_text("You already had a conversation with Rosa Parks through front desk")
    expect(page.locator("#thread")).to_contain_text("See you at 7.", timeout=15_000)

    phone = context.new_page()
    phone.goto(f"{base}/sandbox/{pk}/phone/?phone=%2B14155550181")
    expect(phone.locator("#sandbox-thread")).to_contain_text("Hi Rosa, your table is ready.", timeout=15_000)
    expect(phone.locator("#sandbox-thread")).to_contain_text("See you at 7.", timeout=15_000)
    context.close()
