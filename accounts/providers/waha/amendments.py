"""WAHA events that change an earlier message: `message.reaction`, `message.edited`,
`message.revoked` -> Reaction, MessageEdited, MessageDeleted, each naming its target by the
serialized id WAHA gives that message in the same chat (jids.py).

What the engines send (devlikeapro/waha src/structures/webhooks.dto.ts and the engines'
session.*.core.ts):
- reaction: WAMessageReaction `{id, timestamp, from, fromMe, to, participant, reaction{text,
  messageId}}`; text '' removes the reaction. NOWEB's target key is already the account's view
  (Baileys cleanMessage turns a reactor's key around: WhiskeySockets/Baileys
  src/Utils/process-message.ts), WEBJS's is WhatsApp Web's own id of the message; GOWS builds
  it from the raw key as the reactor wrote it (whatsmeow BuildMessageKey: the reactor's chat
  and fromMe, tulir/whatsmeow send.go), so it is turned around here.
- edited: WAMessageEditedBody = the WAMessage of the edit (NOWEB, GOWS: its own id; WEBJS: the
  edited message itself) with the new `body` and `editedMessageId` (the target's raw id).
- revoked: WAMessageRevokedBody `{after, before, revokedMessageId}`: `after` is the revoke
  (NOWEB, GOWS) or the message as it is now (WEBJS); `before` the original when known."""
from accounts.providers.base import MessageDeleted, MessageEdited, Reaction, edit_id
from accounts.providers.waha.envelopes import unfiled
from accounts.providers.waha.jids import (
    Me,
    MessageKey,
    cus,
    is_group,
    jid_text,
    not_a_chat,
    parse_id,
    person,
    with_raw_id,
)
from accounts.providers.whatsapp_ids import message_time


def on_reaction(envelope: dict, payload: dict, me: Me) -> list:
    reaction = payload.get("reaction")
    if not isinstance(reaction, dict):
        return [unfiled("message.reaction without a reaction", envelope)]
    target = jid_text(reaction.get("messageId"))
    if not parse_id(target):
        return [unfiled("reaction to a message without id", envelope)]
    engine = str(envelope.get("engine") or "").upper()
    own = parse_id(payload.get("id"))
    # The chat: in the reaction's own id; else WEBJS names it in `to` (`from` is the
    # reactor), NOWEB and GOWS in `from`.
    chat = own.chat if own else jid_text(payload.get("to") if engine == "WEBJS" else payload.get("from"))
    if why := not_a_chat(chat):
        return [unfiled(f"reaction in {why}", envelope)]
    from_me = bool(payload.get("fromMe"))
    reactor = jid_text(payload.get("participant")) if is_group(chat) else chat
    if engine == "GOWS" and not from_me:
        target = _as_seen_by_account(target, chat=chat, reactor=reactor, me=me)
    phone, lid = ("", "") if from_me else person([reactor, payload.get("from") if not is_group(chat) else None], me)
    if not from_me and not phone and not lid:
        return [unfiled("reaction without a sender id (neither phone nor LID)", envelope)]
    emoji = str(reaction.get("text") or "")
    provider_id = jid_text(payload.get("id")) or f"{target}:{phone or lid or 'me'}:{emoji}"
    return [Reaction(provider_id=provider_id, target_id=target, emoji=emoji, at=message_time(payload.get("timestamp")),
                     from_me=from_me, from_phone=phone, sender_lid=lid, chat=chat)]


def _as_seen_by_account(target: str, *, chat: str, reactor: str, me: Me) -> str:
    """A GOWS reaction's target id built from the reactor's own key -> the account's id of
    that message. In a direct chat the reactor names the chat by the account's id; in a group
    WAHA puts the account in place of the author of the reactor's own message."""
    key = parse_id(target)
    if key is None:
        return target
    if is_group(key.chat):
        if key.from_me:  # the reactor's own message
            return MessageKey(False, key.chat, key.raw_id, reactor or key.participant).serialized
        return MessageKey(me.owns(key.participant), key.chat, key.raw_id, key.participant).serialized
    if me.owns(key.chat):
        return MessageKey(not key.from_me, chat, key.raw_id).serialized
    return target  # already the account's view


def on_edited(envelope: dict, payload: dict, me: Me) -> list:
    own_id = jid_text(payload.get("id"))
    raw = payload.get("editedMessageId")
    target = with_raw_id(own_id, str(raw)) if raw else ""
    if not target:
        return [unfiled("message.edited without the edited message's id", envelope)]
    if why := not_a_chat(parse_id(target).chat):
        return [unfiled(f"edit in {why}", envelope)]
    text = str(payload.get("body") or "")
    provider_id = own_id if own_id != target else edit_id(target, text)
    chat = _chat(payload, target)
    from_me, by = _who(payload, chat, me)
    return [MessageEdited(provider_id=provider_id, target_id=target, text=text, at=message_time(payload.get("timestamp")),
                          from_me=from_me, by=by, chat=chat)]


def _chat(message: dict, fallback_id: str) -> str:
    """The chat an edit or a deletion arrived in, as the account sees it: the chat part of the
    WAMessage's own id (WAHA writes ids from the account's side), else its from / to."""
    key = parse_id(message.get("id")) or parse_id(fallback_id)
    if key is not None:
        return key.chat
    return jid_text(message.get("to") if message.get("fromMe") else message.get("from"))


def _who(message: dict, chat: str, me: Me) -> tuple[bool, str]:
    """(from_me, the group member) of the WAMessage that made an edit or a deletion."""
    from_me = bool(message.get("fromMe"))
    if from_me or not is_group(chat):
        return from_me, ""
    phone, lid = person([message.get("participant"), message.get("author")], me)
    return False, phone or lid


def on_revoked(envelope: dict, payload: dict, me: Me) -> list:
    before = payload.get("before") if isinstance(payload.get("before"), dict) else {}
    after = payload.get("after") if isinstance(payload.get("after"), dict) else {}
    raw = str(payload.get("revokedMessageId") or "")
    target = jid_text(before.get("id"))
    if not target and after.get("id"):
        target = with_raw_id(jid_text(after["id"]), raw) if raw else jid_text(after["id"])
        target = _admin_revoke(target, after.get("_data") or payload.get("_data"), me)
    if not parse_id(target):
        return [unfiled("message.revoked without the revoked message's id", envelope)]
    if why := not_a_chat(parse_id(target).chat):
        return [unfiled(f"deletion in {why}", envelope)]
    chat = _chat(after or before, target)
    from_me, by = _who(after or before, chat, me)
    return [MessageDeleted(target_id=target, at=message_time((after or before).get("timestamp")), from_me=from_me, by=by,
                           chat=chat)]


def _admin_revoke(target: str, data, me: Me) -> str:
    """A group admin deleting someone else's message: the revoke is the admin's, its key
    names the author (NOWEB `_data.message.protocolMessage.key.participant`, GOWS
    `_data.Message.protocolMessage.key.participant`)."""
    key = parse_id(target)
    data = data if isinstance(data, dict) else {}
    content = data.get("message") or data.get("Message")
    protocol = content.get("protocolMessage") if isinstance(content, dict) else None
    author_key = protocol.get("key") if isinstance(protocol, dict) else None
    author = jid_text(author_key.get("participant")) if isinstance(author_key, dict) else ""
    if key is None or not is_group(key.chat) or not author or cus(author) == key.participant:
        return target
    return MessageKey(me.owns(author), key.chat, key.raw_id, cus(author)).serialized
