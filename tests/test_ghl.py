"""GoHighLevel: install, contact/tag sync, inbound messages, replies typed in GHL, the lossless
outbox across outages, rate limits and token refresh — against a loopback stand-in that
speaks GHL's wire format and enforces its limits."""
import json
from datetime import datetime, timezone as dt_tz
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection as db_connection
from django.test import Client
from django.utils import timezone

from accounts.providers.base import InboundMessage
from accounts.services import account_connect, account_create, account_set_status
from contacts.models import Contact, ContactTag, Tag
from conversations.models import Message
from conversations.services import webhook_events_record
from ghl import sync, user_sync
from ghl.client import acquire_slot
from ghl.models import GhlConnection, GhlMessageLink, OutboxItem
from tests.standins.ghl_standin import GhlStandIn

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ghl(settings):
    standin = GhlStandIn()
    settings.GHL_API_BASE_URL = standin.url
    settings.GHL_AUTHORIZE_URL = standin.url + "/oauth/chooselocation"
    settings.GHL_CLIENT_ID, settings.GHL_CLIENT_SECRET = standin.client_id, standin.client_secret
    settings.GHL_CONVERSATION_PROVIDER_ID = "prov-123"
    settings.GHL_WEBHOOK_PUBLIC_KEY = standin.public_pem
    settings.GHL_TIMEOUT_SECONDS = 2.0
    import ghl.client

    ghl.client._http = None  # pick up the timeout
    yield standin
    standin.close()
    ghl.client._http = None


def install(client: Client, standin: GhlStandIn, ghl_location_id="ghl-loc-1"):
    start = client.get("/ghl/oauth/start")
    assert start.status_code == 302
    query = parse_qs(urlsplit(start["Location"]).query)
    code = standin.issue_code(ghl_location_id)
    return client.get("/ghl/oauth/callback", {"code": code, "state": query["state"][0]}), query


@pytest.fixture
def installed(ghl, admin_client, location):
    response, _ = install(admin_client, ghl)
    assert response.status_code == 302, response.content
    location.refresh_from_db()
    return location


@pytest.fixture
def sales(location):
    account = account_create(location=location, kind="android_sms", backend="sandbox", name="Sales", phone_number="+14155550111")
    account_connect(account=account)
    account.refresh_from_db()
    return account


def inbound(account, pid, phone="+14155550123", name="Ada", text="hello"):
    webhook_events_record(account=account, events=[InboundMessage(provider_id=pid, from_phone=phone, name=name, text=text, at=datetime.now(dt_tz.utc))])


def post_signed(standin, path, payload, *, client=None):
    raw, headers = standin.sign(payload)
    return (client or Client()).post(path, data=raw, content_type="application/json", **headers)


def drain(location):
    GhlConnection.objects.filter(location=location).update(paused_until=None, drain_lease_until=None)
    OutboxItem.objects.filter(location=location, status="pending").update(next_attempt_at=timezone.now())
    return sync.location_drain(location_id=location.pk, sleep=lambda s: None)


# --- install ----------------------------------------------------------------------------------
def test_install_redirects_to_ghl_and_stores_tokens_encrypted(ghl, admin_client, location):
    response, query = install(admin_client, ghl, "ghl-loc-9")
    assert query["client_id"] == [ghl.client_id] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["http://testserver/ghl/oauth/callback"]
    assert "contacts.write" in query["scope"][0].split(" ")
    assert response.status_code == 302 and response["Location"] == "/ghl/"
    location.refresh_from_db()
    assert location.ghl_location_id == "ghl-loc-9"
    connection = GhlConnection.objects.get(location=location)
    token = connection.secrets["access_token"]
    assert token in ghl.access and connection.company_id == "ghl-company-1"
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM ghl_ghlconnection")
        raw = cursor.fetchone()[0]
    assert token not in raw and connection.secrets["refresh_token"] not in raw
    (token_call,) = [c for c in ghl.calls if c.path == "/oauth/token"]
    assert token_call.form["grant_type"] == "authorization_code" and token_call.form["user_type"] == "Location"


def test_install_matches_ghl_users_to_members_by_email(ghl, admin_client, admin_user, location):
    from ghl.models import GhlUser

    admin_user.email = "owner@example.com"
    admin_user.save()
    ghl.users = [{"id": "u-1", "email": "Owner@Example.com", "name": "Owner"}, {"id": "u-2", "email": "x@example.com", "name": "X"}]
    install(admin_client, ghl)
    assert dict(GhlUser.objects.values_list("ghl_user_id", "user")) == {"u-1": admin_user.pk, "u-2": None}
    assert b"no WhatSnap member with this e-mail" in admin_client.get("/ghl/").content


def test_install_refuses_forged_state_and_agents(ghl, admin_client, agent_client, location):
    response = admin_client.get("/ghl/oauth/callback", {"code": ghl.issue_code(), "state": "forged"})
    assert response.status_code == 400 and b"expired or was tampered" in response.content
    assert agent_client.get("/ghl/oauth/start").status_code == 403
    assert not GhlConnection.objects.exists()
    location.refresh_from_db()
    assert location.ghl_location_id == ""


def test_install_with_a_refused_code_says_why(ghl, admin_client, location):
    start = admin_client.get("/ghl/oauth/start")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    response = admin_client.get("/ghl/oauth/callback", {"code": "used-or-wrong", "state": state})
    assert response.status_code == 400 and b"invalid" in response.content
    assert not GhlConnection.objects.exists()


# --- contacts, tags, inbound messages ---------------------------------------------------------
def test_inbound_message_creates_the_ghl_contact_once_with_its_tag_and_posts_the_message(installed, ghl, sales):
    inbound(sales, "p1", text="hello")
    assert len(ghl.contacts) == 1
    contact_ghl = next(iter(ghl.contacts.values()))
    assert contact_ghl["phone"] == "+14155550123" and contact_ghl["name"] == "Ada"
    assert contact_ghl["tags"] == ["whatsnap-account-sales"]
    assert Contact.objects.get().ghl_contact_id == contact_ghl["id"]
    posted = [c.json for c in ghl.api_calls("POST", "/conversations/messages/inbound")]
    assert len(posted) == 1
    body = posted[0]
    message = Message.objects.get()
    assert body["type"] == "SMS" and body["conversationProviderId"] == "prov-123"
    assert body["contactId"] == contact_ghl["id"] and body["message"] == "hello" and body["altId"] == f"wsm-{message.pk}"
    assert GhlMessageLink.objects.get(message=message).origin == "whatsnap"

    before = len(ghl.api_calls())
    inbound(sales, "p2", text="again")
    new_calls = ghl.api_calls()[before:]
    # unchanged contact: no contact call at all, just the message
    assert [(c.method, c.path) for c in new_calls] == [("POST", "/conversations/messages/inbound")]
    assert len(ghl.contacts) == 1
    assert not OutboxItem.objects.exclude(status="done").exists()


def test_one_person_three_accounts_is_one_ghl_contact_with_three_tags(installed, ghl, location):
    for i, name in enumerate(("Sales", "Support", "VIP")):
        account = account_create(location=location, kind="android_sms", backend="sandbox", name=name, phone_number=f"+1415555013{i}")
        account_connect(account=account)
        inbound(account, f"m-{name}")
    assert len(ghl.contacts) == 1
    assert sorted(next(iter(ghl.contacts.values()))["tags"]) == ["whatsnap-account-sales", "whatsnap-account-support", "whatsnap-account-vip"]
    # tags after the first went as additions, never as a replacing upsert
    assert len(ghl.api_calls("POST", "/contacts/upsert")) == 1
    assert len([c for c in ghl.api_calls("POST") if c.path.endswith("/tags")]) == 2


def test_message_type_per_platform(installed, ghl, location, settings):
    settings.GHL_WHATSAPP_PROVIDER_ID = "prov-wa"
    whatsapp = account_create(location=location, kind="whatsapp", backend="sandbox", name="WA", phone_number="+14155550140")
    sms = account_create(location=location, kind="android_sms", backend="sandbox", name="Txt", phone_number="+14155550141")
    for account in (whatsapp, sms):
        account_connect(account=account)
        from accounts.services import account_set_status

        account_set_status(account=account, status="connected", reason="test")
    inbound(whatsapp, "w1", text="via whatsapp")
    inbound(sms, "s1", text="via sms")
    posted = {c.json["message"]: c.json for c in ghl.api_calls("POST", "/conversations/messages/inbound")}
    # GoHighLevel/highlevel-api-docs, docs/marketplace modules/ConversationProviders.md: SMS providers,
    # default or extra, take type "SMS"; the WhatsApp one is an extra SMS provider with its own id
    assert (posted["via whatsapp"]["type"], posted["via whatsapp"]["conversationProviderId"]) == ("SMS", "prov-wa")
    assert (posted["via sms"]["type"], posted["via sms"]["conversationProviderId"]) == ("SMS", "prov-123")
    GhlConnection.objects.update(provider_mode="custom")
    inbound(sms, "s2", text="custom mode")
    body = ghl.api_calls("POST", "/conversations/messages/inbound")[-1].json
    assert (body["type"], body["conversationProviderId"]) == ("SMS", "prov-123")


def test_existing_ghl_contact_is_found_and_keeps_its_own_tags(installed, ghl, sales):
    ghl.contacts["c-existing"] = {"id": "c-existing", "locationId": "ghl-loc-1", "phone": "+14155550123", "name": "Ada L.", "tags": ["vip-from-ghl"], "assignedTo": None}
    inbound(sales, "p1")
    assert len(ghl.contacts) == 1
    assert sorted(ghl.contacts["c-existing"]["tags"]) == ["vip-from-ghl", "whatsnap-account-sales"]
    assert Contact.objects.get().ghl_contact_id == "c-existing"


def test_a_tag_added_after_the_first_sync_costs_one_call(installed, ghl, sales, location):
    from contacts.services import contact_update

    inbound(sales, "p1")
    before = len(ghl.api_calls())
    contact = Contact.objects.get()
    vip = Tag.objects.create(location=location, name="vip")
    contact_update(contact=contact, name=contact.name, tag_ids=[sales.tag.pk, vip.pk])
    drain(location)
    new_calls = [(c.method, c.path) for c in ghl.api_calls()[before:]]
    assert new_calls == [("POST", f"/contacts/{contact.ghl_contact_id}/tags")]


def test_contact_deleted_in_ghl_is_made_again_for_the_next_message(installed, ghl, sales, location):
    inbound(sales, "p1", text="first")
    old_id = Contact.objects.get().ghl_contact_id
    ghl.contacts.pop(old_id)  # someone deleted the contact in GHL
    inbound(sales, "p2", text="second")
    item = OutboxItem.objects.get(operation="inbound_message", payload__message_id=Message.objects.get(text="second").pk)
    assert item.status == "done", item.last_error
    new_id = Contact.objects.get().ghl_contact_id
    assert new_id and new_id != old_id and new_id in ghl.contacts
    assert [m["contactId"] for m in ghl.messages.values() if m["message"] == "second"] == [new_id]
    assert "whatsnap-account-sales" in ghl.contacts[new_id]["tags"]


def test_tag_changes_rename_and_assignee_reach_ghl(installed, ghl, sales, location, admin_user):
    from contacts.services import tag_rename
    from conversations.actions import conversation_assign
    from conversations.models import Conversation
    from ghl.models import GhlUser

    admin_user.email = "owner@example.com"
    admin_user.save()
    ghl.users = [{"id": "ghl-u-1", "email": "OWNER@example.com", "name": "Owner"}]
    connection = GhlConnection.objects.select_related("location").get(location=location)
    assert user_sync.users_sync(connection) == 1
    assert GhlUser.objects.get().user == admin_user
    inbound(sales, "p1")
    ghl_id = Contact.objects.get().ghl_contact_id
    vip = Tag.objects.create(location=location, name="vip")
    from contacts.services import contact_update

    contact = Contact.objects.get()
    contact_update(contact=contact, name="Ada Lovelace", tag_ids=[vip.pk, sales.tag.pk])
    assert sorted(ghl.contacts[ghl_id]["tags"]) == ["vip", "whatsnap-account-sales"]
    assert ghl.contacts[ghl_id]["name"] == "Ada Lovelace"
    tag_rename(tag=vip, name="very-important")
    assert sorted(ghl.contacts[ghl_id]["tags"]) == ["very-important", "whatsnap-account-sales"]
    conversation_assign(conversation=Conversation.objects.get(), assignee=admin_user, actor=admin_user)
    assert ghl.contacts[ghl_id]["assignedTo"] == "ghl-u-1"
    assert not OutboxItem.objects.exclude(status="done").exists()


# --- outages, limits, tokens -------------------------------------------------------------------
def test_ghl_down_then_back_delivers_everything_in_order_without_duplicates(installed, ghl, sales, location):
    ghl.go_down(503)
    inbound(sales, "a1", phone="+14155550123", text="a-1")
    inbound(sales, "b1", phone="+14155550124", name="Bob", text="b-1")
    inbound(sales, "a2", phone="+14155550123", text="a-2")
    connection = GhlConnection.objects.get(location=location)
    assert connection.paused_until is not None and "503" in connection.pause_reason
    assert OutboxItem.objects.filter(status="pending").count() == 5  # 2 upserts + 3 messages, none lost
    assert not OutboxItem.objects.filter(status="failed").exists()
    # while paused, nothing is attempted
    calls = len(ghl.calls)
    assert sync.location_drain(location_id=location.pk) == 0 and len(ghl.calls) == calls
    ghl.recover()
    assert drain(location) == 5
    assert not OutboxItem.objects.exclude(status="done").exists()
    assert len(ghl.contacts) == 2
    texts = [m["message"] for m in ghl.messages.values()]
    assert sorted(texts) == ["a-1", "a-2", "b-1"]
    a_id = Contact.objects.get(phone="+14155550123").ghl_contact_id
    assert [m["message"] for m in ghl.messages.values() if m["contactId"] == a_id] == ["a-1", "a-2"]


def test_timeout_after_ghl_created_the_contact_does_not_create_a_second(installed, ghl, sales, location, settings):
    import ghl.client as client_module

    import time as _time

    settings.GHL_TIMEOUT_SECONDS = 0.3
    client_module._http = None
    ghl.allow_duplicates = True  # an upsert would make a second contact
    ghl.late_answers["/contacts/upsert"] = 0.8  # GHL creates the contact but answers too late
    inbound(sales, "p1")
    assert OutboxItem.objects.filter(status="pending").exists()
    assert len(ghl.contacts) == 1 and not Contact.objects.get().ghl_contact_id
    _time.sleep(0.6)
    drain(location)
    assert not OutboxItem.objects.exclude(status="done").exists()
    # the retry found the contact by phone instead of upserting again
    assert len(ghl.api_calls("POST", "/contacts/upsert")) == 1
    [ghl_contact] = ghl.contacts.values()
    assert Contact.objects.get().ghl_contact_id == ghl_contact["id"]
    assert len(ghl.messages) == 1


def test_message_post_answered_too_late_is_found_in_ghl_not_posted_twice(installed, ghl, sales, location, settings):
    import time as _time

    import ghl.client as client_module

    inbound(sales, "p0", text="earlier")  # so WhatSnap knows the contact's GHL conversation
    settings.GHL_TIMEOUT_SECONDS = 0.3
    client_module._http = None
    ghl.late_answers["/conversations/messages/inbound"] = 0.8  # GHL stores it, the answer comes too late
    inbound(sales, "p1", text="only once")
    item = OutboxItem.objects.get(operation="inbound_message", payload__message_id=Message.objects.get(provider_message_id="p1").pk)
    assert item.status == "pending" and item.unconfirmed_post_at is not None
    _time.sleep(0.6)
    [stored] = [m for m in ghl.messages.values() if m["message"] == "only once"]
    for n in range(150):  # the conversation moved on in GHL: the lost one is on the second page
        ghl.add_provider_message("ghl-loc-1", stored["contactId"], f"later {n}")
    settings.GHL_TIMEOUT_SECONDS = 2.0
    client_module._http = None
    drain(location)
    item.refresh_from_db()
    assert item.status == "done" and "not posted again" in item.result and item.unconfirmed_post_at is None
    assert [m["message"] for m in ghl.messages.values()].count("only once") == 1
    assert len(ghl.api_calls("POST", "/conversations/messages/inbound")) == 2  # p0, and p1 once
    assert len([c for c in ghl.api_calls("GET", "/conversations/conv-") if c.query.get("lastMessageId")]) == 1
    assert not ghl.api_calls("GET", "/conversations/search")  # the known conversation had it
    link = GhlMessageLink.objects.get(message__provider_message_id="p1")
    assert link.ghl_message_id == stored["id"] and link.ghl_conversation_id == stored["conversationId"]


def test_post_that_never_left_costs_no_lookup(installed, ghl, sales, location):
    inbound(sales, "p0")  # the contact exists in GHL
    import ghl.client as client_module

    ghl.close()  # connection refused: the post never left
    client_module._http = None  # no kept-alive connection to the closed server
    inbound(sales, "p1", text="refused")
    item = OutboxItem.objects.filter(operation="inbound_message").order_by("-id").first()
    assert item.status == "pending" and item.unconfirmed_post_at is None and "unreachable" in item.last_error


def test_post_interrupted_before_reaching_ghl_is_looked_up_then_posted_once(installed, ghl, sales, location):
    ghl.go_down(503)
    inbound(sales, "p1", text="after the crash")
    item = OutboxItem.objects.get(operation="inbound_message")
    assert item.unconfirmed_post_at is None  # GHL answered 503: it did not take the message
    OutboxItem.objects.filter(pk=item.pk).update(unconfirmed_post_at=timezone.now())  # as if the worker died mid-post
    ghl.recover()
    drain(location)
    item.refresh_from_db()
    assert item.status == "done" and item.result.startswith("posted as")
    assert len(ghl.api_calls("GET", "/conversations/search")) == 1
    assert [m["message"] for m in ghl.messages.values()] == ["after the crash"]


def test_429_pauses_for_the_announced_interval_and_then_succeeds(installed, ghl, sales, location):
    ghl.fail_next(429)
    inbound(sales, "p1")
    connection = GhlConnection.objects.get(location=location)
    wait = (connection.paused_until - timezone.now()).total_seconds()
    assert 5 < wait <= 10.5  # X-RateLimit-Interval-Milliseconds of the stand-in: 10 s
    assert drain(location) == 2
    assert len(ghl.contacts) == 1 and len(ghl.messages) == 1


def test_429_with_retry_after_waits_exactly_that_long(installed, ghl, sales, location):
    ghl.retry_after = 2
    ghl.fail_next(429)
    inbound(sales, "p1")
    wait = (GhlConnection.objects.get().paused_until - timezone.now()).total_seconds()
    assert 1 < wait <= 2.1
    assert drain(location) == 2 and len(ghl.messages) == 1


def test_rate_limiter_never_exceeds_the_burst_limit(installed, ghl, settings):
    settings.GHL_RATE_LIMIT_REQUESTS = 5
    settings.GHL_RATE_LIMIT_WINDOW_SECONDS = 60
    GhlConnection.objects.update(rate_log=[])  # the install's own call (users) left one
    connection = GhlConnection.objects.get()
    granted = [acquire_slot(connection.pk) for _ in range(7)]
    assert granted[:5] == [0.0] * 5
    assert all(55 < w <= 62 for w in granted[5:])


def test_daily_limit_pauses_until_tomorrow(installed, ghl, sales, settings, location):
    settings.GHL_DAILY_LIMIT = 1
    inbound(sales, "p1")
    connection = GhlConnection.objects.get(location=location)
    assert connection.daily_count == 1 and "daily" in connection.pause_reason
    assert OutboxItem.objects.filter(status="pending").count() >= 1


def test_a_rejected_call_is_failed_with_its_response_and_can_be_retried(installed, ghl, sales, location, admin_client):
    ghl.fail_next(422)
    inbound(sales, "p1")
    failed = OutboxItem.objects.get(status="failed")
    assert failed.last_status_code == 422 and failed.response["status"] == 422 and failed.request["path"]
    page = admin_client.get("/ghl/?status=failed")
    assert page.status_code == 200 and b"stand-in failure" in page.content
    response = admin_client.post("/ghl/actions/retry/", {"item": failed.pk})
    assert response.status_code == 302
    assert not OutboxItem.objects.exclude(status="done").exists()
    assert len(ghl.messages) == 1


def test_expired_access_token_is_refreshed_once_and_the_new_refresh_token_kept(installed, ghl, sales, location):
    old_refresh = GhlConnection.objects.get().secrets["refresh_token"]
    ghl.expire_access_tokens()
    inbound(sales, "p1")
    assert len(ghl.messages) == 1
    connection = GhlConnection.objects.get()
    assert connection.secrets["refresh_token"] != old_refresh and connection.secrets["refresh_token"] in ghl.refresh
    assert [c.form["grant_type"] for c in ghl.calls if c.path == "/oauth/token"] == ["authorization_code", "refresh_token"]


def test_token_near_expiry_is_refreshed_before_the_call(installed, ghl, sales, location):
    GhlConnection.objects.update(token_expires_at=timezone.now() + timezone.timedelta(minutes=1))
    inbound(sales, "p1")
    statuses = [c.status for c in ghl.api_calls()]
    assert 401 not in statuses
    assert [c.form["grant_type"] for c in ghl.calls if c.path == "/oauth/token"] == ["authorization_code", "refresh_token"]


def test_sweeper_refreshes_tokens_before_they_expire(installed, ghl):
    from ghl.tasks import sweep

    GhlConnection.objects.update(token_expires_at=timezone.now() + timezone.timedelta(minutes=30))
    old = GhlConnection.objects.get().secrets["access_token"]
    sweep()
    connection = GhlConnection.objects.get()
    assert connection.secrets["access_token"] != old and connection.token_expires_at > timezone.now() + timezone.timedelta(hours=20)


def test_refused_refresh_token_asks_for_reinstall_and_keeps_the_work(installed, ghl, sales, location, admin_client):
    ghl.refresh.clear()
    ghl.expire_access_tokens()
    inbound(sales, "p1")
    connection = GhlConnection.objects.get()
    assert connection.status == "reauthorize"
    assert OutboxItem.objects.filter(status="pending").count() == 2
    assert b"Needs re-authorisation" in admin_client.get("/ghl/").content
    install(admin_client, ghl)
    drain(location)
    assert not OutboxItem.objects.exclude(status="done").exists()
    assert len(ghl.messages) == 1


# --- replies typed in GHL ----------------------------------------------------------------------
def ghl_reply(standin, location, text="Hi from GHL", **kw):
    contact = Contact.objects.get(phone=kw.pop("phone", "+14155550123"))
    message_id = standin.add_provider_message(location.ghl_location_id, contact.ghl_contact_id, text)
    payload = standin.provider_outbound(location_id=location.ghl_location_id, contact_id=contact.ghl_contact_id, text=text, message_id=message_id, **kw)
    return payload, post_signed(standin, "/ghl/webhooks/provider/", payload)


def test_reply_typed_in_ghl_goes_out_through_the_contacts_account_and_status_returns(installed, ghl, sales, location):
    inbound(sales, "p1")
    payload, response = ghl_reply(ghl, location)
    assert response.status_code == 200 and response.json()["outcome"] == "queued"
    reply = Message.objects.get(direction="outbound")
    assert reply.account == sales and reply.text == "Hi from GHL" and reply.status == "delivered"
    assert ghl.messages[payload["messageId"]]["status"] == "delivered"
    # not logged back into GHL as a second copy
    assert len(ghl.api_calls("POST", "/conversations/messages/inbound")) == 1
    # redelivered: nothing sent twice
    again = post_signed(ghl, "/ghl/webhooks/provider/", payload)
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert Message.objects.filter(direction="outbound").count() == 1


def test_forged_or_unsigned_ghl_webhook_is_refused_and_stores_nothing(installed, ghl, sales, location):
    inbound(sales, "p1")
    contact = Contact.objects.get()
    payload = ghl.provider_outbound(location_id="ghl-loc-1", contact_id=contact.ghl_contact_id, text="forged")
    raw, headers = ghl.sign(payload)
    tampered = raw.replace(b"forged", b"FORGED")
    response = Client().post("/ghl/webhooks/provider/", data=tampered, content_type="application/json", **headers)
    assert response.status_code == 403
    assert Client().post("/ghl/webhooks/provider/", data=raw, content_type="application/json").status_code == 403
    assert not GhlMessageLink.objects.filter(origin="ghl").exists()
    assert not Message.objects.filter(direction="outbound").exists()


def test_stale_or_replayed_ghl_webhooks_are_refused(installed, ghl, sales, location):
    inbound(sales, "p1")
    contact = Contact.objects.get()
    stale = ghl.provider_outbound(location_id="ghl-loc-1", contact_id=contact.ghl_contact_id, text="old")
    stale["timestamp"] = "2020-01-01T00:00:00Z"
    assert post_signed(ghl, "/ghl/webhooks/provider/", stale).status_code == 403
    first = ghl.provider_outbound(location_id="ghl-loc-1", contact_id=contact.ghl_contact_id, text="once", webhook_id="wh-1")
    assert post_signed(ghl, "/ghl/webhooks/provider/", first).json()["outcome"] == "queued"
    replay = dict(first, messageId="ghl-other")
    assert post_signed(ghl, "/ghl/webhooks/provider/", replay).json()["outcome"] == "duplicate"
    assert Message.objects.filter(direction="outbound").count() == 1


def test_one_delivery_url_serves_every_location_by_its_signed_location_id(installed, ghl, sales, location, other_location):
    """A marketplace app has one Delivery URL for all its sub-accounts (issue 21.3): each delivery
    is signed by GHL and routed by its locationId."""
    other_location.ghl_location_id = "ghl-loc-2"
    other_location.save()
    GhlConnection.objects.create(location=other_location, installed_ghl_location_id="ghl-loc-2")
    theirs = account_create(location=other_location, kind="android_sms", backend="sandbox", name="Theirs", phone_number="+14155550199")
    account_connect(account=theirs)
    inbound(sales, "p1")
    ours = Contact.objects.get(location=location)
    their_ghl_contact = ghl.add_contact("ghl-loc-2", phone="+14155550777", name="Bea", tags=["whatsnap-account-theirs"])
    for ghl_id, contact_id, text in (("ghl-loc-1", ours.ghl_contact_id, "to ours"), ("ghl-loc-2", their_ghl_contact, "to theirs")):
        response = post_signed(ghl, "/ghl/webhooks/provider/", ghl.provider_outbound(location_id=ghl_id, contact_id=contact_id, text=text))
        assert response.status_code == 200 and response.json()["outcome"] == "queued"
    assert GhlMessageLink.objects.get(location=location, origin="ghl") and GhlMessageLink.objects.get(location=other_location, origin="ghl")
    # unsigned, it is refused on the one URL and there is no per-location address any more
    body = json.dumps(ghl.provider_outbound(location_id="ghl-loc-1", contact_id=ours.ghl_contact_id, text="unsigned"))
    assert Client().post("/ghl/webhooks/provider/", data=body, content_type="application/json").status_code == 403
    assert Client().post(f"/ghl/webhooks/provider/{location.pk}/anything/", data=body, content_type="application/json").status_code == 404
    assert GhlMessageLink.objects.filter(origin="ghl").count() == 2


def test_whatsapp_provider_url_sends_through_a_whatsapp_account(installed, ghl, sales, location):
    """GHL's deliveries name no provider and every provider of ours is of type SMS
    (docs/marketplace modules/ConversationProviders.md): the WhatsApp provider's own Delivery URL
    is what makes a send a WhatsApp one."""
    wa = account_create(location=location, kind="whatsapp", backend="sandbox", name="WA", phone_number="+14155550222")
    account_set_status(account=wa, status="connected", reason="QR scanned")
    GhlConnection.objects.filter(location=location).update(default_sms_account=sales, default_whatsapp_account=wa)
    to_sms = ghl.add_contact("ghl-loc-1", phone="+14155550301", name="Cy")
    to_wa = ghl.add_contact("ghl-loc-1", phone="+14155550302", name="Di")
    post_signed(ghl, "/ghl/webhooks/provider/", ghl.provider_outbound(location_id="ghl-loc-1", contact_id=to_sms, text="sms one"))
    post_signed(ghl, "/ghl/webhooks/provider/whatsapp/", ghl.provider_outbound(location_id="ghl-loc-1", contact_id=to_wa, text="wa one"))
    drain(location)
    assert Message.objects.get(text="sms one").account == sales
    assert Message.objects.get(text="wa one").account == wa


def test_reply_follows_the_account_tag_when_moved(installed, ghl, sales, location):
    support = account_create(location=location, kind="android_sms", backend="sandbox", name="Support", phone_number="+14155550112")
    account_connect(account=support)
    inbound(sales, "p1")
    contact = Contact.objects.get()
    # moved in GHL: the app webhook mirrors the account tags
    ghl.contacts[contact.ghl_contact_id]["tags"] = ["whatsnap-account-support"]
    event = {"type": "ContactTagUpdate", "locationId": "ghl-loc-1", "id": contact.ghl_contact_id, "tags": ["whatsnap-account-support"]}
    assert post_signed(ghl, "/ghl/webhooks/app/", event).status_code == 200
    assert list(contact.tags.values_list("name", flat=True)) == ["whatsnap-account-support"]
    ghl_reply(ghl, location, text="through support")
    assert Message.objects.get(direction="outbound").account.name == "Support"


def test_reply_to_a_contact_without_account_tag_is_reported_failed_to_ghl(installed, ghl, sales, location):
    inbound(sales, "p1")
    ContactTag.objects.all().delete()
    ghl.contacts[Contact.objects.get().ghl_contact_id]["tags"] = []  # GHL's tags count too (test_ghl_outbound_*.py)
    payload, response = ghl_reply(ghl, location)
    assert response.json()["outcome"] == "queued"  # stored; the drainer decides
    assert not Message.objects.filter(direction="outbound").exists()
    assert ghl.messages[payload["messageId"]]["status"] == "failed"
    assert "whatsnap-account" in ghl.messages[payload["messageId"]]["error"]["message"]


def test_reply_to_an_opted_out_contact_is_refused_with_the_reason(installed, ghl, sales, location):
    inbound(sales, "p1", text="STOP")
    payload, response = ghl_reply(ghl, location)
    assert response.json()["outcome"] == "queued" and not Message.objects.filter(direction="outbound").exists()
    assert ghl.messages[payload["messageId"]]["status"] == "failed" and "opted out" in ghl.messages[payload["messageId"]]["error"]["message"]


def test_status_update_retried_while_ghl_answers_403(installed, ghl, sales, location):
    inbound(sales, "p1")
    ghl.status_403_left = 1
    payload, _ = ghl_reply(ghl, location)
    item = OutboxItem.objects.get(operation="message_status")
    assert item.status == "pending" and item.attempts == 1 and item.last_status_code == 403
    drain(location)
    assert ghl.messages[payload["messageId"]]["status"] == "delivered"


# --- uninstall, page, tenancy ------------------------------------------------------------------
def test_uninstall_webhook_disconnects_cleanly(installed, ghl, sales, location):
    forged = json.dumps({"type": "UNINSTALL", "locationId": "ghl-loc-1"})
    assert Client().post("/ghl/webhooks/app/", data=forged, content_type="application/json").status_code == 403
    assert post_signed(ghl, "/ghl/webhooks/app/", {"type": "UNINSTALL", "locationId": "ghl-loc-1"}).status_code == 200
    location.refresh_from_db()
    connection = GhlConnection.objects.get()
    assert location.ghl_location_id == "" and connection.status == "uninstalled" and connection.secrets == {}
    inbound(sales, "p1")
    assert not OutboxItem.objects.exists()


def test_reinstall_into_another_ghl_location_forgets_the_old_ids(installed, ghl, sales, location, admin_client):
    inbound(sales, "p1", text="before")
    old_id = Contact.objects.get().ghl_contact_id
    assert old_id and GhlMessageLink.objects.exists()
    assert post_signed(ghl, "/ghl/webhooks/app/", {"type": "UNINSTALL", "locationId": "ghl-loc-1"}).status_code == 200
    response, _ = install(admin_client, ghl, "ghl-loc-2")  # the same WhatSnap location, another GHL sub-account
    assert response.status_code == 302
    assert Contact.objects.get().ghl_contact_id == "" and not GhlMessageLink.objects.exists()
    inbound(sales, "p2", text="after")
    new_contact = Contact.objects.get().ghl_contact_id
    assert new_contact != old_id and ghl.contacts[new_contact]["locationId"] == "ghl-loc-2"
    assert [m["locationId"] for m in ghl.messages.values() if m["message"] == "after"] == ["ghl-loc-2"]


def test_reinstall_into_the_same_ghl_location_keeps_the_ids(installed, ghl, sales, location, admin_client):
    inbound(sales, "p1")
    old_id = Contact.objects.get().ghl_contact_id
    post_signed(ghl, "/ghl/webhooks/app/", {"type": "UNINSTALL", "locationId": "ghl-loc-1"})
    install(admin_client, ghl, "ghl-loc-1")
    assert Contact.objects.get().ghl_contact_id == old_id and GhlMessageLink.objects.exists()


def test_account_page_counts_its_contacts_syncs_and_statuses(installed, ghl, sales, location):
    from contacts.services import contact_update
    from ghl.services import account_sync_health

    support = account_create(location=location, kind="android_sms", backend="sandbox", name="Support", phone_number="+14155550112")
    account_connect(account=support)
    ghl.go_down(500)
    inbound(sales, "p1")
    contact = Contact.objects.get()
    contact_update(contact=contact, name="Ada Lovelace", tag_ids=[sales.tag.pk])  # a contact sync with no account
    pending = OutboxItem.objects.filter(status="pending").count()
    assert pending >= 3 and OutboxItem.objects.filter(status="pending", account__isnull=True).exists()
    assert account_sync_health(sales)["pending"] == pending
    assert account_sync_health(support)["pending"] == 0


def test_sync_page_health_and_tenancy(installed, ghl, sales, location, admin_client, outsider_client, agent_client):
    ghl.go_down(500)
    inbound(sales, "p1")
    page = admin_client.get("/ghl/")
    assert page.status_code == 200
    assert b'id="ghl-pending">2<' in page.content and b"500" in page.content
    assert agent_client.get("/ghl/").status_code == 200
    assert agent_client.post("/ghl/actions/retry-failed/").status_code == 403
    item = OutboxItem.objects.first()
    OutboxItem.objects.filter(pk=item.pk).update(status="failed")
    assert outsider_client.post("/ghl/actions/retry/", {"item": item.pk}).status_code == 404
    ghl.recover()
    admin_client.post("/ghl/actions/retry-failed/")
    admin_client.post("/ghl/actions/resume/")
    assert not OutboxItem.objects.exclude(status="done").exists()


def test_group_message_goes_to_the_senders_ghl_conversation(installed, ghl, location):
    whatsapp = account_create(location=location, kind="whatsapp", backend="sandbox", name="WA", phone_number="+14155550140")
    from accounts.services import account_set_status

    account_set_status(account=whatsapp, status="connected", reason="test")
    webhook_events_record(account=whatsapp, events=[InboundMessage(
        provider_id="g1", from_phone="+14155550123", name="Ada", text="hi all", at=datetime.now(dt_tz.utc),
        group_id="120363000000000000@g.us", group_name="Book club")])
    assert len(ghl.contacts) == 1 and next(iter(ghl.contacts.values()))["phone"] == "+14155550123"
    body = ghl.api_calls("POST", "/conversations/messages/inbound")[0].json
    assert body["message"] == "[in Book club] hi all"
    assert not OutboxItem.objects.exclude(status="done").exists()


def test_merging_contacts_keeps_their_waiting_ghl_work(installed, ghl, sales, location):
    from contacts.services import contact_merge

    ghl.go_down(503)
    inbound(sales, "a1", phone="+14155550123", text="from a")
    inbound(sales, "b1", phone="+14155550124", name="Ada (work)", text="from b")
    a, b = Contact.objects.get(phone="+14155550123"), Contact.objects.get(phone="+14155550124")
    contact_merge(source=b, into=a)
    ghl.recover()
    drain(location)
    assert not OutboxItem.objects.exclude(status="done").exists()
    assert sorted(m["message"] for m in ghl.messages.values()) == ["from a", "from b"]


def test_account_page_shows_its_sync_health(installed, ghl, sales, location, admin_client):
    ghl.fail_next(422)
    inbound(sales, "p1")
    page = admin_client.get(f"/accounts/{sales.pk}/").content.decode()
    assert 'id="ghl-account-failed">1<' in page and "stand-in failure" in page
    assert 'id="ghl-account-pending">0<' in page


def test_a_failed_first_delivery_of_a_ghl_reply_is_sent_exactly_once_on_redelivery(installed, ghl, sales, location, monkeypatch):
    """Issue 15.5: the webhook id is recorded in the transaction that queues the reply, so a
    failure between the two leaves nothing that would make GHL's redelivery a "duplicate"."""
    from ghl import services as ghl_services

    inbound(sales, "p1")
    contact = Contact.objects.get()
    payload = ghl.provider_outbound(location_id="ghl-loc-1", contact_id=contact.ghl_contact_id, text="must leave", webhook_id="wh-once")
    real_enqueue, calls = ghl_services.outbox_enqueue, []

    def fails_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("worker lost its database connection")
        return real_enqueue(**kwargs)

    monkeypatch.setattr(ghl_services, "outbox_enqueue", fails_once)
    first = post_signed(ghl, "/ghl/webhooks/provider/", payload, client=Client(raise_request_exception=False))
    assert first.status_code == 500 and not Message.objects.filter(direction="outbound").exists()
    again = post_signed(ghl, "/ghl/webhooks/provider/", payload)
    assert again.status_code == 200 and again.json()["outcome"] == "queued"
    third = post_signed(ghl, "/ghl/webhooks/provider/", payload)
    assert third.json()["outcome"] == "duplicate"
    sent = Message.objects.get(direction="outbound")
    assert sent.text == "must leave" and sent.status == "delivered"


def test_a_file_sent_from_the_composer_reaches_ghl_as_its_signed_link(installed, ghl, sales, location, admin_client, settings, tmp_path):
    """GHL's inbound API takes attachments as URLs (apps/conversations.json ProcessMessageBodyDto):
    a stored upload is given as its signed link on PUBLIC_BASE_URL, which GHL can open."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from conversations.models import Conversation
    from conversations.upload_links import upload_from_token

    settings.MEDIA_ROOT = str(tmp_path / "uploads")
    inbound(sales, "p1")
    conversation = Conversation.objects.get()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    upload_id = admin_client.post(f"/inbox/{conversation.pk}/uploads/", {"file": SimpleUploadedFile("cat.png", png, "image/png")}).json()["id"]
    admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "a photo", "mode": "reply", "attachment": [upload_id]})
    drain(location)
    (posted,) = [m for m in ghl.messages.values() if m.get("message") == "a photo"]
    (link,) = posted["attachments"]
    assert link.startswith(settings.PUBLIC_BASE_URL + "/media/") and link.endswith("/cat.png")
    assert upload_from_token(link.split("/media/")[1].split("/")[0]).pk == upload_id
