"""Delivery status of what we send: forward only (queued < sending < sent < delivered < read;
failed is terminal). Used by the send queue (the backend's answer) and by inbound status
webhooks."""
from django.utils import timezone

from conversations.models import Message
from whatsnap import events

STATUS_RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}


def message_status_advance(*, message: Message, status: str, error: str = "") -> bool:
    """Move a message's delivery status forward only; out-of-order and repeated statuses are
    no-ops, and so is any status for an inbound message or a note (only what we send has a
    delivery status)."""
    current = message.status
    if message.direction != Message.Direction.OUTBOUND or message.is_note or current not in STATUS_RANK:
        return False
    if current == status:
        return False
    if status == Message.Status.FAILED:
        if STATUS_RANK.get(current, 0) >= STATUS_RANK["delivered"]:
            return False
    elif STATUS_RANK.get(status, -1) <= STATUS_RANK.get(current, -1):
        return False
    message.status = status
    message.error = error[:300] if status == Message.Status.FAILED else ""
    message.status_changed_at = timezone.now()
    message.save(update_fields=["status", "error", "status_changed_at"])
    message_status_changed(message)
    return True


def message_status_changed(message: Message) -> None:
    """The one place a status change is told (inbox, webhooks, GHL subscribe to it)."""
    events.record("message.status_changed", location_id=message.location_id,
                  message=message, status=message.status, error=message.error)
