"""Issue 18 point 3 in the product started as bin/run starts it: three people write to a
sandbox SMS account, one of them replies STOP; an admin composes a broadcast to the account's
tag (the composer counts 2 of 3, one skipped as opted out), sends it now, and the progress
page follows it live — queued, then every reachable recipient sent — without a reload, the
opted-out contact listed as skipped with the reason. The phone receives the merged text. The
composer shows the Time field only for "At a time", names its button after the When choice and
asks before sending now, with the count."""
import re

import pytest

from tests.browser.conftest import add_sandbox_android, log_in_as_admin, write_from_phone

pytestmark = [pytest.mark.browser]


def test_small_broadcast_skips_the_opted_out_and_progress_is_live(running_product, browser):
    from playwright.sync_api import expect

    base = running_product["base"]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    log_in_as_admin(page, running_product)

    # a simulated Android phone (linked at once), paced slowly so the page has time to move
    pk = add_sandbox_android(page, base, name="broadcast desk", phone="+14155550170")
    expect(page.locator("#broadcast-cap")).to_contain_text("50 of 50 left today")
    page.goto(f"{base}/accounts/{pk}/settings/")
    page.fill("#id_send_per_minute", "10")
    page.fill("#id_send_jitter_seconds", "0")
    page.click("#save-settings")

    phone = context.new_page()
    for number, name, text in [("+14155550171", "Ada Lovelace", "Hi!"), ("+14155550172", "Mary Jackson", "Hello"),
                               ("+14155550173", "Alan Turing", "STOP")]:
        write_from_phone(phone, f"{base}/sandbox/{pk}/phone/", number=number, name=name, text=text)

    page.goto(base + "/broadcasts/")
    page.click("text=New broadcast")
    page.fill("#id_name", "Spring sale")
    page.fill("#id_text", "Hi {{first_name|there}}, 20% off this week.")
    page.get_by_label("whatsnap-account-broadcast-desk", exact=True).check()
    page.select_option("#id_account", str(pk))
    expect(page.locator("#preview-count")).to_contain_text("2 of 3 contacts will get it; 1 skipped", timeout=15_000)
    expect(page.locator("#broadcast-preview")).to_contain_text("Opted out (replied STOP).")
    # the first recipient by when their contact was filed: the sandbox files the phone's messages
    # in the background, so under load Mary's may be filed before Ada's (never Alan, who opted out)
    expect(page.locator("#broadcast-preview")).to_contain_text(re.compile(r"Hi (Ada|Mary), 20% off this week\."))
    # the Time field only for "At a time"; the button says what it does; "send now" asks with the count
    expect(page.locator(".field-scheduled_at")).to_be_hidden()
    expect(page.locator("#broadcast-submit")).to_have_text("Save draft")
    page.check("input[name=when][value=at]")
    expect(page.locator(".field-scheduled_at")).to_be_visible()
    expect(page.locator("#broadcast-submit")).to_have_text("Schedule")
    page.check("input[name=when][value=now]")
    expect(page.locator(".field-scheduled_at")).to_be_hidden()
    expect(page.locator("#broadcast-submit")).to_have_text("Send to 2 contacts now")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("#broadcast-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/broadcasts/\d+/$"))

    assert asked == ["Send “Spring sale” to 2 contacts now?"]
    expect(page.locator("#live-state")).to_have_text("Live", timeout=10_000)
    page.evaluate("window.__noReload = true; window.__live = [];"
                  "document.addEventListener('whatsnap:live', e => window.__live.push(e.detail.event))")
    counts = page.locator("#broadcast-counts")
    expect(counts.locator("[data-count=skipped]")).to_have_text("1")
    expect(page.locator("#broadcast-status")).to_have_text("Completed", timeout=30_000)
    expect(counts.locator("[data-count=delivered]")).to_have_text("2")
    expect(counts.locator("[data-count=queued]")).to_have_text("0")
    assert page.evaluate("window.__noReload") is True
    assert "broadcast.progress" in page.evaluate("window.__live")  # pushed over the socket, not polled
    skipped = page.locator("#broadcast-recipients tr", has_text="Alan Turing")
    expect(skipped).to_contain_text("Skipped")
    expect(skipped).to_contain_text("Opted out (replied STOP).")

    phone.goto(f"{base}/sandbox/{pk}/phone/?phone=%2B14155550172&name=Mary%20Jackson")
    expect(phone.locator("#sandbox-thread")).to_contain_text("Hi Mary, 20% off this week.")
    phone.goto(f"{base}/sandbox/{pk}/phone/?phone=%2B14155550173&name=Alan%20Turing")
    expect(phone.locator("#sandbox-thread")).not_to_contain_text("20% off")
    context.close()
