"""Starting a conversation (issue 18): a person — in the inbox, on a contact's page or through
the API — writes first to a number or a contact, through an account they choose.

One transaction: the contact is found by phone or created (the same upsert inbound messages use,
so one contact per phone per location and `contact.created` recorded), given the account's tag as
an inbound contact would be (the product promises each account's tag on its contacts), the
(contact, account) conversation found or created and assigned to the person who started it, and
the message (merge fields rendered) queued through the account's paced queue with message_send.
Anything refused (a bad number, an opted-out contact, an account that cannot reach them) leaves
nothing behind.

An existing conversation is reused, never doubled: when it is resolved or snoozed it is opened
again and the starter takes it; when someone else has it open it stays theirs (the starter is
told). Auto-routing only runs for inbound messages, and only on unassigned conversations, so a
reply from the contact does not take it from the starter."""
import re
from dataclasses import dataclass
from types import SimpleNamespace

import phonenumbers
from django.db import transaction

from accounts.models import Account
from accounts.reach import CHANNEL_LABELS, channel_of, unreachable_reason
from contacts.models import Contact, ContactTag
from contacts.services import contact_update, contact_upsert_from_inbound
from conversations.actions import conversation_assign, conversation_set_status
from conversations.merge_fields import MergeContext, merge_fields_check, merge_fields_render
from conversations.models import Conversation, Message
from conversations.sending import message_send
from whatsnap.errors import ApplicationError
from whatsnap.phones import NormalisedSender, normalise_e164

MAX_TEXT = 4000
ASSIGN_REASON = "started the conversation"


@dataclass
class Started:
    conversation: Conversation
    message: Message
    contact: Contact
    contact_created: bool
    conversation_created: bool
    reopened: bool  # it was resolved or snoozed and is open again
    kept_assignee: object = None  # someone else had it open: it stays theirs
    previous_assignee_id: int | None = None  # who had it before it was started (None: nobody or new)

    @property
    def notice(self) -> str:
        """What the person who started it is told on landing in the thread."""
        who = self.contact.display_name
        if self.conversation_created:
            return f"Conversation with {who} started; your message is on its way."
        said = f"You already had a conversation with {who} through {self.conversation.account.name}"
        if self.reopened:
            said += " (it was closed and is open again)"
        said += "; your message was added to it"
        if self.kept_assignee is not None:
            said += f". It stays assigned to {self.kept_assignee.get_username()}"
        return said + "."


def account_label(account: Account) -> str:
    """'Sales · WhatsApp · +1 415-555-0111': the account, its channel and its number."""
    parts = [account.name, CHANNEL_LABELS[channel_of(account)]]
    if account.phone_number:
        parts.append(_pretty(account.phone_number))
    return " · ".join(parts)


def _pretty(e164: str) -> str:
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


def startable_accounts(location):
    """The location's accounts a conversation may be started through (archived ones are gone);
    each says whether it is connected (`accepts_replies`)."""
    return Account.objects.filter(location=location, archived_at__isnull=True).order_by("name", "id")


def phone_example(region: str) -> str:
    """An example number of the region in international form ('+1 201-555-0123')."""
    example = phonenumbers.example_number(region) or phonenumbers.example_number("US")
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def looks_like_phone(raw: str) -> bool:
    """Whether typed text could be a number (digits with + ( ) - . / and spaces, at least three
    digits) rather than a word such as a name."""
    raw = (raw or "").strip()
    return bool(re.fullmatch(r"\+?[\d\s().\-/]+", raw)) and sum(ch.isdigit() for ch in raw) >= 3


def phone_read(location, raw: str) -> str:
    """A typed number in E.164, read in the location's country when it has no +country code;
    a refusal people understand otherwise (not the parser's words)."""
    raw = (raw or "").strip()
    if not raw:
        raise ApplicationError("Type a phone number or pick a contact.", code="phone_required", field="phone")
    try:
        return normalise_e164(raw[:40], default_region=location.phone_region)
    except ValueError:
        region = location.phone_region
        raise ApplicationError(
            f"“{raw[:40]}” is not a phone number WhatSnap can write to. Enter the number with its country code, "
            f"e.g. {phone_example(region)} (a number without one is read as a {region} number).",
            code="invalid_phone", field="phone") from None


def _recipient(location, *, phone: str, contact: Contact | None) -> tuple[Contact | None, str]:
    """(the existing contact or None, its phone)."""
    if contact is not None:
        if contact.location_id != location.pk:
            raise ApplicationError("No such contact in this location.", code="not_found", field="contact")
        return contact, contact.phone
    e164 = phone_read(location, phone)
    return Contact.objects.filter(location=location, phone=e164).first(), e164


def _check(location, *, account: Account, text: str, contact: Contact | None, phone: str) -> None:
    if account.location_id != location.pk or account.archived_at is not None:
        raise ApplicationError("No such account in this location.", code="not_found", field="account")
    if not text:
        raise ApplicationError("Write the message first.", code="text_required", field="text")
    if len(text) > MAX_TEXT:
        raise ApplicationError(f"A message holds at most {MAX_TEXT} characters.", code="text_too_long", field="text")
    merge_fields_check(text, field="text")
    who = contact or SimpleNamespace(phone=phone, phone_is_e164=True, kind=Contact.Kind.PERSON, number_unknown=False)
    if contact is not None and contact.opted_out:
        raise ApplicationError(
            f"{contact.display_name} replied STOP and has opted out; WhatSnap will not write to them until they send START.",
            code="opted_out", field="contact")
    reason = unreachable_reason(account, who)
    own_group = (contact is not None and contact.kind == Contact.Kind.GROUP
                 and Conversation.objects.filter(contact=contact, account=account).exists())
    if reason and not own_group:  # a group is written to in its own thread only
        code = "account_unavailable" if not account.accepts_replies else "unreachable"
        raise ApplicationError(reason, code=code, field="account")


@transaction.atomic
def conversation_start(*, location, account: Account, text: str, phone: str = "", contact: Contact | None = None,
                       name: str = "", author=None) -> Started:
    """Write first to `contact` (one of the location's) or to the number `phone` (typed; read in
    the location's country), through `account`. `name`: the name of a contact this creates (or
    of a nameless one), as set by a person. `author`: the member who starts it (None: an API
    token without a user) — the conversation is assigned to them."""
    text = (text or "").strip()
    contact, phone = _recipient(location, phone=phone, contact=contact)
    _check(location, account=account, text=text, contact=contact, phone=phone)
    created = False
    if contact is None:
        contact, created, _ = contact_upsert_from_inbound(
            location=location, sender=NormalisedSender(phone, True), platform_name="")
        if contact.opted_out:  # created a moment ago by someone else, opted out already
            _check(location, account=account, text=text, contact=contact, phone=phone)
    _give_account_tag(contact, account, name=name)
    if contact.active_account_id is None:  # replies typed in GHL go out through it
        Contact.objects.filter(pk=contact.pk, active_account__isnull=True).update(active_account=account)
    conversation, conversation_created = Conversation.objects.get_or_create(
        contact=contact, account=account, defaults={"location": location})
    conversation.contact, conversation.account = contact, account
    previous_assignee_id = conversation.assignee_id
    reopened, kept = _take(conversation, created=conversation_created, author=author)
    rendered = merge_fields_render(text, MergeContext(contact=contact, account=account, agent=author))
    message = message_send(conversation=conversation, text=rendered, author=author, account=account)
    return Started(conversation=conversation, message=message, contact=contact, contact_created=created,
                   conversation_created=conversation_created, reopened=reopened, kept_assignee=kept,
                   previous_assignee_id=previous_assignee_id)


def _give_account_tag(contact: Contact, account: Account, *, name: str) -> None:
    """The account's tag, and a typed name for a contact without one: recorded as a person's
    edit (contact.updated: GHL and the pages follow)."""
    name = (name or "").strip()[:120]
    tag = getattr(account, "tag", None)
    current = set(ContactTag.objects.filter(contact=contact).values_list("tag_id", flat=True))
    wanted = current | ({tag.pk} if tag is not None else set())
    renamed = bool(name) and not contact.name
    if renamed or wanted != current:
        contact_update(contact=contact, name=name if renamed else contact.name, tag_ids=sorted(wanted))


def _take(conversation: Conversation, *, created: bool, author) -> tuple[bool, object]:
    """Open it again if it was closed, and hand it to the starter unless someone else has it
    open. Returns (reopened, the colleague it stays with or None)."""
    reopened = False
    if not created and conversation.status in (Conversation.Status.RESOLVED, Conversation.Status.SNOOZED):
        reopened = conversation_set_status(conversation=conversation, status=Conversation.Status.OPEN, actor=author)
    if author is None:
        return reopened, None
    if conversation.assignee_id and conversation.assignee_id != author.pk and not (created or reopened):
        return reopened, conversation.assignee
    conversation_assign(conversation=conversation, assignee=author, actor=author, reason=ASSIGN_REASON)
    return reopened, None
