"""What an Evolution API gateway (v2.3.x, Baileys 7) puts in its webhooks and message records,
built the way its own code builds them. Sources (EvolutionAPI/evolution-api):

- src/api/integrations/channel/whatsapp/whatsapp.baileys.service.ts: prepareMessage (the record
  of one message: `extendedTextMessage` renamed `conversation`, its contextInfo moved to the top,
  a quoted `extendedTextMessage` renamed too, `pushName` 'Você' for our own messages without
  one, status DELIVERY_ACK for received ones), the 'messages.upsert' handler (every
  protocolMessage goes to MESSAGES_EDITED as the protocolMessage itself), 'messages.update'
  (`{keyId, remoteJid, fromMe, participant, status, ...}`; a deletion for everyone goes to
  MESSAGES_DELETE as the key);
- src/api/integrations/event/webhook/webhook.controller.ts: the envelope;
- WhiskeySockets/Baileys src/Utils/decode-wa-message.ts: the message key (remoteJidAlt /
  participantAlt / addressingMode), WAProto/WAProto.proto: ProtocolMessage, ReactionMessage,
  ContextInfo (protobufjs JSON: enums by name, 64-bit numbers as strings)."""
import copy
import secrets
import time
from datetime import datetime, timezone


def new_id() -> str:
    return "3A" + secrets.token_hex(9).upper()


def message_key(remote_jid: str, *, message_id: str | None = None, from_me: bool = False, participant: str | None = None,
                **extra) -> dict:
    key = {"remoteJid": remote_jid, "fromMe": from_me, "id": message_id or new_id()}
    if participant is not None:
        key["participant"] = participant
    key.update({k: v for k, v in extra.items() if v is not None})
    return key


def prepared(key: dict, message: dict, *, push_name: str = "", timestamp: int | None = None, instance_id: str = "",
             status: str | None = None) -> dict:
    """One message as prepareMessage makes it (webhook data and database record alike)."""
    message = copy.deepcopy(message)
    kind = next((k for k in message if k not in ("messageContextInfo", "base64", "mediaUrl")), "unknown")
    part = message.get(kind)
    context = copy.deepcopy(part.get("contextInfo")) if isinstance(part, dict) else None
    record = {
        "key": key,
        "pushName": push_name or ("Você" if key.get("fromMe") else (key.get("participant") or "").split("@")[0] or None),
        "status": status or ("DELIVERY_ACK" if not key.get("fromMe") else "SERVER_ACK"),
        "message": message,
        "contextInfo": context,
        "messageType": kind,
        "messageTimestamp": timestamp or int(time.time()),
        "instanceId": instance_id,
        "source": "android",
    }
    if "extendedTextMessage" in message:
        record["messageType"] = "conversation"
        message["conversation"] = message.pop("extendedTextMessage").get("text")
    quoted = (context or {}).get("quotedMessage")
    if isinstance(quoted, dict) and "extendedTextMessage" in quoted:
        quoted["conversation"] = quoted.pop("extendedTextMessage").get("text")
    return record


def reply_content(text: str, quoted_record: dict) -> dict:
    """A text quoting a message, as WhatsApp sends it: extendedTextMessage with contextInfo."""
    quoted_key = quoted_record["key"]
    return {"extendedTextMessage": {"text": text, "contextInfo": {
        "stanzaId": quoted_key["id"],
        "participant": quoted_key.get("participant") or quoted_key["remoteJid"],
        "quotedMessage": copy.deepcopy(quoted_record["message"]),
    }}}


def reaction_content(target_key: dict, emoji: str) -> dict:
    return {"reactionMessage": {"key": target_key, "text": emoji, "senderTimestampMs": str(int(time.time() * 1000))},
            "messageContextInfo": {"messageSecret": "c2VjcmV0"}}


def protocol_message(target_key: dict, *, text: str | None = None, numeric: bool = False) -> dict:
    """A protocolMessage: an edit when `text` is given, else a deletion for everyone."""
    if text is None:
        return {"key": target_key, "type": 0 if numeric else "REVOKE"}
    return {"key": target_key, "type": 14 if numeric else "MESSAGE_EDIT", "editedMessage": {"conversation": text},
            "timestampMs": str(int(time.time() * 1000))}


def envelope(instance: str, event: str, data, *, url: str = "", sender: str | None = None, server_url: str = "",
             apikey: str | None = None) -> dict:
    return {
        "event": event,
        "instance": instance,
        "data": data,
        "destination": url,
        "date_time": datetime.now(timezone.utc).isoformat(),
        "sender": sender,
        "server_url": server_url,
        "apikey": apikey,
    }


def instance_row(name: str, token: str, *, state: str, wuid: str = "", profile_name: str = "") -> dict:
    """An instance as GET /instance/fetchInstances lists it in v2: its database row
    (prisma/postgresql-schema.prisma, model Instance) with the relations monitor.service.ts adds."""
    now = datetime.now(timezone.utc).isoformat()
    return {
        "id": secrets.token_hex(12), "name": name, "connectionStatus": state, "ownerJid": wuid or None,
        "profileName": profile_name or None, "profilePicUrl": None, "integration": "WHATSAPP-BAILEYS",
        "number": None, "businessId": None, "token": token, "clientName": "evolution_exchange",
        "disconnectionReasonCode": None, "disconnectionObject": None, "disconnectionAt": None,
        "createdAt": now, "updatedAt": now, "Chatwoot": None, "Proxy": None, "Rabbitmq": None, "Nats": None,
        "Sqs": None, "Websocket": None,
        "Setting": {"rejectCall": False, "groupsIgnore": False, "alwaysOnline": False, "readMessages": False},
        "_count": {"Message": 0, "Contact": 0, "Chat": 0},
    }


def instance_row_v1(name: str, token: str, *, state: str, expose: bool = True) -> dict:
    """v1 (up to 1.8): `{instance: {...}}`, the token as `apikey` only when the gateway exposes it."""
    row = {"instance": {"instanceName": name, "instanceId": secrets.token_hex(8), "status": state}}
    if expose:
        row["instance"]["apikey"] = token
    return row
