"""WAHA's webhooks: the signature check (X-Webhook-Hmac: hex HMAC-SHA512 of the raw body with
the account's webhook secret) and the envelopes `{event, session, me, payload, ...}` of the
events we use: `message` (incoming messages only: our own sends and messages typed on the
phone also arrive, marked fromMe), `message.ack` (delivery receipts) and `session.status`."""
import hashlib
import hmac
import logging

from accounts.providers.base import (
    ConnectionChanged,
    DeliveryStatus,
    InboundMessage,
    WebhookForbidden,
    WebhookMalformed,
    json_envelope,
)
from accounts.providers.waha.client import session_name
from accounts.providers.whatsapp_ids import first_phone, message_time, phone_from_jid

logger = logging.getLogger(__name__)

HMAC_ALGORITHM = "sha512"
# message.ack: ackName (or its number) -> our delivery statuses; PENDING (0) says nothing new.
ACK_NAMES = {-1: "ERROR", 0: "PENDING", 1: "SERVER", 2: "DEVICE", 3: "READ", 4: "PLAYED"}
ACK_STATUS = {"ERROR": "failed", "SERVER": "sent", "DEVICE": "delivered", "READ": "read", "PLAYED": "read"}
NOT_A_CHAT = ("status@broadcast",)
NOT_A_CHAT_SUFFIXES = ("@newsletter", "@broadcast")


def parse_webhook(account, request) -> list:
    """Verify a WAHA webhook and normalise its event (Provider.parse_webhook)."""
    verify_signature(account, request)
    envelope = json_envelope(request)
    sent_by = envelope.get("session")
    if sent_by and sent_by != session_name(account):
        raise WebhookForbidden(f"event of WAHA session {sent_by!r} sent to the webhook of {session_name(account)!r}")
    event = str(envelope.get("event") or "")
    handler = _HANDLERS.get(event)
    if handler is None:
        return []
    payload = envelope.get("payload")
    if not isinstance(payload, dict):
        raise WebhookMalformed(f"{event} without a payload object")
    try:
        return handler(account, envelope, payload)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise WebhookMalformed(f"{event} payload not understood: {exc!r}") from None


def verify_signature(account, request) -> None:
    supplied = request.headers.get("X-Webhook-Hmac", "").strip().lower()
    if not supplied:
        raise WebhookForbidden("no X-Webhook-Hmac header (the session's webhook must have our HMAC key)")
    algorithm = request.headers.get("X-Webhook-Hmac-Algorithm", HMAC_ALGORITHM).strip().lower()
    if algorithm != HMAC_ALGORITHM:
        raise WebhookForbidden(f"X-Webhook-Hmac-Algorithm {algorithm!r}, expected {HMAC_ALGORITHM}")
    expected = hmac.new(account.webhook_secret.encode(), request.body, hashlib.sha512).hexdigest()
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise WebhookForbidden("X-Webhook-Hmac does not match the body")


def me_phone(me) -> str:
    return phone_from_jid((me or {}).get("id") or "") if isinstance(me, dict) else ""


def status_event(status: str, me=None) -> ConnectionChanged | None:
    """A WAHA session status -> our connection status (SCAN_QR_CODE is handled by the caller)."""
    if status == "WORKING":
        name = (me.get("pushName") or "") if isinstance(me, dict) else ""
        return ConnectionChanged(status="connected", phone=me_phone(me), reason=f"WhatsApp linked {name}".strip())
    if status == "STARTING":
        return ConnectionChanged(status="connecting", reason="WAHA is starting the session")
    if status == "STOPPED":
        return ConnectionChanged(status="disconnected", reason="the WAHA session is stopped")
    if status == "FAILED":
        return ConnectionChanged(
            status="error",
            reason="the WAHA session failed (WhatsApp likely needs the device linked again): reconnect the account",
        )
    return None


# --- event mapping -------------------------------------------------------------------------
def _on_session_status(account, envelope: dict, payload: dict) -> list:
    status = str(payload.get("status") or "")
    if status == "SCAN_QR_CODE":
        # WAHA posts no QR itself. The webhook is answered without calling the gateway: the
        # account page, seeing "waiting for a scan" without a code, asks for one (renew_qr).
        return [ConnectionChanged(status="qr_pending", reason="WAHA session waits for a QR scan")]
    event = status_event(status, payload.get("me") or envelope.get("me"))
    return [event] if event else []


def _on_ack(account, envelope: dict, payload: dict) -> list:
    name = payload.get("ackName")
    if not name and payload.get("ack") is not None:
        name = ACK_NAMES.get(int(payload["ack"]))
    status = ACK_STATUS.get(str(name or "").upper())
    provider_id = payload.get("id")
    if isinstance(provider_id, dict):
        provider_id = provider_id.get("_serialized")
    if not status or not provider_id or not payload.get("fromMe", True):
        return []  # receipts of messages we received are not delivery statuses
    error = "WhatsApp reported an error for this message (ack ERROR)" if status == "failed" else ""
    return [DeliveryStatus(provider_id=str(provider_id), status=status, error=error)]


def _on_message(account, envelope: dict, payload: dict) -> list:
    if payload.get("fromMe"):
        return []  # our own sends (and messages typed on the phone) echo back
    remote = str(payload.get("from") or "")
    if remote in NOT_A_CHAT or remote.endswith(NOT_A_CHAT_SUFFIXES):
        return []
    data = payload.get("_data") if isinstance(payload.get("_data"), dict) else {}
    key = data.get("key") if isinstance(data.get("key"), dict) else {}
    group_id = remote if remote.endswith("@g.us") else ""
    if group_id:
        sender = first_phone(payload.get("participant"), payload.get("author"), key.get("participantAlt"), key.get("participantPn"))
    else:
        sender = first_phone(remote, key.get("remoteJidAlt"), key.get("senderPn"))
    if not sender:
        # Never a contact from a LID: it is not a phone number.
        logger.warning("WhatsApp message %s from %s skipped: no phone number for this sender (LID only)", payload.get("id"), remote)
        return []
    text = str(payload.get("body") or "")
    media = _media(payload)
    if not text and not media:
        text = _fallback_text(payload, data)
    return [
        InboundMessage(
            provider_id=str(payload["id"]),
            from_phone=sender,
            name=_push_name(data),
            text=text,
            media=media,
            at=message_time(payload.get("timestamp")),
            group_id=group_id,
        )
    ]


def _push_name(data: dict) -> str:
    info = data.get("Info") if isinstance(data.get("Info"), dict) else {}  # GOWS
    return str(data.get("notifyName") or data.get("pushName") or info.get("PushName") or "")


def _media(payload: dict) -> tuple:
    media = payload.get("media")
    if not payload.get("hasMedia") and not isinstance(media, dict):
        return ()
    media = media if isinstance(media, dict) else {}
    content_type = str(media.get("mimetype") or "").split(";", 1)[0].strip()
    major = content_type.split("/", 1)[0]
    kind = major if major in ("image", "video", "audio") else "document"
    return ({"url": str(media.get("url") or payload.get("mediaUrl") or ""), "content_type": content_type,
             "kind": kind, "filename": str(media.get("filename") or "")},)


def _fallback_text(payload: dict, data: dict) -> str:
    """Kinds WhatSnap does not render still reach the inbox, described, rather than vanish."""
    location = payload.get("location")
    if isinstance(location, dict):
        where = f"{location.get('latitude')}, {location.get('longitude')}"
        return f"Location: {where} {location.get('name') or location.get('description') or ''}".strip()
    if payload.get("vCards"):
        return "Contact card"
    kind = payload.get("type") or data.get("type") or "message"
    return f"[WhatsApp {kind} not shown here; see the phone]"




_HANDLERS = {
    "message": _on_message,
    "message.ack": _on_ack,
    "session.status": _on_session_status,
}
