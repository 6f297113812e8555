"""Issue 17 as it reaches GoHighLevel, end to end: webhook event -> filing -> outbox -> the GHL
stand-in on loopback.

What GHL's public API offers, as these tests hold us to it (GoHighLevel/highlevel-api-docs):
- apps/conversations.json, "Add an inbound message" (POST /conversations/messages/inbound,
  ProcessMessageBodyDto): `direction` "if required can be set manually" — our messages (replies
  from WhatSnap, messages typed on the phone) go there as outbound; "Add an external outbound
  call" (POST /conversations/messages/outbound) takes only type "Call".
- docs/webhook events/ProviderOutboundMessage.md: the Delivery URL is "called whenever a user
  sends a message"; it carries no altId, so a message of ours handed back is known by its id.
- apps/contacts.json: Create Contact (POST /contacts/) needs only locationId (a WhatsApp-LID
  contact has no phone); Get Duplicate Contact by number; Update Contact (phone); Add Tags;
  Create / Update / Delete Note. No merge of contacts, and no call that reacts to, edits or
  deletes a conversation message (TYPE_SMS_REACTION is a message type to read, not to write)."""
from datetime import datetime, timezone as dt_tz

import pytest
from django.db import connection as db_connection

from accounts.providers.base import InboundMessage, MessageDeleted, MessageEdited, PhoneIdentified, Reaction
from accounts.services import account_connect, account_create, account_set_status
from contacts.models import Contact
from contacts.services import contact_merge
from conversations import history as history_module
from conversations.history import account_history_import
from conversations.models import Message
from conversations.services import webhook_events_record
from ghl import client as ghl_client
from ghl.merges import MERGED_TAG
from ghl.models import GhlMessageLink, GhlMessageNote, GhlRetiredContact, OutboxItem
from tests.test_ghl import drain, ghl, inbound, installed, post_signed, sales  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)

PHONE, LID = "+14155550123", "205712346573071@lid"
DELIVERY_URL = "/ghl/webhooks/provider/"


def now():
    return datetime.now(dt_tz.utc)


@pytest.fixture
def wa(location):
    account = account_create(location=location, kind="whatsapp", backend="sandbox", name="WA", phone_number="+14155550140")
    account_connect(account=account)
    account_set_status(account=account, status="connected", reason="test")
    account.refresh_from_db()
    return account


def file(account, *items):
    webhook_events_record(account=account, events=list(items))


def typed_on_phone(pid, text, to=PHONE, **kw):
    return InboundMessage(provider_id=pid, from_phone=to, name="", text=text, at=now(), from_me=True, **kw)


def posts(standin):
    """The messages GHL took (a refused or failed post is not one)."""
    return [c.json for c in standin.api_calls("POST", "/conversations/messages/inbound") if c.status == 200]


def nothing_waiting():
    return not OutboxItem.objects.exclude(status="done").exists()


# --- messages typed on the phone (point 7) -----------------------------------------------------
def test_a_message_typed_on_the_phone_reaches_the_contacts_ghl_conversation_as_outbound(installed, ghl, sales):
    inbound(sales, "p1", text="are you open today?")
    file(sales, typed_on_phone("dev-1", "yes, until 6"))
    typed = Message.objects.get(provider_message_id="dev-1")
    assert typed.via_device and typed.direction == "outbound"
    first, second = posts(ghl)
    assert (first["direction"], second["direction"]) == ("inbound", "outbound")
    assert second["contactId"] == first["contactId"] and second["message"] == "yes, until 6"
    assert second["altId"] == f"wsm-{typed.pk}" and (second["type"], second["conversationProviderId"]) == ("SMS", "prov-123")
    link = GhlMessageLink.objects.get(message=typed)
    assert link.origin == "whatsnap" and ghl.messages[link.ghl_message_id]["conversationId"] == f"conv-{first['contactId']}"
    assert len(ghl.contacts) == 1 and nothing_waiting()


def test_a_phone_message_waits_out_a_ghl_outage_and_is_posted_once(installed, ghl, sales, location):
    inbound(sales, "p1")
    ghl.go_down(503)
    file(sales, typed_on_phone("dev-1", "answered from the phone"))
    waiting = OutboxItem.objects.get(operation="outbound_message")
    assert waiting.status == "pending" and "503" in waiting.last_error
    ghl.recover()
    drain(location)
    drain(location)
    assert [p["message"] for p in posts(ghl) if p["direction"] == "outbound"] == ["answered from the phone"]
    assert nothing_waiting()


def test_a_phone_message_ghl_hands_back_to_the_delivery_url_is_not_sent_again(installed, ghl, sales, location):
    inbound(sales, "p1")
    file(sales, typed_on_phone("dev-1", "see you soon"))
    link = GhlMessageLink.objects.get(message__provider_message_id="dev-1")
    contact = Contact.objects.get(phone=PHONE)
    payload = ghl.provider_outbound(location_id="ghl-loc-1", contact_id=contact.ghl_contact_id, text="see you soon",
                                    message_id=link.ghl_message_id)
    response = post_signed(ghl, DELIVERY_URL, payload)
    assert response.status_code == 200 and response.json()["outcome"] == "duplicate"
    assert list(Message.objects.filter(direction="outbound").values_list("provider_message_id", flat=True)) == ["dev-1"]


def test_handed_back_while_our_post_still_waits_for_its_answer_it_is_not_sent_again(installed, ghl, sales, location):
    """The one window the message id cannot close: GHL calling the Delivery URL before it
    answers our post. The post in flight (same contact, same text) is recognised."""
    inbound(sales, "p1")
    answers = []

    def deliver_back(added):
        try:
            payload = ghl.provider_outbound(location_id=added["locationId"], contact_id=added["contactId"],
                                            text=added["message"], message_id=added["id"])
            answers.append(post_signed(ghl, DELIVERY_URL, payload).json())
        finally:
            db_connection.close()  # this runs on the stand-in's thread

    ghl.on_outbound_added = deliver_back
    file(sales, typed_on_phone("dev-1", "on my way"))
    assert answers == [{"ok": True, "outcome": "duplicate"}]
    typed = Message.objects.get(provider_message_id="dev-1")
    assert Message.objects.filter(direction="outbound").count() == 1
    link = GhlMessageLink.objects.get(message=typed)
    assert link.origin == "whatsnap" and link.ghl_message_id in ghl.messages
    assert nothing_waiting()


def test_a_reply_typed_in_ghl_quoting_nothing_still_goes_out_once_and_stays_as_it_is(installed, ghl, sales, location):
    inbound(sales, "p1")
    file(sales, typed_on_phone("dev-1", "from the phone"))
    contact = Contact.objects.get(phone=PHONE)
    message_id = ghl.add_provider_message("ghl-loc-1", contact.ghl_contact_id, "from GHL")
    payload = ghl.provider_outbound(location_id="ghl-loc-1", contact_id=contact.ghl_contact_id, text="from GHL", message_id=message_id)
    assert post_signed(ghl, DELIVERY_URL, payload).json()["outcome"] == "queued"
    reply = Message.objects.get(text="from GHL")
    assert reply.status == "delivered" and not reply.via_device and reply.reply_to is None and reply.reply_to_provider_id == ""
    assert ghl.messages[message_id]["status"] == "delivered"
    assert [p["message"] for p in posts(ghl)] == ["hello", "from the phone"]  # the GHL reply is not posted back


# --- history (point 10) ----------------------------------------------------------------------------
class HistoryGateway:
    supports_history = True

    def __init__(self, messages):
        self.messages = messages

    def history(self, account, *, since):
        return self.messages


def test_imported_history_writes_no_outbox_row_and_calls_no_ghl(installed, ghl, wa, monkeypatch):
    before = len(ghl.api_calls())
    gateway = HistoryGateway([
        InboundMessage(provider_id="h1", from_phone=PHONE, name="Ada", text="last week", at=now(), history=True),
        InboundMessage(provider_id="h2", from_phone=PHONE, name="", text="our answer", at=now(), from_me=True, history=True),
    ])
    monkeypatch.setattr(history_module, "get_provider", lambda backend: gateway)
    assert account_history_import(account=wa) == 2
    assert Message.objects.filter(is_history=True).count() == 2
    assert not OutboxItem.objects.exists() and len(ghl.api_calls()) == before
    assert ghl.contacts == {}


# --- WhatsApp LID contacts (point 2) ---------------------------------------------------------------
def from_lid(pid, text="hi", phone="", name="Ana"):
    return InboundMessage(provider_id=pid, from_phone=phone, name=name, text=text, at=now(), sender_lid=LID)


def test_a_lid_only_sender_is_a_ghl_contact_without_phone_that_gets_the_phone_when_known(installed, ghl, wa):
    file(wa, from_lid("l1", "hello from a LID"))
    contact = Contact.objects.get(whatsapp_lid=LID)
    assert contact.phone == LID and contact.ghl_contact_id
    created = ghl.contacts[contact.ghl_contact_id]
    assert created["phone"] is None and created["name"] == "Ana" and created["tags"] == ["whatsnap-account-wa"]
    assert not ghl.api_calls("POST", "/contacts/upsert") and not ghl.api_calls("GET", "/contacts/search/duplicate")
    assert posts(ghl)[0]["contactId"] == contact.ghl_contact_id and posts(ghl)[0]["message"] == "hello from a LID"

    file(wa, PhoneIdentified(lid=LID, phone=PHONE))  # the gateway names the phone: renumbered in place
    assert list(ghl.contacts) == [contact.ghl_contact_id] and ghl.contacts[contact.ghl_contact_id]["phone"] == PHONE
    file(wa, InboundMessage(provider_id="p2", from_phone=PHONE, name="Ana", text="now by phone", at=now()))
    assert {p["contactId"] for p in posts(ghl)} == {contact.ghl_contact_id} and len(ghl.contacts) == 1
    assert nothing_waiting()


def test_messages_ghl_refused_for_want_of_a_phone_are_posted_once_the_phone_is_known(installed, ghl, wa):
    ghl.refuse_messages_without_phone = True
    file(wa, from_lid("l1", "first"), from_lid("l2", "second"))
    assert list(OutboxItem.objects.filter(operation="inbound_message").values_list("status", flat=True)) == ["failed", "failed"]
    file(wa, PhoneIdentified(lid=LID, phone=PHONE))
    assert [p["message"] for p in posts(ghl)] == ["first", "second"]
    assert {p["contactId"] for p in posts(ghl)} == {Contact.objects.get(phone=PHONE).ghl_contact_id}
    assert nothing_waiting()


def test_merged_into_a_phone_contact_ghl_never_had_the_lid_ghl_contact_takes_the_phone(installed, ghl, wa, location):
    """GHL refuses messages to a contact without a phone here: the LID's message waits, failed,
    and is posted once the contact it lands on has the phone."""
    Contact.objects.create(location=location, phone=PHONE, name="Ana L.")  # known here before GHL was installed
    ghl.refuse_messages_without_phone = True
    file(wa, from_lid("l1", "first, by LID"))
    lid_ghl_id = Contact.objects.get(phone=LID).ghl_contact_id
    assert OutboxItem.objects.get(operation="inbound_message").status == "failed"

    file(wa, from_lid("p2", "now with my number", phone=PHONE))  # carries both: the two contacts merge
    kept = Contact.objects.get(phone=PHONE)
    assert not Contact.objects.filter(phone=LID).exists() and kept.whatsapp_lid == LID
    assert kept.ghl_contact_id == lid_ghl_id and list(ghl.contacts) == [lid_ghl_id]
    assert ghl.contacts[lid_ghl_id]["phone"] == PHONE and "whatsnap-account-wa" in ghl.contacts[lid_ghl_id]["tags"]
    assert sorted(m["message"] for m in ghl.messages.values()) == ["first, by LID", "now with my number"]
    assert {m["contactId"] for m in ghl.messages.values()} == {lid_ghl_id}
    assert nothing_waiting()


def test_when_both_were_in_ghl_the_phones_contact_is_kept_and_the_other_marked_merged(installed, ghl, wa, sales, location):
    inbound(sales, "s1", phone=PHONE, name="Ana", text="by SMS")
    phone_ghl_id = Contact.objects.get(phone=PHONE).ghl_contact_id
    file(wa, from_lid("l1", "by WhatsApp LID"))
    lid_ghl_id = Contact.objects.get(phone=LID).ghl_contact_id
    assert lid_ghl_id != phone_ghl_id

    file(wa, from_lid("p2", "both known now", phone=PHONE))
    kept = Contact.objects.get(phone=PHONE)
    assert kept.ghl_contact_id == phone_ghl_id and not Contact.objects.filter(phone=LID).exists()
    retired = ghl.contacts[lid_ghl_id]
    assert MERGED_TAG in retired["tags"] and MERGED_TAG not in ghl.contacts[phone_ghl_id]["tags"]
    (note,) = ghl.notes_of(lid_ghl_id)
    assert phone_ghl_id in note and PHONE in note
    assert sorted(ghl.contacts[phone_ghl_id]["tags"]) == ["whatsnap-account-sales", "whatsnap-account-wa"]
    assert posts(ghl)[-1]["contactId"] == phone_ghl_id and posts(ghl)[-1]["message"] == "both known now"
    assert GhlRetiredContact.objects.get().ghl_contact_id == lid_ghl_id and nothing_waiting()

    # a reply typed on the retired GHL contact still reaches the person
    message_id = ghl.add_provider_message("ghl-loc-1", lid_ghl_id, "answered on the old contact")
    payload = ghl.provider_outbound(location_id="ghl-loc-1", contact_id=lid_ghl_id, text="answered on the old contact", message_id=message_id)
    assert post_signed(ghl, DELIVERY_URL, payload).json()["outcome"] == "queued"
    reply = Message.objects.get(text="answered on the old contact")
    assert reply.conversation.contact_id == kept.pk and reply.status == "delivered"


def test_a_lid_contact_whose_phone_ghl_already_has_switches_to_that_contact(installed, ghl, wa):
    file(wa, from_lid("l1", "hello"))
    lid_ghl_id = Contact.objects.get(phone=LID).ghl_contact_id
    ghl.contacts["c-ghl-own"] = {"id": "c-ghl-own", "locationId": "ghl-loc-1", "phone": PHONE, "name": "Ana (GHL)",
                                 "tags": ["lead"], "assignedTo": None}
    file(wa, PhoneIdentified(lid=LID, phone=PHONE))
    contact = Contact.objects.get(phone=PHONE)
    assert contact.ghl_contact_id == "c-ghl-own"
    assert sorted(ghl.contacts["c-ghl-own"]["tags"]) == ["lead", "whatsnap-account-wa"]
    assert MERGED_TAG in ghl.contacts[lid_ghl_id]["tags"] and "c-ghl-own" in ghl.notes_of(lid_ghl_id)[0]
    file(wa, InboundMessage(provider_id="p2", from_phone=PHONE, name="Ana", text="again", at=now()))
    assert posts(ghl)[-1]["contactId"] == "c-ghl-own" and nothing_waiting()


def test_a_merge_by_hand_into_a_contact_ghl_never_had_moves_the_ghl_contact_to_the_kept_number(installed, ghl, sales, location):
    kept = Contact.objects.create(location=location, phone=PHONE, name="Ana")  # known here before GHL was installed
    inbound(sales, "b1", phone="+14155550124", name="Ana (work)", text="from work")
    source = Contact.objects.get(phone="+14155550124")
    ghl_id = source.ghl_contact_id
    contact_merge(source=source, into=kept)
    kept.refresh_from_db()
    assert kept.ghl_contact_id == ghl_id and list(ghl.contacts) == [ghl_id]
    assert ghl.contacts[ghl_id]["phone"] == PHONE and ghl.contacts[ghl_id]["name"] == "Ana"
    assert not ghl.notes and nothing_waiting()


# --- reactions, edits, deletions (point 8) ---------------------------------------------------------
def test_reactions_edits_and_deletions_are_kept_in_one_note_on_the_ghl_contact(installed, ghl, wa):
    file(wa, InboundMessage(provider_id="w1", from_phone=PHONE, name="Ada", text="can I book for 3?", at=now()))
    message = Message.objects.get(provider_message_id="w1")
    ghl_id = Contact.objects.get(phone=PHONE).ghl_contact_id

    file(wa, Reaction(provider_id="r1", target_id="w1", emoji="👍", at=now(), from_phone=PHONE))
    (note,) = ghl.notes_of(ghl_id)
    assert "WhatsApp message from Ada" in note and '"can I book for 3?"' in note and "👍 Ada" in note
    assert note.endswith(f"WhatSnap ref: wsm-{message.pk}")

    file(wa, Reaction(provider_id="r2", target_id="w1", emoji="❤️", at=now(), from_me=True))
    file(wa, MessageEdited(provider_id="e1", target_id="w1", text="can I book for 4?", at=now(), from_me=False, chat=PHONE))
    (note,) = ghl.notes_of(ghl_id)
    assert "❤️ WA (this account)" in note and '"can I book for 4?"' in note and "Edited on" in note
    assert "can I book for 3?" not in note  # earlier texts stay with WhatSnap's admins

    file(wa, MessageDeleted(target_id="w1", at=now(), from_me=False, chat=PHONE))
    (note,) = ghl.notes_of(ghl_id)
    assert "Deleted for everyone" in note and "book" not in note
    assert len(ghl.api_calls("POST", f"/contacts/{ghl_id}/notes")) == 1  # then updated in place
    assert len(ghl.api_calls("PUT", f"/contacts/{ghl_id}/notes/")) == 3
    # GHL's copy of the message itself is untouched: its API cannot change it
    assert [m["message"] for m in ghl.messages.values()] == ["can I book for 3?"]
    assert nothing_waiting()


def test_a_reaction_taken_back_removes_the_note_and_a_repeat_costs_no_call(installed, ghl, wa, location):
    file(wa, InboundMessage(provider_id="w1", from_phone=PHONE, name="Ada", text="thanks", at=now()))
    ghl_id = Contact.objects.get(phone=PHONE).ghl_contact_id
    file(wa, Reaction(provider_id="r1", target_id="w1", emoji="🙏", at=now(), from_me=True))
    assert len(ghl.notes_of(ghl_id)) == 1
    before = len(ghl.api_calls())
    item = OutboxItem.objects.filter(operation="message_note").last()
    OutboxItem.objects.create(location=location, contact=item.contact, operation="message_note", payload=item.payload)
    drain(location)
    assert len(ghl.api_calls()) == before  # same state: no call
    file(wa, Reaction(provider_id="r2", target_id="w1", emoji="", at=now(), from_me=True))
    assert ghl.notes_of(ghl_id) == [] and not GhlMessageNote.objects.exists()
    assert nothing_waiting()


def test_a_change_to_a_message_ghl_does_not_hold_costs_no_call(installed, ghl, wa):
    ghl.fail_next(422, 422)  # the contact's lookup is refused twice: the message never reaches GHL
    file(wa, InboundMessage(provider_id="w1", from_phone=PHONE, name="Ada", text="hi", at=now()))
    before = len(ghl.api_calls())
    file(wa, Reaction(provider_id="r1", target_id="w1", emoji="👍", at=now(), from_me=True))
    assert len(ghl.api_calls()) == before and ghl.notes == {}
    assert OutboxItem.objects.get(operation="message_note").result == "message not in GHL: nothing to note"


def test_a_note_whose_creation_answer_was_lost_is_found_not_written_twice(installed, ghl, wa, location, settings):
    file(wa, InboundMessage(provider_id="w1", from_phone=PHONE, name="Ada", text="hi", at=now()))
    ghl_id = Contact.objects.get(phone=PHONE).ghl_contact_id
    settings.GHL_TIMEOUT_SECONDS = 0.5
    ghl_client._http = None
    ghl.late_answers["/contacts/"] = 1.5  # GHL writes the note, the answer comes too late
    file(wa, Reaction(provider_id="r1", target_id="w1", emoji="👍", at=now(), from_me=True))
    item = OutboxItem.objects.get(operation="message_note")
    assert item.status == "pending" and item.unconfirmed_post_at is not None
    assert len(ghl.notes_of(ghl_id)) == 1
    drain(location)
    assert len(ghl.notes_of(ghl_id)) == 1 and GhlMessageNote.objects.get().ghl_note_id in ghl.notes
    assert nothing_waiting()
    ghl_client._http = None


def test_a_group_members_reaction_note_goes_to_the_members_ghl_contact(installed, ghl, wa):
    file(wa, InboundMessage(provider_id="g1", from_phone=PHONE, name="Ada", text="who's in?", at=now(),
                            group_id="120363000000000000@g.us", group_name="Book club"))
    ghl_id = Contact.objects.get(phone=PHONE).ghl_contact_id
    file(wa, Reaction(provider_id="r1", target_id="g1", emoji="✋", at=now(), from_phone="+14155550199"))
    (note,) = ghl.notes_of(ghl_id)
    assert "in Book club" in note and "✋" in note
