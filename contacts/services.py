from django.db import IntegrityError, transaction
from django.utils import timezone

from contacts.models import Contact, ContactAccount, ContactTag, Tag
from contacts.phones import NormalisedSender

OPT_OUT_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"}
OPT_IN_WORDS = {"START", "UNSTOP", "YES", "OPTIN"}


def contact_upsert_from_inbound(
    *, location, sender: NormalisedSender, platform_name: str, kind: str = Contact.Kind.PERSON
) -> tuple[Contact, bool, bool]:
    """Find the contact by phone within the location or create it. Returns
    (contact, created, name_changed). A name set by a person is never replaced by the
    platform's display name."""
    platform_name = (platform_name or "").strip()[:120]
    contact = Contact.objects.filter(location=location, phone=sender.value).first()
    if contact is None:
        try:
            with transaction.atomic():
                contact = Contact.objects.create(
                    location=location,
                    phone=sender.value,
                    phone_is_e164=sender.is_e164,
                    kind=kind,
                    name=platform_name,
                    name_source=Contact.NameSource.PLATFORM if platform_name else "",
                )
            return contact, True, False
        except IntegrityError:  # created concurrently by another worker
            contact = Contact.objects.get(location=location, phone=sender.value)
    if platform_name and contact.name_source != Contact.NameSource.PERSON and contact.name != platform_name:
        contact.name = platform_name
        contact.name_source = Contact.NameSource.PLATFORM
        contact.save(update_fields=["name", "name_source", "updated_at"])
        return contact, False, True
    return contact, False, False


def contact_tag_add(*, contact: Contact, tag: Tag) -> bool:
    """Attach a tag; True when it was not there yet."""
    _link, created = ContactTag.objects.get_or_create(contact=contact, tag=tag)
    return created


def contact_account_touch(*, contact: Contact, account, at) -> bool:
    """Record that the contact wrote through this account; True on the first time."""
    updated = ContactAccount.objects.filter(contact=contact, account=account).update(last_seen_at=at)
    if updated:
        return False
    ContactAccount.objects.create(contact=contact, account=account, platform=account.platform, first_seen_at=at, last_seen_at=at)
    return True


def contact_opt_out_from_keyword(*, contact: Contact, text: str) -> bool:
    """Carrier keywords (STOP/START) recorded on the contact. True when the state changed."""
    word = (text or "").strip().upper()
    if word in OPT_OUT_WORDS and not contact.opted_out:
        contact.opted_out, contact.opted_out_at = True, timezone.now()
    elif word in OPT_IN_WORDS and contact.opted_out:
        contact.opted_out, contact.opted_out_at = False, None
    else:
        return False
    contact.save(update_fields=["opted_out", "opted_out_at", "updated_at"])
    return True
