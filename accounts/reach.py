"""Which account can reach whom (issue 18): the one rule new conversations, broadcasts and
GHL sends share when they choose an account for a person who may never have written to it.

Channels: WhatsApp accounts speak WhatsApp; Android phones and Twilio numbers speak carrier SMS;
a Mac speaks iMessage (and SMS through the paired iPhone). `channel_of` names them so a page, a
GHL setting and the API all say the same thing.

`unreachable_reason(account, contact)` answers None when the account can start or continue a
chat with the contact, else a sentence a person understands. It is duck-typed on the contact
(phone, phone_is_e164, number_unknown, kind): accounts sits below contacts."""
from accounts.models import Account

WHATSAPP, SMS, IMESSAGE = "whatsapp", "sms", "imessage"
CHANNEL_LABELS = {WHATSAPP: "WhatsApp", SMS: "SMS", IMESSAGE: "iMessage"}


def channel_of(account: Account) -> str:
    if account.kind == Account.Kind.WHATSAPP:
        return WHATSAPP
    if account.kind == Account.Kind.IMESSAGE:
        return IMESSAGE
    return SMS


def can_send_sms(account: Account) -> bool:
    """An SMS-capable account: carrier SMS, or a Mac (iMessage falls back to SMS through its iPhone)."""
    return channel_of(account) in (SMS, IMESSAGE)


def unreachable_reason(account: Account, contact, *, even_if_disconnected: bool = False) -> str | None:
    """even_if_disconnected: whether the account could reach them once connected (a broadcast
    keeps such contacts and waits for the account to reconnect)."""
    if not account.accepts_replies and not even_if_disconnected:
        return f"The account {account.name} is not connected ({account.get_status_display()})."
    if getattr(contact, "kind", "person") == "group":
        return "A group chat can only be written to through the account it belongs to."
    if getattr(contact, "number_unknown", False):
        if channel_of(account) != WHATSAPP:
            return "WhatsApp has not shared this person's number, so only a WhatsApp account can reach them."
        return None
    phone = getattr(contact, "phone", "") or ""
    if getattr(contact, "phone_is_e164", True):
        return None
    if "@" in phone and channel_of(account) == IMESSAGE:
        return None  # an iMessage e-mail handle
    return f"{phone} is not a phone number {account.name} can send to."
