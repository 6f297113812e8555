"""Adding a contact by hand: the number read in the location's country (Location.phone_region)
when it has no +country code, and one person one contact: a number that has a contact already
gives that contact back instead of a second one."""
import phonenumbers
from django.db import transaction

from contacts.fields import clean_values, write_values
from contacts.models import Contact
from contacts.services import contact_update, contact_upsert_from_inbound
from whatsnap.errors import ApplicationError
from whatsnap.phones import NormalisedSender, normalise_e164


def phone_example(region: str) -> str:
    """An example number of the region in international form ('+44 7400 123456')."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE) or phonenumbers.example_number("US")
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def phone_read(location, raw: str) -> str:
    """A typed number in E.164, or a refusal in plain words (not the parser's)."""
    raw = (raw or "").strip()
    if not raw:
        raise ApplicationError("Enter the contact's phone number.", code="phone_required", field="phone")
    try:
        return normalise_e164(raw[:40], default_region=location.phone_region)
    except ValueError:
        region = location.phone_region
        raise ApplicationError(
            f"{_what_is_wrong(raw[:40], region)} Enter the number with its country code, e.g. {phone_example(region)} "
            f"(a number without one is read as a {region} number).", code="invalid_phone", field="phone") from None


def _what_is_wrong(raw: str, region: str) -> str:
    """A number of the right shape whose digits its country does not use is not called "not a
    phone number" (the person typed the country code, and is told to type it)."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        country = phonenumbers.region_code_for_country_code(parsed.country_code)
        return f"“{raw}” is not a valid {country if country != 'ZZ' else ''} number: check the digits.".replace("  ", " ")
    return f"“{raw}” is not a phone number."


@transaction.atomic
def contact_add(*, location, phone: str, name: str = "", tag_ids=(), field_values: dict | None = None) -> tuple[Contact, bool]:
    """(the contact, created). An existing number is that contact, untouched: the caller opens it."""
    e164 = phone_read(location, phone)
    existing = Contact.objects.filter(location=location, phone=e164).first()
    if existing is not None:
        return existing, False
    cleaned = clean_values(location, {k: v for k, v in (field_values or {}).items() if str(v or "").strip()})
    contact, created, _ = contact_upsert_from_inbound(location=location, sender=NormalisedSender(e164, True), platform_name="")
    if not created:  # made concurrently a moment ago: the same person
        return contact, False
    write_values(contact, cleaned)
    contact_update(contact=contact, name=name, tag_ids=list(tag_ids))  # person-set name, tags; contact.updated
    return contact, True
