"""A WAHA message (WAMessage, the `payload` of `message` / `message.any` and the items of
GET /api/{session}/chats/{chatId}/messages) -> InboundMessage, the same for webhooks and
history.

WAMessage (devlikeapro/waha src/structures/responses.dto.ts) is engine-neutral in `id`,
`timestamp`, `from`, `fromMe`, `to`, `participant`, `body`, `hasMedia`, `media`, `replyTo`
({id: raw id, participant, body}); `_data` is the engine's own message:
- WEBJS (whatsapp-web.js): WhatsApp Web's serialized Msg: `id{fromMe, remote, id,
  participant, _serialized}`, `from`, `to`, `author`, `notifyName`, `type`;
- NOWEB (Baileys): `key{remoteJid, remoteJidAlt, fromMe, id, participant, participantAlt,
  addressingMode}` (older Baileys: `senderPn`, `senderLid`, `participantPn`), `pushName`;
- GOWS (whatsmeow events.Message): `Info{Chat, Sender, IsFromMe, IsGroup, AddressingMode,
  SenderAlt, RecipientAlt, ID, PushName, Timestamp, Type}`, `Message`.
NOWEB and GOWS put the chat in `from` whoever wrote; WEBJS puts the account in `from` of its
own messages and the chat in `to`. The serialized id names the chat in every engine."""
from dataclasses import dataclass

from accounts.providers.base import InboundMessage, MessageDeleted
from accounts.providers.waha.jids import Me, MessageKey, is_group, jid_text, not_a_chat, parse_id, person
from accounts.providers.whatsapp_ids import message_time

# WhatsApp Web items that are not messages a person wrote (WEBJS `_data.type`).
WEBJS_SYSTEM_TYPES = {"e2e_notification", "notification_template", "notification", "gp2", "protocol", "call_log",
                      "ciphertext", "broadcast_notification", "pinned_message", "revoked"}


@dataclass(frozen=True)
class Read:
    """What one WAMessage is: the message, or what else it is (a deletion), or why not."""
    message: InboundMessage | None = None
    other: object = None
    reason: str = ""
    lid: str = ""
    phone: str = ""


def engine_data(payload: dict) -> dict:
    data = payload.get("_data")
    return data if isinstance(data, dict) else {}


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def chat_of(payload: dict) -> str:
    """The chat (conversation) a WAMessage belongs to."""
    key = parse_id(payload.get("id"))
    if key:
        return key.chat
    data = engine_data(payload)
    for value in (_dict(data.get("id")).get("remote"), _dict(data.get("key")).get("remoteJid"),
                  _dict(data.get("Info")).get("Chat")):
        if jid_text(value):
            return jid_text(value)
    return jid_text(payload.get("to") if payload.get("fromMe") else payload.get("from"))


def sender_candidates(payload: dict, chat: str, from_me: bool) -> list:
    """Every id that may name the contact: the group participant who wrote, or in a direct
    chat the other party (for the account's own messages, the recipient)."""
    data = engine_data(payload)
    key, info, wid = _dict(data.get("key")), _dict(data.get("Info")), _dict(data.get("id"))
    if is_group(chat):
        if from_me:
            return []
        return [payload.get("participant"), payload.get("author"), key.get("participant"), key.get("participantAlt"),
                key.get("participantPn"), key.get("participantLid"), info.get("Sender"), info.get("SenderAlt"),
                data.get("author"), wid.get("participant")]
    ids = [chat, payload.get("to") if from_me else payload.get("from"), key.get("remoteJid"), key.get("remoteJidAlt"),
           key.get("senderPn"), key.get("senderLid"), info.get("Chat"), data.get("to") if from_me else data.get("from")]
    ids += [info.get("RecipientAlt")] if from_me else [info.get("Sender"), info.get("SenderAlt")]
    return ids


def push_name(payload: dict) -> str:
    data = engine_data(payload)
    info = _dict(data.get("Info"))
    return str(data.get("notifyName") or data.get("pushName") or info.get("PushName") or "").strip()


def read_message(payload: dict, me: Me, *, history: bool = False) -> Read:
    """Normalise one WAMessage; `reason` says why it is not filed as a message."""
    chat = chat_of(payload)
    if not chat:
        return Read(reason="message without a chat id")
    if why := not_a_chat(chat):
        return Read(reason=why)
    provider_id = jid_text(payload.get("id"))
    if not provider_id:
        return Read(reason="message without an id")
    data = engine_data(payload)
    kind = str(data.get("type") or "")
    at = message_time(payload.get("timestamp"))
    if kind == "revoked":  # WEBJS: a message deleted for everyone, seen as it is now
        from_me = bool(payload.get("fromMe"))
        phone, lid = ("", "") if from_me or not is_group(chat) else person([payload.get("author"), payload.get("participant")], me)
        return Read(other=MessageDeleted(target_id=provider_id, at=at, from_me=from_me, by=phone or lid, chat=chat))
    if kind in WEBJS_SYSTEM_TYPES:
        return Read(reason=f"WhatsApp system item of type {kind}, not a message a person wrote")
    from_me = bool(payload.get("fromMe"))
    phone, lid = person(sender_candidates(payload, chat, from_me), me)
    group_id = chat if is_group(chat) else ""
    if not from_me and not phone and not lid:
        return Read(reason="message without a sender id (neither phone nor LID)")
    text, media = str(payload.get("body") or ""), media_of(payload)
    if not text and not media:
        text = fallback_text(payload, data)
    reply_to, quoted = quoted_of(payload, chat, me)
    message = InboundMessage(
        provider_id=provider_id, from_phone=phone, name="" if from_me else push_name(payload), text=text, media=media,
        at=at, group_id=group_id, from_me=from_me, sender_lid=lid, reply_to=reply_to, quoted_text=quoted,
        history=history)
    return Read(message=message, lid=lid, phone=phone)


def quoted_of(payload: dict, chat: str, me: Me) -> tuple[str, str]:
    """(provider id, text) of the message a reply quotes. WAHA gives the quoted message's raw
    id and its author (`replyTo.participant`); the id is rebuilt the way WAHA names that
    message in this chat."""
    reply = payload.get("replyTo")
    if not isinstance(reply, dict) or not isinstance(reply.get("id"), str) or not reply["id"]:
        return "", ""  # not a reply (or a quote we cannot name: the message is filed without it)
    author = jid_text(reply.get("participant"))
    from_me = me.owns(author)
    participant = author if is_group(chat) and author else ""
    key = MessageKey(from_me=from_me, chat=chat, raw_id=str(reply["id"]), participant=participant)
    return key.serialized, str(reply.get("body") or "")


def media_of(payload: dict) -> tuple:
    media = payload.get("media")
    media = media if isinstance(media, dict) else {}
    url = str(media.get("url") or payload.get("mediaUrl") or "")
    if not url:
        return ()  # nothing the inbox could fetch (WAHA did not download it): described as text
    content_type = str(media.get("mimetype") or "").split(";", 1)[0].strip()
    major = content_type.split("/", 1)[0]
    kind = major if major in ("image", "video", "audio") else "document"
    return ({"url": url, "content_type": content_type, "kind": kind, "filename": str(media.get("filename") or "")},)


def fallback_text(payload: dict, data: dict) -> str:
    """Kinds WhatSnap does not render still reach the inbox, described, rather than vanish."""
    location = payload.get("location")
    if isinstance(location, dict):
        where = f"{location.get('latitude')}, {location.get('longitude')}"
        return f"Location: {where} {location.get('name') or location.get('description') or ''}".strip()
    if payload.get("vCards"):
        return "Contact card"
    kind = payload.get("type") or data.get("type") or _dict(data.get("Info")).get("MediaType") or "message"
    if payload.get("hasMedia"):
        return f"[WhatsApp {kind} the gateway did not download; see the phone]"
    return f"[WhatsApp {kind} not shown here; see the phone]"
