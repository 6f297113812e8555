"""Issue 19 points 6 and 8, in a real browser: a message arriving in a conversation assigned to
me raises the unread count in the tab title and shows a browser notification (permission
granted through the Playwright context; asked on this site only by a button, never on load), on
whatever page I am; unassigned ones only once I ask for them on /settings/. The keyboard: j / k,
a, n, r, e, / and the ? overlay — and none of them while typing in a field."""
import re
import time

import pytest

from tests.browser.conftest import ROOT, add_sandbox_android, log_in_as_admin, write_from_phone

pytestmark = [pytest.mark.browser]

# Records each notification and each sound, then lets the real API do its part.
SPY = """
(() => {
  window.__notified = []; window.__played = 0;
  const Real = window.Notification;
  if (Real) {
    function Spy(title, options) { window.__notified.push({ title: title, body: (options || {}).body }); return new Real(title, options); }
    Object.defineProperty(Spy, "permission", { get: () => Real.permission });
    Spy.requestPermission = (...a) => Real.requestPermission(...a);
    window.Notification = Spy;
  }
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function () { window.__played += 1; return play.call(this); };
})();
"""
SHOTS = ROOT / "var" / "screenshots"


def _notified(*pages) -> list[dict]:
    """One notification per message, from whichever open tab of the product claims it first
    (the sandbox phone's page is one of them here)."""
    return [n for p in pages for n in p.evaluate("window.__notified")]


def _played(*pages) -> int:
    return sum(p.evaluate("window.__played") for p in pages)


def _until(check, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def _live(page):
    from playwright.sync_api import expect

    expect(page.locator("#live-state")).to_have_text("Live", timeout=10_000)
    page.wait_for_function("document.body.dataset.unread !== undefined", timeout=10_000)  # notify.js has its state
    return int(page.evaluate("document.body.dataset.unread"))


def test_my_new_message_counts_in_the_title_and_notifies_and_the_keys_work(running_product, browser):
    from playwright.sync_api import expect

    base = running_product["base"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.grant_permissions(["notifications"], origin=base)
    context.add_init_script(SPY)
    page = context.new_page()
    log_in_as_admin(page, running_product)
    pk = add_sandbox_android(page, base, name="notify desk", phone="+14155550730")
    phone_url, phone = f"{base}/sandbox/{pk}/phone/", context.new_page()

    # two people write; unassigned conversations do not notify the admin (not asked for)
    page.goto(base + "/inbox/?view=all")
    before = _live(page)
    write_from_phone(phone, phone_url, number="+14155550731", name="Nora Keys", text="first question")
    write_from_phone(phone, phone_url, number="+14155550732", name="Otto Keys", text="hello there")
    expect(page.locator("#conversation-list [data-conversation]").first).to_contain_text("Otto Keys", timeout=15_000)
    page.wait_for_timeout(500)
    assert _notified(page, phone) == [] and int(page.evaluate("document.body.dataset.unread")) == before
    otto = page.locator("#conversation-list [data-conversation]", has_text="Otto Keys").get_attribute("data-conversation")
    nora = page.locator("#conversation-list [data-conversation]", has_text="Nora Keys").get_attribute("data-conversation")

    # j opens the first conversation, j the next, k the one before
    page.keyboard.press("j")
    page.wait_for_url(re.compile(rf".*/inbox/{otto}/"))
    page.keyboard.press("j")
    page.wait_for_url(re.compile(rf".*/inbox/{nora}/"))
    page.keyboard.press("k")
    page.wait_for_url(re.compile(rf".*/inbox/{otto}/"))
    page.keyboard.press("j")
    page.wait_for_url(re.compile(rf".*/inbox/{nora}/"))

    # ? lists the shortcuts; Esc closes the overlay
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    expect(page.locator("#shortcuts")).to_contain_text("Assign to me")
    page.screenshot(path=str(SHOTS / "shortcuts-1400.png"))
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts")).to_be_hidden()

    # a: assigned to me
    page.keyboard.press("a")
    expect(page.locator('#contact-panel select[name="assignee"] option:checked')).not_to_have_text("Unassigned", timeout=10_000)
    assert re.search(rf"/inbox/{nora}/", page.url)

    # n: the note tab and the box; typed keys are text, not shortcuts; Esc leaves the box; r: reply
    page.keyboard.press("n")
    expect(page.locator("#mode-note")).to_be_checked()
    expect(page.locator("#composer")).to_be_focused()
    page.keyboard.type("je ne sais pas")
    expect(page.locator("#composer")).to_have_value("je ne sais pas")
    assert re.search(rf"/inbox/{nora}/", page.url) and page.locator("#resolve").count() == 1  # neither j nor e fired
    page.keyboard.press("Escape")
    expect(page.locator("#composer")).not_to_be_focused()
    page.keyboard.press("r")
    expect(page.locator('input[name="mode"][value="reply"]')).to_be_checked()
    expect(page.locator("#composer")).to_be_focused()
    page.fill("#composer", "")
    page.keyboard.press("Escape")

    # /: the search box, without a "/" typed into it
    page.keyboard.press("/")
    expect(page.locator('input[type="search"]')).to_be_focused()
    expect(page.locator('input[type="search"]')).to_have_value("")
    page.keyboard.press("Escape")

    # e: resolved
    page.keyboard.press("e")
    expect(page.locator('button[name="action"][value="open"]')).to_be_visible(timeout=10_000)

    # elsewhere in the product, Nora writes again: her conversation is mine now
    page.goto(base + "/contacts/")
    before = _live(page)
    title = page.title()
    write_from_phone(phone, phone_url, number="+14155550731", name="Nora Keys", text="second question")
    expect(page).to_have_title(f"({before + 1}) {title}", timeout=15_000)
    assert _until(lambda: _notified(page, phone))
    page.wait_for_timeout(300)  # a second tab would have notified by now too
    assert _notified(page, phone) == [{"title": "Nora Keys", "body": "second question"}]
    assert _played(page, phone) == 1  # the sound

    # unassigned ones too, once asked for on the settings page
    page.goto(base + "/settings/")
    expect(page.locator("#notify-permission")).to_have_text("Allowed in this browser.", timeout=10_000)
    page.check("#notify-unassigned")
    page.click("#save-notifications")
    expect(page.locator(".messages")).to_contain_text("unassigned ones")
    page.screenshot(path=str(SHOTS / "notification-settings-1400.png"))
    page.goto(base + "/inbox/?view=all")
    before = _live(page)
    write_from_phone(phone, phone_url, number="+14155550732", name="Otto Keys", text="anyone there?")
    assert _until(lambda: any(n["title"] == "Otto Keys" for n in _notified(page, phone)))
    expect(page).to_have_title(re.compile(rf"^\({before + 1}\) "), timeout=10_000)  # Otto's, read when j opened it, counts now
    context.close()


def test_permission_is_asked_only_from_the_banner_and_not_now_is_kept(running_product, browser):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    log_in_as_admin(page, running_product)
    expect(page.locator("#notify-banner")).to_be_visible(timeout=10_000)
    assert page.evaluate("Notification.permission") == "default"  # nothing asked on load
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # the banner fits a phone
    page.screenshot(path=str(SHOTS / "notify-banner-390.png"))
    page.click("#notify-later")
    expect(page.locator("#notify-banner")).to_be_hidden()
    page.reload()
    expect(page.locator("#live-state")).to_have_text("Live", timeout=10_000)
    page.wait_for_function("document.body.dataset.unread !== undefined", timeout=10_000)
    expect(page.locator("#notify-banner")).to_be_hidden()
    context.close()
