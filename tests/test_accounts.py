from datetime import datetime, timezone as dt_tz

import pytest

from django.test import Client

from accounts.models import Account, AccountEvent, Membership
from accounts.providers.base import InboundMessage
from conversations.models import Conversation
from conversations.services import webhook_events_record
from accounts.services import (
    account_archive,
    account_connect,
    account_create,
    account_set_status,
)
from contacts.models import Tag
from whatsnap.errors import ApplicationError


def test_create_gives_unique_linked_tag(location):
    account = account_create(location=location, kind="whatsapp", backend="sandbox", name="Sales")
    assert account.slug == "sales"
    tag = Tag.objects.get(account=account)
    assert tag.name == "whatsnap-account-sales" and tag.location == location


def test_slug_clash_is_refused_with_suggestion(location):
    account_create(location=location, kind="whatsapp", backend="sandbox", name="Sales")
    with pytest.raises(ApplicationError) as exc:
        account_create(location=location, kind="twilio", backend="sandbox", name="sales")
    assert exc.value.code == "slug_taken"
    assert exc.value.extra["suggestion"] == "sales-2"
    assert "whatsnap-account-sales" in exc.value.message
    assert Account.objects.count() == 1


def test_same_name_in_another_location_is_fine(location, other_location):
    account_create(location=location, kind="whatsapp", backend="sandbox", name="Sales")
    other = account_create(location=other_location, kind="whatsapp", backend="sandbox", name="Sales")
    assert other.tag.name == "whatsnap-account-sales"


def test_rename_keeps_tag_link(location):
    account = account_create(location=location, kind="whatsapp", backend="sandbox", name="Sales")
    account.name = "Sales team NYC"
    account.save()
    assert Tag.objects.get(account=account).name == "whatsnap-account-sales"


def test_unusable_name_is_refused(location):
    with pytest.raises(ApplicationError):
        account_create(location=location, kind="whatsapp", backend="sandbox", name="!!!")


def test_backend_must_serve_kind(location):
    with pytest.raises(ApplicationError):
        account_create(location=location, kind="whatsapp", backend="twilio", name="x")


def test_whatsapp_sandbox_lifecycle_qr_then_link(location):
    from accounts.providers import get_provider
    from accounts.services import account_apply_events

    account = account_create(location=location, kind="whatsapp", backend="sandbox", name="Sales")
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "qr_pending" and account.qr_payload.startswith("http://testserver/sandbox/")
    nonce = account.qr_payload.split("link=")[1]
    account_apply_events(account=account, events=get_provider("sandbox").link(account, nonce="stale", phone="+14155550100"))
    account.refresh_from_db()
    assert account.status == "qr_pending"
    account_apply_events(account=account, events=get_provider("sandbox").link(account, nonce=nonce, phone="+14155550100"))
    account.refresh_from_db()
    assert account.status == "connected" and account.phone_number == "+14155550100" and account.qr_payload == ""
    history = list(AccountEvent.objects.filter(account=account).order_by("at", "id").values_list("from_status", "to_status"))
    assert history == [("new", "connecting"), ("connecting", "qr_pending"), ("qr_pending", "connected")]


def test_qr_refresh_gives_a_new_code_without_filling_the_history(location, admin_client, agent_client):
    account = account_create(location=location, kind="whatsapp", backend="sandbox", name="Sales")
    account_connect(account=account)
    account.refresh_from_db()
    first, events = account.qr_payload, AccountEvent.objects.filter(account=account).count()
    for client in (admin_client, agent_client, agent_client):  # the page refreshes it for whoever looks
        response = client.post(f"/accounts/{account.pk}/qr/refresh/", HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and b"<svg" in response.content
    account.refresh_from_db()
    assert account.status == "qr_pending" and account.qr_payload != first
    assert AccountEvent.objects.filter(account=account).count() == events


def test_expired_qr_does_not_link(location):
    from django.utils import timezone

    from accounts.providers import get_provider

    account = account_create(location=location, kind="whatsapp", backend="sandbox", name="Sales")
    account_connect(account=account)
    account.refresh_from_db()
    nonce = account.qr_payload.split("link=")[1]
    Account.objects.filter(pk=account.pk).update(qr_expires_at=timezone.now() - timezone.timedelta(seconds=1))
    account.refresh_from_db()
    events = get_provider("sandbox").link(account, nonce=nonce, phone="+14155550100")
    assert events[0].status == "qr_pending" and "expired" in events[0].reason


def test_status_noop_records_no_history(location):
    account = account_create(location=location, kind="android_sms", backend="sandbox", name="x", phone_number="+14155550111")
    account_set_status(account=account, status="new")
    assert not AccountEvent.objects.exists()


def test_archive_keeps_contacts_and_frees_name(location, sandbox_account):
    from datetime import datetime, timezone as tz

    from accounts.providers.base import InboundMessage
    from contacts.models import Contact
    from conversations.services import webhook_events_record

    webhook_events_record(account=sandbox_account, events=[
        InboundMessage(provider_id="1", from_phone="+14155550123", name="", text="hi", at=datetime.now(tz.utc))
    ])
    account_archive(account=sandbox_account)
    contact = Contact.objects.get()
    assert contact.tags.get().name == "whatsnap-account-sales"
    assert contact.conversations.count() == 1
    again = account_create(location=location, kind="android_sms", backend="sandbox", name="Sales", phone_number="+14155550112")
    assert again.tag.name == "whatsnap-account-sales"


# --- pages ---------------------------------------------------------------------------------
def test_add_account_page_offers_three_kinds(admin_client):
    html = admin_client.get("/accounts/add/").content.decode()
    for text in ("WhatsApp", "Connect via QR code scan", "SMS/iMessage (P2P)", "Connect your personal phone or Mac",
                 "Twilio SMS", "Configure enterprise SMS with your Twilio number"):
        assert text in html


def test_add_whatsapp_sandbox_shows_qr(admin_client, location):
    response = admin_client.post("/accounts/add/whatsapp/", {"name": "Sales", "backend": "sandbox"})
    account = Account.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/accounts/{account.pk}/"
    html = admin_client.get(response["Location"]).content.decode()
    assert "<svg" in html and 'id="pairing-code"' in html and "Sandbox" in html


def test_add_form_errors_inline(admin_client, location):
    account_create(location=location, kind="whatsapp", backend="sandbox", name="Sales")
    response = admin_client.post("/accounts/add/twilio/", {"name": "Sales", "backend": "twilio", "phone_number": "12"},
                                 HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "not a valid phone number" in html or "is not a phone number" in html
    assert "Required to connect to Twilio." in html
    response = admin_client.post("/accounts/add/p2p/", {"name": "Sales", "device": "android_sms", "backend": "sandbox",
                                                        "phone_number": "+14155550123"}, HTTP_HX_REQUEST="true")
    assert "already used" in response.content.decode() and "sales-2" in response.content.decode()
    assert Account.objects.count() == 1


def test_p2p_sandbox_connects_immediately(admin_client):
    admin_client.post("/accounts/add/p2p/", {"name": "Mac", "device": "imessage", "backend": "sandbox", "phone_number": "+14155550123"})
    account = Account.objects.get()
    assert (account.kind, account.status, account.phone_number) == ("imessage", "connected", "+14155550123")


def test_delete_confirmation_says_contacts_stay(admin_client, sandbox_account):
    html = admin_client.get(f"/accounts/{sandbox_account.pk}/delete/").content.decode()
    assert "stay" in html
    admin_client.post(f"/accounts/{sandbox_account.pk}/delete/")
    sandbox_account.refresh_from_db()
    assert sandbox_account.archived_at is not None
    assert admin_client.get(f"/accounts/{sandbox_account.pk}/").status_code == 404


def test_diagnostics_explain_expired_qr(admin_client, location):
    from django.utils import timezone

    account = account_create(location=location, kind="whatsapp", backend="sandbox", name="Sales")
    account_connect(account=account)
    Account.objects.filter(pk=account.pk).update(qr_expires_at=timezone.now() - timezone.timedelta(minutes=1))
    html = admin_client.get(f"/accounts/{account.pk}/diagnostics/").content.decode()
    assert "QR code expired" in html


def test_sandbox_phone_writes_into_account(admin_client, sandbox_account):
    from conversations.models import Message

    response = admin_client.post(f"/sandbox/{sandbox_account.pk}/send/", {"phone": "+14155550177", "name": "Bob", "text": "Hello"})
    assert response.status_code == 200 and "Hello" in response.content.decode()
    message = Message.objects.get()
    assert message.conversation.contact.name == "Bob"


def test_admin_pages_load(db):
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(staff)
    for url in ("/admin/", "/admin/accounts/account/", "/admin/accounts/location/", "/admin/contacts/tag/",
                "/admin/contacts/contact/", "/admin/conversations/inboundevent/", "/admin/ghl/outboxitem/"):
        assert client.get(url).status_code == 200, url
    assert "WhatSnap administration" in client.get("/admin/").content.decode()


def test_setup_webhook_url_with_secret_only_for_admins(admin_client, agent_client, location):
    account = account_create(location=location, kind="imessage", backend="bluebubbles", name="mac",
                             phone_number="+14155550112", credentials={"server_url": "http://127.0.0.1:9", "password": "pw"})
    assert account.webhook_secret in admin_client.get(f"/accounts/{account.pk}/").content.decode()
    assert account.webhook_secret not in agent_client.get(f"/accounts/{account.pk}/").content.decode()


@pytest.fixture
def superuser_client(db):
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    return client


def _admin_form(client, url) -> dict:
    """The change form's current values, as the browser would post them back."""
    import re

    html = client.get(url).content.decode()
    data = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html):
        data[name] = value
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        data[name] = body.strip()
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*selected', options)
        data[name] = chosen.group(1) if chosen else ""
    return {k: v.replace("&quot;", '"') for k, v in data.items()}


def test_admin_account_settings_are_validated_and_audited(superuser_client, sandbox_account, other_location):
    from django.contrib.auth import get_user_model

    from accounts.models import AccountSettingsChange

    url = f"/admin/accounts/account/{sandbox_account.pk}/change/"
    data = _admin_form(superuser_client, url)
    stranger = get_user_model().objects.create_user("stranger")
    Membership.objects.create(user=stranger, location=other_location)
    bad = superuser_client.post(url, {**data, "send_per_minute": "5000", "default_assignee": str(stranger.pk),
                                      "business_hours": '{"mon": [["17:00", "09:00"]]}'})
    assert bad.status_code == 200
    page = bad.content.decode()
    assert "600" in page and "member of this account" in page and "ends before it starts" in page
    assert not AccountSettingsChange.objects.exists()
    good = superuser_client.post(url, {**data, "send_per_minute": "12", "signature": "— Sales team"})
    assert good.status_code == 302
    change = AccountSettingsChange.objects.get()
    assert change.actor.username == "root" and change.changes["send_per_minute"] == [30, 12] and "signature" in change.changes


def test_admin_never_edits_backend_settings_and_never_shows_credentials(superuser_client, location, other_location):
    # a hand-typed config or gateway session name could adopt another account's session
    account = account_create(location=location, kind="imessage", backend="bluebubbles", name="mac", phone_number="+14155550112",
                             credentials={"server_url": "http://127.0.0.1:9", "password": "s3cret-pw"})
    before = Account.objects.values("config", "gateway_resource", "location_id").get(pk=account.pk)
    url = f"/admin/accounts/account/{account.pk}/change/"
    page = superuser_client.get(url).content.decode()
    assert "s3cret-pw" not in page and account.webhook_secret not in page and account.gateway_resource in page  # shown, read-only
    for field in ("credentials", "config", "gateway_resource", "location", "webhook_secret"):
        assert f'name="{field}"' not in page, field
    data = _admin_form(superuser_client, url)
    response = superuser_client.post(url, {**data, "config": '{"instance": "theirs"}', "gateway_resource": "whatsnap-theirs",
                                           "credentials": '{"password": "x"}', "location": str(other_location.pk), "signature": "hi"})
    assert response.status_code == 302
    account = Account.objects.get(pk=account.pk)
    assert Account.objects.values("config", "gateway_resource", "location_id").get(pk=account.pk) == before
    assert account.credentials["password"] == "s3cret-pw" and account.signature == "hi"


def test_admin_assignment_goes_through_the_inbox_service(superuser_client, sandbox_account, location, agent_user):
    from conversations.models import ConversationEvent

    webhook_events_record(account=sandbox_account, events=[
        InboundMessage(provider_id="a1", from_phone="+14155550123", name="", text="hi", at=datetime.now(dt_tz.utc))])
    conversation = Conversation.objects.get()
    url = f"/admin/conversations/conversation/{conversation.pk}/change/"
    data = _admin_form(superuser_client, url)
    response = superuser_client.post(url, {**data, "assignee": str(agent_user.pk), "status": "resolved"})
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.assignee == agent_user and conversation.status == "resolved"
    kinds = list(ConversationEvent.objects.filter(conversation=conversation).values_list("kind", "actor__username"))
    assert ("assigned", "root") in kinds and ("status", "root") in kinds
    snooze = superuser_client.post(url, {**_admin_form(superuser_client, url), "status": "snoozed"})
    assert snooze.status_code == 200 and "time in the future" in snooze.content.decode()
