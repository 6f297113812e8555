from django.db import IntegrityError, transaction
from django.utils import timezone

from contacts.models import Contact, ContactAccount, ContactTag, Tag
from whatsnap import events
from whatsnap.errors import ApplicationError
from whatsnap.phones import NormalisedSender

OPT_OUT_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"}
OPT_IN_WORDS = {"START", "UNSTOP", "YES", "OPTIN"}
HELP_WORDS = {"HELP", "INFO"}


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
                events.record("contact.created", location_id=location.id, contact=contact)
            return contact, True, False
        except IntegrityError:  # created concurrently by another worker
            contact = Contact.objects.get(location=location, phone=sender.value)
    return contact, False, _platform_rename(contact, platform_name)


def contact_upsert_from_whatsapp(
    *, location, sender: NormalisedSender | None, lid: str, platform_name: str
) -> tuple[Contact, bool, bool]:
    """A WhatsApp person known by phone, by LID ('123@lid', WhatsApp's hidden id), or both.

    - Only the LID: the contact that carries it (by phone or not), else a new contact keyed by
      the LID itself until the number is known.
    - Phone and LID: the phone's contact. A contact keyed only by that LID becomes it: renumbered
      when the phone has no contact yet, merged into the phone's contact otherwise (messages,
      tags, conversations and GHL follow contact_merge).
    Returns (contact, created, changed) like contact_upsert_from_inbound."""
    if sender is None or not sender.value:
        known = Contact.objects.filter(location=location, whatsapp_lid=lid).order_by("-phone_is_e164", "pk").first()
        if known is not None:
            return known, False, _platform_rename(known, platform_name)
        contact, created, renamed = contact_upsert_from_inbound(
            location=location, sender=NormalisedSender(lid, False), platform_name=platform_name)
        _remember_lid(contact, lid)
        return contact, created, renamed
    if not lid:
        return contact_upsert_from_inbound(location=location, sender=sender, platform_name=platform_name)
    lid_only = Contact.objects.filter(location=location, phone=lid).first()
    if lid_only is not None and not Contact.objects.filter(location=location, phone=sender.value).exists():
        try:
            with transaction.atomic():
                lid_only.phone, lid_only.phone_is_e164, lid_only.whatsapp_lid = sender.value, sender.is_e164, lid
                lid_only.save(update_fields=["phone", "phone_is_e164", "whatsapp_lid", "updated_at"])
                _platform_rename(lid_only, platform_name)
                events.record("contact.updated", location_id=location.id, contact=lid_only)
            return lid_only, False, True
        except IntegrityError:  # the phone's contact was created concurrently: merge below
            lid_only.refresh_from_db()
    contact, created, renamed = contact_upsert_from_inbound(location=location, sender=sender, platform_name=platform_name)
    if lid_only is not None and lid_only.pk != contact.pk:
        contact = contact_merge(source=lid_only, into=contact)
        renamed = True
    _remember_lid(contact, lid)
    return contact, created, renamed


def contact_identify_lid(*, location, lid: str, sender: NormalisedSender, platform_name: str = "") -> Contact | None:
    """The gateway told us the phone behind a LID: a contact known only by it takes the phone
    (or merges into the phone's contact). Nobody known by that LID: nothing to do."""
    if not Contact.objects.filter(location=location, whatsapp_lid=lid).exists():
        return None
    return contact_upsert_from_whatsapp(location=location, sender=sender, lid=lid, platform_name=platform_name)[0]


def _remember_lid(contact: Contact, lid: str) -> None:
    if contact.whatsapp_lid == lid:
        return
    # a LID names one person: an older holder (WhatsApp reassigned it) lets go of it
    Contact.objects.filter(location_id=contact.location_id, whatsapp_lid=lid).exclude(pk=contact.pk).update(whatsapp_lid="")
    Contact.objects.filter(pk=contact.pk).update(whatsapp_lid=lid)
    contact.whatsapp_lid = lid


def _platform_rename(contact: Contact, platform_name: str) -> bool:
    platform_name = (platform_name or "").strip()[:120]
    if not platform_name or contact.name_source == Contact.NameSource.PERSON or contact.name == platform_name:
        return False
    contact.name, contact.name_source = platform_name, Contact.NameSource.PLATFORM
    contact.save(update_fields=["name", "name_source", "updated_at"])
    return True


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
    """Carrier keywords recorded on the contact: STOP (opt out), START (opt in), HELP (asked
    for help: the carrier or Twilio answers it with the sender's help text; agents see when).
    True when something changed."""
    word = (text or "").strip().upper()
    if word in HELP_WORDS:
        contact.help_requested_at = timezone.now()
        contact.save(update_fields=["help_requested_at", "updated_at"])
        return True
    if word in OPT_OUT_WORDS and not contact.opted_out:
        contact.opted_out, contact.opted_out_at = True, timezone.now()
    elif word in OPT_IN_WORDS and contact.opted_out:
        contact.opted_out, contact.opted_out_at = False, None
    else:
        return False
    contact.save(update_fields=["opted_out", "opted_out_at", "updated_at"])
    return True


# --- management by people (tags page, contacts page) -------------------------------------------
@transaction.atomic
def contact_set_opted_out(*, contact: Contact, opted_out: bool, by_admin: bool) -> bool:
    """A person records an opt-out the contact asked for in words ("please stop messaging me" on
    WhatsApp, a phone call), so broadcasts and sends skip them as after STOP. Opting back in by
    hand is for admins only (the contact asked to hear from us again); True when it changed."""
    if not opted_out and not by_admin:
        raise ApplicationError("Only an admin can opt a contact back in (when they asked to receive messages again).",
                               code="forbidden")
    changed = Contact.objects.filter(pk=contact.pk, opted_out=not opted_out).update(
        opted_out=opted_out, opted_out_at=timezone.now() if opted_out else None, updated_at=timezone.now())
    if changed:
        contact.refresh_from_db()
        events.record("contact.updated", location_id=contact.location_id, contact=contact)
    return bool(changed)


def _contact_ids_of(tag: Tag) -> list[int]:
    return list(ContactTag.objects.filter(tag=tag).order_by("contact_id").values_list("contact_id", flat=True))


@transaction.atomic
def tag_create(*, location, name: str) -> Tag:
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A tag needs a name.", field="name")
    if name.startswith("whatsnap-account-"):
        raise ApplicationError("Names starting with whatsnap-account- are reserved for account tags.", field="name")
    tag, created = Tag.objects.get_or_create(location=location, name=name)
    if not created:
        raise ApplicationError(f"The tag {name} exists already.", field="name")
    return tag


@transaction.atomic
def tag_rename(*, tag: Tag, name: str) -> Tag:
    """Renaming keeps the tag's identity, so an account's tag stays linked to its account."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A tag needs a name.", field="name")
    if Tag.objects.filter(location_id=tag.location_id, name=name).exclude(pk=tag.pk).exists():
        raise ApplicationError(f"The tag {name} exists already; merge the two instead.", field="name")
    if name.startswith("whatsnap-account-") and not tag.account_id:
        raise ApplicationError("Names starting with whatsnap-account- are reserved for account tags.", field="name")
    tag.name = name
    tag.save(update_fields=["name"])
    events.record("tag.renamed", location_id=tag.location_id, tag=tag, contact_ids=_contact_ids_of(tag))
    return tag


@transaction.atomic
def tag_merge(*, source: Tag, into: Tag) -> int:
    """Every contact of `source` gets `into`; `source` is deleted. Account tags cannot be
    merged away while their account exists."""
    if source.pk == into.pk or source.location_id != into.location_id:
        raise ApplicationError("Pick two different tags of this location.")
    if source.account_id and source.account.archived_at is None:
        raise ApplicationError(f"{source.name} is the tag of the account {source.account.name}; it cannot be merged away.")
    moved = 0
    contact_ids = _contact_ids_of(source)
    for link in ContactTag.objects.filter(tag=source).select_related("contact"):
        moved += contact_tag_add(contact=link.contact, tag=into)
    # before the delete: routing moves its rules to `into`, GHL re-syncs the contacts
    events.record("tag.merging", location_id=source.location_id, source=source, into=into, contact_ids=contact_ids)
    source.delete()
    return moved


@transaction.atomic
def tag_delete(*, tag: Tag) -> None:
    if tag.account_id and tag.account.archived_at is None:
        raise ApplicationError(f"{tag.name} belongs to the account {tag.account.name}; delete the account first.")
    events.record("tag.deleting", location_id=tag.location_id, tag=tag)  # routing refuses a rule's tag
    contact_ids, tag_id = _contact_ids_of(tag), tag.pk
    tag.delete()
    events.record("tag.deleted", location_id=tag.location_id, tag_id=tag_id, contact_ids=contact_ids)


@transaction.atomic
def contact_update(*, contact: Contact, name: str, tag_ids: list[int]) -> Contact:
    """A person edits the contact: the name becomes person-set (platforms never override it)."""
    name = (name or "").strip()[:120]
    if name != contact.name:
        contact.name = name
        contact.name_source = Contact.NameSource.PERSON if name else ""
        contact.save(update_fields=["name", "name_source", "updated_at"])
    wanted = set(Tag.objects.filter(location_id=contact.location_id, pk__in=tag_ids).values_list("pk", flat=True))
    current = set(ContactTag.objects.filter(contact=contact).values_list("tag_id", flat=True))
    ContactTag.objects.filter(contact=contact, tag_id__in=current - wanted).delete()
    ContactTag.objects.bulk_create([ContactTag(contact=contact, tag_id=pk) for pk in wanted - current])
    events.record("contact.updated", location_id=contact.location_id, contact=contact)
    return contact


@transaction.atomic
def contact_merge(*, source: Contact, into: Contact) -> Contact:
    """One person who wrote from two numbers: `source`'s tags, account links and
    conversations move to `into` (a clash of conversations on one account is folded into
    one thread); `source` is deleted."""
    if source.pk == into.pk or source.location_id != into.location_id:
        raise ApplicationError("Pick two different contacts of this location.")
    for link in ContactTag.objects.filter(contact=source):
        ContactTag.objects.get_or_create(contact=into, tag_id=link.tag_id)
    for link in ContactAccount.objects.filter(contact=source):
        existing = ContactAccount.objects.filter(contact=into, account_id=link.account_id).first()
        if existing:
            existing.first_seen_at = min(existing.first_seen_at, link.first_seen_at)
            existing.last_seen_at = max(existing.last_seen_at, link.last_seen_at)
            existing.save(update_fields=["first_seen_at", "last_seen_at"])
        else:
            ContactAccount.objects.create(contact=into, account_id=link.account_id, platform=link.platform,
                                          first_seen_at=link.first_seen_at, last_seen_at=link.last_seen_at)
    # before the delete: conversations fold the threads, GHL moves the work still waiting
    events.record("contact.merging", location_id=into.location_id, source=source, into=into)
    if not into.name and source.name:
        into.name, into.name_source = source.name, source.name_source
    into.opted_out = into.opted_out or source.opted_out
    into.assignee_id = into.assignee_id or source.assignee_id
    into.save()
    source_id = source.pk
    source.delete()
    events.record("contact.merged", location_id=into.location_id, contact=into, source_id=source_id)
    return into
