"""Filing many messages at once, set-based: the path a burst of inbound messages takes.

conversations/filing.py files one message in ~20 statements. Most messages are the plain kind:
a person writing from a phone number, not a group, not a quoted reply, not typed on the
account's own phone, not imported history. For those, messages_file_many() does the same
steps for a whole claimed batch with a statement per step, not per message:

    contacts   one select, one insert of the new ones, one update of renamed ones (contacts.bulk)
    links      the account's tag, the account link, the active account: a few statements
    threads    one select of the conversations, one insert of the new ones
    messages   one insert
    threads    one update of every conversation touched (last message, unread, reopened,
               first inbound time)
    events     message.received recorded for the batch (events.record_many): routing, live
               updates, GHL outbox rows and webhook deliveries each write theirs in one go
    queue      one update marks the events done

Anything else (and every message of a sender who has anything else in the batch, so one
person's messages keep their order) goes through the one-by-one filer; messages_file_many
returns those in filing order (grouped by sender, each in arrival order). Each account's
set-based part runs in its own savepoint: if it raises (a contact or thread another worker
created meanwhile), it is rolled back and that account's events are filed one by one instead,
where each failure is isolated. Opt-out keywords, routing with its row locks and the out-of-hours auto-reply keep
their one-message services."""
import logging
from dataclasses import dataclass, field

from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Account
from accounts.providers import get_provider
from contacts.bulk import contacts_link_many, contacts_upsert_many
from contacts.services import contact_opt_out_from_keyword
from conversations.filing import auto_reply_if_closed, foreign_media
from contacts.models import Contact
from conversations.models import Conversation, InboundEvent, Message
from conversations.sending import preview_of
from whatsnap import events
from whatsnap.phones import NormalisedSender, normalise_for_account

logger = logging.getLogger(__name__)


@dataclass
class _Plain:
    event: InboundEvent
    sender: NormalisedSender
    at: object
    message: Message | None = None


@dataclass
class _Thread:
    conversation: Conversation
    items: list = field(default_factory=list)


MAX_ID = Message._meta.get_field("provider_message_id").max_length
MAX_PHONE = Contact._meta.get_field("phone").max_length


def _is_plain(event: InboundEvent, sender: NormalisedSender | None) -> bool:
    """A message from a number, of the plain kind. Anything a bulk insert would refuse (an id
    or a number too long for its column, a text that is not text) is not plain: the one-by-one
    filer keeps it with its reason, alone, and the batch stays set-based."""
    data = event.payload
    if sender is None or len(sender.value) > MAX_PHONE:
        return False
    if data.get("from_me") or data.get("history") or data.get("group_id") or data.get("sender_lid") or data.get("reply_to"):
        return False
    provider_id = data.get("provider_id")
    if "at" not in data or not isinstance(provider_id, str) or not provider_id or len(provider_id) > MAX_ID:
        return False
    if not all(isinstance(data.get(key) or "", str) for key in ("text", "name", "quoted_text")):
        return False
    return isinstance(data.get("media") or [], list)


def _sender_of(event: InboundEvent) -> NormalisedSender | None:
    """The sender's number as its account reads it (a message event that names one)."""
    data = event.payload
    phone = data.get("from_phone") if event.kind == InboundEvent.Kind.MESSAGE and isinstance(data, dict) else None
    if not isinstance(phone, str) or not phone.strip():
        return None
    sender = normalise_for_account(phone, account_phone=event.account.phone_number)
    return sender if sender.value else None


def _filing_order(event: InboundEvent, sender: NormalisedSender | None):
    """Messages first, grouped by whose thread they land in (however the number is written),
    each group in arrival order; then statuses, reactions, edits… in arrival order (what they
    refer to may be in this batch)."""
    if event.kind == InboundEvent.Kind.MESSAGE:
        data = event.payload if isinstance(event.payload, dict) else {}
        who = data.get("group_id") or (sender.value if sender else "") or data.get("sender_lid") or ""
        return (0, event.account_id, str(who), event.pk)
    return (1, 0, "", event.pk)


def _split_plain(ordered: list[InboundEvent], senders: dict) -> tuple[list[_Plain], list[InboundEvent]]:
    """(plain messages, the rest), both in the filing order given. A sender with one message
    that is not plain has all of theirs filed one by one, in order."""
    plain_ids = {e.pk for e in ordered if _is_plain(e, senders[e.pk])}
    mixed = {(e.account_id, senders[e.pk].value) for e in ordered if senders[e.pk] and e.pk not in plain_ids}
    plain, rest = [], []
    for event in ordered:
        sender = senders[event.pk]
        if event.pk not in plain_ids or (event.account_id, sender.value) in mixed:
            rest.append(event)
            continue
        at = parse_datetime(str(event.payload.get("at") or "")) or timezone.now()
        plain.append(_Plain(event, sender, at))
    return plain, rest


def messages_file_many(events: list[InboundEvent]) -> list[InboundEvent]:
    """File the plain messages among `events` (rows the caller's transaction holds locked)
    set-based, each account's in its own savepoint; returns the events left to file one by
    one, in filing order (the rest, and those of an account whose set-based part failed: one
    tenant's bad batch never sends the others' one by one). Each number is read once."""
    senders = {e.pk: _sender_of(e) for e in events}
    ordered = sorted(events, key=lambda e: _filing_order(e, senders[e.pk]))
    plain, rest = _split_plain(ordered, senders)
    by_account: dict[int, list[_Plain]] = {}
    for item in plain:
        by_account.setdefault(item.event.account_id, []).append(item)
    failed: set[int] = set()
    for account_id, items in by_account.items():
        try:
            with transaction.atomic():
                _file_for_account(items)
                now = timezone.now()
                InboundEvent.objects.filter(pk__in=sorted(i.event.pk for i in items)).update(
                    status=InboundEvent.Status.DONE, processed_at=now, attempts=F("attempts") + 1)
        except (OperationalError, InterfaceError):
            raise  # the connection or a lock: the caller's whole transaction is gone
        except Exception as exc:
            # the one-by-one filer records what is wrong on the event itself (shown to staff)
            logger.warning("%s messages of account %s could not be filed together (%s); filing them one by one",
                           len(items), account_id, type(exc).__name__)
            failed.add(account_id)
            continue
        for item in items:
            item.event.status, item.event.processed_at = InboundEvent.Status.DONE, now
            item.event.attempts += 1
    if not failed:
        return rest
    again = {e.pk for e in rest} | {item.event.pk for item in plain if item.event.account_id in failed}
    return [e for e in ordered if e.pk in again]


def _file_for_account(items: list[_Plain]) -> None:
    account: Account = items[0].event.account
    location = account.location
    people: dict[str, tuple[NormalisedSender, str]] = {}
    for item in items:  # the last name given wins; a message without one renames nobody
        phone = item.sender.value
        people[phone] = (item.sender, item.event.payload.get("name") or people.get(phone, (None, ""))[1])
    upserted = contacts_upsert_many(location=location, people=people)
    seen = {}
    for item in items:
        pk = upserted[item.sender.value].contact.pk
        seen[pk] = (seen.get(pk, (item.at,))[0], item.at)
    tagged = contacts_link_many(account=account, seen=seen)
    if account.kind in Account.SMS_KINDS:
        for item in items:  # STOP, START, HELP: a write only when the text is one of them
            contact_opt_out_from_keyword(contact=upserted[item.sender.value].contact, text=item.event.payload.get("text", ""))
    threads = _threads(account, [upserted[phone].contact for phone in people])
    core = get_provider(account.backend).message_id_core
    for item in items:
        data = item.event.payload
        thread = threads[upserted[item.sender.value].contact.pk]
        item.message = Message(
            location_id=location.pk, conversation=thread.conversation, account=account, text=data.get("text", ""),
            media=[foreign_media(m) for m in data.get("media") or []], provider_message_id=data["provider_id"],
            provider_id_core=core(data["provider_id"])[:64], sent_at=item.at, direction=Message.Direction.INBOUND,
            status=Message.Status.RECEIVED, quoted_text=str(data.get("quoted_text") or "")[:300])
        thread.items.append(item)
    Message.objects.bulk_create([item.message for item in items])
    _bump(threads.values())
    changed_first = set()
    records = []
    for item in items:
        found = upserted[item.sender.value]
        contact = found.contact
        changed = contact.pk not in changed_first and (found.created or found.renamed or contact.pk in tagged)
        changed_first.add(contact.pk)
        records.append({"message": item.message, "conversation": item.message.conversation, "contact": contact,
                        "sender": contact, "account": account, "contact_changed": changed})
    events.record_many("message.received", location_id=location.pk, items=records)
    for thread in threads.values():
        for item in thread.items:  # as one by one: the first message outside business hours answers
            if auto_reply_if_closed(thread.conversation, item.at):
                break


def _threads(account: Account, contacts) -> dict[int, _Thread]:
    """contact id -> its conversation with the account (created when missing), each with its
    contact and account objects set, so subscribers read no row again."""
    by_id = {c.pk: c for c in contacts}
    found = {c.contact_id: c for c in Conversation.objects.filter(account=account, contact_id__in=sorted(by_id))}
    new = [Conversation(contact=by_id[pk], account=account, location_id=account.location_id) for pk in sorted(by_id) if pk not in found]
    if new:
        Conversation.objects.bulk_create(new)  # another worker's row for one of them: IntegrityError
        found.update({c.contact_id: c for c in new})
    for pk, conversation in found.items():
        conversation.contact, conversation.account = by_id[pk], account
    return {pk: _Thread(conversation) for pk, conversation in found.items()}


def _bump(threads) -> None:
    """Each conversation: its last message, unread count, opened again when resolved or
    snoozed, first inbound time (what Message.save keeps for one message); one statement whose
    counts, status and first time are worked out from the row as it is then (an agent's read or
    status change, another worker's earlier message, meanwhile are not undone), read back."""
    touched = []
    reopen = [Conversation.Status.RESOLVED, Conversation.Status.SNOOZED]
    for thread in threads:
        conversation, last = thread.conversation, thread.items[-1]
        first = min(item.at for item in thread.items)
        conversation.last_message_at = last.at
        conversation.last_message_preview = preview_of(last.message)
        conversation.unread_count = F("unread_count") + len(thread.items)
        conversation.status = Case(When(status__in=reopen, then=Value(Conversation.Status.OPEN)), default=F("status"))
        conversation.snoozed_until = Case(When(status__in=reopen, then=Value(None)), default=F("snoozed_until"))
        conversation.first_inbound_at = Case(When(Q(first_inbound_at__isnull=True) | Q(first_inbound_at__gt=first), then=Value(first)),
                                             default=F("first_inbound_at"))
        touched.append(conversation)
    fields = ["unread_count", "status", "snoozed_until", "first_inbound_at"]
    Conversation.objects.bulk_update(sorted(touched, key=lambda c: c.pk), ["last_message_at", "last_message_preview", *fields])
    now = {row["pk"]: row for row in Conversation.objects.filter(pk__in=[c.pk for c in touched]).values("pk", "assignee_id", *fields)}
    for conversation in touched:
        for name in fields:
            setattr(conversation, name, now[conversation.pk][name])
        conversation.assignee_id = now[conversation.pk]["assignee_id"]
