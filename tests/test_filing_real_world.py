"""Filing issue 17's events (backend-neutral: the normalised events every backend produces):
LID senders and the merge once the phone is known, messages typed on the phone, reactions,
edits, deletions, group events, imported history, and events kept unfiled with a reason."""
from datetime import datetime, timedelta, timezone as dt_tz

import pytest

from accounts.providers.base import (
    ChatEvent,
    Ignored,
    InboundMessage,
    MessageDeleted,
    MessageEdited,
    PhoneIdentified,
    Reaction,
    Unfiled,
)
from accounts.services import account_create, account_set_status
from contacts.models import Contact, Tag
from contacts.services import contact_tag_add
from conversations import receiving
from conversations.models import Conversation, ConversationEvent, InboundEvent, Message, MessageReaction
from conversations.services import inbound_event_process, message_send, webhook_events_record
from whatsnap import events

pytestmark = pytest.mark.django_db(transaction=True)

LID = "201299887766554@lid"


@pytest.fixture
def wa(location):
    """A WhatsApp account (sandbox backend: filing is the same for every backend)."""
    account = account_create(location=location, kind="whatsapp", backend="sandbox", name="Support", phone_number="+14155550100")
    account_set_status(account=account, status="connected", reason="test")
    account.refresh_from_db()
    return account


def now(minutes=0):
    return datetime.now(dt_tz.utc) + timedelta(minutes=minutes)


def msg(pid, phone="+14155550123", text="hello", **kw):
    return InboundMessage(provider_id=pid, from_phone=phone, name=kw.pop("name", "Ada"), text=text, at=kw.pop("at", now()), **kw)


def file(account, *evs):
    webhook_events_record(account=account, events=list(evs))


# --- LID senders ------------------------------------------------------------------------------------
def test_a_lid_only_sender_is_filed_under_a_contact_keyed_by_the_lid(wa):
    file(wa, msg("m1", phone="", sender_lid=LID, text="who am I"))
    contact = Contact.objects.get()
    assert (contact.phone, contact.phone_is_e164, contact.whatsapp_lid, contact.name) == (LID, False, LID, "Ada")
    assert Message.objects.get().conversation.contact == contact
    assert [t.name for t in contact.tags.all()] == ["whatsnap-account-support"]


def test_the_lid_contact_takes_the_phone_when_a_later_message_carries_both(wa):
    file(wa, msg("m1", phone="", sender_lid=LID))
    lid_contact = Contact.objects.get()
    file(wa, msg("m2", phone="+14155550123", sender_lid=LID, text="again"))
    contact = Contact.objects.get()  # still one person
    assert contact.pk == lid_contact.pk
    assert (contact.phone, contact.phone_is_e164, contact.whatsapp_lid) == ("+14155550123", True, LID)
    assert Conversation.objects.get().messages.count() == 2
    # and a later LID-only message finds the same person
    file(wa, msg("m3", phone="", sender_lid=LID, text="third"))
    assert Contact.objects.count() == 1 and Message.objects.count() == 3


def test_the_lid_contact_merges_into_an_existing_phone_contact(wa, location):
    file(wa, msg("p1", phone="+14155550123", text="from the number"))
    phone_contact = Contact.objects.get()
    file(wa, msg("l1", phone="", sender_lid=LID, text="from the lid"))
    lid_contact = Contact.objects.exclude(pk=phone_contact.pk).get()
    vip = Tag.objects.create(location=location, name="vip")
    contact_tag_add(contact=lid_contact, tag=vip)
    with events.captured() as seen:
        file(wa, msg("b1", phone="+14155550123", sender_lid=LID, text="both"))
    assert list(Contact.objects.values_list("pk", flat=True)) == [phone_contact.pk]
    phone_contact.refresh_from_db()
    assert phone_contact.whatsapp_lid == LID
    assert {t.name for t in phone_contact.tags.all()} == {"vip", "whatsnap-account-support"}
    conversation = Conversation.objects.get()  # the two threads folded into one
    assert sorted(conversation.messages.values_list("provider_message_id", flat=True)) == ["b1", "l1", "p1"]
    assert ("contact.merged", phone_contact.pk) in [(e.name, e.data.get("contact").pk) for e in seen if e.name == "contact.merged"]


def test_the_gateway_naming_the_phone_of_a_lid_merges_it(wa):
    file(wa, msg("l1", phone="", sender_lid=LID))
    file(wa, PhoneIdentified(lid=LID, phone="+14155550123"))
    contact = Contact.objects.get()
    assert (contact.phone, contact.whatsapp_lid) == ("+14155550123", LID)
    assert InboundEvent.objects.filter(kind="identity").get().status == "done"


def test_a_phone_for_a_lid_nobody_has_creates_nobody(wa):
    file(wa, PhoneIdentified(lid=LID, phone="+14155550123"))
    assert not Contact.objects.exists()
    assert InboundEvent.objects.get().status == "done"


def test_a_message_naming_no_sender_at_all_is_kept_unfiled_with_the_reason(wa):
    file(wa, msg("m1", phone=""))
    event = InboundEvent.objects.get()
    assert (event.status, event.error) == ("unfiled", "no sender phone or WhatsApp id in the message")
    assert not Message.objects.exists() and not Contact.objects.exists()


# --- typed on the phone ------------------------------------------------------------------------------
def test_a_message_typed_on_the_phone_answers_like_an_agent(wa):
    file(wa, msg("in1", text="question", at=now(-10)))
    with events.captured() as seen:
        file(wa, msg("dev1", text="answered from my phone", from_me=True, name="Shop owner", at=now(-5)))
    out = Message.objects.get(provider_message_id="dev1")
    assert (out.direction, out.via_device, out.status, out.author) == ("outbound", True, "sent", None)
    conversation = out.conversation
    conversation.refresh_from_db()
    assert conversation.unread_count == 0 and conversation.last_message_preview == "answered from my phone"
    assert conversation.first_response_at == out.sent_at
    assert Contact.objects.get().name == "Ada"  # the owner's own name never renames the contact
    assert [e.name for e in seen if e.name.startswith("message.")] == ["message.sent_from_device"]


def test_whatsnaps_own_send_echoing_back_is_not_filed_twice(wa):
    file(wa, msg("in1"))
    conversation = Conversation.objects.get()
    sent = message_send(conversation=conversation, text="from the inbox")
    sent.refresh_from_db()
    assert sent.provider_message_id  # the (synchronous) queue sent it
    file(wa, msg(sent.provider_message_id, text="from the inbox", from_me=True))
    assert Message.objects.filter(direction="outbound").count() == 1
    assert InboundEvent.objects.get(dedupe_key=f"msg:{sent.provider_message_id}").status == "done"


def test_a_phone_message_waits_while_a_send_of_ours_awaits_its_answer(wa):
    file(wa, msg("in1"))
    conversation = Conversation.objects.get()
    sent = message_send(conversation=conversation, text="hello")
    Message.objects.filter(pk=sent.pk).update(status="sending", provider_message_id="")
    file(wa, msg("wa-out-2", text="hello", from_me=True))
    event = InboundEvent.objects.get(dedupe_key="msg:wa-out-2")
    assert event.status == "pending" and "awaits its answer" in event.error
    # the send's answer arrives: the same report is now recognised as its echo
    Message.objects.filter(pk=sent.pk).update(status="sent", provider_message_id="wa-out-2")
    assert inbound_event_process(event_id=event.pk) == "done"
    assert Message.objects.filter(direction="outbound").count() == 1


# --- reactions, quotes, edits, deletions -------------------------------------------------------------
def test_reactions_from_both_sides_land_on_their_message_and_can_be_removed(wa):
    file(wa, msg("in1", text="price?"))
    target = Message.objects.get()
    file(wa, Reaction(provider_id="r1", target_id="in1", emoji="👍", at=now()),
         Reaction(provider_id="r2", target_id="in1", emoji="❤️", at=now(), from_me=True))
    assert sorted(MessageReaction.objects.values_list("actor_key", "emoji")) == sorted(
        [(f"c{target.conversation.contact_id}", "👍"), ("me", "❤️")])
    file(wa, Reaction(provider_id="r3", target_id="in1", emoji="", at=now()))
    assert list(MessageReaction.objects.values_list("actor_key", flat=True)) == ["me"]
    conversation = Conversation.objects.get()
    assert conversation.unread_count == 1  # a reaction is no new message


def test_a_reaction_to_an_unknown_message_waits_then_is_kept_with_the_reason(wa):
    file(wa, Reaction(provider_id="r1", target_id="nope", emoji="👍", at=now()))
    event = InboundEvent.objects.get()
    for _ in range(receiving.NOT_YET_ATTEMPTS):
        if event.status != "pending":
            break
        try:
            inbound_event_process(event_id=event.pk)
        except Exception:
            pass
        event.refresh_from_db()
    assert event.status == "unfiled"
    assert event.error == "reaction of a message WhatSnap does not have"


def test_a_quoted_reply_points_at_what_it_quotes(wa):
    file(wa, msg("in1", text="Do you ship to Lisbon?"))
    file(wa, msg("in2", text="and Porto?", reply_to="in1"))
    file(wa, msg("in3", text="re: old", reply_to="gone", quoted_text="something from before"))
    quoted = Message.objects.get(provider_message_id="in2")
    assert quoted.reply_to.provider_message_id == "in1" and quoted.quoted_text == "Do you ship to Lisbon?"
    unknown = Message.objects.get(provider_message_id="in3")
    assert (unknown.reply_to, unknown.reply_to_provider_id, unknown.quoted_text) == (None, "gone", "something from before")


def test_an_edit_shows_the_new_text_and_keeps_the_old(wa):
    file(wa, msg("in1", text="see you at 5"))
    file(wa, MessageEdited(provider_id="e1", target_id="in1", text="see you at 6", at=now(), from_me=False, chat="+14155550123"))
    message = Message.objects.get()
    assert message.text == "see you at 6" and message.edited_at is not None
    assert [e["text"] for e in message.edits] == ["see you at 5"]
    assert Conversation.objects.get().last_message_preview == "see you at 6"


def test_a_deletion_for_everyone_marks_the_message(wa):
    file(wa, msg("in1", text="oops wrong chat"))
    file(wa, MessageDeleted(target_id="in1", at=now(), from_me=False, chat="+14155550123"))
    message = Message.objects.get()
    assert message.deleted_at is not None and message.text == "oops wrong chat"  # admins can still read it
    assert Conversation.objects.get().last_message_preview == "This message was deleted"


# --- group events ----------------------------------------------------------------------------------
def test_a_group_event_is_shown_in_the_thread_without_bumping_it(wa):
    group = "120363041234567890@g.us"
    file(wa, msg("g1", text="hi all", group_id=group, group_name="Team"))
    conversation = Conversation.objects.get()
    conversation.status = Conversation.Status.RESOLVED
    conversation.save()
    file(wa, ChatEvent(provider_id="ce1", group_id=group, text="Ana added Bob", at=now(), group_name="Team Lisbon"))
    conversation.refresh_from_db()
    assert (conversation.status, conversation.unread_count) == ("resolved", 1)
    assert ConversationEvent.objects.get(kind="chat").reason == "Ana added Bob"
    assert Contact.objects.get(kind="group").name == "Team Lisbon"


def test_a_group_event_of_an_unknown_group_is_kept_unfiled(wa):
    file(wa, ChatEvent(provider_id="ce1", group_id="999@g.us", text="Ana left", at=now()))
    event = InboundEvent.objects.get()
    assert (event.status, event.error) == ("unfiled", "event of a group chat WhatSnap has no conversation with yet")


# --- history ------------------------------------------------------------------------------------------
def test_imported_history_is_shown_but_never_routed_or_counted_unread(wa, admin_user):
    wa.default_assignee = admin_user
    wa.save()
    with events.captured() as seen:
        file(wa, msg("h1", text="old question", at=now(-600), history=True),
             msg("h2", text="old answer", at=now(-590), history=True, from_me=True))
    conversation = Conversation.objects.get()
    assert (conversation.unread_count, conversation.assignee, conversation.last_message_preview) == (0, None, "old answer")
    assert list(Message.objects.values_list("is_history", flat=True)) == [True, True]
    assert {e.name for e in seen if e.name.startswith("message.")} == {"message.imported"}


# --- kept unfiled on arrival -----------------------------------------------------------------------------
def test_an_unfiled_webhook_is_kept_with_its_envelope_and_never_processed(wa):
    envelope = {"event": "typing-indicator", "data": {"guid": "x"}}
    assert webhook_events_record(account=wa, events=[Unfiled(reason="unsupported event type typing-indicator", envelope=envelope)]) == 0
    event = InboundEvent.objects.get()
    assert (event.kind, event.status, event.error) == ("unfiled", "unfiled", "unsupported event type typing-indicator")
    assert event.payload["envelope"] == envelope
    # a redelivery of the same body is the same row
    webhook_events_record(account=wa, events=[Unfiled(reason="unsupported event type typing-indicator", envelope=envelope)])
    assert InboundEvent.objects.count() == 1


def test_the_gateways_lookup_gives_a_lid_contact_its_number(wa, monkeypatch):
    """A LID-only message asks the backend (Provider.resolve_lid) once; its answer renumbers the
    contact. The backends' own lookups are tested against their stand-ins."""
    from django.core.cache import cache

    from accounts.providers.sandbox import SandboxProvider

    cache.clear()
    asked = []
    monkeypatch.setattr(SandboxProvider, "resolve_lid", lambda self, account, lid: asked.append(lid) or "+14155550123")
    file(wa, msg("l1", phone="", sender_lid=LID), msg("l2", phone="", sender_lid=LID, text="twice"))
    assert asked == [LID]  # once an hour per LID, not once per message
    contact = Contact.objects.get()
    assert (contact.phone, contact.whatsapp_lid) == ("+14155550123", LID)
    assert Message.objects.filter(conversation__contact=contact).count() == 2


def test_a_waha_id_naming_the_chat_by_lid_finds_the_message_stored_under_the_phone(location):
    """WAHA ids are `{fromMe}_{chat}_{id}[_{participant}]` (devlikeapro/waha:
    src/core/engines/noweb/session.noweb.core.ts, buildMessageId); one chat can be `…@c.us` in
    one id and `…@lid` in the next. Reactions, edits, deletions and statuses still find it."""
    from accounts.models import Account

    waha = Account.objects.create(location=location, kind="whatsapp", backend="waha", name="W", slug="w", status="connected")
    waha = Account.objects.select_related("location").get(pk=waha.pk)
    file(waha, msg("false_14155550123@c.us_3EB0AA11", text="hi"))
    chat = "14155550123@c.us"
    file(waha, Reaction(provider_id="r1", target_id=f"false_{LID}_3EB0AA11", emoji="🙏", at=now(), chat=chat),
         MessageEdited(provider_id="e1", target_id=f"false_{LID}_3EB0AA11", text="hi there", at=now(), from_me=False, chat=chat),
         Reaction(provider_id="r2", target_id=f"false_{LID}_3EB0BB22", emoji="🙏", at=now(), chat=chat))
    message = Message.objects.get()
    assert message.text == "hi there" and message.reactions.get().emoji == "🙏"
    assert InboundEvent.objects.get(dedupe_key="re:r2").status == "pending"  # another message: not this one


# --- only a message's author edits or deletes it (a forged one is kept, not applied) -----------
def test_a_contact_cannot_edit_or_delete_what_the_account_sent(wa):
    file(wa, msg("in1", text="how much?"))
    sent = message_send(conversation=Conversation.objects.get(), text="It is $100")
    sent.refresh_from_db()
    file(wa, MessageEdited(provider_id="e1", target_id=sent.provider_message_id, text="It is free", at=now(), from_me=False, chat="+14155550123"),
         MessageDeleted(target_id=sent.provider_message_id, at=now(), from_me=False, chat="+14155550123"))
    sent.refresh_from_db()
    assert (sent.text, sent.edited_at, sent.deleted_at) == ("It is $100", None, None)
    reasons = set(InboundEvent.objects.filter(kind__in=["edit", "delete"]).values_list("status", "error"))
    assert reasons == {("unfiled", "edit of a message its sender did not write: not applied"),
                       ("unfiled", "deletion of a message its sender did not write: not applied")}


def test_the_accounts_phone_edits_only_what_the_account_sent_and_unknown_authors_are_kept(wa):
    file(wa, msg("in1", text="hello"))
    file(wa, MessageEdited(provider_id="e1", target_id="in1", text="forged", at=now(), from_me=True, chat="+14155550123"),
         MessageEdited(provider_id="e2", target_id="in1", text="who?", at=now(), chat="+14155550123"))
    assert Message.objects.get().text == "hello"
    assert set(InboundEvent.objects.filter(kind="edit").values_list("error", flat=True)) == {
        "edit of a message its sender did not write: not applied", "edit that does not say who made it: not applied"}


def test_in_a_group_only_the_member_who_wrote_a_message_edits_it(wa):
    group = "120363041234567890@g.us"
    file(wa, msg("g1", phone="+14155550123", name="Bob", text="I'll bring the cake", group_id=group, group_name="Party"))
    file(wa, MessageEdited(provider_id="e1", target_id="g1", text="I'll bring nothing", at=now(), from_me=False, by="+14155550999", chat=group))
    assert Message.objects.get().text == "I'll bring the cake"
    assert InboundEvent.objects.get(kind="edit").error == "edit by a group member who did not write the message: not applied"
    file(wa, MessageEdited(provider_id="e2", target_id="g1", text="I'll bring two cakes", at=now(), from_me=False, by="+14155550123", chat=group))
    assert Message.objects.get().text == "I'll bring two cakes"


def test_edit_history_keeps_the_last_texts_only(wa):
    from conversations.amendments import MAX_EDITS_KEPT

    file(wa, msg("in1", text="v0"))
    for n in range(1, MAX_EDITS_KEPT + 5):
        file(wa, MessageEdited(provider_id=f"e{n}", target_id="in1", text=f"v{n}", at=now(), from_me=False, chat="+14155550123"))
    message = Message.objects.get()
    assert message.text == f"v{MAX_EDITS_KEPT + 4}" and len(message.edits) == MAX_EDITS_KEPT
    assert message.edits[-1]["text"] == f"v{MAX_EDITS_KEPT + 3}"


@pytest.mark.parametrize("parsed, kept", [([], 1), ([Ignored("a keep-alive")], 0)])
def test_a_webhook_a_backend_finds_nothing_in_is_kept_unless_it_carries_nothing_by_nature(wa, monkeypatch, parsed, kept):
    """The webhook view's safety net: a verified webhook whose parse yields no event at all is
    kept unfiled with its body; one the backend marks Ignored (nothing new by nature) is not."""
    import json as json_module

    from django.test import Client

    from accounts.providers.sandbox import SandboxProvider, sign

    monkeypatch.setattr(SandboxProvider, "parse_webhook", lambda self, account, request: list(parsed))
    body = json_module.dumps({"type": "something-new", "id": "x1"}).encode()
    response = Client().post(f"/webhooks/sandbox/{wa.pk}/", data=body, content_type="application/json",
                             HTTP_X_SANDBOX_SIGNATURE=sign(wa.webhook_secret, body))
    assert response.status_code == 200
    rows = list(InboundEvent.objects.values_list("status", "error", "payload"))
    assert len(rows) == kept
    if kept:
        assert rows[0][:2] == ("unfiled", "nothing to file in this Sandbox (simulated phone) webhook")
        assert rows[0][2]["envelope"] == {"type": "something-new", "id": "x1"}


def test_a_kept_body_never_keeps_the_secret_that_authenticated_it(wa):
    """Evolution's envelope carries the instance token as `apikey` (EvolutionAPI/evolution-api
    src/api/integrations/event/webhook/webhook.controller.ts); staff read kept bodies."""
    envelope = {"event": "presence.update", "apikey": "B6D711FCDE4D4FD5936544120E713976",
                "data": {"id": "x", "nested": [{"token": "t0k", "text": "kept"}]}}
    webhook_events_record(account=wa, events=[Unfiled(reason="unsupported event type PRESENCE_UPDATE", envelope=envelope)])
    kept = InboundEvent.objects.get().payload["envelope"]
    assert kept == {"event": "presence.update", "apikey": "[redacted]",
                    "data": {"id": "x", "nested": [{"token": "[redacted]", "text": "kept"}]}}


def test_refused_webhooks_write_the_account_at_most_once_a_minute_whatever_the_reason(wa):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.services import account_webhook_refused

    with CaptureQueriesContext(connection) as queries:
        for n in range(10):
            account_webhook_refused(account=wa, reason=f"reason {n % 2}")
    assert len([q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]) == 1
    wa.refresh_from_db()
    assert wa.webhook_refused_reason == "reason 0"


def test_a_deleted_message_is_not_found_by_its_words_in_the_inbox(wa, location, admin_user):
    from conversations.selectors import conversations_for

    file(wa, msg("in1", text="my card number is 4111"))
    assert conversations_for(location=location, user=admin_user, query="4111").count() == 1
    file(wa, MessageDeleted(target_id="in1", at=now(), from_me=False, chat="+14155550123"))
    assert conversations_for(location=location, user=admin_user, query="4111").count() == 0


def test_a_waha_message_typed_on_the_phone_is_looked_up_by_index_not_by_scanning(location):
    """Message.provider_id_core is kept on every message (WAHA: the raw WhatsApp id), so the
    LID/phone fallback is one indexed lookup (the hostile-tenant review found a LIKE scan)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Account

    waha = Account.objects.create(location=location, kind="whatsapp", backend="waha", name="W", slug="w", status="connected")
    waha = Account.objects.select_related("location").get(pk=waha.pk)
    file(waha, msg("false_14155550123@c.us_3EB0AA11", text="hi"))
    assert Message.objects.get().provider_id_core == "3EB0AA11"
    with CaptureQueriesContext(connection) as queries:
        file(waha, msg(f"true_{LID}_3EB0CC33", phone="", sender_lid=LID, text="typed on the phone", from_me=True))
    assert not [q for q in queries.captured_queries if "LIKE" in q["sql"].upper()]
    assert Message.objects.get(provider_message_id=f"true_{LID}_3EB0CC33").provider_id_core == "3EB0CC33"


def test_an_edit_or_deletion_naming_a_message_of_another_chat_is_not_applied(wa):
    """A contact learns ids of messages in their own chat only, but names whatever id it likes:
    the target must be a message of the chat the edit came from."""
    file(wa, msg("y1", phone="+14155550177", name="Yara", text="my address is 1 Main St"))
    file(wa, msg("x1", phone="+14155550123", name="Xavi", text="hi"))
    file(wa, MessageEdited(provider_id="e1", target_id="y1", text="my address is 9 Fake Rd", at=now(), from_me=False,
                           chat="+14155550123"),
         MessageDeleted(target_id="y1", at=now(), from_me=False, chat="+14155550123"),
         MessageEdited(provider_id="e2", target_id="y1", text="no chat", at=now(), from_me=False))
    yara = Message.objects.get(provider_message_id="y1")
    assert (yara.text, yara.deleted_at) == ("my address is 1 Main St", None)
    assert sorted(InboundEvent.objects.filter(kind__in=["edit", "delete"]).values_list("error", flat=True)) == [
        "deletion naming a message of another chat: not applied", "edit naming a message of another chat: not applied",
        "edit that does not say which chat it came from: not applied"]
