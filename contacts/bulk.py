"""Contacts of a batch of filed messages, set-based: what contact_upsert_from_inbound,
contact_tag_add and contact_account_touch do one message at a time, for many people at once
(conversations/batch_filing.py). The rules are the same: one contact per phone and location,
a name set by a person never replaced by the platform's, the account's tag and link added.

Inserts that meet a row another worker wrote meanwhile raise IntegrityError (contacts) or are
skipped (tag and account links, which are idempotent); the caller's savepoint then rolls the
batch back and files its messages one by one."""
from dataclasses import dataclass

from django.utils import timezone

from contacts.models import Contact, ContactAccount, ContactTag
from whatsnap import events
from whatsnap.phones import NormalisedSender


@dataclass
class Upserted:
    contact: Contact
    created: bool
    renamed: bool


def contacts_upsert_many(*, location, people: dict[str, tuple[NormalisedSender, str]]) -> dict[str, Upserted]:
    """people: phone value -> (sender, platform name). Found by phone within the location or
    created (contact.created recorded for each new one); renamed when the platform's name
    differs and no person set one. Statements: one select, at most one insert, one update."""
    found = {c.phone: c for c in Contact.objects.filter(location=location, phone__in=list(people))}
    result: dict[str, Upserted] = {}
    renamed = []
    for phone, contact in found.items():
        name = _platform_name(people[phone][1])
        if name and contact.name_source != Contact.NameSource.PERSON and contact.name != name:
            contact.name, contact.name_source, contact.updated_at = name, Contact.NameSource.PLATFORM, timezone.now()
            renamed.append(contact)
        result[phone] = Upserted(contact, False, contact in renamed)
    if renamed:
        # a name a person typed meanwhile stays
        Contact.objects.exclude(name_source=Contact.NameSource.PERSON).bulk_update(
            sorted(renamed, key=lambda c: c.pk), ["name", "name_source", "updated_at"])
    new = []
    for phone, (sender, name) in people.items():
        if phone not in found:
            name = _platform_name(name)
            new.append(Contact(location=location, phone=phone, phone_is_e164=sender.is_e164, kind=Contact.Kind.PERSON,
                               name=name, name_source=Contact.NameSource.PLATFORM if name else ""))
    if new:
        Contact.objects.bulk_create(new)  # another worker's row for one of these phones: IntegrityError
        for contact in new:
            result[contact.phone] = Upserted(contact, True, False)
        events.record_many("contact.created", location_id=location.pk, items=[{"contact": c} for c in new])
    return result


def _platform_name(name: str) -> str:
    return (name or "").strip()[:120]


def contacts_link_many(*, account, seen: dict[int, tuple]) -> set[int]:
    """seen: contact id -> (first, last) time it wrote through `account` in this batch. Adds the account's tag where it
    is missing, records the account link (first seen, last seen) and makes the account the
    contacts' active one. Returns the ids of contacts that got the tag now."""
    ids = sorted(seen)
    tag = getattr(account, "tag", None)
    tagged: set[int] = set()
    if tag is not None:
        have = set(ContactTag.objects.filter(tag=tag, contact_id__in=ids).values_list("contact_id", flat=True))
        tagged = {pk for pk in ids if pk not in have}
        ContactTag.objects.bulk_create([ContactTag(contact_id=pk, tag=tag) for pk in sorted(tagged)], ignore_conflicts=True)
    links = list(ContactAccount.objects.filter(account=account, contact_id__in=ids).only("pk", "contact_id").order_by("pk"))
    for link in links:
        link.last_seen_at = seen[link.contact_id][1]
    if links:
        ContactAccount.objects.bulk_update(links, ["last_seen_at"])
    linked = {link.contact_id for link in links}
    ContactAccount.objects.bulk_create(
        [ContactAccount(contact_id=pk, account=account, platform=account.platform, first_seen_at=seen[pk][0], last_seen_at=seen[pk][1])
         for pk in ids if pk not in linked], ignore_conflicts=True)
    Contact.objects.filter(pk__in=ids).update(active_account=account)
    return tagged
