"""WhatsApp ids (JIDs) and message times as the WhatsApp Web gateways give them, shared by the
Evolution API and WAHA backends: '14155550123@s.whatsapp.net' (Baileys), '14155550123@c.us'
(whatsapp-web.js), '…@g.us' groups, '…@lid' hidden ids."""
from datetime import datetime, timezone as dt_timezone

from django.utils import timezone

PHONE_JID_SUFFIXES = ("@s.whatsapp.net", "@c.us")


def phone_from_jid(jid) -> str:
    """'14155550123:7@s.whatsapp.net' or '14155550123@c.us' -> '+14155550123'; '' for LIDs,
    groups and the rest."""
    if not jid or not isinstance(jid, str) or not jid.endswith(PHONE_JID_SUFFIXES):
        return ""
    digits = jid.split("@", 1)[0].split(":", 1)[0]
    return f"+{digits}" if digits.isascii() and digits.isdigit() else ""


def first_phone(*jids) -> str:
    """The phone number of the first of these ids that carries one ('' if none does)."""
    for jid in jids:
        phone = phone_from_jid(jid)
        if phone:
            return phone
    return ""


def message_time(value) -> datetime:
    """When a WhatsApp message was sent: Unix seconds, milliseconds (WAHA's engines differ) or a
    protobuf Long serialised as {low, high} (Evolution/Baileys); now when it cannot be read."""
    if isinstance(value, dict):
        value = (value.get("high", 0) << 32) + (value.get("low", 0) & 0xFFFFFFFF)
    try:
        seconds = int(value)
        if seconds > 10**11:  # milliseconds
            seconds //= 1000
        return datetime.fromtimestamp(seconds, tz=dt_timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return timezone.now()

