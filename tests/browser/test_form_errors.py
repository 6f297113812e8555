"""Every form shows its errors in place (issue 19, point 1): one browser session submits each
invalid case of each form and sees its message next to the form, the form still on screen.
HTMX requests that fail (network, 5xx) show a visible message; 403/404 pages say why and lead
back; the API docs load from our own static files with every outside address blocked (point 2)."""
import re
import uuid

import pytest

from tests.browser.conftest import add_sandbox_android, log_in_as_admin

pytestmark = [pytest.mark.browser]

PHONE_HELP = "Enter the number with its country code, e.g. +1 415 555 0100"


def _error_near(page, form_selector: str, text: str):
    """The form is still there and `text` is shown inside it or in the page's error messages."""
    from playwright.sync_api import expect

    expect(page.locator(form_selector).first).to_be_visible()
    expect(page.locator(f"{form_selector}, ul.messages li.error").filter(has_text=text).first).to_be_visible()


def test_each_form_shows_each_error_in_place(running_product, browser):
    from playwright.sync_api import expect

    base, uniq = running_product["base"], uuid.uuid4().hex[:6]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    log_in_as_admin(page, running_product)
    name = f"Errors {uniq}"
    first_id = add_sandbox_android(page, base, name=name, phone="+14155550177")

    # Add Account (HTMX): empty name, the same name again, a bad number, missing Twilio credentials
    page.goto(base + "/accounts/add/")
    page.click("[data-choice=whatsapp]")
    page.click("#connect-account")
    _error_near(page, "#add-form form", "This field is required.")
    page.fill("#id_name", name)
    page.select_option("#id_backend", "sandbox")
    page.click("#connect-account")
    _error_near(page, "#add-form form", "is already used by another account")
    page.click("[data-choice=p2p]")
    page.fill("#id_name", f"Phone {uniq}")
    page.select_option("#id_device", "android_sms")
    page.select_option("#id_backend", "sandbox")
    page.fill("#id_phone_number", "12ab")
    page.click("#connect-account")
    _error_near(page, "#add-form form", PHONE_HELP)
    expect(page.locator("#add-form")).not_to_contain_text("did not seem to be")  # not the parser's words
    page.fill("#id_phone_number", "4155550100")
    page.click("#connect-account")
    _error_near(page, "#add-form form", "has no country code")
    page.click("[data-choice=twilio]")
    page.fill("#id_name", f"Twilio {uniq}")
    page.select_option("#id_backend", "twilio")
    page.fill("#id_phone_number", "+1 555")
    page.click("#connect-account")
    _error_near(page, "#add-form form", PHONE_HELP)
    _error_near(page, "#add-form form", "Required to connect to Twilio.")

    # Account settings: a pace that is not a number
    account_id = add_sandbox_android(page, base, name=f"Paced {uniq}", phone="+14155550178")
    page.goto(f"{base}/accounts/{account_id}/settings/")
    page.fill("#id_send_per_minute", "9999")
    page.click("#save-settings")
    _error_near(page, "main form", "600")

    # New conversation (HTMX): a bad number, no text
    page.goto(base + "/inbox/new/")
    page.select_option("#new-account", str(first_id))
    page.fill("#new-to", "12ab")
    page.fill("#new-text", "Hello")
    page.click("#new-conversation-form button[type=submit]")
    _error_near(page, "#new-conversation-form", "Enter the number with its country code")
    page.fill("#new-to", "+14155550142")
    page.fill("#new-text", "")
    page.click("#new-conversation-form button[type=submit]")
    _error_near(page, "#new-conversation-form", "Write the message first.")
    page.fill("#new-text", "Hello from the errors test")
    page.click("#new-conversation-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/inbox/\d+/"))

    # Contact: merging a number nobody has is said on the contact's page, not a 404
    page.goto(base + "/contacts/?q=4155550142")
    page.click("table a[href*='/contacts/']")
    page.fill("input[name=source]", "+1 415 555 0999")
    page.click("form:has(input[name=source]) button")
    _error_near(page, "main", "No contact with the number")

    # Tags: empty, and a name that exists
    page.goto(base + "/tags/")
    page.click("form[action$='/tags/create/'] button")
    expect(page.locator("ul.messages li.error")).to_be_visible()
    page.fill("form[action$='/tags/create/'] input[name=name]", f"vip-{uniq}")
    page.click("form[action$='/tags/create/'] button")
    page.fill("form[action$='/tags/create/'] input[name=name]", f"vip-{uniq}")
    page.click("form[action$='/tags/create/'] button")
    expect(page.locator("ul.messages li.error")).to_be_visible()

    # Templates: nothing filled in; an unknown merge field
    page.goto(base + "/templates/")
    page.click("#save-template")
    _error_near(page, "#template-form", "This field is required.")
    page.fill("#id_name", f"Hours {uniq}")
    page.fill("#id_body", "Hi {{nope}}")
    page.click("#save-template")
    _error_near(page, "#template-form", "nope")

    # Broadcasts: nothing filled in
    page.goto(base + "/broadcasts/new/")
    page.click("#broadcast-submit")
    _error_near(page, "#broadcast-form", "Choose at least one tag.")

    # Routing: a rule and a team with nothing filled in; a team name that exists
    page.goto(base + "/routing/rules/add/")
    page.click("main form button.primary")
    _error_near(page, "main form", "This field is required.")
    page.goto(base + "/routing/teams/add/")
    page.fill("#id_name", f"Team {uniq}")
    page.click("main form button.primary")
    page.goto(base + "/routing/teams/add/")
    page.fill("#id_name", f"Team {uniq}")
    page.click("main form button.primary")
    _error_near(page, "main form", "A team with this name exists already.")

    # Settings: my time zone, the location's country, a new login without a name, an invitation to nobody
    page.goto(base + "/settings/")
    page.fill("#me-tz", "Mars/Olympus")
    page.click("#my-preferences form button.primary")
    _error_near(page, "#my-preferences", "Mars/Olympus")
    page.fill("#loc-country", "QQ")
    page.click("#location-details form button.primary")
    _error_near(page, "#location-details", "QQ")
    page.click("form[action$='/settings/members/add/'] button")
    expect(page.locator("#members .errorlist").first).to_be_visible()
    page.click("#invite")
    expect(page.locator("#members .errorlist").first).to_be_visible()

    # Password: the old one wrong
    page.goto(base + "/settings/password/")
    page.fill("#id_old_password", "not-my-password")
    page.fill("#id_new_password1", "a-New-pass-2026")
    page.fill("#id_new_password2", "a-New-pass-2026")
    page.click("main form button")
    _error_near(page, "main form", "incorrectly")
    context.close()


def test_failed_requests_and_error_pages_are_shown(running_product, browser):
    from playwright.sync_api import expect

    base = running_product["base"]
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    log_in_as_admin(page, running_product)

    # an HTMX request that never reaches the server, then one the server fails: each says so
    page.goto(base + "/accounts/add/")
    page.click("[data-choice=whatsapp]")
    page.route("**/accounts/add/whatsapp/", lambda route: route.abort() if route.request.method == "POST" else route.continue_())
    page.fill("#id_name", "never arrives")
    page.click("#connect-account")
    expect(page.locator("#request-error")).to_be_visible()
    expect(page.locator("#request-error")).to_contain_text("No connection to WhatSnap")
    page.click("#request-error button")
    expect(page.locator("#request-error")).to_be_hidden()
    page.unroute("**/accounts/add/whatsapp/")
    page.route("**/accounts/add/whatsapp/", lambda route: route.fulfill(
        status=500, content_type="text/html", body=open("templates/500.html").read())
        if route.request.method == "POST" else route.continue_())
    page.click("#connect-account")
    expect(page.locator("#request-error")).to_contain_text("Something went wrong on our side")
    expect(page.locator("#add-form form")).to_be_visible()  # what was typed is still there
    expect(page.locator("#id_name")).to_have_value("never arrives")
    page.unroute("**/accounts/add/whatsapp/")

    # 404: says why, leads back
    response = page.goto(base + "/accounts/987654/")
    assert response.status == 404
    expect(page.locator("#error-page h1")).to_have_text("Not found")
    page.click("#error-page a.btn")
    expect(page).to_have_url(re.compile(r".*/inbox/"))

    # 403: an agent on an admin page
    agent = browser.new_context().new_page()
    agent.goto(base + "/")
    agent.fill("#id_username", "agent")
    agent.fill("#id_password", running_product["logins"]["agent"])
    agent.click("button[type=submit]")
    agent.wait_for_url(re.compile(r".*/inbox/"))
    response = agent.goto(base + "/accounts/add/")
    assert response.status == 403
    expect(agent.locator("#error-page")).to_contain_text("Only location admins can do this.")
    expect(agent.locator("#error-page a[href='/']")).to_be_visible()
    agent.context.close()
    context.close()


def test_api_docs_load_with_every_outside_address_blocked(running_product, browser):
    from playwright.sync_api import expect

    base = running_product["base"]
    context = browser.new_context()
    outside = []

    def only_loopback(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.goto(base + "/api/v1/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("WhatSnap API", timeout=15_000)
    expect(page.locator(".opblock-tag").first).to_be_visible()
    assert outside == []
    context.close()
