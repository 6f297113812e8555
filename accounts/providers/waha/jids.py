"""WhatsApp ids as WAHA's engines write them, and who is who in a message.

Message ids are WAHA's serialized form, the same in every engine: `{fromMe}_{chat}_{ID}` and,
in groups, `_{participant}` after it ('false_14155550123@c.us_3EB0…',
'true_120363…@g.us_3EB0…_14155550100@c.us'). The chat part is the chat as the engine names
it: a phone ('…@c.us') or a LID ('…@lid') for the same person, so two ids of one message can
differ in that part; the raw WhatsApp id (third part) is what identifies the message.

A person is a phone JID ('14155550123@c.us' / '@s.whatsapp.net', maybe with a ':device'), a
LID ('123456789012345@lid', maybe with a ':device'), or both when the engine gives the other
form alongside (NOWEB `remoteJidAlt` / `participantAlt`, older Baileys `senderPn` /
`participantPn`; GOWS whatsmeow `SenderAlt` / `RecipientAlt`)."""
from dataclasses import dataclass

from accounts.providers.whatsapp_ids import phone_from_jid

LID_SUFFIX = "@lid"
GROUP_SUFFIX = "@g.us"


def jid_text(value) -> str:
    """An id as the engines give it: a string, or WEBJS's {_serialized} object."""
    if isinstance(value, dict):
        value = value.get("_serialized") or ""
    return value.strip() if isinstance(value, str) else ""


def lid_of(jid) -> str:
    """'123456789012345:3@lid' -> '123456789012345@lid'; '' for anything but a LID."""
    jid = jid_text(jid)
    if not jid.endswith(LID_SUFFIX):
        return ""
    user = jid[: -len(LID_SUFFIX)].split(":", 1)[0]
    return f"{user}{LID_SUFFIX}" if user.isascii() and user.isdigit() else ""


def cus(jid) -> str:
    """A person's id the way WAHA writes it in chat and message ids: '14155550123@c.us' for a
    phone (from '14155550123:4@s.whatsapp.net' too), '123…@lid' for a LID."""
    phone = phone_from_jid(jid_text(jid))
    return f"{phone[1:]}@c.us" if phone else lid_of(jid) or jid_text(jid)


def is_group(jid) -> bool:
    return jid_text(jid).endswith(GROUP_SUFFIX)


def not_a_chat(chat: str) -> str:
    """Why a chat id names no conversation WhatSnap files ('' when it is one)."""
    if chat == "status@broadcast":
        return "a WhatsApp status update (status@broadcast), not a chat"
    if chat.endswith("@newsletter"):
        return "a WhatsApp channel (newsletter) post, not a chat"
    if chat.endswith("@broadcast"):
        return "a WhatsApp broadcast-list message, not a chat"
    return ""


@dataclass(frozen=True)
class MessageKey:
    from_me: bool
    chat: str
    raw_id: str
    participant: str = ""

    @property
    def serialized(self) -> str:
        tail = f"_{self.participant}" if self.participant else ""
        return f"{'true' if self.from_me else 'false'}_{self.chat}_{self.raw_id}{tail}"


def parse_id(serialized) -> MessageKey | None:
    """WAHA's serialized message id -> its parts; None when it is not one."""
    text = jid_text(serialized)
    parts = text.split("_")
    if len(parts) < 3 or parts[0] not in ("true", "false") or not parts[1] or not parts[2]:
        return None
    return MessageKey(from_me=parts[0] == "true", chat=parts[1], raw_id=parts[2], participant="_".join(parts[3:]))


def with_raw_id(serialized: str, raw_id: str) -> str:
    """The id of another message by the same sender in the same chat (an edit's or a
    revoke's target): the serialized id with its raw WhatsApp id replaced."""
    key = parse_id(serialized)
    if key is None or not raw_id:
        return ""
    return MessageKey(key.from_me, key.chat, str(raw_id), key.participant).serialized


class Me:
    """The account's own ids (phone and LID), to tell its messages and reactions apart."""

    def __init__(self, *, me: dict | None = None, phone: str = ""):
        me = me if isinstance(me, dict) else {}
        self.phones = {p for p in (phone_from_jid(me.get("id")), phone_from_jid(me.get("jid")), phone) if p}
        self.lids = {lid for lid in (lid_of(me.get("lid")),) if lid}

    def owns(self, jid) -> bool:
        phone, lid = phone_from_jid(jid_text(jid)), lid_of(jid)
        return bool((phone and phone in self.phones) or (lid and lid in self.lids))


def person(candidates, me: Me) -> tuple[str, str]:
    """(phone E.164, LID) of one person from the ids that may name them, skipping the
    account's own (a message typed on the phone may carry the account's own alternative id)."""
    phone = lid = ""
    for candidate in candidates:
        jid = jid_text(candidate)
        if not jid or me.owns(jid):
            continue
        phone = phone or phone_from_jid(jid)
        lid = lid or lid_of(jid)
    return phone, lid
