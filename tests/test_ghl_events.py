"""GHL's subscriptions to domain events (ghl/subscribers.py): which outbox rows each event
writes, inside the transaction of the change; none for a location without the GHL app.

The location here has a GHL location id but no connection, so the drain started after a commit
finds nothing to take and calls nobody: these tests see the rows exactly as they were written."""
from datetime import datetime, timezone as dt_tz

import pytest
from django.db import transaction

from accounts.models import Location
from accounts.providers.base import InboundMessage
from accounts.services import account_connect, account_create
from contacts.models import Contact, Tag
from conversations.models import Conversation, Message
from ghl import services as ghl_services
from ghl.models import ContactSync, GhlRetiredContact, OutboxItem
from whatsnap import events

pytestmark = pytest.mark.django_db(transaction=True)

UPSERT, INBOUND, OUTBOUND, STATUS = (OutboxItem.Operation.CONTACT_UPSERT, OutboxItem.Operation.INBOUND_MESSAGE,
                                     OutboxItem.Operation.OUTBOUND_MESSAGE, OutboxItem.Operation.MESSAGE_STATUS)
NOTE, RETIRE = OutboxItem.Operation.MESSAGE_NOTE, OutboxItem.Operation.CONTACT_RETIRE


@pytest.fixture
def kicks(monkeypatch):
    """The drains started (by location id); a drain starts only once the change commits."""
    started = []
    monkeypatch.setattr(ghl_services, "kick", started.append)
    return started


@pytest.fixture
def with_ghl(location):
    Location.objects.filter(pk=location.pk).update(ghl_location_id="ghl-loc-1")
    location.refresh_from_db()
    return location


@pytest.fixture
def account(location):
    account = account_create(location=location, kind="android_sms", backend="sandbox", name="Sales", phone_number="+14155550111")
    account_connect(account=account)
    return type(account).objects.select_related("location").get(pk=account.pk)


@pytest.fixture
def ada(location):
    return Contact.objects.create(location=location, phone="+14155550123", name="Ada")


@pytest.fixture
def conversation(location, account, ada):
    return Conversation.objects.create(location=location, contact=ada, account=account)


def outbound(conversation, status="queued", error=""):
    return Message.objects.create(location=conversation.location, conversation=conversation, account=conversation.account,
                                  direction=Message.Direction.OUTBOUND, text="hi", status=status, error=error)


def rows():
    return [(r.operation, r.contact_id, r.account_id, r.payload) for r in OutboxItem.objects.order_by("id")]


def record(name, location, **data):
    with transaction.atomic():
        events.record(name, location_id=location.pk, **data)


# --- messages ------------------------------------------------------------------------------------
def test_message_received_upserts_a_changed_sender_then_posts_the_message(with_ghl, account, ada, conversation, kicks):
    message = Message.objects.create(location=with_ghl, conversation=conversation, account=account,
                                     direction=Message.Direction.INBOUND, text="hello", status=Message.Status.RECEIVED)
    with transaction.atomic():
        events.record("message.received", location_id=with_ghl.pk, message=message, conversation=conversation,
                      contact=ada, sender=ada, account=account, contact_changed=True)
        assert kicks == []  # the drain starts after the commit, never inside the change
    assert rows() == [(UPSERT, ada.pk, account.pk, {}), (INBOUND, ada.pk, account.pk, {"message_id": message.pk})]
    assert kicks and set(kicks) == {with_ghl.pk}


def test_message_received_in_a_group_upserts_the_sender_and_posts_to_the_group_thread(with_ghl, account, ada):
    group = Contact.objects.create(location=with_ghl, kind=Contact.Kind.GROUP, phone="120363@g.us", name="Team")
    thread = Conversation.objects.create(location=with_ghl, contact=group, account=account)
    message = Message.objects.create(location=with_ghl, conversation=thread, account=account, sender_contact=ada,
                                     direction=Message.Direction.INBOUND, text="hello", status=Message.Status.RECEIVED)
    record("message.received", with_ghl, message=message, conversation=thread, contact=group, sender=ada,
           account=account, contact_changed=True)
    assert rows() == [(UPSERT, ada.pk, account.pk, {}), (INBOUND, group.pk, account.pk, {"message_id": message.pk})]


def test_message_received_from_an_unchanged_sender_only_posts_the_message(with_ghl, account, ada, conversation):
    message = Message.objects.create(location=with_ghl, conversation=conversation, account=account,
                                     direction=Message.Direction.INBOUND, text="hello", status=Message.Status.RECEIVED)
    record("message.received", with_ghl, message=message, conversation=conversation, contact=ada, sender=ada,
           account=account, contact_changed=False)
    assert rows() == [(INBOUND, ada.pk, account.pk, {"message_id": message.pk})]


def test_a_reply_from_whatsnap_is_logged_in_ghl_and_one_typed_in_ghl_is_not(with_ghl, account, ada, conversation):
    mine, theirs = outbound(conversation), outbound(conversation)
    record("message.queued", with_ghl, message=mine, conversation=conversation, from_ghl=False)
    record("message.queued", with_ghl, message=theirs, conversation=conversation, from_ghl=True)
    assert rows() == [(OUTBOUND, ada.pk, account.pk, {"message_id": mine.pk})]


def test_a_message_typed_on_the_phone_is_logged_in_ghl_as_outbound(with_ghl, account, ada, conversation):
    typed = Message.objects.create(location=with_ghl, conversation=conversation, account=account, via_device=True,
                                   direction=Message.Direction.OUTBOUND, text="on my way", status=Message.Status.SENT)
    record("message.sent_from_device", with_ghl, message=typed, conversation=conversation, contact=ada, account=account)
    assert rows() == [(OUTBOUND, ada.pk, account.pk, {"message_id": typed.pk})]


def test_history_reaches_no_ghl_subscriber(with_ghl, account, ada, conversation):
    """message.imported has no GHL subscriber (GHL would run workflows on old messages); a
    history message that somehow came as received or typed on the phone is not posted either."""
    assert not [s for s in events.subscriptions() if s.event == "message.imported" and s.label.startswith("ghl.")]
    old_in = Message.objects.create(location=with_ghl, conversation=conversation, account=account, is_history=True,
                                    direction=Message.Direction.INBOUND, text="last week", status=Message.Status.RECEIVED)
    old_out = Message.objects.create(location=with_ghl, conversation=conversation, account=account, is_history=True, via_device=True,
                                     direction=Message.Direction.OUTBOUND, text="last week too", status=Message.Status.SENT)
    record("message.imported", with_ghl, message=old_in, conversation=conversation, contact=ada, account=account)
    record("message.received", with_ghl, message=old_in, conversation=conversation, contact=ada, sender=ada, account=account,
           contact_changed=True)
    record("message.sent_from_device", with_ghl, message=old_out, conversation=conversation, contact=ada, account=account)
    record("message.reacted", with_ghl, message=old_in, emoji="👍", previous="", actor_key="me", author=None)
    assert rows() == []


def test_reactions_edits_and_deletions_bring_the_messages_ghl_note_up_to_date(with_ghl, account, ada, conversation):
    message = Message.objects.create(location=with_ghl, conversation=conversation, account=account,
                                     direction=Message.Direction.INBOUND, text="hello", status=Message.Status.RECEIVED)
    record("message.reacted", with_ghl, message=message, emoji="👍", previous="", actor_key="me", author=None)
    record("message.edited", with_ghl, message=message, previous_text="helo")
    record("message.deleted", with_ghl, message=message)
    assert rows() == [(NOTE, ada.pk, account.pk, {"message_id": message.pk})] * 3


def test_in_a_group_the_note_goes_to_the_participant_who_wrote_and_the_accounts_own_message_has_none(with_ghl, account, ada):
    group = Contact.objects.create(location=with_ghl, kind=Contact.Kind.GROUP, phone="120363@g.us", name="Team")
    thread = Conversation.objects.create(location=with_ghl, contact=group, account=account)
    theirs = Message.objects.create(location=with_ghl, conversation=thread, account=account, sender_contact=ada,
                                    direction=Message.Direction.INBOUND, text="hello", status=Message.Status.RECEIVED)
    ours = outbound(thread)
    record("message.reacted", with_ghl, message=theirs, emoji="❤️", previous="", actor_key="me", author=None)
    record("message.edited", with_ghl, message=ours, previous_text="hi?")
    assert rows() == [(NOTE, ada.pk, account.pk, {"message_id": theirs.pk})]


@pytest.mark.parametrize("status, error", [("delivered", ""), ("read", ""), ("failed", "number unreachable")])
def test_delivered_read_and_failed_reach_ghl(with_ghl, account, ada, conversation, status, error):
    message = outbound(conversation, status=status, error=error)
    record("message.status_changed", with_ghl, message=message, status=status, error=error)
    assert rows() == [(STATUS, ada.pk, account.pk, {"message_id": message.pk, "status": status, "error": error})]


def test_other_statuses_and_received_messages_do_not_reach_ghl(with_ghl, account, conversation):
    for status in ("sending", "sent"):
        message = outbound(conversation, status=status)
        record("message.status_changed", with_ghl, message=message, status=status, error="")
    received = Message.objects.create(location=with_ghl, conversation=conversation, account=account,
                                      direction=Message.Direction.INBOUND, text="hello", status=Message.Status.READ)
    record("message.status_changed", with_ghl, message=received, status="read", error="")
    assert rows() == []


# --- contacts ------------------------------------------------------------------------------------
def test_an_assignment_upserts_the_contact_so_ghl_assigned_to_follows(with_ghl, conversation, ada, admin_user):
    record("conversation.assigned", with_ghl, conversation=conversation, assignee=admin_user, previous_assignee_id=None, reason="")
    assert rows() == [(UPSERT, ada.pk, None, {})]


def test_an_edited_or_merged_contact_is_upserted(with_ghl, ada):
    record("contact.updated", with_ghl, contact=ada)
    record("contact.merged", with_ghl, contact=ada, source_id=ada.pk + 1000)
    assert rows() == [(UPSERT, ada.pk, None, {}), (UPSERT, ada.pk, None, {})]


def test_tag_changes_upsert_every_contact_that_carries_the_tag(with_ghl, ada):
    bob = Contact.objects.create(location=with_ghl, phone="+14155550124", name="Bob")
    vip, gold = Tag.objects.create(location=with_ghl, name="vip"), Tag.objects.create(location=with_ghl, name="gold")
    record("tag.renamed", with_ghl, tag=vip, contact_ids=[ada.pk, bob.pk])
    record("tag.merging", with_ghl, source=vip, into=gold, contact_ids=[bob.pk])
    record("tag.deleted", with_ghl, tag_id=gold.pk, contact_ids=[ada.pk])
    assert rows() == [(UPSERT, ada.pk, None, {}), (UPSERT, bob.pk, None, {}), (UPSERT, bob.pk, None, {}), (UPSERT, ada.pk, None, {})]


def test_waiting_rows_of_a_merged_away_contact_carry_on_under_the_kept_one(with_ghl, ada):
    twin = Contact.objects.create(location=with_ghl, phone="+14155550125", name="Ada 2")
    waiting = OutboxItem.objects.create(location=with_ghl, contact=twin, operation=UPSERT, payload={})
    done = OutboxItem.objects.create(location=with_ghl, contact=twin, operation=UPSERT, payload={}, status=OutboxItem.Status.DONE)
    record("contact.merging", with_ghl, source=twin, into=ada)
    waiting.refresh_from_db(), done.refresh_from_db()
    assert waiting.contact_id == ada.pk and done.contact_id == twin.pk
    assert OutboxItem.objects.count() == 2  # moved, nothing new


def test_a_lid_contacts_refused_messages_are_posted_again_under_the_phones_contact(with_ghl, ada):
    lid = Contact.objects.create(location=with_ghl, phone="123456@lid", phone_is_e164=False, whatsapp_lid="123456@lid")
    refused = OutboxItem.objects.create(location=with_ghl, contact=lid, operation=INBOUND, payload={"message_id": 1},
                                        status=OutboxItem.Status.FAILED, last_error="no phone")
    upsert_failed = OutboxItem.objects.create(location=with_ghl, contact=lid, operation=UPSERT, payload={}, status=OutboxItem.Status.FAILED)
    record("contact.merging", with_ghl, source=lid, into=ada)
    refused.refresh_from_db(), upsert_failed.refresh_from_db()
    assert (refused.contact_id, refused.status, refused.last_error) == (ada.pk, "pending", "")
    assert (upsert_failed.contact_id, upsert_failed.status) == (lid.pk, "failed")


def test_a_phone_contact_not_in_ghl_takes_over_the_merged_away_contacts_ghl_contact(with_ghl, ada):
    lid = Contact.objects.create(location=with_ghl, phone="123456@lid", phone_is_e164=False, ghl_contact_id="g-lid")
    ContactSync.objects.create(contact=lid, fingerprint="f", tags=["whatsnap-account-sales"], fields={"phone": ""})
    record("contact.merging", with_ghl, source=lid, into=ada)
    ada_row = Contact.objects.get(pk=ada.pk)
    assert ada.ghl_contact_id == ada_row.ghl_contact_id == "g-lid"  # on the object too: contact_merge saves it next
    assert ContactSync.objects.get(contact=ada).fields == {"phone": ""}  # the next push sends the phone
    assert rows() == [] and not GhlRetiredContact.objects.exists()


def test_a_taken_over_ghl_contact_holds_the_merged_away_contacts_phone_until_the_next_push(with_ghl, ada):
    """Sync rows written before phones were kept there: the GHL contact holds source's phone."""
    twin = Contact.objects.create(location=with_ghl, phone="+14155550125", ghl_contact_id="g-twin")
    ContactSync.objects.create(contact=twin, fingerprint="f", tags=[], fields={"name": "Ada", "assignedTo": ""})
    record("contact.merging", with_ghl, source=twin, into=ada)
    assert ContactSync.objects.get(contact=ada).fields == {"phone": "+14155550125", "name": "Ada", "assignedTo": ""}


def test_when_both_were_in_ghl_the_kept_contacts_stays_and_the_other_is_retired(with_ghl, ada):
    Contact.objects.filter(pk=ada.pk).update(ghl_contact_id="g-ada")
    ada.refresh_from_db()
    twin = Contact.objects.create(location=with_ghl, phone="123456@lid", phone_is_e164=False, ghl_contact_id="g-lid")
    record("contact.merging", with_ghl, source=twin, into=ada)
    assert rows() == [(RETIRE, ada.pk, None, {"ghl_contact_id": "g-lid", "kept_ghl_contact_id": "g-ada"})]
    assert GhlRetiredContact.objects.get().contact_id == ada.pk
    assert Contact.objects.get(pk=ada.pk).ghl_contact_id == "g-ada"


# --- no GHL app, and the transaction -------------------------------------------------------------
def every_event(location, account, ada, conversation, admin_user):
    inbound = Message.objects.create(location=location, conversation=conversation, account=account,
                                     direction=Message.Direction.INBOUND, text="hello", status=Message.Status.RECEIVED)
    sent, failed = outbound(conversation), outbound(conversation, status="failed", error="no")
    tag = Tag.objects.create(location=location, name="vip")
    yield "message.received", dict(message=inbound, conversation=conversation, contact=ada, sender=ada, account=account, contact_changed=True)
    yield "message.queued", dict(message=sent, conversation=conversation, from_ghl=False)
    yield "message.status_changed", dict(message=failed, status="failed", error="no")
    yield "conversation.assigned", dict(conversation=conversation, assignee=admin_user, previous_assignee_id=None, reason="")
    yield "contact.updated", dict(contact=ada)
    yield "contact.merged", dict(contact=ada, source_id=ada.pk + 1000)
    yield "tag.renamed", dict(tag=tag, contact_ids=[ada.pk])
    yield "tag.merging", dict(source=tag, into=tag, contact_ids=[ada.pk])
    yield "tag.deleted", dict(tag_id=tag.pk, contact_ids=[ada.pk])
    typed = Message.objects.create(location=location, conversation=conversation, account=account, via_device=True,
                                   direction=Message.Direction.OUTBOUND, text="typed", status=Message.Status.SENT)
    yield "message.sent_from_device", dict(message=typed, conversation=conversation, contact=ada, account=account)
    yield "message.reacted", dict(message=inbound, emoji="👍", previous="", actor_key="me", author=None)
    yield "message.edited", dict(message=inbound, previous_text="helo")
    yield "message.deleted", dict(message=inbound)


def test_a_location_without_the_ghl_app_gets_no_rows_and_no_drain(location, account, ada, conversation, admin_user, kicks):
    for name, data in every_event(location, account, ada, conversation, admin_user):
        record(name, location, **data)
    assert rows() == [] and kicks == []


def test_the_rows_vanish_with_a_change_that_does_not_commit(with_ghl, account, ada, conversation, admin_user, kicks):
    with pytest.raises(RuntimeError), transaction.atomic():
        for name, data in every_event(with_ghl, account, ada, conversation, admin_user):
            events.record(name, location_id=with_ghl.pk, **data)
        assert len(rows()) == 14  # written inside the change (two for the changed sender)
        raise RuntimeError("the change fails")
    assert rows() == [] and kicks == []


def test_every_ghl_subscription_runs_inside_the_transaction():
    ghl = [s for s in events.subscriptions() if s.label.startswith("ghl.")]
    assert {s.event for s in ghl} == {
        "message.received", "message.queued", "message.status_changed", "conversation.assigned", "contact.updated",
        "contact.merged", "contact.merging", "tag.renamed", "tag.merging", "tag.deleted",
        "message.sent_from_device", "message.reacted", "message.edited", "message.deleted",
    }
    assert not any(s.on_commit for s in ghl)


# --- through the real services -------------------------------------------------------------------
def test_an_inbound_message_and_an_assignment_through_the_services_write_their_rows(with_ghl, account, admin_user, kicks):
    from conversations.services import conversation_assign, webhook_events_record

    webhook_events_record(account=account, events=[InboundMessage(provider_id="p1", from_phone="+14155550123", name="Ada",
                                                                  text="hello", at=datetime.now(dt_tz.utc))])
    contact, message = Contact.objects.get(phone="+14155550123"), Message.objects.get()
    assert rows()[:2] == [(UPSERT, contact.pk, account.pk, {}), (INBOUND, contact.pk, account.pk, {"message_id": message.pk})]
    conversation = Conversation.objects.get()
    assigned_before = conversation.assignee_id
    OutboxItem.objects.all().delete()
    assert conversation_assign(conversation=conversation, assignee=None if assigned_before else admin_user, reason="test")
    assert rows() == [(UPSERT, contact.pk, None, {})]
    assert with_ghl.pk in kicks
