"""BlueBubbles Server's webhooks: `{type, data}` posted once, unsigned, without retry, to the URL
registered on the server (its WebhookService); we accept them only with the account's secret
in our URL. The event names are the server's events.ts; `data` is its MessageSerializer's
message (serialised "for notification": updated-message carries no chats).

- new-message: a message, a tapback (Reaction) or a group system item (ChatEvent);
- updated-message: an edit (dateEdited: MessageEdited), an unsend (MessageDeleted), a tapback,
  and for our own messages delivery / read receipts;
- message-send-error: a failed send;
- participant-added / -removed / -left, group-name-change, group-icon-changed / -removed: the
  same system item the new-message of it carries (one ChatEvent: the same guid);
- anything else (typing-indicator, chat-read-status-changed, ...) is kept Unfiled."""

from accounts.providers.base import (
    DeliveryStatus,
    Ignored,
    MessageDeleted,
    MessageEdited,
    Unfiled,
    WebhookMalformed,
    edit_id,
    require_url_secret,
)
from accounts.providers.bluebubbles.messages import chat_party, epoch_ms, group_item, message_events, tapback

GROUP_EVENTS = ("participant-added", "participant-removed", "participant-left", "group-name-change",
                "group-icon-changed", "group-icon-removed")


def verify(account, request) -> None:
    require_url_secret(account, request)


def parse_envelope(envelope: dict) -> list:
    kind = str(envelope.get("type") or "")
    handler = _HANDLERS.get(kind) or (_group_event if kind in GROUP_EVENTS else None)
    if handler is None:
        return [Unfiled(f"unsupported event type {kind or '(none)'}", envelope)]
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise WebhookMalformed(f"BlueBubbles {kind} without a data object")
    try:
        return handler(data, envelope)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WebhookMalformed(f"BlueBubbles {kind} payload not understood: {exc!r}") from None


def _new_message(data: dict, envelope: dict) -> list:
    return message_events(data, envelope)


def _group_event(data: dict, envelope: dict) -> list:
    return [group_item(data, envelope)]


def _updated_message(data: dict, envelope: dict) -> list:
    if data.get("associatedMessageType") not in (None, "", 0, "0"):
        return tapback(data, envelope)  # the same Reaction as its new-message (deduped by guid)
    guid = str(data["guid"])
    events = []
    # the Mac's own record of the message as it is now (Apple lets only its sender edit or
    # unsend it): the sender is the message's own
    from_me = bool(data.get("isFromMe"))
    by = "" if from_me else str((data.get("handle") or {}).get("address") or "")
    if _unsent(data):
        events.append(MessageDeleted(target_id=guid, at=epoch_ms(data.get("dateRetracted") or data.get("dateEdited")),
                                     from_me=from_me, by=by, chat=chat_party(data)))
    elif data.get("dateEdited"):
        text = str(data.get("text") or "")
        if text:  # the edit's id: the message + its new text (a later receipt repeats the same edit)
            events.append(MessageEdited(provider_id=edit_id(guid, text), target_id=guid, text=text, at=epoch_ms(data["dateEdited"]),
                                        from_me=from_me, by=by, chat=chat_party(data)))
        else:
            events.append(Unfiled(f"edit of message {guid} without its text (a part of it unsent?)", envelope))
    if data.get("isFromMe"):
        events.extend(_receipt(data))
    # A contact's message updated with nothing edited or unsent (e.g. our Mac marked it read),
    # or ours sent and not yet delivered: nothing about it changes in WhatSnap.
    return events or [Ignored("an update of a message that changes nothing WhatSnap shows")]


def _unsent(data: dict) -> bool:
    """Unsent for everyone: dateRetracted (which Apple rarely sets), or, as the server's Message
    entity tells it, an edited message whose parts were all retracted (partCount 0, no text)."""
    if data.get("dateRetracted"):
        return True
    summary = data.get("messageSummaryInfo")
    retracted = summary[0].get("retractedParts") if isinstance(summary, list) and summary and isinstance(summary[0], dict) else None
    fully = data.get("partCount") == 0 and not data.get("text") and not data.get("attachments")
    return bool(data.get("dateEdited")) and fully or bool(retracted) and data.get("partCount") == 0


def _receipt(data: dict) -> list:
    guid = str(data["guid"])
    if data.get("error"):
        return [DeliveryStatus(provider_id=guid, status="failed", error=f"iMessage error {data['error']}")]
    if data.get("dateRead"):
        return [DeliveryStatus(provider_id=guid, status="read")]
    if data.get("dateDelivered"):
        return [DeliveryStatus(provider_id=guid, status="delivered")]
    return []  # sent, not yet delivered: what send() already recorded


def _send_error(data: dict, envelope: dict) -> list:
    guid = data.get("guid") or data.get("tempGuid")
    if not guid:
        return [Unfiled("send error without the message's guid", envelope)]
    return [DeliveryStatus(provider_id=str(guid), status="failed", error=f"iMessage error {data.get('error', 'unknown')}")]


_HANDLERS = {
    "new-message": _new_message,
    "updated-message": _updated_message,
    "message-send-error": _send_error,
}
