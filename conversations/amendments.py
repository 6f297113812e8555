"""Filing what changes earlier messages or a thread without being a message: reactions, edits,
deletions for everyone, group system items, and the phone behind a WhatsApp LID.

None of these bumps unread counts, reopens a conversation or reaches routing. A change to a
message WhatSnap does not have (yet) raises NotYet: the event is retried for a few minutes (it
may have overtaken its message) and then kept unfiled with that reason, for an admin to re-run."""
import logging

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import ProviderError
from accounts.providers.whatsapp_ids import phone_from_jid
from contacts.models import Contact
from contacts.services import contact_identify_lid, contact_upsert_from_inbound, contact_upsert_from_whatsapp
from conversations.models import Conversation, ConversationEvent, InboundEvent, Message, MessageReaction
from conversations.sending import preview_of
from whatsnap import events
from whatsnap.phones import normalise_for_account

logger = logging.getLogger(__name__)

DELETED_PREVIEW = "This message was deleted"
MAX_EDITS_KEPT = 20


class NotFiled(Exception):
    """The event is kept unfiled with this reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class NotYet(NotFiled):
    """Not filed for now (what it refers to may still arrive): retried, then kept unfiled."""


def _at(data: dict):
    return parse_datetime(data.get("at") or "") or timezone.now()


def find_message(account: Account, provider_id: str, *, lock: bool = False, conversation=None) -> Message | None:
    """The account's message with this provider id; failing an exact match, the one whose id
    names the same message through another chat address (Provider.message_id_core: WAHA writes
    one chat as `…@lid` in one id and `…@c.us` in another) — only within `conversation` when
    given (a sender chooses its own ids: a core alone never reaches into another chat)."""
    rows = Message.objects.select_related("conversation", "account", "sender_contact")
    if lock:
        rows = rows.select_for_update(of=("self",))
    message = rows.filter(account=account, provider_message_id=provider_id).first()
    if message is not None or not provider_id:
        return message
    core = get_provider(account.backend).message_id_core(provider_id)
    if not core or core == provider_id:
        return None
    rows = rows.filter(account=account, provider_id_core=core[:64])
    return rows.filter(conversation=conversation).order_by("-id").first() if conversation is not None else None


def provider_id_core(account: Account, provider_id: str) -> str:
    """What Message.provider_id_core holds for this provider id."""
    return get_provider(account.backend).message_id_core(provider_id)[:64] if provider_id else ""


def chat_contact(account: Account, chat: str) -> Contact | None:
    """The contact whose thread a chat address names, as the account sees it: a group id, a
    WhatsApp LID, or a phone / handle in any form the backend writes it."""
    chat = (chat or "").strip()
    if not chat:
        return None
    contacts = Contact.objects.filter(location_id=account.location_id)
    found = contacts.filter(phone=chat).first()
    if found is None and chat.endswith("@lid"):
        found = contacts.filter(whatsapp_lid=chat).first()
    if found is None:
        phone = phone_from_jid(chat) or chat
        value = normalise_for_account(phone, account_phone=account.phone_number).value
        found = contacts.filter(phone=value).first()
    return found


def _target(account: Account, data: dict, what: str, *, chat_required: bool = True) -> Message:
    """The message an event names, in the chat the event came from: a message of another chat
    is never touched (a contact could otherwise name any id it learnt)."""
    target_id = data["target_id"]
    contact = chat_contact(account, data.get("chat", ""))
    conversation = Conversation.objects.filter(contact=contact, account=account).first() if contact else None
    if conversation is None and (chat_required or data.get("chat")):
        if not data.get("chat"):
            raise NotFiled(f"{what} that does not say which chat it came from: not applied")
        raise NotYet(f"{what} of a message WhatSnap does not have")
    message = find_message(account, target_id, lock=True, conversation=conversation)
    if message is None:
        # the id stays in the event's payload: reasons group alike events on the account page
        raise NotYet(f"{what} of a message WhatSnap does not have")
    if conversation is not None and message.conversation_id != conversation.pk:
        raise NotFiled(f"{what} naming a message of another chat: not applied")
    return message


def person_of(account: Account, *, phone: str, lid: str, name: str = "") -> tuple[Contact, bool, bool] | None:
    """(contact, created, changed) of a person named by phone and/or LID; None when neither is given."""
    sender = normalise_for_account(phone, account_phone=account.phone_number) if phone else None
    if lid:
        return contact_upsert_from_whatsapp(location=account.location, sender=sender, lid=lid, platform_name=name)
    if sender is not None:
        return contact_upsert_from_inbound(location=account.location, sender=sender, platform_name=name)
    return None


# --- reactions ---------------------------------------------------------------------------------
def reaction_file(event: InboundEvent) -> None:
    data = event.payload
    # a reaction without its chat (a backend that cannot say) still lands: it changes no words
    message = _target(event.account, data, "reaction", chat_required=False)
    if data.get("from_me"):
        actor_key, contact = "me", None
    else:
        found = person_of(event.account, phone=data.get("from_phone", ""), lid=data.get("sender_lid", ""))
        contact = found[0] if found else message.conversation.contact
        actor_key = f"c{contact.pk}"
    reaction_set(message=message, actor_key=actor_key, contact=contact, emoji=data.get("emoji", ""), at=_at(data))


def reaction_set(*, message: Message, actor_key: str, emoji: str, at, contact: Contact | None = None, author=None) -> bool:
    """Add, change or remove ('' emoji) one party's reaction; records message.reacted when it
    changed anything. Shared by reactions that arrive and reactions an agent makes."""
    current = MessageReaction.objects.filter(message=message, actor_key=actor_key).first()
    previous = current.emoji if current else ""
    if previous == emoji:
        return False
    if not emoji:
        current.delete()
    elif current is None:
        MessageReaction.objects.create(message=message, actor_key=actor_key, contact=contact, author=author, emoji=emoji[:32], at=at)
    else:
        current.emoji, current.at, current.author = emoji[:32], at, author
        current.save(update_fields=["emoji", "at", "author"])
    events.record("message.reacted", location_id=message.location_id, message=message, emoji=emoji,
                  previous=previous, actor_key=actor_key, author=author)
    return True


# --- edits and deletions --------------------------------------------------------------------------
def _authored_by_the_actor(message: Message, data: dict, what: str) -> None:
    """An edit or deletion applies only to a message its sender wrote: the account's phone edits
    only what the account sent, a contact only what they sent, a group member only their own.
    Anything else — a forged one naming someone else's message — is kept unfiled, not applied."""
    from_me = data.get("from_me")
    if from_me is None:
        raise NotFiled(f"{what} that does not say who made it: not applied")
    if from_me != (message.direction == Message.Direction.OUTBOUND):
        raise NotFiled(f"{what} of a message its sender did not write: not applied")
    if from_me or message.sender_contact_id is None:
        return  # ours, or a 1:1 chat's message: the only other author is the contact
    by = str(data.get("by") or "")
    author = message.sender_contact
    if not by or not (author.phone == by or author.whatsapp_lid == by or _same_phone(message, by, author.phone)):
        raise NotFiled(f"{what} by a group member who did not write the message: not applied")


def _same_phone(message: Message, raw: str, phone: str) -> bool:
    return normalise_for_account(raw, account_phone=message.account.phone_number).value == phone


def edit_file(event: InboundEvent) -> None:
    data = event.payload
    message = _target(event.account, data, "edit")
    _authored_by_the_actor(message, data, "edit")
    text, at = str(data.get("text") or ""), _at(data)
    if message.deleted_at or text == message.text:
        return  # nothing to show: a repeat of the same edit, or an edit of a deleted message
    previous = message.text
    # the earlier texts admins may read: the last few (a flood of edits cannot grow a row forever)
    message.edits = [*message.edits, {"text": previous, "until": at.isoformat()}][-MAX_EDITS_KEPT:]
    message.text, message.edited_at = text, at
    message.save(update_fields=["text", "edits", "edited_at"])
    _refresh_preview(message)
    events.record("message.edited", location_id=message.location_id, message=message, previous_text=previous)


def delete_file(event: InboundEvent) -> None:
    data = event.payload
    message = _target(event.account, data, "deletion")
    _authored_by_the_actor(message, data, "deletion")
    if message.deleted_at:
        return
    message.deleted_at = _at(data)
    message.save(update_fields=["deleted_at"])
    _refresh_preview(message)
    events.record("message.deleted", location_id=message.location_id, message=message)


def _refresh_preview(message: Message) -> None:
    """The inbox list shows the conversation's last message: keep it true after an edit or a
    deletion of that message."""
    latest = Message.objects.filter(conversation_id=message.conversation_id, is_note=False).order_by("-sent_at", "-id").first()
    if latest is None or latest.pk != message.pk:
        return
    preview = DELETED_PREVIEW if message.deleted_at else preview_of(message)
    Conversation.objects.filter(pk=message.conversation_id).update(last_message_preview=preview)


# --- group system items -------------------------------------------------------------------------
def chat_event_file(event: InboundEvent) -> None:
    data = event.payload
    account = event.account
    group = Contact.objects.filter(location=account.location, phone=data["group_id"]).first()
    conversation = Conversation.objects.filter(contact=group, account=account).first() if group else None
    if conversation is None:
        raise NotFiled("event of a group chat WhatSnap has no conversation with yet")
    text = str(data.get("text") or "")[:200]
    if data.get("group_name") and group.name_source != Contact.NameSource.PERSON and group.name != data["group_name"]:
        group.name, group.name_source = str(data["group_name"])[:120], Contact.NameSource.PLATFORM
        group.save(update_fields=["name", "name_source", "updated_at"])
    ConversationEvent.objects.create(conversation=conversation, kind=ConversationEvent.Kind.CHAT, at=_at(data), reason=text)
    events.record("conversation.chat_event", location_id=account.location_id, conversation=conversation, text=text)


# --- the phone behind a LID -------------------------------------------------------------------------
def identity_file(event: InboundEvent) -> None:
    data, account = event.payload, event.account
    sender = normalise_for_account(data["phone"], account_phone=account.phone_number)
    if not sender.is_e164:
        raise NotFiled(f"the gateway named {data['phone'][:40]!r} as the phone of a LID: not a phone number")
    contact_identify_lid(location=account.location, lid=data["lid"], sender=sender, platform_name=data.get("name", ""))


def lid_contact(account: Account, lid: str, name: str) -> tuple[Contact, bool, bool]:
    """A person WhatsApp names only by a LID (no phone field at all)."""
    return contact_upsert_from_whatsapp(location=account.location, sender=None, lid=lid, platform_name=name)



def lid_resolve(account_id: int, lid: str) -> str:
    """The task queued when a message is filed under a LID only: ask the gateway for the phone
    behind it. Found: the LID's contact takes it (or merges into the phone's contact); not
    found or the gateway fails: nothing changes (a later message with the phone merges it)."""
    account = Account.objects.select_related("location").filter(pk=account_id).first()
    if account is None:
        return "no account"
    try:
        phone = get_provider(account.backend).resolve_lid(account, lid)
    except ProviderError as exc:
        logger.info("LID lookup on account %s failed: %s", account_id, exc)
        return "lookup failed"
    sender = normalise_for_account(phone, account_phone=account.phone_number) if phone else None
    if sender is None or not sender.is_e164:
        return "unknown"
    with transaction.atomic():
        contact_identify_lid(location=account.location, lid=lid, sender=sender)
    return "identified"
