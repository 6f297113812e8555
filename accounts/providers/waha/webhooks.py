"""WAHA's webhooks: the signature check (X-Webhook-Hmac: hex HMAC-SHA512 of the raw body with
the account's webhook secret) and the envelopes `{id, event, session, me, payload, engine, ...}`
of the events the session is subscribed to (client.WEBHOOK_EVENTS): `message.any` (every
message in the account's chats, the ones its own phone sends too), `message.reaction`,
`message.edited`, `message.revoked`, `message.ack` (delivery receipts) and `session.status`.

Everything verified is answered with something: a normalised event, or Unfiled with the
reason (an event type we do not subscribe to, a status update, a receipt for a message we
received, a payload we cannot read yet) so an admin can see it and re-run it."""
import hashlib
import hmac
import logging

from accounts.providers.base import (
    Ignored,
    ConnectionChanged,
    DeliveryStatus,
    PhoneIdentified,
    WebhookForbidden,
    WebhookMalformed,
    json_envelope,
)
from accounts.providers.waha.amendments import on_edited, on_reaction, on_revoked
from accounts.providers.waha.client import session_name
from accounts.providers.waha.envelopes import unfiled
from accounts.providers.waha.jids import Me, jid_text
from accounts.providers.waha.messages import read_message
from accounts.providers.whatsapp_ids import phone_from_jid

logger = logging.getLogger(__name__)

HMAC_ALGORITHM = "sha512"
# WAHA Core signs webhooks only from 2024.11.5 on: the 2024.10.8 sender
# (devlikeapro/waha: src/core/webhooks.core.ts, WebhookSenderCore.send) posts the body with
# content-type and User-Agent only, whatever `hmac` the session's webhook config names.
NO_SIGNATURE = ("no X-Webhook-Hmac header: this WAHA signs no webhooks. WAHA before 2024.11.5 cannot; upgrade WAHA "
                "to 2024.11.5 or later and reconnect the account (WhatSnap sets the HMAC key when it creates the session)")
BAD_ALGORITHM = ("X-Webhook-Hmac-Algorithm is not sha512, the one WAHA signs with: the sender is not this account's WAHA "
                 "session, or a proxy rewrote the header")
BAD_SIGNATURE = ("X-Webhook-Hmac does not match the body: the session's webhook has another HMAC key than this account "
                 "(reconnect the account to set it again), or something between WAHA and WhatSnap changed the body")
OTHER_SESSION = ("event of another WAHA session sent to this account's webhook: that session was given this account's "
                 "webhook; reconnect the account and remove the webhook from the other session")
# message.ack: ackName (or its number) -> our delivery statuses.
ACK_NAMES = {-1: "ERROR", 0: "PENDING", 1: "SERVER", 2: "DEVICE", 3: "READ", 4: "PLAYED"}
ACK_STATUS = {"ERROR": "failed", "SERVER": "sent", "DEVICE": "delivered", "READ": "read", "PLAYED": "read"}


def parse_webhook(account, request) -> list:
    """Verify a WAHA webhook and normalise its event (Provider.parse_webhook)."""
    verify_signature(account, request)
    envelope = json_envelope(request)
    sent_by = envelope.get("session")
    if sent_by and sent_by != session_name(account):
        raise WebhookForbidden(OTHER_SESSION)
    return parse_envelope(account, envelope)


def verify_signature(account, request) -> None:
    supplied = request.headers.get("X-Webhook-Hmac", "").strip().lower()
    if not supplied:
        raise WebhookForbidden(NO_SIGNATURE)
    algorithm = request.headers.get("X-Webhook-Hmac-Algorithm", HMAC_ALGORITHM).strip().lower()
    if algorithm != HMAC_ALGORITHM:
        raise WebhookForbidden(BAD_ALGORITHM)
    expected = hmac.new(account.webhook_secret.encode(), request.body, hashlib.sha512).hexdigest()
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise WebhookForbidden(BAD_SIGNATURE)


def parse_envelope(account, envelope: dict) -> list:
    """Normalise a verified envelope (also an Unfiled one re-run by an admin)."""
    event = str(envelope.get("event") or "")
    handler = _HANDLERS.get(event)
    if handler is None:
        return [unfiled(f"unsupported WAHA event type {event[:60] or '(none)'}", envelope)]
    payload = envelope.get("payload")
    if not isinstance(payload, dict):
        raise WebhookMalformed(f"{event} without a payload object")
    me = Me(me=envelope.get("me"), phone=account.phone_number or "")
    try:
        return handler(envelope, payload, me)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        logger.warning("WAHA %s for account %s not understood: %r", event, account.pk, exc)
        return [unfiled(f"{event} payload not understood: {type(exc).__name__}", envelope)]


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
def _on_session_status(envelope: dict, payload: dict, me: Me) -> list:
    status = str(payload.get("status") or "")
    if status == "SCAN_QR_CODE":
        # WAHA posts no QR itself. The webhook is answered without calling the gateway: the
        # account page, seeing "waiting for a scan" without a code, asks for one (renew_qr).
        return [ConnectionChanged(status="qr_pending", reason="WAHA session waits for a QR scan")]
    event = status_event(status, payload.get("me") or envelope.get("me"))
    return [event] if event else [unfiled(f"unknown WAHA session status {status[:40] or '(none)'}", envelope)]


def _on_ack(envelope: dict, payload: dict, me: Me) -> list:
    name = payload.get("ackName")
    if not name and payload.get("ack") is not None:
        name = ACK_NAMES.get(int(payload["ack"]))
    name = str(name or "").upper()
    provider_id = jid_text(payload.get("id"))
    if not provider_id:
        return [unfiled("message.ack without a message id", envelope)]
    if not payload.get("fromMe", True):
        # The account's own phone read (or received) a message the contact sent: a receipt
        # about a received message, which has no delivery status in WhatSnap.
        return [unfiled("read receipt for a received message (the account's phone read it), not a delivery status", envelope)]
    if name == "PENDING":
        return [Ignored("ack PENDING: queued on the phone")]  # says nothing the send itself did not already record
    status = ACK_STATUS.get(name)
    if not status:
        return [unfiled(f"message.ack with an unknown ack {name[:20] or payload.get('ack')!r}", envelope)]
    error = "WhatsApp reported an error for this message (ack ERROR)" if status == "failed" else ""
    return [DeliveryStatus(provider_id=provider_id, status=status, error=error)]


def _on_message(envelope: dict, payload: dict, me: Me) -> list:
    read = read_message(payload, me)
    if read.other is not None:
        return [read.other]
    if read.message is None:
        return [unfiled(read.reason, envelope)]
    events = [read.message]
    if read.lid and read.phone:
        events.append(PhoneIdentified(lid=read.lid, phone=read.phone, name=read.message.name))
    return events


_HANDLERS = {
    # `message` is what sessions created before issue 17 still send until they reconnect
    # (incoming messages only); `message.any` replaces it and also carries the account's own.
    "message": _on_message,
    "message.any": _on_message,
    "message.ack": _on_ack,
    "message.reaction": on_reaction,
    "message.edited": on_edited,
    "message.revoked": on_revoked,
    "session.status": _on_session_status,
}
