"""WhatsApp through a self-hosted Evolution API v2 gateway (WhatsApp Web, QR pairing).

One gateway (EVOLUTION_API_BASE_URL) serves every account; each account is one gateway
instance named by WhatSnap (`Account.gateway_resource`, random, unique across locations),
created on first connect with its webhook pointing back at us; an instance of that name that
WhatSnap did not ask to create for this account is never adopted. Calls carry the global key in the `apikey` header.

Webhooks are not signed. They are accepted only with the account's secret in our URL
(`?secret=`), and when the envelope carries an `apikey` it must be the global key or the
instance's own token. Events arrive as `messages.upsert` (current) or `MESSAGES_UPSERT`."""
import base64
import hmac
import logging
from dataclasses import replace

from django.conf import settings

from accounts.providers.base import (
    ConnectionChanged,
    DeliveryStatus,
    Health,
    InboundMessage,
    Provider,
    ProviderError,
    QrUpdated,
    SendResult,
    WebhookForbidden,
    WebhookMalformed,
    json_envelope,
    gateway_resource_claim,
    gateway_resource_foreign,
)
from accounts.providers.transport import OPERATOR_LIMITS, Gateway, media_download
from accounts.providers.whatsapp_ids import first_phone, message_time, phone_from_jid

logger = logging.getLogger(__name__)

GATEWAY = Gateway(service="WhatsApp gateway", unauthorized="The WhatsApp gateway refused EVOLUTION_API_KEY (401).",
                  reason_fields=("response.message",), base_setting="EVOLUTION_API_BASE_URL", quotable=True)
WEBHOOK_EVENTS = ["QRCODE_UPDATED", "CONNECTION_UPDATE", "MESSAGES_UPSERT", "MESSAGES_UPDATE", "LOGOUT_INSTANCE"]
QR_LIFETIME_SECONDS = 30
# Baileys receipt states as Evolution names them -> our delivery statuses.
ACK_STATUS = {"SERVER_ACK": "sent", "DELIVERY_ACK": "delivered", "READ": "read", "PLAYED": "read", "ERROR": "failed"}
NOT_CONTENT = {"protocolMessage", "reactionMessage", "senderKeyDistributionMessage", "messageContextInfo", "pollUpdateMessage", "base64"}
MEDIA_KINDS = {
    "imageMessage": "image",
    "videoMessage": "video",
    "audioMessage": "audio",
    "documentMessage": "document",
    "stickerMessage": "sticker",
}


# --- small helpers -------------------------------------------------------------------------
def instance_name(account) -> str:
    return account.gateway_resource


def webhook_url(account) -> str:
    return f"{account.webhook_urls()['inbound']}?secret={account.webhook_secret}"


def _call(method: str, path: str, *, json_body: dict | None = None, ok_statuses=(), limits=OPERATOR_LIMITS):
    return GATEWAY.call(method, path, headers={"apikey": settings.EVOLUTION_API_KEY}, json_body=json_body,
                        ok_statuses=ok_statuses, limits=limits)


def _qr_events(qrcode: dict | None) -> list:
    code = (qrcode or {}).get("code")
    if not code:
        return []
    return [QrUpdated(qr=code, pairing_code=qrcode.get("pairingCode") or "", expires_in=QR_LIFETIME_SECONDS)]


class EvolutionProvider(Provider):
    key = "evolution"
    label = "WhatsApp Web (Evolution API gateway)"
    kinds = ("whatsapp",)
    choice_label = "WhatsApp Web gateway (Evolution API)"
    operator_settings = (GATEWAY.base_setting,)

    def webhook_max_bytes(self) -> int:
        return settings.WHATSAPP_WEBHOOK_MAX_BYTES  # media arrives inline, base64

    # --- session -----------------------------------------------------------------------------
    def connect(self, account) -> list:
        name = instance_name(account)
        webhook = {"url": webhook_url(account), "byEvents": False, "base64": True, "events": WEBHOOK_EVENTS}
        body = {"instanceName": name, "integration": "WHATSAPP-BAILEYS", "qrcode": True, "webhook": webhook}
        if account.phone_number:
            body["number"] = account.phone_number.lstrip("+")  # lets the gateway offer a pairing code
        claimed_before = gateway_resource_claim(account)
        created = _call("POST", "/instance/create", json_body=body, ok_statuses=(403, 409))
        if created.is_success:
            data = GATEWAY.json_object(created)
            self._remember(account, token=data.get("hash"))
            return _qr_events(data.get("qrcode")) or [ConnectionChanged(status="connecting", reason="gateway instance created")]
        if not claimed_before:
            raise gateway_resource_foreign("The WhatsApp gateway", name)
        # Our instance exists already (a reconnect): point its webhook at us again, resume.
        _call("POST", f"/webhook/set/{name}", json_body={"webhook": {"enabled": True, **webhook}})
        suffix = f"?number={body['number']}" if "number" in body else ""
        data = GATEWAY.json_object(_call("GET", f"/instance/connect/{name}{suffix}"))
        state = (data.get("instance") or {}).get("state")
        if state == "open":
            return [ConnectionChanged(status="connected", reason="WhatsApp session already linked")]
        return _qr_events(data) or [ConnectionChanged(status="connecting", reason="gateway is starting the session")]

    def renew_qr(self, account) -> list:
        """Only ask the gateway for the session's current QR (GET /instance/connect): the
        instance and its webhook exist since connect()."""
        name = instance_name(account)
        suffix = f"?number={account.phone_number.lstrip('+')}" if account.phone_number else ""
        data = GATEWAY.json_object(_call("GET", f"/instance/connect/{name}{suffix}"))
        if (data.get("instance") or {}).get("state") == "open":
            return [ConnectionChanged(status="connected", reason="WhatsApp session linked")]
        return _qr_events(data)

    def _remember(self, account, *, token) -> None:
        """Keep the instance token (credentials): webhook envelopes carry it as their `apikey`."""
        if isinstance(token, dict):  # older gateways: {"apikey": ...}
            token = token.get("apikey")
        if token:
            account.credentials = {**account.credentials, "instance_token": str(token)}
            type(account).objects.filter(pk=account.pk).update(credentials=account.credentials)

    def disconnect(self, account) -> None:
        _call("DELETE", f"/instance/logout/{instance_name(account)}", ok_statuses=(400, 404))

    def health(self, account) -> Health:
        try:
            data = GATEWAY.json_object(_call("GET", f"/instance/connectionState/{instance_name(account)}"))
        except ProviderError as exc:
            return Health(ok=False, detail=str(exc), checks=[("gateway reachable", False, str(exc))])
        state = (data.get("instance") or {}).get("state", "unknown")
        advice = "" if state == "open" else "Reconnect the account and scan the QR code with WhatsApp."
        return Health(
            ok=state == "open",
            detail=f"Gateway instance {instance_name(account)} is {state}.",
            checks=[("gateway reachable", True, ""), ("WhatsApp session linked", state == "open", advice)],
        )

    # --- send --------------------------------------------------------------------------------
    def send(self, account, *, to: str, text: str, media=None, idempotency_key: str, reply_to: str = "") -> SendResult:
        # Evolution has no idempotency key; message_deliver's claim makes this call happen once.
        # The account's typing delay goes as Evolution's `delay`: the gateway shows "typing…"
        # (or "recording…" before audio) that long, then sends; the call lasts that much longer.
        name, number = instance_name(account), to.lstrip("+")
        delay_ms = int(getattr(account, "typing_delay_seconds", 0) or 0) * 1000
        extra = {"delay": delay_ms} if delay_ms else {}
        limits = replace(OPERATOR_LIMITS, total=OPERATOR_LIMITS.total + delay_ms / 1000)
        if media:
            # One WhatsApp message carries one file: the first goes as the file, any others as
            # links in its caption (one send, so a retry can never repeat half of it).
            item = media[0]
            data, fetched_type = media_download(item["url"])
            content_type = item.get("content_type") or fetched_type
            caption = "\n".join([text, *(m["url"] for m in media[1:] if m.get("url"))]).strip()
            body = {
                "number": number,
                "mediatype": _media_type(content_type),
                "mimetype": content_type,
                "caption": caption,
                "media": base64.b64encode(data).decode(),  # the file itself: the gateway follows no link of ours
                "fileName": item.get("filename") or item["url"].rsplit("/", 1)[-1][:80],
                **extra,
            }
            response = _call("POST", f"/message/sendMedia/{name}", json_body=body, limits=limits)
        else:
            response = _call("POST", f"/message/sendText/{name}", json_body={"number": number, "text": text, **extra}, limits=limits)
        provider_id = (GATEWAY.json_object(response).get("key") or {}).get("id")
        if not provider_id:
            raise ProviderError(f"WhatsApp gateway accepted the message but returned no key.id: {response.text[:120]!r}")
        return SendResult(provider_id=provider_id, status="sent")

    # --- webhooks ----------------------------------------------------------------------------
    def parse_webhook(self, account, request) -> list:
        secret = request.GET.get("secret", "")
        if not secret or not hmac.compare_digest(secret.encode(), account.webhook_secret.encode()):
            raise WebhookForbidden("missing or wrong ?secret= in the webhook URL")
        envelope = json_envelope(request)
        apikey = envelope.get("apikey")
        if apikey and not _known_key(account, str(apikey)):
            raise WebhookForbidden("envelope apikey is neither the gateway key nor the instance token")
        sent_by = envelope.get("instance")
        if sent_by and sent_by != instance_name(account):
            raise WebhookForbidden(f"event of gateway instance {sent_by!r} sent to the webhook of {instance_name(account)!r}")
        event = str(envelope.get("event", "")).upper().replace(".", "_").replace("-", "_")
        handler = _HANDLERS.get(event)
        if handler is None:
            return []
        data = envelope.get("data")
        items = data if isinstance(data, list) else [data or {}]
        try:
            return [e for item in items for e in handler(item)]
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise WebhookMalformed(f"{event} payload not understood: {exc!r}") from None


def _known_key(account, supplied: str) -> bool:
    candidates = [settings.EVOLUTION_API_KEY, account.credentials.get("instance_token", "")]
    return any(c and hmac.compare_digest(supplied.encode(), c.encode()) for c in candidates)


def _media_type(content_type: str) -> str:
    major = content_type.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "document"


# --- event mapping -------------------------------------------------------------------------
def _on_qrcode(data: dict) -> list:
    return _qr_events(data.get("qrcode"))


def _on_connection(data: dict) -> list:
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
    return []


def _on_logout(data: dict) -> list:
    return [ConnectionChanged(status="logged_out", reason="the gateway instance was logged out")]


def _on_update(data: dict) -> list:
    status = ACK_STATUS.get(str(data.get("status", "")).upper())
    # v2 sends {keyId, remoteJid, fromMe, status}; older gateways spread the key {id, ...}.
    provider_id = data.get("keyId") or data.get("id") or (data.get("key") or {}).get("id")
    from_me = data.get("fromMe", (data.get("key") or {}).get("fromMe", True))
    if not status or not provider_id or not from_me:
        return []  # read receipts of messages we received are not delivery statuses
    return [DeliveryStatus(provider_id=str(provider_id), status=status)]


def _on_upsert(data: dict) -> list:
    key = data["key"]
    if key.get("fromMe"):
        return []  # our own sends (and messages typed on the phone) echo back
    remote = key.get("remoteJid") or ""
    if remote == "status@broadcast" or remote.endswith("@newsletter"):
        return []
    group_id = remote if remote.endswith("@g.us") else ""
    if group_id:
        sender = first_phone(key.get("participant"), key.get("participantAlt"), key.get("participantPn"))
    else:
        sender = first_phone(remote, key.get("remoteJidAlt"), key.get("senderPn"))
    if not sender:
        # Never a contact from a LID: it is not a phone number. Keep the log line; the number
        # arrives with a later message once the gateway can resolve it.
        logger.warning("WhatsApp message %s from %s skipped: no phone number for this sender (LID only)", key.get("id"), remote)
        return []
    message = data.get("message") or {}
    if not message or set(message) <= NOT_CONTENT:
        return []  # reactions, edits/deletes, key distribution: nothing to file as a message
    text, media = _content(message)
    return [
        InboundMessage(
            provider_id=str(key["id"]),
            from_phone=sender,
            name=str(data.get("pushName") or ""),
            text=text,
            media=media,
            at=message_time(data.get("messageTimestamp")),
            group_id=group_id,
        )
    ]


def _content(message: dict) -> tuple[str, tuple]:
    for wrapper in ("ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2", "documentWithCaptionMessage"):
        if isinstance(message.get(wrapper), dict) and message[wrapper].get("message"):
            message = {**message, **message[wrapper]["message"]}
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
        text = _fallback_text(message)
    return str(text), tuple(media)


def _fallback_text(message: dict) -> str:
    """Kinds WhatSnap does not render still reach the inbox, described, rather than vanish."""
    if isinstance(message.get("locationMessage"), dict):
        loc = message["locationMessage"]
        return f"Location: {loc.get('degreesLatitude')}, {loc.get('degreesLongitude')} {loc.get('name') or ''}".strip()
    if isinstance(message.get("contactMessage"), dict):
        return f"Contact card: {message['contactMessage'].get('displayName', '')}".strip()
    kinds = sorted(k for k in message if k not in NOT_CONTENT)
    return f"[WhatsApp {kinds[0] if kinds else 'message'} not shown here; see the phone]"




_HANDLERS = {
    "QRCODE_UPDATED": _on_qrcode,
    "CONNECTION_UPDATE": _on_connection,
    "MESSAGES_UPSERT": _on_upsert,
    "MESSAGES_UPDATE": _on_update,
    "LOGOUT_INSTANCE": _on_logout,
}
