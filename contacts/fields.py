"""Custom fields: admins define them per location (text, number, date, choice); agents fill in
each contact's values. A value is checked against its field's kind before anything is written,
and is kept as shown plus a typed copy (number, date) that the contact list filters compare."""
import datetime
import re
from decimal import Context, Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from contacts.models import Contact, ContactFieldValue, CustomField
from whatsnap import events
from whatsnap.errors import ApplicationError

MAX_FIELDS = 100
MAX_CHOICES = 100
MAX_TEXT = 500
GHL_ID = re.compile(r"[A-Za-z0-9]{16,32}")


# --- definitions (admins) -----------------------------------------------------------------------
def _choices_of(kind: str, choices) -> list[str]:
    if kind != CustomField.Kind.CHOICE:
        return []
    if isinstance(choices, str):
        choices = choices.replace("\r", "").replace("\n", ",").split(",")
    options = []
    for option in choices or []:
        option = str(option).strip()[:100]
        if option and option.lower() not in {o.lower() for o in options}:
            options.append(option)
    if not options:
        raise ApplicationError("A choice field needs its options, separated by commas (e.g. Gold, Silver, Bronze).", field="choices")
    if len(options) > MAX_CHOICES:
        raise ApplicationError(f"A choice field holds at most {MAX_CHOICES} options.", field="choices")
    return options


@transaction.atomic
def field_define(*, location, name: str, kind: str, choices="", ghl_field: str = "", key: str = "") -> CustomField:
    name = (name or "").strip()[:80]
    if not name:
        raise ApplicationError("A field needs a name.", field="name")
    if kind not in CustomField.Kind.values:
        raise ApplicationError("Pick the kind of field: text, number, date or choice.", field="kind")
    key = slugify(key or name).replace("-", "_")[:60]
    if not key or not key[0].isalpha():
        key = ("field_" + key)[:60]
    if CustomField.objects.filter(location=location, key=key).exists():
        raise ApplicationError(f"A field with the key {key} exists already; choose another name.", field="name")
    if CustomField.objects.filter(location=location).count() >= MAX_FIELDS:
        raise ApplicationError(f"A location has at most {MAX_FIELDS} custom fields.")
    position = CustomField.objects.filter(location=location).count()
    return CustomField.objects.create(location=location, name=name, key=key, kind=kind, choices=_choices_of(kind, choices),
                                      ghl_field=(ghl_field or "").strip()[:100], position=position)


@transaction.atomic
def field_change(*, field: CustomField, name: str, choices=None, ghl_field: str = "") -> CustomField:
    """Rename, change a choice field's options (values no longer offered are kept until edited)
    or its GHL mapping. The kind and key stay: values and API clients depend on them."""
    name = (name or "").strip()[:80]
    if not name:
        raise ApplicationError("A field needs a name.", field="name")
    field.name, field.ghl_field = name, (ghl_field or "").strip()[:100]
    if choices is not None:
        field.choices = _choices_of(field.kind, choices)
    field.save()
    return field


@transaction.atomic
def field_delete(*, field: CustomField) -> None:
    """The field and every contact's value of it go (GHL keeps the values it was sent)."""
    field.delete()


# --- values ------------------------------------------------------------------------------------
def clean_value(field: CustomField, raw) -> tuple[str, Decimal | None, datetime.date | None]:
    """(value as shown, number, date) of a typed or imported value; "" clears it. The refusal
    names the field and says what to type."""
    text = "" if raw is None else str(raw).strip()
    if not text:
        return "", None, None
    if field.kind == CustomField.Kind.NUMBER:
        try:
            number = Decimal(text.replace(" ", "").replace("\u00a0", ""))
            if not number.is_finite() or abs(number) >= Decimal(10) ** 19:
                raise InvalidOperation
            # 30 digits, 10 of them decimals (the column): Decimal's default 28 digits would refuse
            # the quantize of a number of 19 digits with an exception (a 500, an import stuck)
            number = number.quantize(Decimal("1.0000000000"), context=Context(prec=40)).normalize(Context(prec=40))
        except InvalidOperation:
            raise ApplicationError(f"{field.name}: “{text[:40]}” is not a number (e.g. 42 or 3.5).", field=field.key) from None
        return format(number, "f"), number, None
    if field.kind == CustomField.Kind.DATE:
        try:
            day = datetime.date.fromisoformat(text[:10])
        except ValueError:
            raise ApplicationError(f"{field.name}: “{text[:40]}” is not a date; enter it as YYYY-MM-DD, e.g. 2025-03-31.",
                                   field=field.key) from None
        return day.isoformat(), None, day
    if field.kind == CustomField.Kind.CHOICE:
        for option in field.choices:
            if option.lower() == text.lower():
                return option, None, None
        raise ApplicationError(f"{field.name}: “{text[:40]}” is not one of its options ({', '.join(field.choices[:10])}).",
                               field=field.key)
    if len(text) > MAX_TEXT:
        raise ApplicationError(f"{field.name}: at most {MAX_TEXT} characters.", field=field.key)
    return text, None, None


def fields_of(location) -> list[CustomField]:
    return list(CustomField.objects.filter(location_id=getattr(location, "pk", location)))


def values_of(contact: Contact) -> dict[str, str]:
    """{field key: value} of the contact's filled-in fields."""
    return dict(ContactFieldValue.objects.filter(contact=contact).values_list("field__key", "value"))


def rows_of(contact: Contact) -> list[dict]:
    """Every field of the location with the contact's value ("" when empty), in order."""
    values = values_of(contact)
    return [{"field": f, "value": values.get(f.key, "")} for f in fields_of(contact.location_id)]


def clean_values(location, raw: dict) -> dict[CustomField, tuple]:
    """Check {key: raw value} against the location's fields; every error at once (all or nothing)."""
    fields = {f.key: f for f in fields_of(location)}
    cleaned, errors = {}, {}
    for key, value in raw.items():
        field = fields.get(key)
        if field is None:
            errors[key] = f"No custom field {key!r} in this location."
            continue
        try:
            cleaned[field] = clean_value(field, value)
        except ApplicationError as exc:
            errors[key] = exc.message
    if errors:
        raise ApplicationError(" ".join(errors.values()), code="invalid_custom_fields", extra={"custom_fields": errors})
    return cleaned


def write_values(contact: Contact, cleaned: dict[CustomField, tuple]) -> bool:
    """Store checked values (no event); True when something changed."""
    current = {v.field_id: v for v in ContactFieldValue.objects.filter(contact=contact, field__in=list(cleaned))}
    changed = False
    for field, (value, number, day) in cleaned.items():
        existing = current.get(field.pk)
        if not value:
            if existing is not None:
                existing.delete()
                changed = True
            continue
        if existing is not None and existing.value == value:
            continue
        ContactFieldValue.objects.update_or_create(contact=contact, field=field,
                                                   defaults={"value": value, "number_value": number, "date_value": day})
        changed = True
    return changed


@transaction.atomic
def contact_fields_set(*, contact: Contact, values: dict) -> bool:
    """A person (or an API client) sets some of the contact's field values ({key: value});
    nothing is written unless every value is right. GHL hears of it through contact.updated."""
    changed = write_values(contact, clean_values(contact.location_id, values))
    if changed:
        Contact.objects.filter(pk=contact.pk).update(updated_at=timezone.now())
        events.record("contact.updated", location_id=contact.location_id, contact=contact)
    return changed


# --- filters -----------------------------------------------------------------------------------
def filter_params(location, params) -> dict[str, str]:
    """The custom-field filters in a query string: f_<key> (text contains, choice equals),
    f_<key>_min / f_<key>_max (numbers and dates, inclusive)."""
    found = {}
    for field in fields_of(location):
        for suffix in ("", "_min", "_max"):
            name = f"f_{field.key}{suffix}"
            value = (params.get(name) or "").strip()[:100]
            if value:
                found[name] = value
    return found


def apply_filters(queryset, location, params):
    """Contacts whose custom fields match the filters (filter_params). A value that is not of
    its field's kind is refused with the field's message."""
    for field in fields_of(location):
        exact = (params.get(f"f_{field.key}") or "").strip()[:100]
        low, high = ((params.get(f"f_{field.key}{s}") or "").strip()[:100] for s in ("_min", "_max"))
        match = Q()
        if exact and field.kind in (CustomField.Kind.TEXT, CustomField.Kind.NUMBER, CustomField.Kind.DATE):
            match &= Q(value__icontains=exact) if field.kind == CustomField.Kind.TEXT else Q(value=clean_value(field, exact)[0])
        elif exact:
            match &= Q(value__iexact=exact)
        if field.kind in (CustomField.Kind.NUMBER, CustomField.Kind.DATE):
            column = "number_value" if field.kind == CustomField.Kind.NUMBER else "date_value"
            position = 1 if field.kind == CustomField.Kind.NUMBER else 2
            if low:
                match &= Q(**{f"{column}__gte": clean_value(field, low)[position]})
            if high:
                match &= Q(**{f"{column}__lte": clean_value(field, high)[position]})
        if match:
            queryset = queryset.filter(pk__in=ContactFieldValue.objects.filter(match, field=field).values("contact_id"))
    return queryset


# --- GHL ---------------------------------------------------------------------------------------
def ghl_custom_fields(contact: Contact) -> list[dict]:
    """The contact's values of the fields mapped to GHL custom fields, as GHL's contact upsert
    and update take them: [{id|key, field_value}] (GoHighLevel/highlevel-api-docs,
    apps/contacts.json, customFieldsInputStringSchema: "Pass either `id` or `key`"). A mapping
    that looks like a GHL id (letters and digits only, 16-32 long) is sent as id, else as key.
    An empty value is sent as "" so a value cleared here is cleared there."""
    mapped = [f for f in fields_of(contact.location_id) if f.ghl_field]
    if not mapped:
        return []
    values = {v.field_id: v for v in ContactFieldValue.objects.filter(contact=contact, field__in=mapped)}
    out = []
    for field in mapped:
        value = values.get(field.pk)
        field_value = "" if value is None else value.value
        if value is not None and value.number_value is not None:
            number = value.number_value.normalize()
            field_value = int(number) if number == number.to_integral_value() else float(number)
        which = "id" if GHL_ID.fullmatch(field.ghl_field) else "key"
        out.append({which: field.ghl_field, "field_value": field_value})
    return sorted(out, key=lambda item: item.get("id") or item.get("key"))
