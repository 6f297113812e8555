"""WAHA webhook payloads as each engine builds them (the stand-in's `message`, `message.any`,
`message.reaction`, `message.edited`, `message.revoked`, `message.ack` events and its history).

Built from the upstream code (read at devlikeapro/waha 2025-2026; the local mirror of
devlikeapro/waha stops at 2024.10.8, the current engine code was read in its copy
trekkermoja1/wahamod and, for GOWS, in devlikeapro/waha@80a08ebf):
- WAMessage / WAMessageReaction: devlikeapro/waha src/structures/responses.dto.ts;
  WAMessageEditedBody / WAMessageRevokedBody / WAMessageAckBody: src/structures/webhooks.dto.ts.
- WEBJS: src/core/engines/webjs/session.webjs.core.ts (toWAMessage: `id` = WhatsApp Web's
  `_serialized`, `from`/`to`/`participant`, `_data` = the serialized Msg; processMessageReaction;
  message_edit -> editedMessageId = `_data.id.id`; message_revoke_everyone -> after/before),
  with pedroslopez/whatsapp-web.js src/structures/Message.js for `from`/`to`/`author`.
- NOWEB: src/core/engines/noweb/session.noweb.core.ts (buildMessageId, getFromToParticipant:
  `from` is always the chat; toWAMessage; processMessageReaction on the key Baileys already
  turned to the account's view: WhiskeySockets/Baileys src/Utils/process-message.ts
  cleanMessage), and the Baileys key: src/Utils/decode-wa-message.ts (remoteJidAlt for direct
  chats, participantAlt for groups, addressingMode).
- GOWS: src/core/engines/gows/session.gows.core.ts (toWAMessage, buildMessageId: chat +
  Sender in groups; processMessageReaction with buildMessageIdFromKey on the reactor's raw key;
  receiptToMessageAck), `_data` = whatsmeow's events.Message JSON: tulir/whatsmeow
  types/message.go (MessageSource: Chat, Sender, IsFromMe, IsGroup, AddressingMode,
  SenderAlt, RecipientAlt) and types/events/events.go; reaction keys from send.go
  BuildMessageKey (the reactor's chat and fromMe)."""
from datetime import datetime, timezone


def s_net(jid: str) -> str:
    """'1415…@c.us' -> '1415…@s.whatsapp.net' (the engines' own form); others unchanged."""
    return jid.replace("@c.us", "@s.whatsapp.net") if jid else jid


def cus(jid: str | None) -> str | None:
    """WAHA's toCusFormat: device part off, '@s.whatsapp.net' -> '@c.us'."""
    if not jid:
        return jid
    user, _, server = jid.partition("@")
    user = user.split(":", 1)[0]
    return f"{user}@c.us" if server in ("s.whatsapp.net", "c.us") else f"{user}@{server}"


def serialized(from_me: bool, chat: str, raw_id: str, participant: str | None = None) -> str:
    tail = f"_{cus(participant)}" if participant else ""
    return f"{'true' if from_me else 'false'}_{cus(chat)}_{raw_id}{tail}"


def _reply(reply_to: dict | None, engine: str):
    if not reply_to:
        return None
    return {"id": reply_to["id"], "participant": cus(reply_to.get("participant")), "body": reply_to.get("body"), "_data": {}}


def wa_message(engine: str, *, me: dict, chat: str, raw_id: str, from_me: bool, text: str, sender: str | None = None,
               alt: str | None = None, addressing: str = "pn", push_name: str = "", media: dict | None = None,
               timestamp: int, reply_to: dict | None = None, extra: dict | None = None, kind: str = "chat") -> dict:
    """One WAMessage. `chat` is the chat as WhatsApp addresses it ('…@c.us', '…@lid', '…@g.us');
    `sender` the group participant who wrote (groups only); `alt` the other id of the person
    (phone JID when addressed by LID and the reverse), when the engine gives one."""
    group = chat.endswith("@g.us")
    me_id = me["id"]
    participant = (me_id if from_me else sender) if group else None
    common = {"timestamp": timestamp, "fromMe": from_me, "source": "app", "body": text, "hasMedia": media is not None,
              "media": media, "ack": 1, "ackName": "SERVER", "location": None, "vCards": [],
              "replyTo": _reply(reply_to, engine), **(extra or {})}
    if engine == "WEBJS":
        ident = serialized(from_me, chat, raw_id, participant)
        wid = {"fromMe": from_me, "remote": chat, "id": raw_id, "_serialized": ident, **({"participant": participant} if group else {})}
        data = {"id": wid, "from": me_id if from_me else chat, "to": chat if from_me else me_id, "author": participant,
                "notifyName": push_name, "type": "image" if media else kind, "t": timestamp, "body": text}
        return {"id": ident, "from": me_id if from_me else chat, "to": chat if from_me else me_id,
                "participant": cus(participant), **common, "_data": data}
    if engine == "NOWEB":
        key = {"remoteJid": s_net(chat), "fromMe": from_me, "id": raw_id, "participant": s_net(participant) or "",
               "addressingMode": addressing}
        key.update({"participantAlt": s_net(alt)} if group and alt else {"remoteJidAlt": s_net(alt)} if alt else {})
        content = {"conversation": text}
        if reply_to:
            context = {"stanzaId": reply_to["id"], "participant": s_net(reply_to.get("participant")),
                       "quotedMessage": {"conversation": reply_to.get("body")}}
            content = {"extendedTextMessage": {"text": text, "contextInfo": context}}
        data = {"key": key, "messageTimestamp": timestamp, "pushName": push_name, "message": content, "status": 2}
        return {"id": serialized(from_me, chat, raw_id, participant), "from": cus(chat), "to": cus(chat) if group else None,
                "participant": cus(participant), **common, "_data": data}
    # GOWS: whatsmeow's MessageInfo, JIDs as strings ('' when empty), Timestamp RFC 3339
    own_device = f"{me_id.split('@')[0]}:12@s.whatsapp.net"
    who = own_device if from_me else s_net(sender if group else chat)
    info = {"Chat": s_net(chat), "Sender": who, "IsFromMe": from_me, "IsGroup": group, "AddressingMode": addressing,
            "SenderAlt": "" if from_me else s_net(alt) or "", "RecipientAlt": (s_net(alt) or "") if from_me and not group else "",
            "BroadcastListOwner": "", "BroadcastRecipients": None, "ID": raw_id, "ServerID": 0, "Type": "media" if media else "text",
            "PushName": push_name, "Timestamp": datetime.fromtimestamp(timestamp, timezone.utc).isoformat(), "Category": "",
            "Multicast": False, "MediaType": "image" if media else "", "Edit": "", "VerifiedName": None, "DeviceSentMeta": None}
    return {"id": serialized(from_me, chat, raw_id, who if group else None), "from": cus(chat),
            "to": cus(who) if group else None, "participant": cus(who) if group else None, **common,
            "_data": {"Info": info, "Message": {"conversation": text}, "IsEphemeral": False, "IsEdit": False}}


def reaction(engine: str, *, me: dict, chat: str, raw_id: str, from_me: bool, target: dict, emoji: str,
             sender: str | None = None, timestamp: int) -> dict:
    """WAMessageReaction. `target`: {raw_id, from_me (the account's view), author (groups)}."""
    group = chat.endswith("@g.us")
    reactor = (me["id"] if from_me else sender) if group else (me["id"] if from_me else chat)
    mine = serialized(target["from_me"], chat, target["raw_id"], (me["id"] if target["from_me"] else target.get("author")) if group else None)
    if engine == "GOWS" and not from_me:
        # whatsmeow BuildMessageKey on the reactor's side: their chat (the account in a direct
        # chat), fromMe from the reactor's view; WAHA's buildMessageIdFromKey puts `me` as the
        # sender of a fromMe key and adds a participant only in groups.
        theirs = not target["from_me"] and (target.get("author") == sender if group else True)
        key_chat = chat if group else me["id"]
        author = me["id"] if theirs else (target.get("author") or me["id"])
        message_id = serialized(theirs, key_chat, target["raw_id"], author if group else None)
    else:
        message_id = mine
    ident = serialized(from_me, chat, raw_id, reactor if group else None)
    if engine == "WEBJS":
        return {"id": ident, "from": cus(reactor), "fromMe": from_me, "source": "app", "participant": reactor, "to": chat,
                "timestamp": timestamp, "reaction": {"text": emoji, "messageId": message_id}}
    return {"id": ident, "timestamp": timestamp, "from": cus(chat), "fromMe": from_me, "source": "app",
            "to": cus(chat) if group else None, "participant": cus(reactor) if group else None,
            "reaction": {"text": emoji, "messageId": message_id}}


def edited(engine: str, *, me: dict, chat: str, edit_id: str, original_id: str, from_me: bool, text: str,
           sender: str | None = None, timestamp: int) -> dict:
    """WAMessageEditedBody: NOWEB/GOWS the edit's own WAMessage, WEBJS the edited message."""
    raw = original_id if engine == "WEBJS" else edit_id
    body = wa_message(engine, me=me, chat=chat, raw_id=raw, from_me=from_me, text=text, sender=sender, timestamp=timestamp)
    return {**body, "body": text, "editedMessageId": original_id}


def revoked(engine: str, *, me: dict, chat: str, revoke_id: str, original_id: str, from_me: bool,
            sender: str | None = None, author: str | None = None, timestamp: int, before_text: str | None = None) -> dict:
    """WAMessageRevokedBody. `author`: the revoked message's author when a group admin
    (`sender`) deletes someone else's message (NOWEB/GOWS carry it in the protocol key)."""
    if engine == "WEBJS":
        after = wa_message(engine, me=me, chat=chat, raw_id=original_id, from_me=from_me, text="", sender=sender,
                           timestamp=timestamp, kind="revoked")
        after["_data"]["protocolMessageKey"] = {"id": original_id}
        before = None if before_text is None else wa_message(engine, me=me, chat=chat, raw_id=original_id, from_me=from_me,
                                                             text=before_text, sender=sender, timestamp=timestamp - 60)
        return {"after": after, "before": before, "revokedMessageId": original_id}
    after = wa_message(engine, me=me, chat=chat, raw_id=revoke_id, from_me=from_me, text="", sender=sender, timestamp=timestamp)
    key = {"remoteJid": s_net(chat), "fromMe": from_me, "id": original_id, **({"participant": s_net(author)} if author else {})}
    if engine == "GOWS":
        key = {"remoteJID": key["remoteJid"], "fromMe": from_me, "ID": original_id, **({"participant": s_net(author)} if author else {})}
        after["_data"]["Message"] = {"protocolMessage": {"key": key, "type": 0}}
    else:
        after["_data"]["message"] = {"protocolMessage": {"key": key, "type": "REVOKE"}}
    after["body"] = None
    return {"after": after, "before": None, "revokedMessageId": original_id, "_data": after["_data"]}


def ack(engine: str, *, message_id: str, ack_value: int, chat: str, from_me: bool = True) -> dict:
    """WAMessageAckBody (GOWS reverses the receipt's IsFromMe: a contact's receipt of our
    message is fromMe; our own phone reading the contact's message is not)."""
    names = {-1: "ERROR", 0: "PENDING", 1: "SERVER", 2: "DEVICE", 3: "READ", 4: "PLAYED"}
    return {"id": message_id, "from": chat, "to": chat, "participant": None, "fromMe": from_me, "ack": ack_value,
            "ackName": names[ack_value]}
