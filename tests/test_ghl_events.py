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
from ghl.models import OutboxItem
from whatsnap import events

pytestmark = pytest.mark.django_db(transaction=True)

UPSERT, INBOUND, OUTBOUND, STATUS = (OutboxItem.Operation.CONTACT_UPSERT, OutboxItem.Operation.INBOUND_MESSAGE,
                                     OutboxItem.Operation.OUTBOUND_MESSAGE, OutboxItem.Operation.MESSAGE_STATUS)


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


def test_a_location_without_the_ghl_app_gets_no_rows_and_no_drain(location, account, ada, conversation, admin_user, kicks):
    for name, data in every_event(location, account, ada, conversation, admin_user):
        record(name, location, **data)
    assert rows() == [] and kicks == []


def test_the_rows_vanish_with_a_change_that_does_not_commit(with_ghl, account, ada, conversation, admin_user, kicks):
    with pytest.raises(RuntimeError), transaction.atomic():
        for name, data in every_event(with_ghl, account, ada, conversation, admin_user):
            events.record(name, location_id=with_ghl.pk, **data)
        assert len(rows()) == 10  # written inside the change (two for the changed sender)
        raise RuntimeError("the change fails")
    assert rows() == [] and kicks == []


def test_every_ghl_subscription_runs_inside_the_transaction():
    ghl = [s for s in events.subscriptions() if s.label.startswith("ghl.")]
    assert {s.event for s in ghl} == {
        "message.received", "message.queued", "message.status_changed", "conversation.assigned", "contact.updated",
        "contact.merged", "contact.merging", "tag.renamed", "tag.merging", "tag.deleted",
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
