"""Issue 19 as a hostile tenant would try it (attachments and their signed links, contacts' CSV
import/export and custom fields, the inbox tabs, notifications, the fair queue): another
location's member, an agent, an anonymous visitor and an API token. Loopback only."""
import json

import pytest
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.services import account_connect, account_create
from accounts.providers.sandbox import sign
from contacts.csv_export import export_rows
from contacts.fields import field_define
from contacts.models import Contact, ContactImport, CustomField
from conversations.models import Conversation, Message, Upload
from conversations.upload_links import SALT, backend_media, upload_token
from routing.models import Team
from tests.test_api_support import *  # noqa: F401,F403  (fixtures)
from tests.test_api_support import receive

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 200
XSS = '<img src=x onerror=alert(1)>'


@pytest.fixture(autouse=True)
def storage_dir(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "uploads")
    return tmp_path / "uploads"


@pytest.fixture(autouse=True)
def no_pacing_waits(monkeypatch):
    monkeypatch.setattr("conversations.pacing.sleep", lambda seconds: None)


def _sandbox(location, name="Other sandbox"):
    account = account_create(location=location, kind="android_sms", backend="sandbox", name=name, phone_number="+14155550112")
    account_connect(account=account)
    account.refresh_from_db()
    return account


@pytest.fixture
def conversation(sandbox_account):
    receive(sandbox_account, phone="+14155550123", name="Ada", text="my secret order details")
    return Conversation.objects.select_related("contact", "account").get(account=sandbox_account)


@pytest.fixture
def other_conversation(other_location):
    account = _sandbox(other_location)
    receive(account, phone="+14155550177", name="Globex customer", text="globex secret")
    return Conversation.objects.get(account=account)


def _upload(client, conversation, name="cat.png", data=PNG, content_type="image/png"):
    return client.post(f"/inbox/{conversation.pk}/uploads/", {"file": SimpleUploadedFile(name, data, content_type)})


def _other_upload(outsider, other_conversation):
    client = Client()
    client.force_login(outsider)
    response = _upload(client, other_conversation, "globex-secret.png")
    assert response.status_code == 201, response.content
    return Upload.objects.get(pk=response.json()["id"])


# --- attachments: another location's files ---------------------------------------------------------
def test_another_locations_upload_is_neither_read_nor_removed_nor_sent(admin_client, outsider, conversation,
                                                                       other_conversation):
    theirs = _other_upload(outsider, other_conversation)
    assert admin_client.get(f"/inbox/uploads/{theirs.pk}/").status_code == 404
    assert admin_client.post(f"/inbox/uploads/{theirs.pk}/remove/").status_code == 404
    assert Upload.objects.filter(pk=theirs.pk).exists()
    # named in my composer's post: refused, nothing sent, their file not claimed
    before = Message.objects.count()
    response = admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "x", "mode": "reply", "attachment": theirs.pk},
                                 HTTP_HX_REQUEST="true")
    assert "no longer there" in response.content.decode()
    assert Message.objects.count() == before and Upload.objects.get(pk=theirs.pk).message_id is None
    # and uploading into their conversation, or through their account
    assert _upload(admin_client, other_conversation).status_code == 404
    assert admin_client.post(f"/inbox/{conversation.pk}/uploads/", {
        "file": SimpleUploadedFile("a.png", PNG, "image/png"), "account": other_conversation.account_id}).status_code == 404
    assert not Upload.objects.filter(location=conversation.location).exists()


def test_anonymous_visitor_gets_nothing_but_through_a_valid_signed_link(conversation, admin_client, outsider,
                                                                         other_conversation):
    mine = Upload.objects.get(pk=_upload(admin_client, conversation).json()["id"])
    theirs = _other_upload(outsider, other_conversation)
    anonymous = Client()
    assert anonymous.get(f"/inbox/uploads/{mine.pk}/").status_code == 302  # to the login page
    good = upload_token(mine)
    assert anonymous.get(f"/media/{good}/cat.png").status_code == 200
    forged = [
        signing.dumps(theirs.pk),  # no salt
        signing.dumps(theirs.pk, salt="another.salt"),
        good.replace(good.split(":")[0], signing.dumps(theirs.pk, salt=SALT).split(":")[0]),  # its value swapped, old signature
        signing.dumps(str(theirs.pk), salt=SALT, key="not-our-secret"),
        "..", "%2e%2e",
    ]
    for token in forged:
        assert anonymous.get(f"/media/{token}/globex-secret.png").status_code == 404, token
    # the name in the link is decoration: a traversal there still serves the signed file only
    response = anonymous.get(f"/media/{good}/..%2F..%2F..%2Fetc%2Fpasswd")
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert b"".join(response.streaming_content) == PNG


def test_served_files_never_run_script(admin_client, conversation):
    """An HTML or SVG file is no media WhatSnap sends; a PNG with HTML after its signature is
    served as image/png, nosniff, sandboxed."""
    for name, data, declared in [("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml"),
                                 ("x.png", b"<html><script>alert(1)</script></html>", "image/png"),
                                 ("x.pdf", b"  %PDF-1.4 <script>", "application/pdf")]:
        assert _upload(admin_client, conversation, name, data, declared).status_code == 400, name
    polyglot = PNG + b"<html><script>alert(1)</script></html>"
    pk = _upload(admin_client, conversation, "poly.html", polyglot, "text/html").json()["id"]
    response = admin_client.get(f"/inbox/uploads/{pk}/")
    assert response["Content-Type"] == "image/png" and response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"] and "default-src 'none'" in response["Content-Security-Policy"]


@pytest.mark.parametrize("name", ["../../etc/evil.png", "..\\..\\evil.png", 'quo"te.png', "tab\tname.png",
                                  "bell\x07.png", "\u202egnp.exe", "a" * 400 + ".png"])
def test_hostile_file_names_stay_inside_the_storage_and_serve(admin_client, conversation, storage_dir, name):
    response = _upload(admin_client, conversation, name)
    assert response.status_code == 201, response.content
    row = Upload.objects.get(pk=response.json()["id"])
    assert "/" not in row.filename and "\\" not in row.filename and len(row.filename) <= 200
    assert row.file.path.startswith(str(storage_dir) + "/uploads/")
    served = admin_client.get(f"/inbox/uploads/{row.pk}/")
    assert served.status_code == 200
    assert "\n" not in served["Content-Disposition"] and "\r" not in served["Content-Disposition"]
    assert Client().get(f"/media/{upload_token(row)}/x").status_code == 200


def test_a_file_over_the_limit_is_refused_before_it_is_stored(admin_client, conversation, settings, storage_dir):
    settings.UPLOAD_MAX_BYTES = 1000
    response = _upload(admin_client, conversation, "big.png", PNG + b"\0" * 2000)
    assert response.status_code == 400 and "files up to" in response.json()["error"]
    assert not Upload.objects.exists()


def test_an_inbound_message_cannot_name_a_stored_upload(sandbox_account, outsider, other_conversation):
    """A webhook (here the sandbox's, signed by the location's own secret) that puts
    {"upload": <id>} in a message's media must not make WhatSnap hand out a signed link to that
    file (GHL's sync posts backend_media's links as the message's attachments)."""
    theirs = _other_upload(outsider, other_conversation)
    body = json.dumps({"id": "in-upload", "from": "+14155550124", "text": "look",
                       "media": [{"upload": theirs.pk, "url": "", "content_type": "image/png"}]}).encode()
    response = Client().post(f"/webhooks/sandbox/{sandbox_account.pk}/", data=body, content_type="application/json",
                             HTTP_X_SANDBOX_SIGNATURE=sign(sandbox_account.webhook_secret, body))
    assert response.status_code == 200
    message = Message.objects.get(provider_message_id="in-upload")
    links = [item.get("url") for item in backend_media(message.media) or []]
    assert not any(upload_token(theirs).split(":")[0] in (link or "") for link in links)
    assert not any("/media/" in (link or "") for link in links)


# --- custom fields ------------------------------------------------------------------------------
@pytest.fixture
def seats(location):
    return field_define(location=location, name="Seats", kind="number")


@pytest.mark.parametrize("value", ["9999999999999999999", "-9999999999999999999.5", "1e18", "1e-30", "123456789012345678.123"])
def test_a_big_number_is_refused_or_stored_never_a_500(api_client, admin_client, location, seats, value):
    contact = Contact.objects.create(location=location, phone="+14155550100")
    response = api_client.patch(f"/api/v1/contacts/{contact.pk}/", {"custom_fields": {"seats": value}}, format="json")
    assert response.status_code in (200, 400), response.content
    form = admin_client.post(f"/contacts/{contact.pk}/fields/", {"seats": value}, HTTP_HX_REQUEST="true")
    assert form.status_code in (200, 422), form.status_code
    listing = admin_client.get("/contacts/", {"f_seats_min": value})
    assert listing.status_code in (200, 302, 422), listing.status_code


def test_a_19_digit_number_is_kept_exactly(api_client, location, seats):
    contact = Contact.objects.create(location=location, phone="+14155550100")
    response = api_client.patch(f"/api/v1/contacts/{contact.pk}/", {"custom_fields": {"seats": "9999999999999999999.1234567891"}},
                                format="json")
    assert response.status_code == 200, response.content
    assert response.json()["custom_fields"]["seats"] == "9999999999999999999.1234567891"


def test_a_big_number_in_an_import_is_a_row_imported_not_an_import_stuck(admin_client, location, seats):
    csv_file = SimpleUploadedFile("n.csv", b"phone,seats\n+14155550100,1e18\n+14155550101,3\n", "text/csv")
    assert admin_client.post("/contacts/import/", {"file": csv_file}).status_code == 302
    imp = ContactImport.objects.get(location=location)
    admin_client.post(f"/contacts/import/{imp.pk}/", {"col_0": "phone", "col_1": "field:seats"})
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.DONE, (imp.status, imp.error)
    assert Contact.objects.filter(location=location).count() == 2


@pytest.mark.parametrize("value", [["a"], {"x": 1}, 12, None, True])
def test_api_custom_field_values_of_the_wrong_type_are_refused(api_client, location, seats, value):
    contact = Contact.objects.create(location=location, phone="+14155550100")
    response = api_client.patch(f"/api/v1/contacts/{contact.pk}/", {"custom_fields": {"seats": value}}, format="json")
    assert response.status_code in (200, 400), response.content
    if response.status_code == 200:
        assert response.json()["custom_fields"].get("seats", "") in ("", "12")


def test_another_locations_custom_fields_are_out_of_reach(api_client, admin_client, location, other_location):
    theirs = field_define(location=other_location, name="Secret", kind="text")
    contact = Contact.objects.create(location=location, phone="+14155550100")
    assert api_client.get(f"/api/v1/custom-fields/{theirs.pk}/").status_code == 404
    assert api_client.patch(f"/api/v1/custom-fields/{theirs.pk}/", {"name": "mine"}, format="json").status_code == 404
    assert api_client.delete(f"/api/v1/custom-fields/{theirs.pk}/").status_code == 404
    response = api_client.patch(f"/api/v1/contacts/{contact.pk}/", {"custom_fields": {"secret": "x"}}, format="json")
    assert response.status_code == 400
    admin_client.post("/contacts/fields/", {"action": "delete", "pk": theirs.pk})
    admin_client.post("/contacts/fields/", {"action": "save", "pk": theirs.pk, "name": "Mine now"})
    assert CustomField.objects.get(pk=theirs.pk).name == "Secret"


def test_an_agent_token_cannot_define_fields(agent_api):
    assert agent_api.post("/api/v1/custom-fields/", {"name": "X", "kind": "text"}, format="json").status_code == 403


def test_custom_field_values_and_names_are_escaped(admin_client, location):
    note = field_define(location=location, name=XSS, kind="text")
    contact = Contact.objects.create(location=location, phone="+14155550100", name=XSS)
    admin_client.post(f"/contacts/{contact.pk}/fields/", {note.key: XSS})
    for page in (f"/contacts/{contact.pk}/", "/contacts/", "/contacts/fields/", "/contacts/new/"):
        html = admin_client.get(page).content.decode()
        assert XSS not in html, page


# --- CSV -------------------------------------------------------------------------------------------
def test_export_is_for_admins_and_formula_safe(admin_client, agent_client, location):
    Contact.objects.create(location=location, phone="+14155550100", name='=HYPERLINK("http://x","y")')
    Contact.objects.create(location=location, phone="+14155550101", name="@SUM(1)")
    assert agent_client.get("/contacts/export.csv").status_code in (302, 403)
    body = b"".join(admin_client.get("/contacts/export.csv").streaming_content).decode()
    assert "'=HYPERLINK" in body and "'@SUM" in body and '\n=' not in body and ',=' not in body
    rows = "".join(export_rows(location, Contact.objects.filter(location=location)))
    assert "'=HYPERLINK" in rows


def test_import_ids_of_another_location_are_404(admin_client, other_location):
    theirs = ContactImport.objects.create(location=other_location, filename="x.csv", stored_name="contact-imports/x.csv",
                                          size=10, headers=["phone"])
    for url in (f"/contacts/import/{theirs.pk}/", f"/contacts/import/{theirs.pk}/report/"):
        assert admin_client.get(url).status_code == 404, url
    assert admin_client.post(f"/contacts/import/{theirs.pk}/discard/").status_code == 404
    assert ContactImport.objects.filter(pk=theirs.pk).exists()


def test_import_report_escapes_what_the_file_said(admin_client, location):
    csv_file = SimpleUploadedFile("x.csv", f"phone,name\n{XSS},Eve\n+14155550100,{XSS}\n".encode(), "text/csv")
    started = admin_client.post("/contacts/import/", {"file": csv_file})
    assert started.status_code == 302
    imp = ContactImport.objects.get(location=location)
    mapped = admin_client.post(f"/contacts/import/{imp.pk}/", {"col_0": "phone", "col_1": "name"})
    assert XSS not in admin_client.get(f"/contacts/import/{imp.pk}/").content.decode() or mapped.status_code == 302
    report = admin_client.get(f"/contacts/import/{imp.pk}/report/").content.decode()
    assert XSS not in report
    assert XSS not in admin_client.get("/contacts/").content.decode()


def test_a_huge_single_line_is_refused_clearly(admin_client, location, settings):
    settings.CONTACT_IMPORT_MAX_BYTES = 5 * 1024 * 1024
    line = b"phone," + b"x" * (1024 * 1024) + b"\n"
    response = admin_client.post("/contacts/import/", {"file": SimpleUploadedFile("big.csv", line, "text/csv")})
    assert response.status_code in (302, 422)
    too_big = admin_client.post("/contacts/import/", {"file": SimpleUploadedFile("big.csv", b"a," * (3 * 1024 * 1024), "text/csv")})
    assert too_big.status_code == 422 and not ContactImport.objects.filter(filename="big.csv", size__gt=5 * 1024 * 1024).exists()


def test_agents_cannot_import(agent_client):
    response = agent_client.post("/contacts/import/", {"file": SimpleUploadedFile("x.csv", b"phone\n+14155550100\n", "text/csv")})
    assert response.status_code in (302, 403) and not ContactImport.objects.exists()


# --- inbox tabs, notifications ---------------------------------------------------------------------
def test_agents_all_tab_is_refused_server_side(agent_client, location, conversation, admin_user):
    Conversation.objects.filter(pk=conversation.pk).update(assignee=admin_user)
    location.agents_see_all = False
    location.save(update_fields=["agents_see_all"])
    page = agent_client.get("/inbox/", {"view": "all"}).content.decode()
    assert "here is Mine" in page and "Ada" not in agent_client.get("/inbox/list/", {"view": "all"}).content.decode()


def test_notification_state_is_my_location_only(agent_client, outsider_client, conversation, agent_user):
    Conversation.objects.filter(pk=conversation.pk).update(assignee=agent_user, unread_count=3)
    assert agent_client.get("/inbox/notifications/").json()["unread"] == 1
    assert outsider_client.get("/inbox/notifications/").json()["unread"] == 0
    assert Client().get("/inbox/notifications/").status_code == 302


def test_notification_preview_is_plain_text_for_the_page(conversation):
    """notify.js shows the preview with textContent / the Notification API (never innerHTML)."""
    source = open("static/whatsnap/notify.js").read()
    assert "innerHTML" not in source


# --- fair queue ------------------------------------------------------------------------------------
def test_teams_of_another_location_are_out_of_reach(api_client, admin_client, other_location):
    theirs = Team.objects.create(location=other_location, name="Globex team")
    assert api_client.get(f"/api/v1/teams/{theirs.pk}/").status_code == 404
    ids = [t["id"] for t in api_client.get("/api/v1/teams/").json()["results"]]
    assert theirs.pk not in ids
    assert "Globex team" not in admin_client.get("/routing/waiting/").content.decode()
    assert Client().get("/routing/waiting/").status_code == 302


def test_a_team_cannot_be_given_another_locations_member(admin_client, location, other_location, outsider):
    response = admin_client.post("/routing/teams/add/", {"name": "Mixed", "strategy": "round_robin", "members": [outsider.pk]})
    assert not Team.objects.filter(name="Mixed", members=outsider).exists(), response.status_code


