"""Evolution API webhooks: who may post them, and what each event means.

Envelope `{event, instance, data, destination, date_time, sender, server_url, apikey}`
(EvolutionAPI/evolution-api: src/api/integrations/event/webhook/webhook.controller.ts); `apikey`
is the instance's token when the gateway exposes it, else null
(src/api/services/channel.service.ts, sendDataWebhook). Event names arrive as `messages.upsert`
(current) or `MESSAGES_UPSERT`. What each event's `data` is comes from
src/api/integrations/channel/whatsapp/whatsapp.baileys.service.ts:

- MESSAGES_UPSERT: one prepared message (see content.py);
- MESSAGES_UPDATE: `{keyId, remoteJid, fromMe, participant, status, pollUpdates, instanceId}`
  (older: the key spread, `id`), status ERROR|PENDING|SERVER_ACK|DELIVERY_ACK|READ|PLAYED
  (src/utils/renderStatus.ts); 2.3.7 adds `message` with `editedMessage` for an edit;
- MESSAGES_EDITED: the protocolMessage itself, `{key, type, editedMessage, timestampMs}`, for an
  edit and for a deletion for everyone (every protocolMessage goes there);
- MESSAGES_DELETE: the deleted message's key `{remoteJid, fromMe, id, participant}`;
- CONNECTION_UPDATE, QRCODE_UPDATED, LOGOUT_INSTANCE: the session."""
import hmac

from django.conf import settings

from accounts.providers.base import ConnectionChanged, DeliveryStatus, Ignored, MessageDeleted, MessageEdited, Unfiled, WebhookForbidden
from accounts.providers.base import WebhookMalformed, edit_id, json_envelope, require_url_secret
from accounts.providers.evolution import content
from accounts.providers.evolution.gateway import instance_name, qr_events
from accounts.providers.whatsapp_ids import message_time, phone_from_jid

WEBHOOK_EVENTS = ["QRCODE_UPDATED", "CONNECTION_UPDATE", "MESSAGES_UPSERT", "MESSAGES_UPDATE", "MESSAGES_EDITED",
                  "MESSAGES_DELETE", "LOGOUT_INSTANCE"]
# Baileys receipt states as Evolution names them -> our delivery statuses.
ACK_STATUS = {"SERVER_ACK": "sent", "DELIVERY_ACK": "delivered", "READ": "read", "PLAYED": "read", "ERROR": "failed"}


# --- who may post ----------------------------------------------------------------------------
def verified_envelope(account, request) -> dict:
    """The body of a webhook from the account's instance, or WebhookForbidden. The `?secret=`
    in the URL (WhatSnap's own, per account) authenticates it; an envelope `apikey` must be the
    global key or the instance token, when WhatSnap holds one (the gateway sends the token it
    has; an instance whose token we never learnt still reaches us: Evolution does not retry a
    refused webhook)."""
    require_url_secret(account, request)
    envelope = json_envelope(request)
    apikey = envelope.get("apikey")
    token = account.credentials.get("instance_token", "")
    if apikey and token and not _known_key(str(apikey), token):
        raise WebhookForbidden("envelope apikey is neither the gateway key nor the instance token")
    sent_by = envelope.get("instance")
    if sent_by and sent_by != instance_name(account):
        raise WebhookForbidden(f"event of gateway instance {sent_by!r} sent to the webhook of {instance_name(account)!r}")
    return envelope


def _known_key(supplied: str, token: str) -> bool:
    return any(c and hmac.compare_digest(supplied.encode(), c.encode()) for c in (settings.EVOLUTION_API_KEY, token))


# --- what it means -----------------------------------------------------------------------------
def envelope_events(account, envelope: dict) -> list:
    """Normalise a verified envelope; every part WhatSnap does not file comes back Unfiled."""
    event = str(envelope.get("event", "")).upper().replace(".", "_").replace("-", "_")
    handler = _HANDLERS.get(event)
    if handler is None:
        return [Unfiled(f"unsupported event type {envelope.get('event') or '(none)'}", envelope)]
    data = envelope.get("data")
    items = data if isinstance(data, list) else [data or {}]
    try:
        return [e for item in items for e in handler(account, item, envelope)]
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise WebhookMalformed(f"{event} payload not understood: {exc!r}") from None


def _on_qrcode(account, data: dict, envelope: dict) -> list:
    return qr_events(data.get("qrcode")) or [Unfiled("QR code update without a code", envelope)]


def _on_connection(account, data: dict, envelope: dict) -> list:
    state, reason_code = data.get("state"), data.get("statusReason")
    if state == "open":
        name = data.get("profileName") or ""
        return [ConnectionChanged(status="connected", phone=phone_from_jid(data.get("wuid") or ""), reason=f"WhatsApp linked {name}".strip())]
    if state == "connecting":
        return [ConnectionChanged(status="connecting", reason="gateway is connecting to WhatsApp")]
    if state == "refused":
        return [ConnectionChanged(status="error", reason="QR code limit reached without a scan; connect again for a new code")]
    if state == "close":
        if str(reason_code) == "401":
            return [ConnectionChanged(status="logged_out", reason="WhatsApp logged this device out (401); scan a new QR code")]
        return [ConnectionChanged(status="disconnected", reason=f"WhatsApp session closed ({reason_code or 'no reason given'})")]
    return [Unfiled(f"connection state {state!r} not understood", envelope)]


def _on_logout(account, data: dict, envelope: dict) -> list:
    return [ConnectionChanged(status="logged_out", reason="the gateway instance was logged out")]


def _on_upsert(account, data: dict, envelope: dict) -> list:
    key = f"upsert:{(data.get('key') or {}).get('id', '')}" if isinstance(data.get("key"), dict) else ""
    return content.message_events(data, envelope, own_phone=account.phone_number, unfiled_key=key)


def _on_update(account, data: dict, envelope: dict) -> list:
    # v2 sends {keyId, remoteJid, fromMe, status}; older gateways spread the key {id, ...}.
    provider_id = str(data.get("keyId") or data.get("id") or (data.get("key") or {}).get("id") or "")
    from_me = data.get("fromMe", (data.get("key") or {}).get("fromMe", True))
    status = str(data.get("status") or "").upper()
    dedupe = f"update:{provider_id}:{status}"
    edited = (data.get("message") or {}).get("editedMessage") if isinstance(data.get("message"), dict) else None
    if isinstance(edited, dict):  # 2.3.7: an edit, keyed by the edited message's id
        inner = edited.get("message") or {}
        who = content.actor({"remoteJid": data.get("remoteJid"), "fromMe": data.get("fromMe"),
                             "participant": data.get("participant")}, account.phone_number)
        if isinstance(inner.get("protocolMessage"), dict):
            return content.protocol_events(inner["protocolMessage"], envelope, data.get("messageTimestamp"), who=who)
        if not provider_id:
            return [Unfiled("edit of a message without id", envelope)]
        text = content.edited_text(inner)
        return [MessageEdited(provider_id=edit_id(provider_id, text), target_id=provider_id, text=text,
                              at=message_time(data.get("messageTimestamp")), from_me=who[0], by=who[1], chat=who[2])]
    if data.get("pollUpdates"):
        return [Unfiled("poll vote (WhatSnap does not show polls yet)", envelope, dedupe)]
    if not provider_id:
        return [Unfiled("message status without a message id", envelope)]
    if status == "DELETED":
        from_me, by, chat = content.actor({"remoteJid": data.get("remoteJid"), "fromMe": data.get("fromMe"),
                                           "participant": data.get("participant")}, account.phone_number)
        return [MessageDeleted(target_id=provider_id, at=message_time(None), from_me=from_me, by=by, chat=chat)]
    if status not in ACK_STATUS and status != "PENDING":
        return [Unfiled(f"message status {status or '(none)'} not understood", envelope, dedupe)]
    if not from_me:
        return [Unfiled(f"receipt {status} of a message the contact sent (read on the account's phone)", envelope, dedupe)]
    if status == "PENDING":
        return [Ignored("status PENDING: still on the phone")]  # says nothing the send's own answer did not
    return [DeliveryStatus(provider_id=provider_id, status=ACK_STATUS[status])]


def _on_edited(account, data: dict, envelope: dict) -> list:
    # only the protocolMessage: its key is the sender's own writing, so it names no one
    return content.protocol_events(data, envelope)


def _on_delete(account, data: dict, envelope: dict) -> list:
    """MESSAGES_DELETE carries Baileys' key of the deleted message as the account sees it."""
    target = str(data.get("id") or data.get("keyId") or "")
    if not target:
        return [Unfiled("deletion of a message without id", envelope)]
    from_me, by, chat = content.actor(data, account.phone_number)
    return [MessageDeleted(target_id=target, at=message_time(None), from_me=from_me, by=by, chat=chat)]


_HANDLERS = {
    "QRCODE_UPDATED": _on_qrcode,
    "CONNECTION_UPDATE": _on_connection,
    "MESSAGES_UPSERT": _on_upsert,
    "MESSAGES_UPDATE": _on_update,
    "MESSAGES_EDITED": _on_edited,
    "MESSAGES_DELETE": _on_delete,
    "LOGOUT_INSTANCE": _on_logout,
}
