"""Errors people read (issue 19, points 1 and 2): phone numbers refused in plain words with what
to type instead, forms answered with their error in place (never a bare 404 page), styled error
pages that say why and lead back, and API docs that load nothing from outside."""
import re

import pytest
from django.test import Client

from accounts.services import account_create
from contacts.models import Contact
from whatsnap.phones import normalise_e164

HELP = "Enter the number with its country code, e.g. +1 415 555 0100."


@pytest.mark.parametrize("typed, reason", [
    ("12ab", "“12ab” is not a phone number."),
    ("4155550100", "“4155550100” has no country code."),
    ("+999 123 456", "“+999 123 456” does not start with a country code that exists."),
    ("12", "“12” is not a phone number: it is too short."),
    ("+1 555 000 0000", "“+1 555 000 0000” is not a valid phone number: check the digits."),
    ("", "The phone number is empty."),
])
def test_a_refused_number_says_why_and_what_to_type(typed, reason):
    with pytest.raises(ValueError) as refused:
        normalise_e164(typed)
    assert str(refused.value) == f"{reason} {HELP}"
    assert "(" not in str(refused.value)  # none of the parser's "(1) The string supplied…"


def test_the_example_is_of_the_locations_country_when_known():
    assert normalise_e164("020 7946 0000", default_region="GB") == "+442079460000"
    with pytest.raises(ValueError, match=r"e\.g\. \+44 "):
        normalise_e164("+44 12", default_region="GB")
    assert normalise_e164("+1 415 555 0100") == "+14155550100"  # the example itself is a valid number


def test_add_account_with_a_bad_number_keeps_the_form_with_the_plain_message(admin_client, location):
    response = admin_client.post("/accounts/add/p2p/", {"name": "Shop", "device": "android_sms", "backend": "sandbox",
                                                        "phone_number": "12ab"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<form" in html and 'id="connect-account"' in html
    assert HELP in html and "did not seem" not in html


def test_the_api_refuses_a_bad_number_with_the_same_words(api_client, location):
    response = api_client.post("/api/v1/contacts/", {"phone": "12ab"}, format="json")
    assert response.status_code == 400 and HELP in str(response.json())


def test_merging_a_number_nobody_has_is_said_on_the_contact_page(admin_client, location):
    contact = Contact.objects.create(location=location, phone="+14155550142", name="Ada")
    response = admin_client.post(f"/contacts/{contact.pk}/", {"action": "merge", "source": "+1 415 555 0999"}, follow=True)
    html = response.content.decode()
    assert response.status_code == 200 and 'role="alert"' in html
    assert "No contact with the number or id “+1 415 555 0999” in this location" in html
    response = admin_client.post(f"/contacts/{contact.pk}/", {"action": "merge", "source": "999999"}, follow=True)
    assert response.status_code == 200 and "No contact with the number or id “999999”" in response.content.decode()


def test_an_error_message_is_marked_as_an_error_not_a_success(admin_client, location):
    response = admin_client.post("/tags/create/", {"action": "create", "name": ""}, follow=True)
    assert re.search(r'<li class="error" role="alert">[^<]+</li>', response.content.decode())
    response = admin_client.post("/tags/create/", {"action": "create", "name": "vip"}, follow=True)
    assert '<li class="success">' in response.content.decode()


def test_error_pages_say_why_and_lead_back(admin_client, agent_client, location):
    missing = admin_client.get("/accounts/987654/")
    assert missing.status_code == 404
    html = missing.content.decode()
    assert 'id="error-page"' in html and "Not found" in html and "Back to WhatSnap" in html and "Acme" in html
    refused = agent_client.get("/accounts/add/")
    assert refused.status_code == 403
    html = refused.content.decode()
    assert 'id="error-page"' in html and "Only location admins can do this." in html and 'href="/"' in html


def test_a_form_sent_without_its_security_token_gets_the_styled_page(admin_user, location):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post("/tags/create/", {"action": "create", "name": "vip"})
    html = response.content.decode()
    assert response.status_code == 403
    assert 'id="error-page"' in html and "This page expired" in html and "Nothing was saved" in html


def test_htmx_failures_are_shown_by_a_script_every_page_loads(admin_client, location):
    html = admin_client.get("/settings/").content.decode()
    assert re.search(r'<script src="/static/whatsnap/errors\.js[^"]*" defer></script>\s*</body>', html) or \
        "whatsnap/errors.js" in html.split("</main>")[1]


def test_api_docs_load_swagger_ui_from_our_own_static_files(client, db):
    html = client.get("/api/v1/docs/").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in s for s in sources) and any("swagger-ui.css" in s for s in sources)
    assert all(s.startswith("/") for s in sources), sources  # nothing from a CDN
    assert "cdn." not in html and "https://" not in html.replace("https://swagger.io", "")
    assert client.get("/api/v1/schema/").status_code == 200


def test_a_duplicate_account_name_is_said_on_the_name(admin_client, location):
    account_create(location=location, kind="whatsapp", backend="sandbox", name="Sales")
    html = admin_client.post("/accounts/add/whatsapp/", {"name": "Sales", "backend": "sandbox"},
                             HTTP_HX_REQUEST="true").content.decode()
    assert "<form" in html and "already used by another account" in html
