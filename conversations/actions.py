"""What agents do to a conversation: assign, status (resolve/reopen/pending/snooze),
read/unread (read receipts to the platform: receipts.py), private notes. Every change is kept
as a ConversationEvent row and recorded as a domain event (the inbox, GHL and outgoing
webhooks subscribe)."""
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership
from contacts.models import Contact
from conversations.models import Conversation, ConversationEvent, Message
from conversations.receipts import read_receipts_queue
from whatsnap import events
from whatsnap.errors import NOT_A_MEMBER, ApplicationError


def _label(user) -> str:
    return user.get_username() if user else ""


@transaction.atomic
def conversation_assign(*, conversation: Conversation, assignee, actor=None, reason: str = "") -> bool:
    """Assign (or with assignee=None unassign). The assignee must belong to the location."""
    if assignee is not None and not Membership.objects.filter(user=assignee, location_id=conversation.location_id).exists():
        raise ApplicationError(NOT_A_MEMBER, field="assignee")
    current = Conversation.objects.select_for_update(of=("self",)).select_related("assignee").get(pk=conversation.pk)
    if current.assignee_id == (assignee.pk if assignee else None):
        return False
    ConversationEvent.objects.create(
        conversation=current,
        kind=ConversationEvent.Kind.ASSIGNED if assignee else ConversationEvent.Kind.UNASSIGNED,
        actor=actor,
        from_value=_label(current.assignee),
        to_value=_label(assignee),
        reason=reason[:200],
    )
    Conversation.objects.filter(pk=current.pk).update(assignee=assignee)
    conversation.assignee = assignee
    if assignee is not None:  # the contact's owner is whoever took it last (sticky routing goes back to them)
        Contact.objects.filter(pk=current.contact_id).exclude(assignee=assignee).update(assignee=assignee)
    events.record("conversation.assigned", location_id=conversation.location_id, conversation=conversation,
                  assignee=assignee, previous_assignee_id=current.assignee_id, reason=reason)
    return True


@transaction.atomic
def conversation_set_status(*, conversation: Conversation, status: str, actor=None, snooze_until=None) -> bool:
    if status not in Conversation.Status.values:
        raise ApplicationError(f"Unknown status {status!r}.", field="status")
    if status == Conversation.Status.SNOOZED:
        if snooze_until is None or snooze_until <= timezone.now():
            raise ApplicationError("Pick a snooze time in the future.", field="snooze_until")
    else:
        snooze_until = None
    current = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if current.status == status and current.snoozed_until == snooze_until:
        return False
    ConversationEvent.objects.create(
        conversation=current, kind=ConversationEvent.Kind.STATUS, actor=actor,
        from_value=current.status, to_value=status,
        reason=f"until {snooze_until.isoformat()}" if snooze_until else "",
    )
    Conversation.objects.filter(pk=current.pk).update(status=status, snoozed_until=snooze_until)
    conversation.status, conversation.snoozed_until = status, snooze_until
    events.record("conversation.status_changed", location_id=conversation.location_id,
                  conversation=conversation, status=status, previous=current.status)
    return True


def conversation_mark_read(*, conversation: Conversation) -> None:
    """The conversation is open on an agent's screen: read in WhatSnap, and on the platform
    too where the account sends read receipts."""
    if Conversation.objects.filter(pk=conversation.pk, unread_count__gt=0).update(unread_count=0):
        with transaction.atomic():
            events.record("conversation.read", location_id=conversation.location_id, conversation=conversation)
    read_receipts_queue(conversation=conversation)


def conversation_mark_unread(*, conversation: Conversation) -> None:
    with transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk, unread_count=0).update(unread_count=1)
        events.record("conversation.unread", location_id=conversation.location_id, conversation=conversation)


@transaction.atomic
def note_add(*, conversation: Conversation, text: str, author, media: list | None = None) -> Message:
    """A private note: kept in the thread for the team, never sent to the contact (its media:
    files attached from the composer, conversations/uploads.py)."""
    text = (text or "").strip()
    if not text and not media:
        raise ApplicationError("Type a note first.", field="text")
    note = Message.objects.create(
        location_id=conversation.location_id,
        conversation=conversation,
        account_id=conversation.account_id,
        direction=Message.Direction.OUTBOUND,
        is_note=True,
        text=text,
        media=media or [],
        status=Message.Status.SENT,
        author=author,
    )
    events.record("note.added", location_id=conversation.location_id, conversation=conversation, note=note)
    return note


def conversations_wake_snoozed() -> int:
    """Snoozed conversations whose time has come are open again."""
    woken = 0
    due = Conversation.objects.filter(status=Conversation.Status.SNOOZED, snoozed_until__lte=timezone.now())
    for conversation in due.only("id", "location_id", "contact_id", "status", "snoozed_until"):
        woken += conversation_set_status(conversation=conversation, status=Conversation.Status.OPEN)
    return woken


def assignable_users(location):
    return get_user_model().objects.filter(memberships__location=location).order_by("username")
