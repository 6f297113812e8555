"""Filing one stored message event, step by step, in the caller's transaction.

- From the contact: sender -> contacts -> conversation -> message -> "message.received" (routing,
  live, GHL and outgoing webhooks subscribe to it) -> the auto-reply outside business hours.
- Typed on the account's own phone or Mac (from_me, not one of WhatSnap's sends echoing back):
  an outbound message marked via_device that moves the conversation like an agent's reply ->
  "message.sent_from_device" (GHL logs it as outbound).
- Imported history (history=True): stored and shown, marked is_history -> "message.imported"
  only: no unread bump, no reopening, no routing, no auto-reply, nothing to GHL.

WhatsApp people named only by a LID are filed under a contact keyed by that LID; the gateway is
asked for the phone behind it (amendments.lid_resolve) and a later message carrying both
merges the two."""
import logging
from dataclasses import dataclass

from django.core.cache import cache
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.hours import is_within_hours
from accounts.models import Account
from contacts.models import Contact
from contacts.services import (
    contact_account_touch,
    contact_opt_out_from_keyword,
    contact_tag_add,
    contact_upsert_from_inbound,
)
from conversations.amendments import NotFiled, NotYet, find_message, lid_contact, lid_resolve, person_of, provider_id_core
from conversations.models import Conversation, InboundEvent, Message
from conversations.sending import message_send, preview_of
from whatsnap import events
from whatsnap.errors import ApplicationError
from whatsnap.phones import NormalisedSender
from whatsnap.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

AUTO_REPLY_EVERY = timezone.timedelta(hours=12)
# One of WhatSnap's own sends still waiting for the backend's answer may be the message the
# phone reports as typed on it: such a report waits (NotYet) rather than file a duplicate.
ECHO_WINDOW = timezone.timedelta(minutes=5)
LID_LOOKUP_EVERY_SECONDS = 3600


@dataclass
class Sender:
    """Who wrote (`person`) and whose thread it lands in (`thread`: the person, or the group)."""
    person: Contact | None  # None: the account itself (a message typed on its phone)
    thread: Contact
    changed: bool  # the person was created or renamed, or got the account's tag


def message_file(event: InboundEvent) -> Message | None:
    account, data = event.account, event.payload
    at = parse_datetime(data["at"]) or timezone.now()
    if data.get("from_me"):
        return _file_device_message(account, data, at)
    return _file_inbound_message(account, data, at)


# --- from the contact -----------------------------------------------------------------------------
def _file_inbound_message(account: Account, data: dict, at) -> Message:
    sender = _sender_contacts(account, data)
    sender.changed |= _link_to_account(sender, account, at)
    history = bool(data.get("history"))
    if account.kind in Account.SMS_KINDS and not history:
        contact_opt_out_from_keyword(contact=sender.person, text=data.get("text", ""))
    conversation = Conversation.objects.get_or_create(
        contact=sender.thread, account=account, defaults={"location": account.location})[0]
    message = _store(conversation, data, at, direction=Message.Direction.INBOUND, status=Message.Status.RECEIVED,
                     sender_contact=sender.person if sender.thread is not sender.person else None)
    if history:
        _place_history(conversation, message, at)
        events.record("message.imported", location_id=account.location_id, message=message, conversation=conversation,
                      contact=sender.thread, account=account)
        return message
    _bump_conversation(conversation, message, at)
    events.record("message.received", location_id=account.location_id, message=message, conversation=conversation,
                  contact=sender.thread, sender=sender.person, account=account, contact_changed=sender.changed)
    auto_reply_if_closed(conversation, at)
    return message


def _sender_contacts(account: Account, data: dict) -> Sender:
    """The person found or created by phone (or WhatsApp LID), with the platform's display name
    when given. A group chat is its own contact (kind=group, keyed by the group id) and thread;
    the person who wrote is recorded on each message."""
    lid = data.get("sender_lid") or ""
    if not data.get("from_phone") and lid:
        person, created, renamed = lid_contact(account, lid, data.get("name", ""))
        _ask_gateway_for_phone(account, lid)
    elif data.get("from_phone"):
        person, created, renamed = person_of(account, phone=data["from_phone"], lid=lid, name=data.get("name", ""))
    else:
        raise NotFiled("no sender phone or WhatsApp id in the message")
    thread = person
    if data.get("group_id"):
        thread = contact_upsert_from_inbound(
            location=account.location, sender=NormalisedSender(data["group_id"], False),
            platform_name=data.get("group_name", ""), kind=Contact.Kind.GROUP)[0]
    return Sender(person=person, thread=thread, changed=created or renamed)


def _ask_gateway_for_phone(account: Account, lid: str) -> None:
    """Ask the gateway for the number behind a LID, at most once an hour per LID and account (a
    talkative contact is not a lookup per message; a later message with the phone merges anyway)."""
    if cache.add(f"whatsnap:lid-lookup:{account.pk}:{lid}", 1, LID_LOOKUP_EVERY_SECONDS):
        enqueue_on_commit(lid_resolve, account.pk, lid)


def _link_to_account(sender: Sender, account: Account, at) -> bool:
    """The account's tag and link on the person (and the group); True when a tag was added."""
    tag = getattr(account, "tag", None)
    tags_changed = False
    for contact in {c for c in (sender.person, sender.thread) if c is not None}:
        if tag is not None:
            tags_changed |= contact_tag_add(contact=contact, tag=tag)
        contact_account_touch(contact=contact, account=account, at=at)
        Contact.objects.filter(pk=contact.pk).update(active_account=account)
    return tags_changed


def foreign_media(item):
    """A webhook's media item never names a stored composer upload or a storage name: those
    would hand its sender signed links to (or the bytes of) any location's stored files."""
    return {k: v for k, v in item.items() if k not in ("upload", "storage_name")} if isinstance(item, dict) else item


def _store(conversation: Conversation, data: dict, at, **fields) -> Message:
    reply_to_id = str(data.get("reply_to") or "")[:128]
    quoted = None
    if reply_to_id:
        # only a message of this thread: a sender chooses the id it quotes
        quoted = find_message(conversation.account, reply_to_id, conversation=conversation)
        if quoted is not None and (quoted.conversation_id != conversation.pk or quoted.deleted_at):
            quoted = None
    return Message.objects.create(
        location_id=conversation.location_id,
        conversation=conversation,
        account=conversation.account,
        text=data.get("text", ""),
        media=[foreign_media(item) for item in data.get("media") or []],
        provider_message_id=data["provider_id"],
        provider_id_core=provider_id_core(conversation.account, data["provider_id"]),
        sent_at=at,
        is_history=bool(data.get("history")),
        reply_to=quoted,
        reply_to_provider_id=reply_to_id,
        quoted_text=str(data.get("quoted_text") or (quoted.text if quoted else ""))[:300],
        **fields,
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


def _place_history(conversation: Conversation, message: Message, at) -> None:
    """History moves the conversation's last message only if it is newer; nothing else."""
    Conversation.objects.filter(pk=conversation.pk).exclude(last_message_at__gte=at).update(
        last_message_at=at, last_message_preview=preview_of(message))


def auto_reply_if_closed(conversation: Conversation, at) -> bool:
    """Outside the account's business hours, answer with its auto-reply (at most every 12 h
    per conversation). True when it answered."""
    account = conversation.account
    if not account.auto_reply_text or is_within_hours(account, at):
        return False
    if conversation.auto_replied_at and conversation.auto_replied_at > at - AUTO_REPLY_EVERY:
        return False
    try:
        message_send(conversation=conversation, text=account.auto_reply_text)
    except ApplicationError as exc:
        logger.info("auto-reply for conversation %s skipped: %s", conversation.pk, exc.message)
        return False
    Conversation.objects.filter(pk=conversation.pk).update(auto_replied_at=at)
    conversation.auto_replied_at = at
    return True


# --- typed on the account's own phone or Mac ------------------------------------------------------
def _file_device_message(account: Account, data: dict, at) -> Message | None:
    """A message the account's phone sent. One of WhatSnap's own sends echoing back is already
    here (same provider id): nothing to do. Otherwise the owner typed it on the device: an
    outbound message "from the phone", which answers the contact like an agent's reply."""
    if find_message(account, data["provider_id"]) is not None:
        return None
    thread = _device_thread(account, data)
    conversation = Conversation.objects.get_or_create(contact=thread, account=account, defaults={"location": account.location})[0]
    if find_message(account, data["provider_id"], conversation=conversation) is not None:
        return None  # our own send, its id written with another address of this chat
    in_flight = Message.objects.filter(
        conversation=conversation, direction=Message.Direction.OUTBOUND, status=Message.Status.SENDING,
        provider_message_id="", created_at__gte=timezone.now() - ECHO_WINDOW)
    if in_flight.exists():
        raise NotYet("a message from the phone while one of WhatSnap's sends awaits its answer (it may be its echo)")
    history = bool(data.get("history"))
    message = _store(conversation, data, at, direction=Message.Direction.OUTBOUND, status=Message.Status.SENT,
                     via_device=True, status_changed_at=at)
    if history:
        _place_history(conversation, message, at)
        events.record("message.imported", location_id=account.location_id, message=message, conversation=conversation,
                      contact=thread, account=account)
        return message
    # like an agent's reply: the thread moves, and the contact's messages count as answered
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=at, last_message_preview=preview_of(message), unread_count=0)
    events.record("message.sent_from_device", location_id=account.location_id, message=message,
                  conversation=conversation, contact=thread, account=account)
    return message


def _device_thread(account: Account, data: dict) -> Contact:
    """The chat a message typed on the phone went to: the group, or the person written to."""
    if data.get("group_id"):
        return contact_upsert_from_inbound(
            location=account.location, sender=NormalisedSender(data["group_id"], False),
            platform_name=data.get("group_name", ""), kind=Contact.Kind.GROUP)[0]
    lid = data.get("sender_lid") or ""
    if not data.get("from_phone") and lid:
        contact = lid_contact(account, lid, "")[0]
        _ask_gateway_for_phone(account, lid)
        return contact
    # the name a device message carries is the owner's own: never the contact's
    found = person_of(account, phone=data.get("from_phone", ""), lid=lid)
    if found is None:
        raise NotFiled("a message typed on the phone without the number it was sent to")
    return found[0]
