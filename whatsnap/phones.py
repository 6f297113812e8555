"""Phone normalisation. A sender that is not a dialable number (short code, alphanumeric
sender id, e-mail handle) is kept raw rather than refused: the message must still be filed."""
from dataclasses import dataclass

import phonenumbers


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


def normalise_e164(raw: str, *, default_region: str | None = None) -> str:
    """Strict: for numbers people type into forms. Raises ValueError with a readable reason."""
    try:
        parsed = phonenumbers.parse((raw or "").strip(), default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"'{raw}' is not a phone number ({exc}).") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"'{raw}' is not a valid phone number; use the international form, e.g. +14155550123.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
