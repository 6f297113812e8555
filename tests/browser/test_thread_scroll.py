"""A thread opens at its newest message and follows what arrives while its reader is at the
bottom; a reader who scrolled up stays where they were (the inbox and the sandbox phone)."""
import re

import pytest

from tests.browser.conftest import add_sandbox_whatsapp, log_in_as_admin

pytestmark = [pytest.mark.browser]

AT_BOTTOM = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 40"
SCROLLS = "el => el.scrollHeight > el.clientHeight"


def _on(page, element_id: str, fn: str):
    """`fn` run on the element as the page has it now. (Not Locator.evaluate: a live refresh
    can swap the element out between the locator finding it and the function running.)"""
    return page.evaluate(f"({fn})(document.getElementById('{element_id}'))")


def test_threads_open_at_the_newest_message_and_keep_the_readers_place(running_product, browser):
    from playwright.sync_api import expect

    base = running_product["base"]
    context = browser.new_context(viewport={"width": 1400, "height": 700})
    page = context.new_page()
    log_in_as_admin(page, running_product)
    phone_url = add_sandbox_whatsapp(page, context, base, name="Scroll line", phone="+14155550823")

    phone = context.new_page()
    phone_thread = f"{phone_url}?phone=%2B14155550824&name=Robin+Scrollwell"
    phone.goto(phone_thread)
    for i in range(14):
        phone.fill("#sandbox-text", f"Line {i} of a long story\nwith a second line")
        phone.click("#sandbox-send")
        expect(phone.locator("#sandbox-text")).to_have_value("", timeout=10_000)  # sent
    thread_on_phone = phone.locator("#sandbox-thread")
    # every line on the phone, the newest in view (a send's own answer and the live refresh its
    # filing set off can land in either order: the newer render wins, static/whatsnap/live.js)
    expect(thread_on_phone).to_contain_text("Line 13 of", timeout=10_000)
    for i in range(14):
        expect(thread_on_phone.locator(".bubble", has_text=f"Line {i} of")).to_have_count(1)
    assert _on(phone, "sandbox-thread", SCROLLS), "the phone's thread should scroll"
    phone.wait_for_function(f"({AT_BOTTOM})(document.getElementById('sandbox-thread'))", timeout=5_000)
    phone.goto(phone_thread)
    expect(thread_on_phone).to_contain_text("Line 13 of")
    assert _on(phone, "sandbox-thread", AT_BOTTOM)  # the phone opens at the newest message

    page.goto(base + "/inbox/")
    page.locator("#conversation-list a.conv", has=page.locator(".conv-name", has_text=re.compile(r"^Robin Scrollwell$"))).click()
    expect(page.locator("#live-state")).to_have_text("Live", timeout=10_000)
    thread = page.locator("#thread")
    expect(thread.locator(".bubble", has_text="Line 13 of")).to_be_visible()
    assert _on(page, "thread", SCROLLS), "the inbox thread should scroll"
    assert _on(page, "thread", AT_BOTTOM)  # opened at the newest message

    # a message arriving while the agent reads the bottom shows at once
    phone.fill("#sandbox-text", "And one more thing")
    phone.click("#sandbox-send")
    arrived = thread.locator(".bubble", has_text="And one more thing")
    expect(arrived).to_be_visible(timeout=10_000)
    page.wait_for_function(f"({AT_BOTTOM})(document.getElementById('thread'))", timeout=5_000)

    # an agent who scrolled back up to read stays there when the next one arrives
    _on(page, "thread", "el => { el.scrollTop = 0; }")
    phone.fill("#sandbox-text", "Are you there?")
    phone.click("#sandbox-send")
    expect(thread.locator(".bubble", has_text="Are you there?")).to_have_count(1, timeout=10_000)
    assert _on(page, "thread", "el => el.scrollTop") < 40
    context.close()
