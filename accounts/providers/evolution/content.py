"""One WhatsApp message as Evolution API hands it over, in a MESSAGES_UPSERT webhook or a
findMessages record (the same prepared shape), mapped to normalised events.

What the gateway sends, from its source (EvolutionAPI/evolution-api,
src/api/integrations/channel/whatsapp/whatsapp.baileys.service.ts, prepareMessage and the
'messages.upsert' handler): `{key, pushName, status, message, contextInfo, messageType,
messageTimestamp, instanceId, source}`. `key` is Baileys' message key as Baileys made it
(WhiskeySockets/Baileys: src/Utils/decode-wa-message.ts): `remoteJid` is the chat, a phone JID,
a LID ('…@lid'), or a group ('…@g.us') with the writer in `participant`; the other form of the
same person is in `remoteJidAlt` / `participantAlt` (Baileys 7), `senderPn` / `senderLid` /
`participantPn` / `participantLid` (Baileys 6.7), or nowhere at all (evolution-api issues
#1764, #1872, #2466). Evolution 2.3.7 swaps a LID `remoteJid` for its phone before sending.
`extendedTextMessage` arrives renamed to `conversation`, its contextInfo (quoted replies) moved
up to `contextInfo`; `pushName` of our own messages is the account's name or 'Você'."""

from accounts.providers.base import Ignored, InboundMessage, MessageDeleted, MessageEdited, Reaction, Unfiled, edit_id
from accounts.providers.whatsapp_ids import first_phone, message_time

MEDIA_KINDS = {
    "imageMessage": "image",
    "videoMessage": "video",
    "ptvMessage": "video",
    "audioMessage": "audio",
    "documentMessage": "document",
    "stickerMessage": "sticker",
}
WRAPPERS = ("ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2", "viewOnceMessageV2Extension",
            "documentWithCaptionMessage")
# Parts of a message that carry nothing to show: device bookkeeping riding along real content.
BOOKKEEPING = {"senderKeyDistributionMessage", "messageContextInfo", "base64", "mediaUrl", "speechToText"}
# ProtocolMessage types (WAProto.proto, Message.ProtocolMessage.Type) as numbers or, JSON-encoded
# by protobufjs, names.
REVOKE, MESSAGE_EDIT = {0, "REVOKE"}, {14, "MESSAGE_EDIT"}
# Device-to-device housekeeping between the account's own phone and the gateway: key shares,
# history-sync notices, app-state sync. They carry nothing for the inbox.
HOUSEKEEPING = {3, 4, 5, 6, 7, 8, 9, 10, 16, 17, 23, "EPHEMERAL_SETTING", "EPHEMERAL_SYNC_RESPONSE",
                "HISTORY_SYNC_NOTIFICATION", "APP_STATE_SYNC_KEY_SHARE", "APP_STATE_SYNC_KEY_REQUEST",
                "MSG_FANOUT_BACKFILL_REQUEST", "INITIAL_SECURITY_NOTIFICATION_SETTING_SYNC",
                "APP_STATE_FATAL_EXCEPTION_NOTIFICATION", "PEER_DATA_OPERATION_REQUEST_MESSAGE",
                "PEER_DATA_OPERATION_REQUEST_RESPONSE_MESSAGE", "LID_MIGRATION_MAPPING_SYNC"}


# --- who ------------------------------------------------------------------------------------
def lid_of(*jids) -> str:
    """The first LID among these ids, without its device suffix ('123:4@lid' -> '123@lid')."""
    for jid in jids:
        if isinstance(jid, str) and jid.endswith("@lid"):
            return f"{jid.split('@', 1)[0].split(':', 1)[0]}@lid"
    return ""


def party(key: dict, own_phone: str = "") -> tuple[str, str, str]:
    """(group id, phone, LID) of the person a message key names: the writer, or for our own
    messages the person written to (no person in a group: the group is the chat)."""
    remote = key.get("remoteJid") or ""
    from_me = bool(key.get("fromMe"))
    if remote.endswith("@g.us"):
        if from_me:
            return remote, "", ""
        ids = [key.get(f) for f in ("participant", "participantAlt", "participantPn", "participantLid")]
    else:
        ids = [key.get(f) for f in ("remoteJid", "remoteJidAlt", "senderPn", "senderLid")]
    ids = [_unhosted(i) for i in ids]
    phone = first_phone(*ids)
    if from_me and phone and phone == own_phone:
        # an alternative id naming the account itself, not the chat's other party
        phone = first_phone(*[i for i in ids if first_phone(i) != own_phone])
    return (remote if remote.endswith("@g.us") else ""), phone, lid_of(*ids)


def _unhosted(jid):
    """Business accounts Meta hosts are '…@hosted' / '…@hosted.lid' (Baileys
    src/WABinary/jid-utils.ts): the same number or LID on another server."""
    if isinstance(jid, str) and jid.endswith("@hosted"):
        return jid.removesuffix("@hosted") + "@s.whatsapp.net"
    if isinstance(jid, str) and jid.endswith("@hosted.lid"):
        return jid.removesuffix("@hosted.lid") + "@lid"
    return jid


def display_name(data: dict) -> str:
    """The sender's WhatsApp name. Never for our own messages (it is ours), nor the bare number
    Evolution puts there when WhatsApp gave none."""
    if (data.get("key") or {}).get("fromMe"):
        return ""
    name = str(data.get("pushName") or "").strip()
    return "" if name.lstrip("+").isdigit() else name


# --- what ------------------------------------------------------------------------------------
def unwrapped(message: dict) -> dict:
    for wrapper in WRAPPERS:
        inner = message.get(wrapper)
        if isinstance(inner, dict) and isinstance(inner.get("message"), dict):
            message = {**{k: v for k, v in message.items() if k != wrapper}, **inner["message"]}
    return message


def content(message: dict) -> tuple[str, tuple]:
    """(text, media) of a message's content."""
    message = unwrapped(message)
    text = message.get("conversation") or (message.get("extendedTextMessage") or {}).get("text") or ""
    media = []
    for field, kind in MEDIA_KINDS.items():
        part = message.get(field)
        if not isinstance(part, dict):
            continue
        text = text or part.get("caption") or ""
        content_type = (part.get("mimetype") or "").split(";", 1)[0]
        url = message.get("mediaUrl") or ""
        if not url and message.get("base64"):  # webhook base64 mode: the file itself
            url = f"data:{content_type or 'application/octet-stream'};base64,{message['base64']}"
        media.append({"url": url, "content_type": content_type, "kind": kind, "filename": part.get("fileName") or ""})
    if not text and not media:
        text = fallback_text(message)
    return str(text), tuple(media)


def fallback_text(message: dict) -> str:
    """Kinds WhatSnap does not render still reach the inbox, described, rather than vanish."""
    if isinstance(message.get("locationMessage"), dict):
        loc = message["locationMessage"]
        return f"Location: {loc.get('degreesLatitude')}, {loc.get('degreesLongitude')} {loc.get('name') or ''}".strip()
    if isinstance(message.get("contactMessage"), dict):
        return f"Contact card: {message['contactMessage'].get('displayName', '')}".strip()
    kinds = sorted(k for k in message if k not in BOOKKEEPING)
    return f"[WhatsApp {kinds[0] if kinds else 'message'} not shown here; see the phone]"


def quote(data: dict, message: dict) -> tuple[str, str]:
    """(id, text) of the message this one quotes: contextInfo sits at the top (Evolution moves
    it there) or inside any kind of message part."""
    contexts = [data.get("contextInfo")]
    contexts += [part.get("contextInfo") for part in unwrapped(message).values() if isinstance(part, dict)]
    for context in contexts:
        if isinstance(context, dict) and context.get("stanzaId"):
            quoted = context.get("quotedMessage")
            text = ""
            if isinstance(quoted, dict) and quoted:
                text, media = content(quoted)
                text = text or (f"[{media[0]['kind']}]" if media else "")
            return str(context["stanzaId"]), text
    return "", ""


def edited_text(edited: dict) -> str:
    return content(edited)[0] if isinstance(edited, dict) and edited else ""


def actor(arrival_key: dict, own_phone: str = "") -> tuple[bool, str, str]:
    """(from_me, group member, chat) of who sent an edit or deletion, read from the key it
    arrived under (Baileys' message key: the chat as the account sees it, set by WhatsApp's
    servers, not by the sender)."""
    group, phone, lid = party(arrival_key, own_phone)
    from_me = bool(arrival_key.get("fromMe"))
    chat = group or phone or lid
    return from_me, "" if from_me or not group else (phone or lid), chat


def protocol_events(protocol: dict, envelope: dict, at_fallback=None, *, who: tuple[bool, str, str] | None = None) -> list:
    """A protocolMessage: a deletion for everyone (REVOKE) or an edit (MESSAGE_EDIT), made by
    `who` (actor() of the key it arrived under). Without it (Evolution's messages.edited carries
    the protocolMessage alone, whose key its sender writes) nobody can say who made it or in
    which chat: a deletion is Ignored (messages.delete tells it again, with its chat), an edit
    is kept unfiled."""
    # A type left out reads as REVOKE (0), the enum's default, as Baileys itself reads it.
    kind = protocol.get("type", 0)
    target = str((protocol.get("key") or {}).get("id") or "")
    at = message_time(protocol.get("timestampMs") or at_fallback)
    if kind in REVOKE:
        if not target:
            return [Unfiled("deletion of a message without id", envelope)]
        if who is None:
            return [Ignored("a deletion told again: messages.delete carries it with its chat")]
        return [MessageDeleted(target_id=target, at=at, from_me=who[0], by=who[1], chat=who[2])]
    if kind in MESSAGE_EDIT:
        text = edited_text(protocol.get("editedMessage"))
        if not target:
            return [Unfiled("edit of a message without id", envelope)]
        if who is None:
            return [Unfiled("edit that does not say who made it (Evolution's messages.edited carries only the "
                            "edited message's key, which its sender writes): not applied", envelope)]
        return [MessageEdited(provider_id=edit_id(target, text), target_id=target, text=text, at=at,
                              from_me=who[0], by=who[1], chat=who[2])]
    if kind in HOUSEKEEPING:
        return [Ignored(f"protocol message {kind}: housekeeping between the account's own devices")]
    return [Unfiled(f"WhatsApp protocol message {kind} not filed", envelope)]


def message_events(data: dict, envelope: dict, *, own_phone: str = "", unfiled_key: str = "") -> list:
    """The events of one prepared message record."""
    key = data["key"]
    if not isinstance(key, dict):
        raise TypeError("key is not an object")
    remote = str(key.get("remoteJid") or "")
    provider_id = str(key.get("id") or "")
    if remote.endswith("@broadcast"):
        return [Unfiled("WhatsApp status or broadcast-list post, not a chat", envelope, unfiled_key)]
    if remote.endswith("@newsletter"):
        return [Unfiled("WhatsApp channel (newsletter) post, not a chat", envelope, unfiled_key)]
    message = unwrapped(data.get("message") or {})
    if not provider_id:
        return [Unfiled("message without id", envelope, unfiled_key)]
    if not message:
        return [Unfiled("message without content (WhatsApp could not decrypt it, or a system notice)", envelope, unfiled_key)]
    at = message_time(data.get("messageTimestamp"))
    if isinstance(message.get("protocolMessage"), dict):
        return protocol_events(message["protocolMessage"], envelope, data.get("messageTimestamp"), who=actor(key, own_phone))
    if isinstance(message.get("editedMessage"), dict):  # the edit wrapper: {message: {protocolMessage}}
        inner = message["editedMessage"].get("message") or {}
        if isinstance(inner.get("protocolMessage"), dict):
            return protocol_events(inner["protocolMessage"], envelope, data.get("messageTimestamp"), who=actor(key, own_phone))
        return [Unfiled("edited message that does not name the message it edits", envelope, unfiled_key)]
    group_id, phone, lid = party(key, own_phone)
    from_me = bool(key.get("fromMe"))
    if isinstance(message.get("reactionMessage"), dict):
        reaction = message["reactionMessage"]
        target = str((reaction.get("key") or {}).get("id") or "")
        if not target:
            return [Unfiled("reaction to a message without id", envelope, unfiled_key)]
        return [Reaction(provider_id=provider_id, target_id=target, emoji=str(reaction.get("text") or ""),
                         at=message_time(reaction.get("senderTimestampMs") or data.get("messageTimestamp")),
                         from_me=from_me, from_phone="" if from_me else phone, sender_lid="" if from_me else lid,
                         chat=group_id or phone or lid)]
    if isinstance(message.get("pollUpdateMessage"), dict):
        return [Unfiled("poll vote (WhatSnap does not show polls yet)", envelope, unfiled_key)]
    if set(message) <= BOOKKEEPING:
        return [Ignored("encryption-key distribution alone")]  # no content by nature
    if set(message) <= BOOKKEEPING | {"albumMessage"}:
        return [Ignored("an album's header")]  # how many pictures follow: each picture is a message of its own
    text, media = content(message)
    reply_to, quoted_text = quote(data, message)
    return [InboundMessage(
        provider_id=provider_id, from_phone=phone, name=display_name(data), text=text, media=media, at=at,
        group_id=group_id, from_me=from_me, sender_lid=lid, reply_to=reply_to, quoted_text=quoted_text)]
