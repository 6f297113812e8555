"""Receive and send: the product's hot path.

Inbound: webhook_events_record() stores verified events (unique per account + provider id,
so redeliveries are no-ops) and queues inbound_event_process(), which files everything in one
transaction. Outbound: message_send() stores a queued message and queues message_deliver(),
which claims it with a conditional update and calls the backend outside any transaction."""
import logging
from dataclasses import asdict

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import ConnectionChanged, DeliveryStatus, InboundMessage, ProviderError, QrUpdated
from accounts.services import account_apply_events
from contacts.models import Contact
from whatsnap.phones import normalise_sender, region_of
from contacts.services import (
    contact_account_touch,
    contact_opt_out_from_keyword,
    contact_tag_add,
    contact_upsert_from_inbound,
)
from conversations.models import Conversation, InboundEvent, Message
from ghl.models import OutboxItem
from ghl import services as ghl_services
from ghl.services import outbox_enqueue
from hooks.services import hook_event_emit
from routing.services import conversation_route
from whatsnap import guarded_fetch
from whatsnap.errors import ApplicationError
from whatsnap.live import publish_on_commit

logger = logging.getLogger(__name__)

MAX_PROCESS_ATTEMPTS = 8
STATUS_RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}
SMS_KINDS = {Account.Kind.TWILIO, Account.Kind.ANDROID_SMS}


# --- inbound: the ack path -------------------------------------------------------------------
def webhook_events_record(*, account: Account, events: list) -> int:
    """Store verified events; returns how many were new. Connection/QR events apply at once."""
    from conversations.tasks import enqueue_inbound_event

    new_ids = []
    session_events = [e for e in events if isinstance(e, (QrUpdated, ConnectionChanged))]
    if session_events:
        account_apply_events(account=account, events=session_events)
    for event in events:
        if isinstance(event, InboundMessage):
            kind, key = InboundEvent.Kind.MESSAGE, f"msg:{event.provider_id}"
            payload = asdict(event)
            payload["at"] = event.at.isoformat()
            payload["media"] = list(event.media)
        elif isinstance(event, DeliveryStatus):
            kind, key = InboundEvent.Kind.STATUS, f"st:{event.provider_id}:{event.status}"
            payload = asdict(event)
        else:
            continue
        try:
            with transaction.atomic():
                row = InboundEvent.objects.create(account=account, kind=kind, dedupe_key=key[:160], payload=payload)
        except IntegrityError:
            logger.info("duplicate webhook event %s for account %s ignored", key, account.pk)
            continue
        new_ids.append(row.pk)
    _touch_last_webhook(account)
    for pk in new_ids:
        enqueue_inbound_event(pk)
    return len(new_ids)


def _touch_last_webhook(account: Account) -> None:
    """Diagnostics only need "recently": write at most every 10 s, not on every webhook of a
    busy account (a hot row every request would contend)."""
    now = timezone.now()
    if account.last_webhook_at and now - account.last_webhook_at < timezone.timedelta(seconds=10):
        return
    Account.objects.filter(pk=account.pk).update(last_webhook_at=now)


# --- inbound: processing ---------------------------------------------------------------------
def inbound_event_process(*, event_id: int) -> str:
    """File one stored event. All or nothing: a crash leaves the event pending for a retry."""
    try:
        with transaction.atomic():
            # of=self: lock the event row only; a join would also lock the account row and
            # serialise every webhook and worker of that account behind this transaction.
            event = InboundEvent.objects.select_for_update(of=("self",)).select_related("account__location").get(pk=event_id)
            if event.status != InboundEvent.Status.PENDING:
                return event.status
            if event.kind == InboundEvent.Kind.MESSAGE:
                _file_inbound_message(event)
            else:
                _apply_delivery_status(event)
            event.status = InboundEvent.Status.DONE
            event.processed_at = timezone.now()
            event.attempts += 1
            event.save(update_fields=["status", "processed_at", "attempts"])
            return event.status
    except Exception as exc:
        _record_failure(event_id, exc)
        raise


def _record_failure(event_id: int, exc: Exception) -> None:
    event = InboundEvent.objects.filter(pk=event_id).first()
    if event is None:
        return
    event.attempts += 1
    event.error = f"{type(exc).__name__}: {exc}"[:2000]
    if event.attempts >= MAX_PROCESS_ATTEMPTS:
        event.status = InboundEvent.Status.FAILED
        logger.error("inbound event %s failed for good: %s", event_id, event.error)
    event.save(update_fields=["attempts", "error", "status"])


def _file_inbound_message(event: InboundEvent) -> Message | None:
    account = event.account
    location = account.location
    data = event.payload
    at = parse_datetime(data["at"]) or timezone.now()
    region = region_of(account.phone_number) or "US"
    sender = normalise_sender(data["from_phone"], default_region=region)
    person, created, name_changed = contact_upsert_from_inbound(
        location=location, sender=sender, platform_name=data.get("name", "")
    )
    if data.get("group_id"):
        # Decision: a WhatsApp group is its own contact (kind=group, keyed by the group id) and
        # conversation; each message records the participant who wrote it (sender_contact),
        # who is also a contact of their own carrying the account's tag.
        from whatsnap.phones import NormalisedSender

        thread_contact, _c, _n = contact_upsert_from_inbound(
            location=location,
            sender=NormalisedSender(data["group_id"], False),
            platform_name=data.get("group_name", ""),
            kind=Contact.Kind.GROUP,
        )
    else:
        thread_contact = person
    tag = getattr(account, "tag", None)
    tags_changed = False
    for contact in {person, thread_contact}:
        if tag is not None:
            tags_changed |= contact_tag_add(contact=contact, tag=tag)
        contact_account_touch(contact=contact, account=account, at=at)
        Contact.objects.filter(pk=contact.pk).update(active_account=account)
    if account.kind in SMS_KINDS:
        contact_opt_out_from_keyword(contact=person, text=data.get("text", ""))

    conversation, _new = Conversation.objects.get_or_create(
        contact=thread_contact, account=account, defaults={"location": location}
    )
    message = Message.objects.create(
        location=location,
        conversation=conversation,
        account=account,
        direction=Message.Direction.INBOUND,
        text=data.get("text", ""),
        media=data.get("media") or [],
        provider_message_id=data["provider_id"],
        status=Message.Status.RECEIVED,
        sender_contact=person if thread_contact is not person else None,
        sent_at=at,
    )
    conversation.last_message_at = at
    conversation.last_message_preview = _preview(message)
    conversation.unread_count += 1
    if conversation.status in (Conversation.Status.RESOLVED, Conversation.Status.SNOOZED):
        conversation.status = Conversation.Status.OPEN
        conversation.snoozed_until = None
    conversation.save(update_fields=["last_message_at", "last_message_preview", "unread_count", "status", "snoozed_until"])
    conversation_route(conversation=conversation)
    _auto_reply_if_closed(conversation, at)

    if created or name_changed or tags_changed:
        outbox_enqueue(location=location, operation=OutboxItem.Operation.CONTACT_UPSERT, contact=person, account=account, payload={})
    outbox_enqueue(
        location=location,
        operation=OutboxItem.Operation.INBOUND_MESSAGE,
        contact=thread_contact,
        account=account,
        payload={"message_id": message.pk},
    )
    publish_on_commit(
        location_id=location.id,
        event="message.received",
        topics=["inbox", f"conversation:{conversation.pk}", f"sandbox:{account.pk}", f"account:{account.pk}"],
        data={"conversation": conversation.pk, "message": message.pk},
    )
    hook_event_emit(location_id=location.id, event="message.received", data={"message": message.pk, "conversation": conversation.pk, "contact": thread_contact.pk, "sender": person.pk, "account": account.pk, "from": person.phone, "name": person.name, "text": message.text, "media": message.media, "sent_at": at})
    return message


AUTO_REPLY_EVERY = timezone.timedelta(hours=12)


def _auto_reply_if_closed(conversation: Conversation, at) -> None:
    """Outside the account's business hours, answer with its auto-reply (at most every 12 h
    per conversation)."""
    from accounts.hours import is_within_hours

    account = conversation.account
    if not account.auto_reply_text or is_within_hours(account, at):
        return
    if conversation.auto_replied_at and conversation.auto_replied_at > at - AUTO_REPLY_EVERY:
        return
    try:
        message_send(conversation=conversation, text=account.auto_reply_text)
    except ApplicationError as exc:
        logger.info("auto-reply for conversation %s skipped: %s", conversation.pk, exc.message)
        return
    Conversation.objects.filter(pk=conversation.pk).update(auto_replied_at=at)


def _preview(message: Message) -> str:
    if message.text:
        return message.text[:160]
    return f"[{len(message.media)} attachment(s)]" if message.media else ""


def _apply_delivery_status(event: InboundEvent) -> None:
    data = event.payload
    ours = Message.objects.filter(account=event.account, provider_message_id=data["provider_id"])
    message = ours.filter(direction=Message.Direction.OUTBOUND).select_for_update().first()
    if message is None and ours.exists():
        # A delivery status names a message we received (a read receipt of our own phone,
        # or a forged id): statuses only ever describe what we sent. Kept, with the reason.
        event.error = "status for a received message, not one we sent: not applied"
        event.save(update_fields=["error"])
        return
    if message is None:
        # The status can overtake the send's own bookkeeping: wait and retry.
        raise LookupError(f"no message with provider id {data['provider_id']} yet")
    message_status_advance(message=message, status=data["status"], error=data.get("error", ""))


def message_status_advance(*, message: Message, status: str, error: str = "") -> bool:
    """Move a message's delivery status forward only (queued < sending < sent < delivered <
    read); failed is terminal. Out-of-order and repeated statuses are no-ops, and so is any
    status for an inbound message or a note (only what we send has a delivery status)."""
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
    publish_on_commit(
        location_id=message.location_id,
        event="message.status",
        topics=[f"conversation:{message.conversation_id}", f"message:{message.pk}", f"sandbox:{message.account_id}"],
        data={"message": message.pk, "status": status},
    )
    hook_event_emit(location_id=message.location_id, event="message.status", data={"message": message.pk, "conversation": message.conversation_id, "account": message.account_id, "status": status, "error": message.error})
    ghl_services.message_status_changed(message)
    return True


# --- outbound --------------------------------------------------------------------------------
@transaction.atomic
def message_send(*, conversation: Conversation, text: str, author=None, account: Account | None = None, media: list | None = None, from_ghl: bool = False) -> Message:
    """Queue an outbound message through the conversation's account (or another account the
    contact has written through). The send happens in a task, after commit."""
    from conversations.tasks import enqueue_message_delivery

    account = account or conversation.account
    contact = conversation.contact
    text = (text or "").strip()
    if not text and not media:
        raise ApplicationError("Type a message first.", field="text")
    if contact.opted_out:
        raise ApplicationError(
            f"{contact.display_name} replied STOP and has opted out; WhatSnap will not send until they send START.",
            code="opted_out",
        )
    if not account.accepts_replies:
        raise ApplicationError(f"The account {account.name} is not connected ({account.get_status_display()}).", code="account_unavailable")
    if account.pk != conversation.account_id:
        conversation, _ = Conversation.objects.get_or_create(contact=contact, account=account, defaults={"location": conversation.location})
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
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=now, last_message_preview=_preview(message), unread_count=0)
    publish_on_commit(
        location_id=conversation.location_id,
        event="message.queued",
        topics=["inbox", f"conversation:{conversation.pk}"],
        data={"conversation": conversation.pk, "message": message.pk},
    )
    if not from_ghl:  # a reply typed in GHL is in GHL already
        ghl_services.outbound_message_logged(message)
    transaction.on_commit(lambda: enqueue_message_delivery(message.pk))
    return message


def _media_address_problem(media) -> str:
    """Attachment links leave with a send: as links in the text (SMS, a caption's extra
    files), to Twilio, or fetched by us for the WhatsApp gateways. None may point inside our
    network (MEDIA_ALLOW_PRIVATE_URLS allows it). The reason for the first such link, else ""."""
    for item in media or ():
        url = str(item.get("url") or "")
        if url.startswith(("http://", "https://")):
            problem = guarded_fetch.address_problem(url, purpose=guarded_fetch.MEDIA)
            if problem:
                return problem
    return ""


def message_deliver(*, message_id: int) -> str:
    """Hand a queued message to its backend exactly once. The claim (queued -> sending) is a
    conditional update, so two workers never both send; the provider is given our message id
    as idempotency key so a retry after a crash does not double-send where it supports it."""
    claimed = Message.objects.filter(pk=message_id, status=Message.Status.QUEUED, provider_message_id="").update(
        status=Message.Status.SENDING, status_changed_at=timezone.now()
    )
    if not claimed:
        return "skipped"
    message = Message.objects.select_related("account", "conversation__contact").get(pk=message_id)
    provider = get_provider(message.account.backend)
    refused = _media_address_problem(message.media)
    if refused:
        _send_failed(message, f"Not sent: {refused}")
        return "failed"
    try:
        result = provider.send(
            message.account,
            to=message.conversation.contact.phone,
            text=message.text,
            media=message.media or None,
            idempotency_key=f"wsm-{message.pk}",
        )
    except ProviderError as exc:
        repeatable = not exc.ambiguous or provider.idempotent_sends  # a lost answer is safe to retry
        if exc.transient and repeatable and message.send_attempts + 1 < MAX_SEND_ATTEMPTS:
            return _send_retry_later(message, exc)
        reason = str(exc)
        if exc.ambiguous and not provider.idempotent_sends:
            reason = f"{exc} — no answer in time: it may have been sent; retry only if the recipient did not get it."
        _send_failed(message, reason)
        logger.warning("send of message %s failed: %s", message.pk, exc)
        return "failed"
    if message.account.status == Account.Status.ERROR and message.account.last_error.startswith(Account.SEND_FAILING):
        from accounts.services import account_set_status

        account_set_status(account=message.account, status=Account.Status.CONNECTED, reason="sending works again")
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message.pk)
        message.provider_message_id = result.provider_id
        message.save(update_fields=["provider_message_id"])
        message_status_advance(message=message, status=result.status if result.status != "queued" else "sent")
    return message.status


def _send_failed(message: Message, reason: str) -> bool:
    """sending -> failed with the reason, told to the inbox, webhooks and GHL."""
    with transaction.atomic():
        changed = Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
            status=Message.Status.FAILED, error=reason[:300], status_changed_at=timezone.now()
        )
        if not changed:
            return False
        publish_on_commit(
            location_id=message.location_id,
            event="message.status",
            topics=[f"conversation:{message.conversation_id}", f"message:{message.pk}"],
            data={"message": message.pk, "status": "failed"},
        )
        hook_event_emit(location_id=message.location_id, event="message.status", data={"message": message.pk, "conversation": message.conversation_id, "account": message.account_id, "status": "failed", "error": reason[:300]})
        message.status, message.error = Message.Status.FAILED, reason[:300]
        ghl_services.message_status_changed(message)
    return True


# Longer than a drain task may run (its budget < the 60 s task timeout) plus django-q's
# retry window: a message still `sending` after this lost its worker mid-send.
STUCK_SENDING_SECONDS = 180


def messages_fail_stuck(limit: int = 500) -> int:
    """Sends whose worker died between claiming the message and recording the backend's
    answer. Whether the backend took it is unknown, so it is never re-sent by itself: it
    fails with that said, and the agent can retry."""
    cutoff = timezone.now() - timezone.timedelta(seconds=STUCK_SENDING_SECONDS)
    stuck = Message.objects.filter(status=Message.Status.SENDING, provider_message_id="", status_changed_at__lt=cutoff)
    n = 0
    for message in stuck.order_by("id")[:limit]:
        if _send_failed(message, "the worker stopped while handing it to the backend: it may have been sent; "
                                 "retry only if the recipient did not get it."):
            logger.warning("message %s was stuck in sending: marked failed", message.pk)
            n += 1
    return n


MAX_SEND_ATTEMPTS = 6
RETRY_BASE_SECONDS = 15.0
RETRY_MAX_SECONDS = 600.0


def _send_retry_later(message: Message, exc: ProviderError) -> str:
    """The backend is down or overloaded (it did not take the message): the message goes back
    to the head of its account's queue and the account waits with exponential backoff
    (15 s, 30 s, ... 10 min); after MAX_SEND_ATTEMPTS it fails with the reason."""
    from conversations import pacing

    attempts = message.send_attempts + 1
    delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempts - 1))
    with transaction.atomic():
        Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
            status=Message.Status.QUEUED, send_attempts=attempts,
            error=f"attempt {attempts} of {MAX_SEND_ATTEMPTS} failed: {exc}"[:300], status_changed_at=timezone.now(),
        )
        Account.objects.filter(pk=message.account_id).update(next_send_at=pacing.clock() + timezone.timedelta(seconds=delay))
        account = Account.objects.get(pk=message.account_id)
        if account.accepts_replies:  # connected (or failing sends already): not a connect error
            # shown as the account's status (live, with the reason); replies still queue
            from accounts.services import account_set_status

            account_set_status(account=account, status=Account.Status.ERROR, reason=f"{Account.SEND_FAILING}{exc}"[:500])
    logger.warning("send of message %s failed (attempt %s), retrying in %.0f s: %s", message.pk, attempts, delay, exc)
    return "retry"


def message_retry(*, message: Message) -> Message:
    """Retry a failed send: back to queued (same row, so it cannot be sent twice)."""
    from conversations.tasks import enqueue_message_delivery

    if message.direction != Message.Direction.OUTBOUND or message.status != Message.Status.FAILED:
        raise ApplicationError("Only a failed outbound message can be retried.")
    if message.provider_message_id:
        raise ApplicationError("The backend accepted this message already; it will not be sent twice.")
    Message.objects.filter(pk=message.pk, status=Message.Status.FAILED).update(
        status=Message.Status.QUEUED, error="", send_attempts=0, status_changed_at=timezone.now()
    )
    transaction.on_commit(lambda: enqueue_message_delivery(message.pk))
    message.refresh_from_db()
    return message
