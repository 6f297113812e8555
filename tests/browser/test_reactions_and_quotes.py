"""Issue 17, point 8 end to end in the product started as bin/run starts it: on a sandbox
WhatsApp account the contact writes from the simulated phone; the agent quote-replies to that
message and reacts to it from the inbox; the phone sees the quote, the reaction and the read
ticks, reacts back, edits and deletes messages, and types one on the account's own phone; the
agent's open thread shows all of it without a reload."""
import re

import pytest

from tests.browser.conftest import add_sandbox_whatsapp, log_in_as_admin, write_from_phone

pytestmark = [pytest.mark.browser]

CONTACT = "+14155550188"



def test_quote_reply_react_edit_delete_live(running_product, browser):
    from playwright.sync_api import expect

    base = running_product["base"]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    log_in_as_admin(page, running_product)
    phone_url = add_sandbox_whatsapp(page, context, base, name="shop", phone="+14155550143")

    # the contact writes from the simulated phone
    phone = context.new_page()
    write_from_phone(phone, phone_url, number="+14155550188", name="Lin", text="Is the blue one in stock?")

    page.goto(base + "/inbox/")
    expect(page.locator("#live-state")).to_have_text("Live", timeout=10_000)
    # by the contact's name alone: other rows (a long account or tag name) may contain "lin" too
    page.locator("#conversation-list a.conv", has=page.locator(".conv-name", has_text=re.compile(r"^Lin$"))).click()
    expect(page.locator("#live-state")).to_have_text("Live", timeout=10_000)
    page.evaluate("window.__noReload = true")
    asked = page.locator("#thread .bubble.inbound", has_text="Is the blue one in stock?")

    # the agent quote-replies to that message
    asked.locator("[data-reply]").click()
    expect(page.locator("#composer-form .reply-preview")).to_contain_text("Is the blue one in stock?")
    page.fill("#composer", "Yes, two left")
    page.click("#send-reply")
    reply = page.locator("#thread .bubble.outbound", has_text="Yes, two left")
    expect(reply.locator(".quote")).to_have_text("Is the blue one in stock?", timeout=10_000)
    expect(reply).to_have_attribute("data-status", "delivered", timeout=10_000)
    reply.locator(".quote").click()  # the quote leads to the original
    expect(asked).to_have_class(re.compile(r"\bflash\b"))

    # ...and reacts to it
    asked.locator("details.react summary").click()
    asked.locator("button.emoji[value='👍']").click()
    expect(asked.locator(".chip.reaction")).to_have_text("👍 admin", timeout=10_000)

    # the phone sees the quote, the account's reaction and that its message was read
    thread = phone.locator("#sandbox-thread")
    on_phone = thread.locator(".bubble[data-direction=inbound]", has_text="Is the blue one in stock?")
    expect(thread.locator(".bubble", has_text="Yes, two left").locator(".quote")).to_have_text("Is the blue one in stock?",
                                                                                               timeout=10_000)
    expect(on_phone.locator(".chip.reaction")).to_have_text("👍 shop", timeout=10_000)
    expect(on_phone).to_contain_text("✓✓ read", timeout=10_000)

    # the phone reacts to the reply, edits its question, writes and deletes a message
    theirs = thread.locator(".bubble", has_text="Yes, two left")
    theirs.locator("details.react summary").click()
    theirs.locator("button.emoji[value='❤️']").click()
    expect(reply.locator(".chip.reaction")).to_have_text("❤️ Lin", timeout=10_000)

    on_phone.locator("details.phone-edit summary").click()
    on_phone.locator("input[name=text]").fill("Is the blue one in stock in size M?")
    on_phone.locator("details.phone-edit button").click()
    edited = page.locator(f"#thread [data-message='{asked.get_attribute('data-message')}']")
    expect(edited.locator(".text")).to_have_text("Is the blue one in stock in size M?", timeout=10_000)
    expect(edited.locator(".edited")).to_have_text("edited")
    edited.locator("details.edits summary").click()  # an admin sees what it said before
    expect(edited.locator("details.edits")).to_contain_text("Is the blue one in stock?")

    phone.fill("#sandbox-text", "oops, wrong chat")
    phone.click("#sandbox-send")
    oops = thread.locator(".bubble", has_text="oops, wrong chat")
    expect(page.locator("#thread .bubble", has_text="oops, wrong chat")).to_be_visible(timeout=10_000)
    oops.locator("form.phone-delete button").click()
    expect(thread).to_contain_text("This message was deleted", timeout=10_000)
    gone = page.locator("#thread .bubble.deleted")
    expect(gone.locator(".deleted-note")).to_have_text("This message was deleted", timeout=10_000)
    expect(gone.locator(".deleted-text")).to_contain_text("oops, wrong chat")  # admins only, marked

    # a message typed on the account's own phone shows as the account's, "from the phone"
    phone.fill("#sandbox-text", "Sent from the shop's phone")
    phone.click("#sandbox-send-from-me")
    typed = page.locator("#thread .bubble.outbound", has_text="Sent from the shop's phone")
    expect(typed.locator(".device")).to_have_text("from the phone", timeout=10_000)

    # a long unbroken link wraps inside its bubble, its quote, its edit history and its deleted
    # text: the page never scrolls sideways at 1400px (nor does the thread)
    link = "https://shop.example/p/" + "x" * 177
    assert len(link) == 200
    phone.fill("#sandbox-text", link)
    phone.click("#sandbox-send")
    long_in = page.locator("#thread .bubble.inbound", has_text=link)
    expect(long_in).to_be_visible(timeout=10_000)
    long_in.locator("[data-reply]").click()
    page.fill("#composer", "Thanks, here is ours: " + link)
    page.click("#send-reply")
    expect(page.locator("#thread .bubble.outbound .quote", has_text=link[:100])).to_be_visible(timeout=10_000)
    long_on_phone = thread.locator(".bubble[data-direction=inbound]", has_text=link)
    long_on_phone.locator("details.phone-edit summary").click()
    long_on_phone.locator("input[name=text]").fill("that link again: " + link + "?ref=1")
    # a live refresh of the phone's thread (a status, a reaction, a message arriving) re-renders
    # it: the open edit form, its text and its focus survive (they used to be wiped mid-edit)
    phone.evaluate("""() => new Promise(done => {
        document.addEventListener('htmx:afterSettle', () => done(), {once: true});
        htmx.trigger(document.getElementById('sandbox-thread'), 'live');
    })""")
    expect(long_on_phone.locator("details.phone-edit")).to_have_attribute("open", "")
    expect(long_on_phone.locator("input[name=text]")).to_have_value("that link again: " + link + "?ref=1")
    expect(long_on_phone.locator("input[name=text]")).to_be_focused()
    long_on_phone.locator("details.phone-edit button").click()
    expect(long_on_phone.locator("details.phone-edit")).not_to_have_attribute("open", "")  # saved: it closes
    long_edited = page.locator(f"#thread [data-message='{long_in.get_attribute('data-message')}']")
    expect(long_edited.locator(".edited")).to_have_text("edited", timeout=10_000)
    long_edited.locator("details.edits summary").click()
    expect(long_edited.locator("details.edits")).to_contain_text(link)
    phone.fill("#sandbox-text", "and " + link + "/deleted")
    phone.click("#sandbox-send")
    thread.locator(".bubble", has_text=link + "/deleted").locator("form.phone-delete button").click()
    expect(page.locator("#thread .bubble.deleted .deleted-text", has_text=link + "/deleted")).to_be_visible(timeout=10_000)
    widths = page.evaluate("""() => ({page: document.documentElement.scrollWidth, viewport: window.innerWidth,
        thread: document.querySelector('#thread').scrollWidth, threadBox: document.querySelector('#thread').clientWidth})""")
    assert widths["viewport"] == 1400
    assert widths["page"] <= widths["viewport"], widths
    assert widths["thread"] <= widths["threadBox"], widths
    assert page.evaluate("window.__noReload") is True
    context.close()
