"""The message type and provider id WhatSnap posts to GHL in each provider mode, and how a post
whose answer was lost is found again without an altId — against the GHL stand-in on loopback.

What GHL documents (GoHighLevel/highlevel-api-docs):
- docs/marketplace modules/ConversationProviders.md, "Add Inbound Message API":
  SMS Provider (default, replaces LC Phone): 'Use type "SMS". "conversationProviderId" is not
  required'; SMS Provider (extra, "Is this a Custom Conversation Provider" checked): 'Use type
  "SMS". "conversationProviderId" is required'; type "Custom" belongs to the extra *Email*
  provider. Provider types are SMS, Email and Call only: a WhatsApp provider WhatSnap registers is
  an extra SMS provider, type "SMS" with its own id.
- apps/conversations.json: ProcessMessageBodyDto (POST /conversations/messages/inbound) takes
  altId; GetMessageResponseDto (the items of GET /conversations/{id}/messages) has id,
  messageType, contactId, conversationId, dateAdded, body, direction, status, attachments,
  conversationProviderId, source … and no altId — so a lost post is found by those fields.
- ../shared/FACTS.md (GHL): a custom provider's message without conversationProviderId is
  answered 201 with an empty body and dropped."""
import time
from datetime import datetime, timedelta, timezone as dt_tz

import httpx
import pytest

from accounts.providers.base import InboundMessage
from accounts.services import account_connect, account_create, account_set_status
from conversations.models import Message
from conversations.services import webhook_events_record
from ghl import client as ghl_client
from ghl.models import GhlConnection, GhlMessageLink, OutboxItem
from tests.test_ghl import drain, ghl, inbound, installed, sales  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+14155550123"


def connected(location, kind, name, phone):
    account = account_create(location=location, kind=kind, backend="sandbox", name=name, phone_number=phone)
    account_connect(account=account)
    account_set_status(account=account, status="connected", reason="test")
    return account


def posted(standin, text):
    """The bodies of the inbound-API posts GHL took with this text."""
    return [c.json for c in standin.api_calls("POST", "/conversations/messages/inbound") if c.status == 200 and c.json["message"] == text]


def stored(standin, text):
    return [m for m in standin.messages.values() if m.get("message") == text]


def read_back(standin, conversation_id):
    """GET /conversations/{id}/messages as WhatSnap's token reads it."""
    token = next(t for t, info in standin.access.items() if info["locationId"] == "ghl-loc-1" and info["expires"] > time.time())
    answer = httpx.get(f"{standin.url}/conversations/{conversation_id}/messages", params={"limit": 100},
                       headers={"Authorization": f"Bearer {token}", "Version": "2021-04-15"})
    assert answer.status_code == 200
    return answer.json()["messages"]["messages"]


def answers_lost(standin, settings):
    """GHL stores the next post, but its answer comes after WhatSnap stopped waiting."""
    settings.GHL_TIMEOUT_SECONDS = 0.3
    ghl_client._http = None
    standin.late_answers["/conversations/messages/inbound"] = 0.8


def answers_read(settings):
    time.sleep(0.6)  # the late answer of the stand-in's handler is over
    settings.GHL_TIMEOUT_SECONDS = 2.0
    ghl_client._http = None


def typed_on_phone(account, pid, text, at=None):
    webhook_events_record(account=account, events=[InboundMessage(provider_id=pid, from_phone=PHONE, name="", text=text,
                                                                  at=at or datetime.now(dt_tz.utc), from_me=True)])


def item_of(pid):
    return OutboxItem.objects.get(operation__in=["inbound_message", "outbound_message"], payload__message_id=Message.objects.get(provider_message_id=pid).pk)


# --- type and provider id per mode and per account kind -----------------------------------------
@pytest.mark.parametrize("whatsapp_provider", ["prov-wa", ""])
def test_default_sms_mode_posts_type_sms_and_whatsapp_through_its_own_provider_when_set(installed, ghl, location, settings, whatsapp_provider):
    settings.GHL_WHATSAPP_PROVIDER_ID = whatsapp_provider
    kinds = {"whatsapp": "+14155550140", "android_sms": "+14155550141", "twilio": "+14155550142", "imessage": "+14155550143"}
    for kind, phone in kinds.items():
        inbound(connected(location, kind, kind, phone), f"{kind}-1", text=f"via {kind}")
    seen = {kind: (posted(ghl, f"via {kind}")[0]["type"], posted(ghl, f"via {kind}")[0]["conversationProviderId"]) for kind in kinds}
    assert seen == {"whatsapp": ("SMS", whatsapp_provider or "prov-123"), "android_sms": ("SMS", "prov-123"),
                    "twilio": ("SMS", "prov-123"), "imessage": ("SMS", "prov-123")}
    assert all(len(stored(ghl, f"via {kind}")) == 1 for kind in kinds)
    assert not OutboxItem.objects.exclude(status="done").exists()


def test_default_sms_mode_without_a_provider_id_posts_type_sms_without_one(installed, ghl, sales, settings):
    settings.GHL_CONVERSATION_PROVIDER_ID = ""
    inbound(sales, "p1", text="no provider id")
    [body] = posted(ghl, "no provider id")
    assert body["type"] == "SMS" and "conversationProviderId" not in body  # "is not required" for the default
    assert len(stored(ghl, "no provider id")) == 1 and item_of("p1").status == "done"


def test_custom_mode_posts_every_account_as_type_sms_with_the_conversation_provider_id(installed, ghl, location, settings):
    settings.GHL_WHATSAPP_PROVIDER_ID = "prov-wa"
    GhlConnection.objects.update(provider_mode=GhlConnection.Mode.CUSTOM)
    ghl.custom_provider_locations.add("ghl-loc-1")
    inbound(connected(location, "whatsapp", "WA", "+14155550140"), "w1", text="wa in custom mode")
    inbound(connected(location, "android_sms", "Txt", "+14155550141"), "s1", text="sms in custom mode")
    for text in ("wa in custom mode", "sms in custom mode"):
        [body] = posted(ghl, text)
        assert (body["type"], body["conversationProviderId"]) == ("SMS", "prov-123")
        [message] = stored(ghl, text)
        assert message["messageType"] == "TYPE_CUSTOM_PROVIDER_SMS"
    assert not OutboxItem.objects.exclude(status="done").exists()


def test_custom_mode_without_the_provider_id_refuses_with_the_reason_instead_of_losing_the_message(installed, ghl, sales, settings):
    GhlConnection.objects.update(provider_mode=GhlConnection.Mode.CUSTOM)
    ghl.custom_provider_locations.add("ghl-loc-1")
    settings.GHL_CONVERSATION_PROVIDER_ID = ""
    inbound(sales, "p1", text="would be dropped")
    item = item_of("p1")
    assert item.status == "failed" and "GHL_CONVERSATION_PROVIDER_ID" in item.last_error and "dropped" in item.last_error
    assert not ghl.api_calls("POST", "/conversations/messages/inbound") and not ghl.messages
    assert not GhlMessageLink.objects.exists()


def test_the_stand_in_drops_a_custom_providers_message_without_its_id_as_ghl_does(installed, ghl, sales, settings):
    """What the refusal above prevents: posted anyway, GHL answers 201 with nothing and keeps nothing."""
    ghl.custom_provider_locations.add("ghl-loc-1")  # WhatSnap still thinks it is the default provider
    settings.GHL_CONVERSATION_PROVIDER_ID = ""
    inbound(sales, "p1", text="dropped")
    item = item_of("p1")
    assert [c.status for c in ghl.api_calls("POST", "/conversations/messages/inbound")] == [201] and not ghl.messages
    assert item.status == "failed" and "without a message id" in item.last_error


# --- a post whose answer was lost, found again without altId -------------------------------------
@pytest.mark.parametrize("keeps_date", [True, False], ids=["ghl-keeps-our-date", "ghl-dates-it-itself"])
def test_a_lost_answer_then_a_retry_does_not_post_twice_though_the_read_back_has_no_alt_id(installed, ghl, sales, location, settings, keeps_date):
    ghl.keeps_posted_date = keeps_date
    inbound(sales, "p0", text="earlier")  # WhatSnap knows the contact's GHL conversation
    answers_lost(ghl, settings)
    # written two hours ago (GHL was unreachable since): kept, its dateAdded is far before the post
    webhook_events_record(account=sales, events=[InboundMessage(provider_id="p1", from_phone=PHONE, name="Ada", text="only once",
                                                                at=datetime.now(dt_tz.utc) - timedelta(hours=2))])
    item = item_of("p1")
    assert item.status == "pending" and item.unconfirmed_post_at is not None
    answers_read(settings)
    [mine] = stored(ghl, "only once")
    assert all("altId" not in m for m in read_back(ghl, mine["conversationId"]))
    drain(location)
    item.refresh_from_db()
    assert item.status == "done" and "not posted again" in item.result and item.unconfirmed_post_at is None
    assert len(stored(ghl, "only once")) == 1 and len(posted(ghl, "only once")) == 1  # the one post, answered too late
    assert GhlMessageLink.objects.get(message__provider_message_id="p1").ghl_message_id == mine["id"]


@pytest.mark.parametrize("keeps_date", [True, False], ids=["ghl-keeps-our-date", "ghl-dates-it-itself"])
def test_two_identical_texts_after_lost_answers_link_to_two_different_ghl_messages(installed, ghl, sales, location, settings, keeps_date):
    ghl.keeps_posted_date = keeps_date
    answers_lost(ghl, settings)
    typed_on_phone(sales, "d1", "ok")
    answers_read(settings)
    # the second waits behind the first (same contact); the first's retry finds its message, then
    # the second is posted and its answer is lost too
    answers_lost(ghl, settings)
    drain(location)
    assert item_of("d1").status == "done" and "not posted again" in item_of("d1").result
    typed_on_phone(sales, "d2", "ok")
    answers_read(settings)
    assert item_of("d2").unconfirmed_post_at is not None
    drain(location)
    first, second = (GhlMessageLink.objects.get(message__provider_message_id=p).ghl_message_id for p in ("d1", "d2"))
    by_age = [m["id"] for m in stored(ghl, "ok")]
    assert [first, second] == by_age and len(by_age) == 2
    assert "not posted again" in item_of("d2").result


@pytest.mark.parametrize("keeps_date", [True, False], ids=["ghl-keeps-our-date", "ghl-dates-it-itself"])
def test_two_identical_texts_both_unconfirmed_at_once_take_the_oldest_unlinked_first(installed, ghl, sales, location, settings, keeps_date):
    ghl.keeps_posted_date = keeps_date
    posted_at = {}
    for pid in ("d1", "d2"):
        posted_at[pid] = datetime.now(dt_tz.utc)
        typed_on_phone(sales, pid, "on my way")
    in_ghl = [m["id"] for m in stored(ghl, "on my way")]
    assert len(in_ghl) == 2
    # as if the worker had died after GHL stored each post, before reading either answer
    for pid in ("d1", "d2"):
        OutboxItem.objects.filter(pk=item_of(pid).pk).update(status="pending", unconfirmed_post_at=posted_at[pid], result="")
    GhlMessageLink.objects.filter(message__provider_message_id__in=["d1", "d2"]).delete()
    drain(location)
    assert [GhlMessageLink.objects.get(message__provider_message_id=p).ghl_message_id for p in ("d1", "d2")] == in_ghl
    assert len(stored(ghl, "on my way")) == 2 and all("not posted again" in item_of(p).result for p in ("d1", "d2"))


def test_a_message_a_ghl_user_typed_with_the_same_text_long_before_is_not_taken_for_ours(installed, ghl, sales, location):
    inbound(sales, "p0", text="hi")
    contact_id = stored(ghl, "hi")[0]["contactId"]
    two_days_ago = (datetime.now(dt_tz.utc) - timedelta(days=2)).isoformat()
    old = ghl.add_provider_message("ghl-loc-1", contact_id, "see you tomorrow", date=two_days_ago, provider_id="prov-123")
    other_provider = ghl.add_provider_message("ghl-loc-1", contact_id, "see you tomorrow", provider_id="someone-elses-provider")
    ghl.go_down(503)
    typed_on_phone(sales, "d1", "see you tomorrow")
    item = item_of("d1")
    OutboxItem.objects.filter(pk=item.pk).update(unconfirmed_post_at=datetime.now(dt_tz.utc))  # the worker died mid-post
    ghl.recover()
    drain(location)
    item.refresh_from_db()
    assert item.status == "done" and item.result.startswith("posted as")
    link = GhlMessageLink.objects.get(message__provider_message_id="d1").ghl_message_id
    assert link not in (old, other_provider) and len(stored(ghl, "see you tomorrow")) == 3
