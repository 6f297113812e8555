"""Receiving: the product's hot path.

webhook_events_record() stores verified events (unique per account + provider id, so
redeliveries are no-ops) and queues inbound_event_process(), which files each one in one
transaction: sender -> contacts -> conversation -> message -> the "message.received" event
(routing, live, GHL and outgoing webhooks subscribe to it) -> the auto-reply outside hours."""
import hashlib
import json
import logging
from dataclasses import asdict, dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.hours import is_within_hours
from accounts.models import Account
from accounts.providers.base import (
    ChatEvent,
    ConnectionChanged,
    DeliveryStatus,
    InboundMessage,
    MessageDeleted,
    MessageEdited,
    PhoneIdentified,
    QrUpdated,
    Reaction,
    Unfiled,
)
from accounts.services import account_apply_events
from contacts.models import Contact
from contacts.services import (
    contact_account_touch,
    contact_opt_out_from_keyword,
    contact_tag_add,
    contact_upsert_from_inbound,
)
from conversations.models import Conversation, InboundEvent, Message
from conversations.sending import message_send, preview_of
from conversations.statuses import message_status_advance
from whatsnap import events
from whatsnap.errors import ApplicationError
from whatsnap.phones import NormalisedSender, normalise_sender, region_of
from whatsnap.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

MAX_PROCESS_ATTEMPTS = 8
AUTO_REPLY_EVERY = timezone.timedelta(hours=12)


# --- the ack path ----------------------------------------------------------------------------
def webhook_events_record(*, account: Account, events: list) -> int:
    """Store verified events; returns how many were new. Connection/QR events apply at once;
    Unfiled events are kept with their reason and not processed."""
    new_ids = []
    session_events = [e for e in events if isinstance(e, (QrUpdated, ConnectionChanged))]
    if session_events:
        account_apply_events(account=account, events=session_events)
    for event in events:
        stored = _stored_form(event)
        if stored is None:
            continue
        kind, key, payload = stored
        unfiled = kind == InboundEvent.Kind.UNFILED
        try:
            with transaction.atomic():
                row = InboundEvent.objects.create(
                    account=account, kind=kind, dedupe_key=key[:160], payload=payload,
                    status=InboundEvent.Status.UNFILED if unfiled else InboundEvent.Status.PENDING,
                    error=event.reason[:500] if unfiled else "", processed_at=timezone.now() if unfiled else None)
        except IntegrityError:
            logger.info("duplicate webhook event %s for account %s ignored", key, account.pk)
            continue
        if unfiled:
            logger.info("webhook event for account %s kept unfiled: %s", account.pk, event.reason)
        else:
            new_ids.append(row.pk)
    _touch_last_webhook(account)
    for pk in new_ids:
        enqueue_on_commit(process_inbound_event, pk)
    return len(new_ids)


def _timed(event) -> dict:
    payload = asdict(event)
    if "at" in payload:
        payload["at"] = event.at.isoformat()
    return payload


def _stored_form(event) -> tuple[str, str, dict] | None:
    """(kind, dedupe key, JSON payload) of an event to file later; None for session events."""
    if isinstance(event, InboundMessage):
        payload = _timed(event)
        payload["media"] = list(event.media)
        return InboundEvent.Kind.MESSAGE, f"msg:{event.provider_id}", payload
    if isinstance(event, DeliveryStatus):
        return InboundEvent.Kind.STATUS, f"st:{event.provider_id}:{event.status}", asdict(event)
    if isinstance(event, Reaction):
        return InboundEvent.Kind.REACTION, f"re:{event.provider_id}", _timed(event)
    if isinstance(event, MessageEdited):
        return InboundEvent.Kind.EDIT, f"ed:{event.provider_id}", _timed(event)
    if isinstance(event, MessageDeleted):
        return InboundEvent.Kind.DELETE, f"del:{event.target_id}", _timed(event)
    if isinstance(event, ChatEvent):
        return InboundEvent.Kind.CHAT_EVENT, f"ce:{event.provider_id}", _timed(event)
    if isinstance(event, PhoneIdentified):
        return InboundEvent.Kind.IDENTITY, f"id:{event.lid}:{event.phone}", asdict(event)
    if isinstance(event, Unfiled):
        body = json.dumps(event.envelope, sort_keys=True, default=str)
        key = event.key or hashlib.sha256(body.encode()).hexdigest()
        return InboundEvent.Kind.UNFILED, f"unf:{key}", {"reason": event.reason, "envelope": json.loads(body)}
    return None


def _touch_last_webhook(account: Account) -> None:
    """Diagnostics only need "recently": write at most every 10 s, not on every webhook of a
    busy account (a hot row every request would contend)."""
    now = timezone.now()
    if account.last_webhook_at and now - account.last_webhook_at < timezone.timedelta(seconds=10):
        return
    Account.objects.filter(pk=account.pk).update(last_webhook_at=now)


# --- processing ------------------------------------------------------------------------------
def process_inbound_event(event_id: int) -> str:
    """The task."""
    return inbound_event_process(event_id=event_id)


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


# --- filing one inbound message, step by step ------------------------------------------------
@dataclass
class Sender:
    """Who wrote (`person`) and whose thread it lands in (`thread`: the person, or the group)."""
    person: Contact
    thread: Contact
    changed: bool  # the person was created or renamed, or got the account's tag


def _file_inbound_message(event: InboundEvent) -> Message:
    account, data = event.account, event.payload
    at = parse_datetime(data["at"]) or timezone.now()
    sender = _sender_contacts(account, data)
    sender.changed |= _link_to_account(sender, account, at)
    if account.kind in Account.SMS_KINDS:
        contact_opt_out_from_keyword(contact=sender.person, text=data.get("text", ""))
    conversation = Conversation.objects.get_or_create(
        contact=sender.thread, account=account, defaults={"location": account.location})[0]
    message = _store_message(conversation, sender, data, at)
    _bump_conversation(conversation, message, at)
    events.record("message.received", location_id=account.location_id, message=message, conversation=conversation,
                  contact=sender.thread, sender=sender.person, account=account, contact_changed=sender.changed)
    _auto_reply_if_closed(conversation, at)
    return message


def _sender_contacts(account: Account, data: dict) -> Sender:
    """The person found or created by phone (the platform's display name when given). A
    WhatsApp group is its own contact (kind=group, keyed by the group id) and thread; the
    person who wrote is recorded on each message."""
    location = account.location
    region = region_of(account.phone_number) or "US"
    person, created, renamed = contact_upsert_from_inbound(
        location=location, sender=normalise_sender(data["from_phone"], default_region=region),
        platform_name=data.get("name", ""))
    thread = person
    if data.get("group_id"):
        thread = contact_upsert_from_inbound(
            location=location, sender=NormalisedSender(data["group_id"], False),
            platform_name=data.get("group_name", ""), kind=Contact.Kind.GROUP)[0]
    return Sender(person=person, thread=thread, changed=created or renamed)


def _link_to_account(sender: Sender, account: Account, at) -> bool:
    """The account's tag and link on the person (and the group); True when a tag was added."""
    tag = getattr(account, "tag", None)
    tags_changed = False
    for contact in {sender.person, sender.thread}:
        if tag is not None:
            tags_changed |= contact_tag_add(contact=contact, tag=tag)
        contact_account_touch(contact=contact, account=account, at=at)
        Contact.objects.filter(pk=contact.pk).update(active_account=account)
    return tags_changed


def _store_message(conversation: Conversation, sender: Sender, data: dict, at) -> Message:
    return Message.objects.create(
        location_id=conversation.location_id,
        conversation=conversation,
        account=conversation.account,
        direction=Message.Direction.INBOUND,
        text=data.get("text", ""),
        media=data.get("media") or [],
        provider_message_id=data["provider_id"],
        status=Message.Status.RECEIVED,
        sender_contact=sender.person if sender.thread is not sender.person else None,
        sent_at=at,
    )


def _bump_conversation(conversation: Conversation, message: Message, at) -> None:
    """Last message, unread count; a resolved or snoozed conversation opens again."""
    conversation.last_message_at = at
    conversation.last_message_preview = preview_of(message)
    conversation.unread_count += 1
    if conversation.status in (Conversation.Status.RESOLVED, Conversation.Status.SNOOZED):
        conversation.status = Conversation.Status.OPEN
        conversation.snoozed_until = None
    conversation.save(update_fields=["last_message_at", "last_message_preview", "unread_count", "status", "snoozed_until"])


def _auto_reply_if_closed(conversation: Conversation, at) -> None:
    """Outside the account's business hours, answer with its auto-reply (at most every 12 h
    per conversation)."""
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


# --- delivery statuses from the backend -------------------------------------------------------
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
