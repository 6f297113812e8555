"""WhatsApp ids (JIDs) as the WhatsApp Web gateways give them, shared by the Evolution API and
WAHA backends: '14155550123@s.whatsapp.net' (Baileys), '14155550123@c.us' (whatsapp-web.js),
'…@g.us' groups, '…@lid' hidden ids."""

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
