"""Issue 18.1: messages sent from GHL reach any contact — against the GHL stand-in.

The delivery is GHL's ProviderOutboundMessage as documented (GoHighLevel/highlevel-api-docs,
docs/webhook events/ProviderOutboundMessage.md: contactId, locationId, messageId, type "SMS",
phone, message, attachments, userId); the GHL contact WhatSnap reads is GET /contacts/{contactId}
(Version 2021-07-28) answering {contact: GetContectByIdSchema} (same repo, apps/contacts.json:
id, name, firstName, lastName, phone, tags, dnd, ...), served by tests/standins/ghl_standin.py."""
import pytest
from django.utils import timezone

from accounts.models import Account
from accounts.services import account_connect, account_create, account_set_status
from contacts.models import Contact
from conversations.models import Message
from ghl import services as ghl_services
from ghl.models import GhlConnection, GhlMessageLink, GhlUser, OutboxItem
from tests.test_ghl import drain, ghl, inbound, install, installed, post_signed, sales  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)
DELIVERY_URL = "/ghl/webhooks/provider/"
NEW_PHONE = "+14155550177"


def connect(location, kind, name, phone):
    account = account_create(location=location, kind=kind, backend="sandbox", name=name, phone_number=phone)
    account_connect(account=account)
    account_set_status(account=account, status="connected", reason="test")  # a WhatsApp sandbox waits for its QR scan
    account.refresh_from_db()
    return account


@pytest.fixture
def marketing(location):
    return connect(location, "whatsapp", "Marketing", "+14155550150")


def send_from_ghl(standin, contact_id, text="Hello from a workflow", *, kind="SMS", user_id="", webhook_id=None, message_id=None):
    """GHL stores the message, then calls the Delivery URL (as a workflow's Send SMS does)."""
    message_id = message_id or standin.add_provider_message("ghl-loc-1", contact_id, text)
    payload = standin.provider_outbound(location_id="ghl-loc-1", contact_id=contact_id, text=text, message_id=message_id,
                                        phone=(standin.contacts.get(contact_id) or {}).get("phone") or "", user_id=user_id,
                                        webhook_id=webhook_id, kind=kind)
    response = post_signed(standin, DELIVERY_URL, payload)
    assert response.status_code == 200, response.content
    return payload, response.json()


def sent(text="Hello from a workflow"):
    return Message.objects.select_related("account", "conversation__contact").get(direction="outbound", text=text)


def set_defaults(location, *, sms=None, whatsapp=None, mode=None):
    fields = {"default_sms_account": sms, "default_whatsapp_account": whatsapp}
    if mode:
        fields["provider_mode"] = mode
    GhlConnection.objects.filter(location=location).update(**fields)


# --- an unseen contact ----------------------------------------------------------------------------
def test_unseen_contact_with_an_account_tag_in_ghl_goes_out_through_that_account(installed, ghl, sales, marketing, location):
    cid = ghl.add_contact("ghl-loc-1", phone=NEW_PHONE, first_name="Grace", last_name="Hopper", name="Grace Hopper",
                          tags=["lead", "whatsnap-account-marketing"])
    payload, answer = send_from_ghl(ghl, cid)
    assert answer == {"ok": True, "outcome": "queued"}
    message = sent()
    assert message.account == marketing and message.status == "delivered"
    contact = message.conversation.contact
    assert (contact.phone, contact.name, contact.ghl_contact_id) == (NEW_PHONE, "Grace Hopper", cid)
    assert sorted(contact.tags.values_list("name", flat=True)) == ["whatsnap-account-marketing"]  # GHL's other tags stay GHL's
    (read,) = ghl.api_calls("GET", f"/contacts/{cid}")
    assert read.headers["version"] == "2021-07-28"
    assert ghl.messages[payload["messageId"]]["status"] == "delivered"
    assert GhlMessageLink.objects.get(ghl_message_id=payload["messageId"]).message == message
    # nothing of it is posted back into GHL, and the new contact costs no contact call either
    assert not ghl.api_calls("POST", "/conversations/messages/inbound") and not ghl.api_calls("POST", "/contacts")
    assert not OutboxItem.objects.exclude(status="done").exists()


def test_without_a_tag_the_default_account_of_the_channel_sends_it(installed, ghl, sales, marketing, location):
    set_defaults(location, sms=sales, whatsapp=marketing)
    sms_contact = ghl.add_contact("ghl-loc-1", phone=NEW_PHONE, name="Ada")
    send_from_ghl(ghl, sms_contact, "by SMS")  # the default SMS provider: a workflow's Send SMS
    assert sent("by SMS").account == sales
    wa_contact = ghl.add_contact("ghl-loc-1", phone="+14155550178", name="Bob")
    send_from_ghl(ghl, wa_contact, "by the WhatsApp provider", kind="Custom")
    assert sent("by the WhatsApp provider").account == marketing


def test_custom_provider_mode_uses_the_whatsapp_default_then_the_sms_default(installed, ghl, sales, marketing, location):
    set_defaults(location, sms=sales, whatsapp=marketing, mode=GhlConnection.Mode.CUSTOM)
    first = ghl.add_contact("ghl-loc-1", phone=NEW_PHONE)
    send_from_ghl(ghl, first, "custom mode", kind="Custom")
    assert sent("custom mode").account == marketing
    set_defaults(location, sms=sales, whatsapp=None, mode=GhlConnection.Mode.CUSTOM)
    second = ghl.add_contact("ghl-loc-1", phone="+14155550178")
    send_from_ghl(ghl, second, "custom mode, no WhatsApp default", kind="Custom")
    assert sent("custom mode, no WhatsApp default").account == sales


def test_the_sending_ghl_users_account_comes_before_the_default(installed, ghl, sales, marketing, location):
    set_defaults(location, sms=sales)
    GhlUser.objects.create(location=location, ghl_user_id="u-7", name="Maria", sends_through=marketing)
    cid = ghl.add_contact("ghl-loc-1", phone=NEW_PHONE)
    send_from_ghl(ghl, cid, "typed by Maria", user_id="u-7")
    assert sent("typed by Maria").account == marketing
    send_from_ghl(ghl, cid, "a workflow (no user)")
    assert sent("a workflow (no user)").account == sales


def test_with_no_possible_account_ghl_gets_failed_with_a_reason_it_understands(installed, ghl, sales, location):
    cid = ghl.add_contact("ghl-loc-1", phone=NEW_PHONE, tags=["lead"])
    payload, answer = send_from_ghl(ghl, cid)
    assert answer["outcome"] == "queued" and not Message.objects.filter(direction="outbound").exists()
    ((message_id, body),) = ghl.status_updates
    assert message_id == payload["messageId"] and body["status"] == "failed"
    assert body["error"]["message"] == ("No WhatSnap account can send this: add a whatsnap-account-<name> tag to the contact, "
                                        "or choose a default SMS account on WhatSnap's GoHighLevel page.")
    assert ghl.messages[payload["messageId"]]["status"] == "failed"
    # the person is known now (one contact per phone), ready for the next send
    assert Contact.objects.get(phone=NEW_PHONE).ghl_contact_id == cid


def test_ghl_contact_read_failing_is_retried_later_then_sent(installed, ghl, sales, marketing, location):
    cid = ghl.add_contact("ghl-loc-1", phone=NEW_PHONE, tags=["whatsnap-account-marketing"])
    ghl.fail_next(500)
    payload, answer = send_from_ghl(ghl, cid)
    assert answer["outcome"] == "queued"  # stored: the webhook never waits for GHL
    item = OutboxItem.objects.get(operation="provider_outbound")
    assert item.status == "pending" and item.last_status_code == 500 and item.attempts == 1
    assert GhlConnection.objects.get().paused_until > timezone.now()
    assert not Message.objects.filter(direction="outbound").exists()
    ghl.fail_next(429)
    drain(location)
    item.refresh_from_db()
    assert item.status == "pending" and item.last_status_code == 429
    drain(location)
    assert sent().account == marketing and ghl.messages[payload["messageId"]]["status"] == "delivered"
    assert OutboxItem.objects.get(operation="provider_outbound").status == "done"


def test_a_redelivery_sends_nothing_twice(installed, ghl, sales, location):
    set_defaults(location, sms=sales)
    cid = ghl.add_contact("ghl-loc-1", phone=NEW_PHONE)
    payload, _ = send_from_ghl(ghl, cid, webhook_id="wh-1")
    again = dict(payload, webhookId="wh-2")  # GHL's retry of the same message
    assert post_signed(ghl, DELIVERY_URL, again).json()["outcome"] == "duplicate"
    assert post_signed(ghl, DELIVERY_URL, payload).json()["outcome"] == "duplicate"
    # the drainer running the row again (a worker died after sending) sends nothing either
    item = OutboxItem.objects.get(operation="provider_outbound")
    OutboxItem.objects.filter(pk=item.pk).update(status="pending")
    drain(location)
    assert Message.objects.filter(direction="outbound").count() == 1
    assert OutboxItem.objects.get(pk=item.pk).result.startswith("handled already")


def test_a_delivery_stored_while_ghl_was_down_is_not_lost_when_the_webhook_is_redelivered(installed, ghl, sales, location):
    set_defaults(location, sms=sales)
    cid = ghl.add_contact("ghl-loc-1", phone=NEW_PHONE)
    ghl.go_down(503)
    payload, _ = send_from_ghl(ghl, cid)
    assert post_signed(ghl, DELIVERY_URL, payload).json()["outcome"] == "duplicate"
    ghl.recover()
    drain(location)
    assert sent().account == sales and Message.objects.filter(direction="outbound").count() == 1


# --- GHL's tags are the fresh ones ----------------------------------------------------------------
def test_a_workflow_that_tags_then_sends_goes_out_through_the_new_tag_before_ghls_tag_webhook(installed, ghl, sales, marketing, location):
    inbound(sales, "p1")  # the contact wrote to sales: tagged sales here and in GHL
    contact = Contact.objects.get()
    ghl.contacts[contact.ghl_contact_id]["tags"].append("whatsnap-account-marketing")  # the workflow's "Add tag"
    send_from_ghl(ghl, contact.ghl_contact_id, "campaign")
    assert sent("campaign").account == marketing
    assert sorted(contact.tags.values_list("name", flat=True)) == ["whatsnap-account-marketing", "whatsnap-account-sales"]
    # GHL holds both already: nothing is sent back to it for them
    assert not ghl.api_calls("POST", f"/contacts/{contact.ghl_contact_id}/tags")


def test_a_contact_moved_in_ghl_leaves_its_old_account(installed, ghl, sales, marketing, location):
    inbound(sales, "p1")
    contact = Contact.objects.get()
    ghl.contacts[contact.ghl_contact_id]["tags"] = ["whatsnap-account-marketing"]  # moved; the tag webhook is late
    send_from_ghl(ghl, contact.ghl_contact_id, "moved")
    assert sent("moved").account == marketing
    assert list(contact.tags.values_list("name", flat=True)) == ["whatsnap-account-marketing"]


def test_our_tag_not_yet_in_ghl_still_counts(installed, ghl, sales, marketing, location):
    inbound(sales, "p1")
    contact = Contact.objects.get()
    GhlConnection.objects.filter(location=location).update(paused_until=timezone.now() + timezone.timedelta(hours=1))
    inbound(marketing, "w1", text="wrote to marketing")  # our tag: GHL has not heard yet (paused)
    send_from_ghl(ghl, contact.ghl_contact_id, "answer")  # stored behind the contact's waiting sync
    drain(location)
    assert sent("answer").account == marketing


def test_a_tagged_account_that_cannot_send_now_falls_through_to_the_default(installed, ghl, sales, marketing, location):
    Account.objects.filter(pk=marketing.pk).update(status=Account.Status.DISCONNECTED)
    cid = ghl.add_contact("ghl-loc-1", phone=NEW_PHONE, tags=["whatsnap-account-marketing"])
    set_defaults(location, sms=sales)
    send_from_ghl(ghl, cid, "still reaches them")
    assert sent("still reaches them").account == sales
    set_defaults(location, sms=None)
    payload, _ = send_from_ghl(ghl, cid, "nobody left")
    assert ghl.messages[payload["messageId"]]["status"] == "failed"
    assert "Marketing is not connected" in ghl.messages[payload["messageId"]]["error"]["message"]


# --- who and what is refused ----------------------------------------------------------------------
def test_an_opted_out_contact_is_failed_with_that_reason(installed, ghl, sales, location):
    inbound(sales, "p1", text="STOP")
    contact = Contact.objects.get()
    payload, _ = send_from_ghl(ghl, contact.ghl_contact_id, "promo")
    assert not Message.objects.filter(direction="outbound").exists()
    assert "opted out" in ghl.messages[payload["messageId"]]["error"]["message"]


@pytest.mark.parametrize("dnd, words", [
    ({"dnd": True}, "Do Not Disturb in GHL"),
    ({"dndSettings": {"SMS": {"status": "active", "message": "", "code": ""}}}, "Do Not Disturb for SMS in GHL"),
    ({"dndSettings": {"SMS": {"status": "permanent"}}}, "Do Not Disturb for SMS in GHL"),
])
def test_a_contact_on_do_not_disturb_in_ghl_is_failed_not_texted(installed, ghl, sales, location, dnd, words):
    # GoHighLevel/highlevel-api-docs, apps/contacts.json: GetContectByIdSchema.dnd / dndSettings (DndSettingsSchema)
    cid = ghl.add_contact("ghl-loc-1", phone=NEW_PHONE, tags=["whatsnap-account-sales"], **dnd)
    payload, _ = send_from_ghl(ghl, cid)
    assert not Message.objects.filter(direction="outbound").exists()
    assert words in ghl.messages[payload["messageId"]]["error"]["message"]


def test_do_not_disturb_on_another_channel_does_not_stop_an_sms(installed, ghl, sales, location):
    cid = ghl.add_contact("ghl-loc-1", phone=NEW_PHONE, tags=["whatsnap-account-sales"],
                          dnd=False, dndSettings={"WhatsApp": {"status": "active"}, "SMS": {"status": "inactive"}})
    send_from_ghl(ghl, cid)
    assert sent().account == sales


def test_a_contact_without_a_usable_phone_is_failed_with_the_reason(installed, ghl, sales, location):
    set_defaults(location, sms=sales)
    no_phone = ghl.add_contact("ghl-loc-1", phone=None, name="E-mail only")
    payload, _ = send_from_ghl(ghl, no_phone, "x")
    assert ghl.messages[payload["messageId"]]["error"]["message"] == "The GHL contact has no phone number, so WhatSnap cannot text it."
    bad = ghl.add_contact("ghl-loc-1", phone="12", name="Typo")
    payload, _ = send_from_ghl(ghl, bad, "y")
    assert "not a valid phone number" in ghl.messages[payload["messageId"]]["error"]["message"]
    assert not Contact.objects.exists() and not Message.objects.filter(direction="outbound").exists()


def test_a_number_ghl_holds_without_country_code_is_read_in_the_locations_country(installed, ghl, sales, location):
    location.country = "GB"
    location.save(update_fields=["country"])
    set_defaults(location, sms=sales)
    known = Contact.objects.create(location=location, phone="+447911123456", name="Known here")
    cid = ghl.add_contact("ghl-loc-1", phone="07911 123456", name="Known in GHL")
    send_from_ghl(ghl, cid, "one contact per phone")
    message = sent("one contact per phone")
    assert message.conversation.contact == known and Contact.objects.count() == 1
    known.refresh_from_db()
    assert known.ghl_contact_id == cid and known.name == "Known in GHL"


def test_another_locations_account_stored_as_a_default_is_never_used(installed, ghl, sales, other_location, location):
    theirs = connect(other_location, "android_sms", "Theirs", "+14155550190")
    GhlConnection.objects.filter(location=location).update(default_sms_account=theirs)  # written behind the page's back
    cid = ghl.add_contact("ghl-loc-1", phone=NEW_PHONE)
    payload, _ = send_from_ghl(ghl, cid)
    assert not Message.objects.filter(direction="outbound").exists()
    assert "No WhatSnap account can send this" in ghl.messages[payload["messageId"]]["error"]["message"]


def test_an_email_delivery_is_failed_not_texted(installed, ghl, sales, location):
    set_defaults(location, sms=sales)
    cid = ghl.add_contact("ghl-loc-1", phone=NEW_PHONE)
    payload, _ = send_from_ghl(ghl, cid, "<p>newsletter</p>", kind="Email")
    assert "not e-mail" in ghl.messages[payload["messageId"]]["error"]["message"]
    assert not Message.objects.filter(direction="outbound").exists()


def test_the_webhook_only_stores_the_delivery_ghl_is_read_by_the_drainer(installed, ghl, sales, location, monkeypatch):
    kicked = []
    monkeypatch.setattr(ghl_services, "kick", kicked.append)  # no worker: what did the webhook itself do?
    set_defaults(location, sms=sales)
    cid = ghl.add_contact("ghl-loc-1", phone=NEW_PHONE)
    before = len(ghl.api_calls())
    payload, answer = send_from_ghl(ghl, cid)
    assert answer["outcome"] == "queued" and len(ghl.api_calls()) == before and kicked == [location.pk]
    item = OutboxItem.objects.get(operation="provider_outbound")
    assert item.status == "pending" and item.payload["messageId"] == payload["messageId"] and item.contact is None
    assert not Contact.objects.exists()
    drain(location)
    assert sent().account == sales


def test_ghls_tag_webhook_keeps_a_tag_of_ours_ghl_has_not_heard_of_yet(installed, ghl, sales, marketing, location):
    inbound(sales, "p1")
    contact = Contact.objects.get()
    GhlConnection.objects.filter(location=location).update(paused_until=timezone.now() + timezone.timedelta(hours=1))
    inbound(marketing, "w1", text="wrote to marketing")  # tagged marketing here; GHL's sync waits
    # GHL reports the contact's tags as it holds them (an unrelated tag changed there)
    ghl.contacts[contact.ghl_contact_id]["tags"].append("vip")
    event = {"type": "ContactTagUpdate", "locationId": "ghl-loc-1", "id": contact.ghl_contact_id, "tags": ["whatsnap-account-sales", "vip"]}
    assert post_signed(ghl, "/ghl/webhooks/app/", event).status_code == 200
    assert sorted(contact.tags.values_list("name", flat=True)) == ["whatsnap-account-marketing", "whatsnap-account-sales"]
    drain(location)
    assert sorted(ghl.contacts[contact.ghl_contact_id]["tags"]) == ["vip", "whatsnap-account-marketing", "whatsnap-account-sales"]
    # and one GHL no longer has (told of it before) is removed here
    event["tags"] = ["whatsnap-account-marketing"]
    post_signed(ghl, "/ghl/webhooks/app/", event)
    assert list(contact.tags.values_list("name", flat=True)) == ["whatsnap-account-marketing"]


def test_the_contact_id_of_a_delivery_is_one_path_segment_of_the_ghl_read(installed, ghl, sales, location):
    """The id comes from the delivery's body: '../' in it reads no other GHL endpoint with the
    location's token; it stays inside GET /contacts/{id}, which GHL answers as no contact."""
    payload = ghl.provider_outbound(location_id="ghl-loc-1", contact_id="../locations/ghl-loc-1", text="probe", phone="")
    assert post_signed(ghl, DELIVERY_URL, payload).status_code == 200
    reads = [c.path for c in ghl.api_calls("GET") if "locations" in c.path or c.path.startswith("/contacts/")]
    assert reads and all(p.startswith("/contacts/") and "/locations/" not in p for p in reads), reads
    assert not Message.objects.filter(direction="outbound").exists()
    failed = OutboxItem.objects.get(operation=OutboxItem.Operation.MESSAGE_STATUS)
    assert failed.payload["status"] == "failed" and "no phone number" in failed.payload["error"]
