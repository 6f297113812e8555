"""SMS Gateway for Android's webhooks, as the app posts them (capcom6/android-sms-gateway:
modules/webhooks/domain/WebHookEventDTO.kt `{id, webhookId, event, deviceId, payload}`, the
payloads in modules/webhooks/payload/), signed: X-Signature = hex HMAC-SHA256(signing key, raw
body + X-Timestamp); older than 5 minutes is refused. The phone retries, so every message is
keyed by its payload's messageId qualified by its receive time.

- sms:received: a text message;
- mms:downloaded (app 1.56+): a picture / group / long message with its text and attachments
  (each part's bytes inline, base64: filed as data: URLs the inbox decodes);
- mms:received: only the MMS notification (subject, size), before the phone downloads the
  message: kept unfiled with its reason, as the trace of a message the phone could not
  download (no mobile data, an older app);
- sms:sent / sms:delivered / sms:failed: statuses of our sends;
- anything else (sms:data-received, sms:cancelled, app:started, batches) is kept unfiled."""
import hmac
import time
from datetime import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.providers.android_sms.client import sign
from accounts.providers.base import DeliveryStatus, Ignored, InboundMessage, Unfiled, WebhookForbidden, WebhookMalformed

MAX_SKEW_SECONDS = 5 * 60
STATUS_EVENTS = {"sms:sent": "sent", "sms:delivered": "delivered", "sms:failed": "failed"}
NO_SUBJECT = ("", "nosubject", "no subject")  # what carriers put in the subject of a subject-less MMS


def verify(account, request) -> None:
    key = account.credentials.get("signing_key", "")
    signature = request.META.get("HTTP_X_SIGNATURE", "")
    timestamp = request.META.get("HTTP_X_TIMESTAMP", "")
    if not key:
        raise WebhookForbidden("no signing key configured for this account")
    if not signature or not timestamp:
        raise WebhookForbidden("X-Signature or X-Timestamp missing")
    if not hmac.compare_digest(signature.lower().encode(), sign(key, request.body, timestamp).encode()):
        raise WebhookForbidden("X-Signature does not match")
    try:
        skew = abs(time.time() - int(timestamp))
    except ValueError:
        raise WebhookForbidden("X-Timestamp is not a Unix time") from None
    if skew > MAX_SKEW_SECONDS:
        raise WebhookForbidden(f"X-Timestamp is {int(skew)} s away from now (replay?)")


def parse_envelope(envelope: dict) -> list:
    event = str(envelope.get("event") or "")
    payload = envelope.get("payload")
    if event == "system:ping":
        return [Ignored("the phone saying it is alive")]  # nothing to file: the webhook's arrival is the news
    handler = _HANDLERS.get(event)
    if handler is None:
        return [Unfiled(f"unsupported event type {event or '(none)'}", envelope, key=_key(envelope))]
    if not isinstance(payload, dict):
        raise WebhookMalformed(f"SMS gateway {event} without a payload object")
    try:
        return handler(payload, envelope)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WebhookMalformed(f"SMS gateway {event} payload not understood: {exc!r}") from None


def _key(envelope: dict) -> str:
    """The phone retries one event with the same envelope id."""
    return f"asg:{envelope['id']}" if isinstance(envelope.get("id"), str) and envelope["id"] else ""


def message_id(payload: dict, prefix: str = "") -> str:
    # The app derives an SMS's messageId from a 32-bit hash of the message (an MMS's from its
    # row in the phone's MMS store): stable across the phone's retries, but two messages can
    # share it. Qualified by the receive time it stays the same for a redelivery and tells
    # different messages apart.
    received_at = str(payload.get("receivedAt") or "")
    base = f"{prefix}{payload['messageId']}"
    return (f"{base}@{received_at}" if received_at else base)[:128]


def _sender(payload: dict) -> str:
    sender = payload.get("sender") or payload.get("phoneNumber")  # older app versions name it phoneNumber
    return "" if not sender or sender == "unknown" else str(sender)  # MmsContentReader: "unknown" when the MMS has no From


def _sms_received(payload: dict, envelope: dict) -> list:
    if not _sender(payload):
        return [Unfiled("SMS without a sender number", envelope, key=_key(envelope))]
    return [InboundMessage(provider_id=message_id(payload), from_phone=_sender(payload), name="",
                           text=str(payload.get("message") or ""), at=parse_time(payload.get("receivedAt")))]


def _mms_downloaded(payload: dict, envelope: dict) -> list:
    """MmsDownloadedPayload: body (the text parts joined), subject, attachments [{partId,
    contentType, name, size, data (base64, null when the phone could not read the part)}]."""
    if not _sender(payload):
        return [Unfiled("picture message (MMS) without a sender number", envelope, key=_key(envelope))]
    media, unreadable = [], []
    for part in payload.get("attachments") or ():
        content_type = str(part.get("contentType") or "application/octet-stream").split(";", 1)[0].strip()
        name = str(part.get("name") or f"part-{part.get('partId', len(media))}")
        if part.get("data"):
            media.append({"url": f"data:{content_type};base64,{part['data']}", "content_type": content_type,
                          "kind": _kind(content_type), "filename": name})
        else:
            unreadable.append(f"{name} ({content_type})")
    subject, body = str(payload.get("subject") or "").strip(), str(payload.get("body") or "")
    lines = [subject] if subject.lower() not in NO_SUBJECT and subject != body.strip() else []
    lines += [body] if body else []
    lines += [f"[attachment {u} not passed on by the phone; see the phone]" for u in unreadable]
    return [InboundMessage(provider_id=message_id(payload, "mms:"), from_phone=_sender(payload), name="",
                           text="\n".join(lines), media=tuple(media), at=parse_time(payload.get("receivedAt")))]


def _kind(content_type: str) -> str:
    major = content_type.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "document"


def _mms_received(payload: dict, envelope: dict) -> list:
    size = payload.get("size")
    about = f" of {int(size) // 1024} KB" if isinstance(size, int) and size > 0 else ""
    reason = (f"MMS notification{about} from {_sender(payload) or 'an unknown sender'}: the message is filed when "
              "the phone has downloaded it (mms:downloaded, SMS Gateway for Android 1.56 or later)")
    return [Unfiled(reason, envelope, key=f"mms-notice:{message_id(payload)}")]


def _status(payload: dict, envelope: dict) -> list:
    status = STATUS_EVENTS[envelope["event"]]
    error = str(payload.get("reason") or "") if status == "failed" else ""
    return [DeliveryStatus(provider_id=str(payload["messageId"]), status=status, error=error)]


def parse_time(value) -> datetime:
    parsed = parse_datetime(str(value)) if value else None
    if parsed is None:
        return timezone.now()
    return parsed if parsed.tzinfo else timezone.make_aware(parsed)


_HANDLERS = {
    "sms:received": _sms_received,
    "mms:downloaded": _mms_downloaded,
    "mms:received": _mms_received,
    **{event: _status for event in STATUS_EVENTS},
}
