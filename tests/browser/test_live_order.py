"""Newest render wins (static/whatsnap/live.js). A live part of a page can be rendered by two
requests in flight at once: a send's own answer, read before the worker filed the message, and
the live refresh that the filing set off. When the older answer lands last it must not wipe the
newer one. Both races are forced here by holding the send's answer back in the browser until
the live refresh has landed (the answers themselves come from the product, unchanged)."""
import re

import pytest

from tests.browser.conftest import add_sandbox_whatsapp, log_in_as_admin, write_from_phone

pytestmark = [pytest.mark.browser]

NUMBER, NAME = "+14155550822", "Quinn Ordway"
SEND = re.compile(r".*/sandbox/\d+/send/$")
THREAD = re.compile(r".*/sandbox/\d+/thread/\?.*")
AGENT_THREAD = re.compile(r".*/inbox/\d+/thread/$")
REPLY = re.compile(r".*/inbox/\d+/reply/$")


def test_an_older_answer_does_not_wipe_a_newer_live_render(running_product, browser):
    from playwright.sync_api import expect

    base = running_product["base"]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    log_in_as_admin(page, running_product)
    phone_url = add_sandbox_whatsapp(page, context, base, name="Order line", phone="+14155550821")
    phone = context.new_page()
    write_from_phone(phone, phone_url, number=NUMBER, name=NAME, text="First question")
    expect(phone.locator("#live-state")).to_have_text("Live", timeout=10_000)
    thread = phone.locator("#sandbox-thread")

    # 1. The phone's own send. The worker files the message and the live refresh leaves for the
    # thread; then the send's answer lands, read before the filing, and replaces the thread the
    # refresh was aimed at; then the refresh's answer lands. It must still be shown.
    before_filing = phone.evaluate("document.getElementById('sandbox-thread').outerHTML")
    held = {}
    phone.route(SEND, lambda route: held.update(send=(route, route.fetch())))
    phone.route(THREAD, lambda route: held.update(refresh=route))
    # every render of the thread, in order
    phone.evaluate("""() => { window.renders = [];
        document.addEventListener('htmx:afterSwap', () => window.renders.push(
            document.querySelector('#sandbox-thread').textContent.includes('Second question'))); }""")
    phone.fill("#sandbox-text", "Second question")
    phone.click("#sandbox-send")
    for _ in range(100):
        if len(held) == 2:
            break
        phone.wait_for_timeout(100)
    assert set(held) == {"send", "refresh"}, held
    route, answer = held["send"]
    route.fulfill(response=answer, body=before_filing)
    phone.wait_for_function("() => window.renders.length == 1")
    held["refresh"].continue_()
    expect(thread).to_contain_text("Second question", timeout=5_000)
    assert phone.evaluate("window.renders") == [False, True]
    phone.unroute(SEND)
    phone.unroute(THREAD)

    # 2. The agent's reply re-renders the thread and the composer together. While its answer is
    # on the way the contact writes again and the live refresh shows it; the reply's answer,
    # read before that, lands last. It is swapped (the composer must clear) and the thread,
    # older than what was shown, fetches itself again.
    page.goto(base + "/inbox/")
    page.locator("#conversation-list a.conv", has_text=NAME).click()
    page.wait_for_url(re.compile(r".*/inbox/\d+/"))
    expect(page.locator("#live-state")).to_have_text("Live", timeout=10_000)
    agent_thread = page.locator("#thread")

    def contact_writes_meanwhile(route):
        answer = route.fetch()
        phone.fill("#sandbox-text", "Third question, sent meanwhile")
        phone.click("#sandbox-send")
        page.wait_for_function(
            "() => { const t = document.querySelector('#thread'); return t.textContent.includes('Third question')"
            " && t.querySelector('.bubble.outbound[data-status=delivered]'); }", timeout=10_000)
        page.wait_for_timeout(300)  # and nothing else is on its way
        route.fulfill(response=answer)

    page.route(REPLY, contact_writes_meanwhile)
    with page.expect_response(REPLY) as answered:
        page.fill("#composer", "Here is the answer")
        page.click("#send-reply")
    assert "Third question" not in answered.value.text()  # the answer is older than the page
    page.unroute(REPLY)
    expect(page.locator("#composer")).to_have_value("")
    expect(agent_thread).to_contain_text("Here is the answer")
    expect(agent_thread).to_contain_text("Third question, sent meanwhile", timeout=3_000)

    # 3. A message arrives while the thread's own refresh is out, and that refresh read the
    # thread before it. The thread is fetched once more when the refresh is back (htmx's own
    # queued request would leave from the element the refresh replaces, and never be sent).
    held = {}

    def hold_the_first(route):
        if "refresh" in held:
            route.continue_()
        else:
            held["refresh"] = (route, route.fetch())

    page.route(AGENT_THREAD, hold_the_first)
    page.evaluate("""() => { window.liveEvents = 0;
        document.addEventListener('whatsnap:live', () => window.liveEvents++); }""")
    for _ in range(10):  # (a refresh already out when asked for one: htmx waits for it first)
        page.wait_for_load_state("networkidle")
        page.evaluate("htmx.trigger(document.getElementById('thread'), 'live')")
        for _ in range(10):
            if held:
                break
            page.wait_for_timeout(100)
        if held:
            break
    assert held, "the thread's refresh did not leave"
    phone.fill("#sandbox-text", "Fourth question, during a refresh")
    phone.click("#sandbox-send")
    expect(thread).to_contain_text("Fourth question, during a refresh", timeout=10_000)  # filed
    page.wait_for_function("() => window.liveEvents > 0", timeout=10_000)
    page.wait_for_timeout(500)  # its event has reached the agent's page too
    route, answer = held["refresh"]
    assert "Fourth question" not in answer.text()
    route.fulfill(response=answer)
    expect(agent_thread).to_contain_text("Fourth question, during a refresh", timeout=5_000)
    page.unroute(AGENT_THREAD)

    # 4. An event that arrives just after a live element was swapped in, before htmx has wired
    # the new element (it does when the swap settles, ~20 ms; 1.5 s here to make the window
    # wide), is not lost: the element fetches itself once it is wired. The page's websocket is
    # relayed through the test, which holds the event back until that moment.
    watcher = context.new_page()
    relay = {"holding": False, "held": [], "page_side": None}

    def relay_socket(ws):
        server = ws.connect_to_server()
        relay["page_side"] = ws
        server.on_message(lambda m: relay["held"].append(m) if relay["holding"] else ws.send(m))

    watcher.route_web_socket(re.compile(r".*/ws/live/$"), relay_socket)
    watcher.goto(page.url)
    expect(watcher.locator("#live-state")).to_have_text("Live", timeout=10_000)
    watcher.wait_for_load_state("networkidle")
    held = {}
    watcher.route(AGENT_THREAD, lambda route: held.update(refresh=(route, route.fetch())) if not held else route.continue_())
    watcher.evaluate("""() => { htmx.config.defaultSettleDelay = 1500; window.swapped = 0;
        document.addEventListener('htmx:afterSwap', () => window.swapped++);
        htmx.trigger(document.getElementById('thread'), 'live'); }""")
    for _ in range(100):
        if held:
            break
        watcher.wait_for_timeout(100)
    assert held, "the thread's refresh did not leave"
    relay["holding"] = True
    phone.fill("#sandbox-text", "Fifth question, while the thread settles")
    phone.click("#sandbox-send")
    expect(thread).to_contain_text("Fifth question", timeout=10_000)  # filed
    for _ in range(50):
        if relay["held"]:
            break
        watcher.wait_for_timeout(100)
    assert relay["held"], "no live event came"
    route, answer = held["refresh"]
    assert "Fifth question" not in answer.text()
    route.fulfill(response=answer)
    watcher.wait_for_function("() => window.swapped > 0")
    relay["holding"] = False
    for message in relay["held"]:
        relay["page_side"].send(message)
    assert watcher.evaluate("() => document.getElementById('thread').classList.contains('htmx-settling')")  # in the window
    expect(watcher.locator("#thread")).to_contain_text("Fifth question, while the thread settles", timeout=5_000)
    watcher.unroute(AGENT_THREAD)
    watcher.close()

    # 5. Nothing typed is lost to a send on its way. Quick sends from the phone each go out
    # (Send waits while one is out; htmx would queue the next on the form and drop all but the
    # last), and text typed in the inbox while a reply is being sent stays in the box.
    for i in range(5):
        phone.fill("#sandbox-text", f"Quick {i}")
        phone.click("#sandbox-send")
    for i in range(5):
        expect(page.locator("#thread .bubble", has_text=f"Quick {i}")).to_have_count(1, timeout=10_000)

    def type_meanwhile(route):
        answer = route.fetch()
        expect(page.locator("#composer")).to_have_value("")  # cleared as it left
        page.locator("#composer").press_sequentially("Next thought")
        route.fulfill(response=answer)

    page.route(REPLY, type_meanwhile)
    with page.expect_response(REPLY):
        page.fill("#composer", "A slow reply")
        page.click("#send-reply")
    page.unroute(REPLY)
    expect(agent_thread.locator(".bubble.outbound", has_text="A slow reply")).to_have_count(1)
    expect(page.locator("#composer")).to_have_value("Next thought")

    # a send that does not go through gives its text back, above what was typed since
    page.route(REPLY, lambda route: route.fulfill(status=500, body="Server error"))
    page.fill("#composer", "This one fails")
    with page.expect_response(REPLY):
        page.click("#send-reply")
    page.unroute(REPLY)
    expect(page.locator("#composer")).to_have_value("This one fails")
    expect(agent_thread.locator(".bubble", has_text="This one fails")).to_have_count(0)
    context.close()
