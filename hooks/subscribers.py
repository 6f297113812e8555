"""How outgoing webhooks react to domain events (registered in HooksConfig.ready): each
subscriber runs inside the transaction of the change and writes that location's delivery rows
(hook_event_emit), so they commit or vanish with it. The payloads are the public contract with
receivers: their keys never change with the events' data."""
from django.utils import timezone

from hooks.services import hook_event_emit, hook_events_emit
from whatsnap import events


@events.on_many("message.received")
def message_received(batch) -> None:
    hook_events_emit(location_id=batch[0].location_id, event="message.received", items=[{
        "message": e["message"].pk, "conversation": e["conversation"].pk, "contact": e["contact"].pk,
        "sender": e["sender"].pk, "account": e["account"].pk, "from": e["sender"].phone, "name": e["sender"].name,
        "text": e["message"].text, "media": e["message"].media, "sent_at": e["message"].sent_at,
    } for e in batch])


@events.on("message.status_changed")
def message_status(event) -> None:
    message = event["message"]
    hook_event_emit(location_id=event.location_id, event="message.status", data={
        "message": message.pk, "conversation": message.conversation_id, "account": message.account_id,
        "status": event["status"], "error": event["error"],
    })


@events.on_many("contact.created")
def contact_created(batch) -> None:
    hook_events_emit(location_id=batch[0].location_id, event="contact.created", items=[{
        "contact": e["contact"].pk, "phone": e["contact"].phone, "name": e["contact"].name, "kind": e["contact"].kind,
    } for e in batch])


@events.on("conversation.assigned")
def conversation_assigned(event) -> None:
    conversation, assignee = event["conversation"], event["assignee"]
    hook_event_emit(location_id=event.location_id, event="conversation.assigned", data={
        "conversation": conversation.pk, "contact": conversation.contact_id, "account": conversation.account_id,
        "assignee": assignee.pk if assignee else None, "previous_assignee": event["previous_assignee_id"],
        "reason": event["reason"],
    })


@events.on("account.alert")
def account_status(event) -> None:
    """An account alert raised (disconnected, logged out, banned, silent) or cleared."""
    account = event["account"]
    hook_event_emit(location_id=event.location_id, event="account.status", data={
        "account": account.pk, "name": account.name, "status": account.status, "alert": event["alert"],
        "cleared": event["cleared"], "at": timezone.now(),
    })


@events.on("broadcast.status_changed")
def broadcast_status(event) -> None:
    """A broadcast scheduled, started, paused (with the reason), resumed, completed or cancelled."""
    broadcast = event["broadcast"]
    hook_event_emit(location_id=event.location_id, event="broadcast.status", data={
        "broadcast": broadcast.pk, "name": broadcast.name, "status": event["status"], "previous": event["previous"],
        "reason": event["reason"], "counts": event["counts"], "at": timezone.now(),
    })
