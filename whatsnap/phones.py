"""Phone normalisation. A sender that is not a dialable number (short code, alphanumeric
sender id, e-mail handle) is kept raw rather than refused: the message must still be filed."""
from dataclasses import dataclass

import phonenumbers
from phonenumbers import geocoder


@dataclass(frozen=True)
class NormalisedSender:
    value: str
    is_e164: bool


def region_of(e164: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) or None
    except phonenumbers.NumberParseException:
        return None


def normalise_sender(raw: str, *, default_region: str | None) -> NormalisedSender:
    raw = (raw or "").strip()
    for prefix in ("whatsapp:", "tel:", "sms:"):
        if raw.lower().startswith(prefix):
            raw = raw[len(prefix):]
    digits = "".join(ch for ch in raw if ch.isdigit())
    # Short codes (3-8 digits without a +) are not E.164 numbers.
    if raw and not raw.startswith("+") and 3 <= len(digits) <= 8 and digits == raw:
        return NormalisedSender(raw, False)
    try:
        parsed = phonenumbers.parse(raw, None if raw.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        return NormalisedSender(raw, False)
    if not phonenumbers.is_possible_number(parsed):
        return NormalisedSender(raw, False)
    return NormalisedSender(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), True)


def normalise_for_account(raw: str, *, account_phone: str) -> NormalisedSender:
    """A sender as an account reads it: a number without its country code is in the account's
    own number's country (the US when that is unknown)."""
    return normalise_sender(raw, default_region=region_of(account_phone) or "US")


EXAMPLE = "+1 415 555 0100"


def phone_problem_help(default_region: str | None = None) -> str:
    """What to type instead, with an example number (of the location's country when known)."""
    example = EXAMPLE
    if default_region and default_region.upper() != "US":
        number = phonenumbers.example_number(default_region.upper())
        if number is not None:
            example = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return f"Enter the number with its country code, e.g. {example}."


def normalise_e164(raw: str, *, default_region: str | None = None) -> str:
    """Strict: for numbers people type into forms. Raises ValueError with a reason people
    understand (never the parser's words) and what to type instead."""
    raw = (raw or "").strip()
    shown = f"“{raw[:40]}”"
    advice = phone_problem_help(default_region)
    if not raw:
        raise ValueError(f"The phone number is empty. {advice}")
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        kind = phonenumbers.NumberParseException
        digits = sum(ch.isdigit() for ch in raw)
        if exc.error_type == kind.NOT_A_NUMBER or any(ch.isalpha() for ch in raw):
            reason = f"{shown} is not a phone number."
        elif exc.error_type == kind.INVALID_COUNTRY_CODE and raw.startswith("+"):
            reason = f"{shown} does not start with a country code that exists."
        elif exc.error_type == kind.INVALID_COUNTRY_CODE and digits >= 3:
            reason = f"{shown} has no country code."
        elif exc.error_type in (kind.TOO_SHORT_NSN, kind.TOO_SHORT_AFTER_IDD) or 0 < digits < 3:
            reason = f"{shown} is not a phone number: it is too short."
        elif exc.error_type == kind.TOO_LONG:
            reason = f"{shown} is not a phone number: it is too long."
        else:
            reason = f"{shown} is not a phone number."
        raise ValueError(f"{reason} {advice}") from None
    if not phonenumbers.is_valid_number(parsed):
        country = geocoder.country_name_for_number(parsed, "en") or phonenumbers.region_code_for_number(parsed)
        where = f" in {country}" if country else ""
        raise ValueError(f"{shown} is not a valid phone number{where}: check the digits. {advice}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
