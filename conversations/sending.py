"""Sending: a reply is stored as a queued message and leaves through its account's paced
queue (conversations/pacing.py) once the transaction commits."""
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from conversations.models import Conversation, Message
from conversations.pacing import enqueue_account_drain
from conversations.statuses import message_status_changed
from whatsnap import events
from whatsnap.errors import ApplicationError


def preview_of(message: Message) -> str:
    """The line the inbox list shows for a conversation's last message."""
    if message.text:
        return message.text[:160]
    media = message.media or []
    if len(media) > 1:
        return f"{len(media)} attachments"
    if not media:
        return ""
    kind = (media[0].get("content_type") or "").split("/")[0]
    name = media[0].get("filename") or ""
    if kind == "image":
        return "Photo"
    if kind == "audio":
        return "Audio"
    if kind == "video":
        return "Video"
    return name[:160] if name else "Attachment"


def _check_can_send(*, contact, account: Account, text: str, media) -> None:
    if not text and not media:
        raise ApplicationError("Type a message first.", field="text")
    if contact.opted_out:
        raise ApplicationError(
            f"{contact.display_name} replied STOP and has opted out; WhatSnap will not send until they send START.",
            code="opted_out",
        )
    if not account.accepts_replies:
        raise ApplicationError(f"The account {account.name} is not connected ({account.get_status_display()}).", code="account_unavailable")


def _check_can_quote(reply_to: Message, *, conversation: Conversation, account: Account) -> None:
    """A quoted reply quotes a message of the same chat, as the platform knows it."""
    if reply_to.conversation_id != conversation.pk or account.pk != conversation.account_id:
        raise ApplicationError("A reply can only quote a message of the same conversation, through its account.", field="reply_to")
    if reply_to.is_note:
        raise ApplicationError("A private note is not on the platform; it cannot be quoted.", field="reply_to")
    if reply_to.deleted_at:
        raise ApplicationError("That message was deleted for everyone; it cannot be quoted.", field="reply_to")


@transaction.atomic
def message_send(*, conversation: Conversation, text: str, author=None, account: Account | None = None, media: list | None = None,
                 from_ghl: bool = False, reply_to: Message | None = None) -> Message:
    """Queue an outbound message through the conversation's account (or another account the
    contact has written through). The send happens in a task, after commit. reply_to: the
    message it quotes (the backend quotes it where it can)."""
    account = account or conversation.account
    text = (text or "").strip()
    _check_can_send(contact=conversation.contact, account=account, text=text, media=media)
    if reply_to is not None:
        _check_can_quote(reply_to, conversation=conversation, account=account)
    if account.pk != conversation.account_id:
        conversation, _ = Conversation.objects.get_or_create(
            contact=conversation.contact, account=account, defaults={"location": conversation.location})
    if account.signature:
        text = f"{text}\n{account.signature}"
    now = timezone.now()
    message = Message.objects.create(
        location_id=conversation.location_id,
        conversation=conversation,
        account=account,
        direction=Message.Direction.OUTBOUND,
        text=text,
        media=media or [],
        status=Message.Status.QUEUED,
        author=author,
        sent_at=now,
        reply_to=reply_to,
        reply_to_provider_id=reply_to.provider_message_id if reply_to else "",
        quoted_text=(reply_to.text or preview_of(reply_to))[:300] if reply_to else "",
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=now, last_message_preview=preview_of(message), unread_count=0)
    # from_ghl: a reply typed in GHL is in GHL already (the GHL subscriber does not log it back)
    events.record("message.queued", location_id=conversation.location_id,
                  message=message, conversation=conversation, from_ghl=from_ghl)
    account_id = account.pk
    transaction.on_commit(lambda: enqueue_account_drain(account_id))
    return message


# the error of a message taken back out of its queue before it was sent (e.g. its broadcast
# was cancelled): failed, never sent, and never retried
WITHDRAWN = "Withdrawn: "


def is_withdrawn(message: Message) -> bool:
    return message.status == Message.Status.FAILED and (message.error or "").startswith(WITHDRAWN)


@transaction.atomic
def messages_withdraw(*, message_ids, reason: str) -> int:
    """Take messages back out of their accounts' queues: only those still queued and never
    handed to a backend (a drainer that claimed one first sends it). Each becomes failed with
    an error starting with WITHDRAWN, told like any failure (inbox, GHL, webhooks). Returns
    how many were withdrawn."""
    error = f"{WITHDRAWN}{reason.strip()}"[:300]
    withdrawn = 0
    candidates = Message.objects.filter(pk__in=list(message_ids), direction=Message.Direction.OUTBOUND, is_note=False,
                                        status=Message.Status.QUEUED, provider_message_id="").order_by("pk")
    for message in candidates:
        now = timezone.now()
        # the same condition as the drainer's claim (queued -> sending): one of the two wins
        if not Message.objects.filter(pk=message.pk, status=Message.Status.QUEUED, provider_message_id="").update(
                status=Message.Status.FAILED, error=error, status_changed_at=now):
            continue
        message.status, message.error, message.status_changed_at = Message.Status.FAILED, error, now
        message_status_changed(message)
        withdrawn += 1
    return withdrawn


def message_retry(*, message: Message) -> Message:
    """Retry a failed send: back to queued (same row, so it cannot be sent twice). A withdrawn
    message is not retried: it was taken back on purpose."""
    if message.direction != Message.Direction.OUTBOUND or message.status != Message.Status.FAILED:
        raise ApplicationError("Only a failed outbound message can be retried.")
    if is_withdrawn(message):
        raise ApplicationError(f"This message was withdrawn before it was sent ({message.error[len(WITHDRAWN):]}); "
                               "it cannot be retried. Write a new message instead.", code="withdrawn")
    if message.provider_message_id:
        raise ApplicationError("The backend accepted this message already; it will not be sent twice.")
    Message.objects.filter(pk=message.pk, status=Message.Status.FAILED).update(
        status=Message.Status.QUEUED, error="", send_attempts=0, status_changed_at=timezone.now()
    )
    account_id = message.account_id
    transaction.on_commit(lambda: enqueue_account_drain(account_id))
    message.refresh_from_db()
    return message
