"""Issue 18, points 4 and 5 in the product started as bin/run starts it: an admin adds a
template with a merge field; in a conversation, typing `/` in the reply box opens the picker,
the keyboard picks the template and the box holds it with the contact's first name filled in;
the reply is scheduled for a later day, edited and then cancelled in the composer area (another
screen on the conversation follows live), and the contact's phone never receives it."""
import re
from datetime import date, timedelta

import pytest

from tests.browser.conftest import add_sandbox_whatsapp, log_in_as_admin, write_from_phone

pytestmark = [pytest.mark.browser]



def test_slash_picks_a_template_and_a_reply_is_scheduled_edited_and_cancelled(running_product, browser):
    from playwright.sync_api import expect

    base = running_product["base"]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    log_in_as_admin(page, running_product)
    phone_url = add_sandbox_whatsapp(page, context, base, name="concierge", phone="+14155550144")

    phone = context.new_page()
    write_from_phone(phone, phone_url, number="+14155550189", name="Katherine Johnson", text="Are you open on Saturday?")

    # an admin adds two templates on the Templates page (a wrong merge field is refused in place)
    page.goto(base + "/templates/")
    page.fill("#id_name", "Opening hours")
    page.fill("#id_shortcut", "hours")
    page.fill("#id_body", "Hi {{frist_name}}")
    page.click("#save-template")
    expect(page.locator("#template-form")).to_contain_text("Unknown merge field {{frist_name}}")
    page.fill("#id_body", "Hi {{first_name|there}}, we open at 10 on Saturdays.")
    page.click("#save-template")
    expect(page.locator("#template-list")).to_contain_text("Hi Ada, we open at 10 on Saturdays.")
    page.fill("#id_name", "Thanks")
    page.fill("#id_body", "Thank you!")
    page.click("#save-template")
    expect(page.locator("#template-list")).to_contain_text("Thank you!")

    # in the conversation, "/" opens the picker; it filters, the keyboard moves and inserts
    page.goto(base + "/inbox/")
    page.locator("#conversation-list a.conv", has_text="Katherine Johnson").click()
    expect(page.locator("#live-state")).to_have_text("Live", timeout=10_000)
    box, picker = page.locator("#composer"), page.locator("#template-picker")
    box.click()
    box.type("/")
    expect(picker).to_be_visible()
    expect(picker.locator("[role=option]")).to_have_count(2)
    page.keyboard.press("Escape")
    expect(picker).to_be_hidden()
    box.fill("")
    box.type("/hou")
    expect(picker.locator("[role=option]")).to_have_count(1)
    box.fill("")
    box.type("/")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    expect(picker.locator(".picker-option.active")).to_contain_text("Opening hours")
    page.keyboard.press("Enter")
    expect(picker).to_be_hidden()
    expect(box).to_have_value("Hi Katherine, we open at 10 on Saturdays.")

    # a teammate's screen on the same conversation follows the scheduled replies live
    teammate = context.new_page()
    teammate.goto(page.url)
    expect(teammate.locator("#live-state")).to_have_text("Live", timeout=10_000)

    # the popover opens clear of the reply box; a past time is refused inside it, by the field
    page.click("#schedule-menu summary")
    expect(page.locator("#schedule-zone")).to_contain_text("time")
    _assert_clear_of_the_reply_box(page, 1400)
    page.fill("#schedule-at", f"{(date.today() - timedelta(days=1)).isoformat()}T09:00")
    page.click("#schedule-reply")
    expect(page.locator(".schedule-pop #schedule-error")).to_contain_text("That time has passed")
    expect(page.locator(".schedule-pop #schedule-error")).to_be_visible()
    expect(page.locator("#composer")).to_have_value("Hi Katherine, we open at 10 on Saturdays.")
    _assert_clear_of_the_reply_box(page, 1400)

    # scheduled for a later day, in the zone the form names
    day = date.today() + timedelta(days=3)
    page.fill("#schedule-at", f"{day.isoformat()}T09:00")
    page.click("#schedule-reply")
    scheduled = page.locator("#scheduled-messages .scheduled-item")
    expect(scheduled).to_have_count(1)
    expect(scheduled).to_contain_text(re.compile(r"Scheduled for \w{3} " + str(day.day) + r" \w{3}, 09:00"))
    expect(scheduled).to_contain_text("Hi Katherine, we open at 10 on Saturdays.")
    expect(page.locator("#composer")).to_have_value("")
    expect(teammate.locator("#scheduled-messages .scheduled-item")).to_contain_text("Hi Katherine, we open at 10", timeout=10_000)

    # edited in place: a new text and time
    scheduled.locator(".scheduled-edit-link").click()
    form = page.locator("#scheduled-messages form.scheduled-edit")
    expect(form).to_be_visible()
    form.locator("textarea").fill("Hi Katherine, we open at 10 on Saturdays and 11 on Sundays.")
    form.locator("input[name=send_at]").fill(f"{day.isoformat()}T10:30")
    form.locator("button.primary").click()
    expect(scheduled).to_contain_text("and 11 on Sundays.")
    expect(scheduled).to_contain_text(str(day.day) + " ")
    expect(scheduled).to_contain_text("10:30")

    # ...and cancelled: gone from the composer area, never sent; its text is back in the empty reply box
    scheduled.locator("button.scheduled-cancel").click()
    expect(page.locator("#scheduled-messages .scheduled-item")).to_have_count(0)
    expect(page.locator("#composer")).to_have_value("Hi Katherine, we open at 10 on Saturdays and 11 on Sundays.")
    expect(page.locator("#scheduled-cancelled-note")).to_have_text("Cancelled; its text is back in the reply box.")
    expect(teammate.locator("#scheduled-messages .scheduled-item")).to_have_count(0, timeout=10_000)
    expect(phone.locator("#sandbox-thread")).not_to_contain_text("we open at 10")
    expect(page.locator("#thread")).not_to_contain_text("we open at 10")

    # on a phone-sized screen the popover stays inside the screen and off the reply box
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("#schedule-menu summary")
    expect(page.locator(".schedule-pop")).to_be_visible()
    _assert_clear_of_the_reply_box(page, 390)
    context.close()


def _assert_clear_of_the_reply_box(page, width):
    page.wait_for_timeout(100)  # placed on the toggle event
    pop = page.locator(".schedule-pop").bounding_box()
    box = page.locator("#composer").bounding_box()
    assert pop["y"] >= box["y"] + box["height"] or pop["y"] + pop["height"] <= box["y"], (pop, box)
    assert 0 <= pop["x"] and pop["x"] + pop["width"] <= width, pop
    viewport = page.evaluate("[window.innerHeight]")[0]
    # scrolled into view by whole pixels: a box at a fractional position may end under a pixel lower
    assert 0 <= pop["y"] and pop["y"] + pop["height"] <= viewport + 1, (pop, viewport)
