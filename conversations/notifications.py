"""What a member's browser needs to notify them of a new message: the short text a
notification shows (carried by the live event, which reaches the location's pages only) and
the unread count in the tab title ("(3) Inbox · WhatSnap")."""
from django.db.models import Q

from conversations.models import Conversation, Message
from conversations.sending import preview_of

PREVIEW_CHARS = 100


def assignees_now(conversation_ids) -> dict[int, int | None]:
    """The conversations' assignees as they are now (read again: routing may have assigned one
    through another copy of its row)."""
    return dict(Conversation.objects.filter(pk__in=conversation_ids).values_list("pk", "assignee_id"))


def notification_data(message: Message, *, contact, assignee_id: int | None, sender=None) -> dict:
    """Whom a new message notifies and what it shows: the conversation's assignee (as
    assignees_now read it), the contact's name and a short preview of the message; in a group,
    who wrote it."""
    preview = preview_of(message) or "New message"
    if sender is not None and contact is not None and sender.pk != contact.pk:
        preview = f"{sender.display_name}: {preview}"
    if len(preview) > PREVIEW_CHARS:
        preview = preview[:PREVIEW_CHARS - 1] + "…"
    return {"assignee": assignee_id, "contact": contact.display_name if contact is not None else "", "preview": preview}


def notified_unread(membership) -> int:
    """Conversations with unread messages that notify this member: assigned to them (and the
    unassigned ones when they asked for those too); resolved ones do not count."""
    mine = Q(assignee_id=membership.user_id)
    if membership.notify_unassigned:
        mine |= Q(assignee__isnull=True)
    return (Conversation.objects.filter(location_id=membership.location_id, unread_count__gt=0).filter(mine)
            .exclude(status=Conversation.Status.RESOLVED).count())
