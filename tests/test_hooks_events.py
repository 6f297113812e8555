"""Outgoing webhooks as subscribers of domain events (hooks/subscribers.py): each event recorded
through whatsnap.events writes, in its own transaction, one delivery per subscription that wants
it, with the payload receivers have always been sent."""
from datetime import datetime, timezone as dt_tz

import pytest
from django.db import transaction

from contacts.models import Contact
from conversations.models import Conversation, Message
from hooks.models import WebhookDelivery
from hooks.services import hook_subscription_create
from whatsnap import events

SENT_AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt_tz.utc)


@pytest.fixture
def thread(location, sandbox_account):
    """A WhatsApp group (the thread's contact), a person who wrote in it, their conversation."""
    group = Contact.objects.create(location=location, phone="120363000000000001@g.us", phone_is_e164=False,
                                   kind=Contact.Kind.GROUP, name="Shop group")
    person = Contact.objects.create(location=location, phone="+14155550123", name="Ada")
    conversation = Conversation.objects.create(location=location, contact=group, account=sandbox_account)
    return group, person, conversation


def _subscribe(location, event: str):
    return hook_subscription_create(location=location, url="http://127.0.0.1:9/hook", events=[event])


def _recorded(name: str, *, location_id: int, **data) -> dict:
    """Record the event in a transaction of its own; the one delivery it wrote, as payload."""
    with transaction.atomic():
        events.record(name, location_id=location_id, **data)
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.payload["event"] == delivery.event and delivery.payload["location"] == location_id
    return delivery.payload


def test_message_received(location, sandbox_account, thread):
    group, person, conversation = thread
    message = Message.objects.create(
        location=location, conversation=conversation, account=sandbox_account, direction=Message.Direction.INBOUND,
        text="hello", media=[{"url": "https://example.com/a.jpg", "content_type": "image/jpeg"}],
        provider_message_id="in-1", status=Message.Status.RECEIVED, sender_contact=person, sent_at=SENT_AT,
    )
    _subscribe(location, "message.received")
    payload = _recorded("message.received", location_id=location.pk, message=message, conversation=conversation,
                        contact=group, sender=person, account=sandbox_account, contact_changed=True)
    assert payload["event"] == "message.received"
    assert payload["data"] == {
        "message": message.pk, "conversation": conversation.pk, "contact": group.pk, "sender": person.pk,
        "account": sandbox_account.pk, "from": "+14155550123", "name": "Ada", "text": "hello",
        "media": [{"url": "https://example.com/a.jpg", "content_type": "image/jpeg"}], "sent_at": "2026-03-04T05:06:07Z",
    }


@pytest.mark.parametrize(("status", "error"), [("delivered", ""), ("failed", "the number does not exist")])
def test_message_status_changed(location, sandbox_account, thread, status, error):
    _group, _person, conversation = thread
    message = Message.objects.create(
        location=location, conversation=conversation, account=sandbox_account, direction=Message.Direction.OUTBOUND,
        text="hi", status=status, error=error,
    )
    _subscribe(location, "message.status")
    payload = _recorded("message.status_changed", location_id=location.pk, message=message, status=status, error=error)
    assert payload["event"] == "message.status"
    assert payload["data"] == {"message": message.pk, "conversation": conversation.pk, "account": sandbox_account.pk,
                               "status": status, "error": error}


def test_contact_created(location, thread):
    group, _person, _conversation = thread
    _subscribe(location, "contact.created")
    payload = _recorded("contact.created", location_id=location.pk, contact=group)
    assert payload["event"] == "contact.created"
    assert payload["data"] == {"contact": group.pk, "phone": "120363000000000001@g.us", "name": "Shop group", "kind": "group"}


def test_conversation_assigned(location, sandbox_account, thread, agent_user):
    group, _person, conversation = thread
    _subscribe(location, "conversation.assigned")
    payload = _recorded("conversation.assigned", location_id=location.pk, conversation=conversation,
                        assignee=agent_user, previous_assignee_id=None, reason="rule: sales")
    assert payload["event"] == "conversation.assigned"
    assert payload["data"] == {"conversation": conversation.pk, "contact": group.pk, "account": sandbox_account.pk,
                               "assignee": agent_user.pk, "previous_assignee": None, "reason": "rule: sales"}


def test_conversation_unassigned(location, sandbox_account, thread, agent_user):
    group, _person, conversation = thread
    _subscribe(location, "conversation.assigned")
    payload = _recorded("conversation.assigned", location_id=location.pk, conversation=conversation,
                        assignee=None, previous_assignee_id=agent_user.pk, reason="")
    assert payload["data"] == {"conversation": conversation.pk, "contact": group.pk, "account": sandbox_account.pk,
                               "assignee": None, "previous_assignee": agent_user.pk, "reason": ""}


def test_no_delivery_without_a_subscription_that_wants_the_event(location, other_location, thread):
    group, _person, _conversation = thread
    _subscribe(other_location, "contact.created")  # another location's
    _subscribe(location, "message.status")  # another event
    hook_subscription_create(location=location, url="http://127.0.0.1:9/off", events=["contact.created"], is_active=False)
    with transaction.atomic():
        events.record("contact.created", location_id=location.pk, contact=group)
    assert not WebhookDelivery.objects.exists()


def test_deliveries_vanish_with_a_change_that_rolls_back(location, thread):
    group, _person, _conversation = thread
    _subscribe(location, "contact.created")
    with pytest.raises(RuntimeError), transaction.atomic():
        events.record("contact.created", location_id=location.pk, contact=group)
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the change failed")
    assert not WebhookDelivery.objects.exists()


def test_the_hooks_subscribers_are_registered_in_the_change_transaction():
    hooks = {(s.event, s.label, s.on_commit) for s in events.subscriptions() if s.label.startswith("hooks.")}
    assert hooks == {
        ("message.received", "hooks.subscribers.message_received", False),
        ("message.status_changed", "hooks.subscribers.message_status", False),
        ("contact.created", "hooks.subscribers.contact_created", False),
        ("conversation.assigned", "hooks.subscribers.conversation_assigned", False),
        ("account.alert", "hooks.subscribers.account_status", False),
        ("broadcast.status_changed", "hooks.subscribers.broadcast_status", False),
    }
