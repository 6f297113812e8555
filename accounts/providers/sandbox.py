"""The built-in Sandbox backend: a simulated phone inside WhatSnap.

It makes the whole product usable with no outside service. A WhatsApp-kind sandbox account
shows a QR whose payload is a link to the sandbox phone page; "Link device" there completes
the pairing. From that page a person writes into the account as any number and name, and
sees the replies. Sends are "delivered" at once. External scripts may post signed JSON to the
account's webhook URL (X-Sandbox-Signature: hex HMAC-SHA256 of the body with the account's
webhook secret)."""
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timezone as dt_timezone

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.providers.base import (
    ConnectionChanged,
    DeliveryStatus,
    Health,
    InboundMessage,
    Provider,
    QrUpdated,
    SendResult,
    WebhookForbidden,
    WebhookMalformed,
)

QR_LIFETIME_SECONDS = 60
SIGNATURE_HEADER = "HTTP_X_SANDBOX_SIGNATURE"


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class SandboxProvider(Provider):
    key = "sandbox"
    label = "Sandbox (simulated phone)"
    kinds = ("whatsapp", "imessage", "android_sms", "twilio")
    simulated = True

    def settings_problems(self, *, kind: str, phone_number: str, credentials: dict, config: dict) -> dict[str, str]:
        # a simulated Twilio account has no Twilio account to find its number in
        if kind == "twilio" and not phone_number:
            return {"phone_number": "The simulated Twilio number is required."}
        return {}

    def connect(self, account) -> list:
        if account.kind != "whatsapp":
            phone = account.phone_number or account.config.get("phone", "")
            return [ConnectionChanged(status="connected", phone=phone, reason="sandbox linked at once")]
        nonce = secrets.token_urlsafe(9)
        account.config = {**account.config, "link_nonce": nonce}
        type(account).objects.filter(pk=account.pk).update(config=account.config)
        url = settings.PUBLIC_BASE_URL + reverse("sandbox-phone", args=[account.pk]) + f"?link={nonce}"
        pairing = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(8))
        account.config["pairing_code"] = pairing
        type(account).objects.filter(pk=account.pk).update(config=account.config)
        return [QrUpdated(qr=url, pairing_code=pairing, expires_in=QR_LIFETIME_SECONDS)]

    def link(self, account, *, nonce: str, phone: str) -> list:
        """The simulated phone scanned the QR (or typed the pairing code)."""
        valid = nonce and nonce in (account.config.get("link_nonce"), account.config.get("pairing_code"))
        if not valid:
            return [ConnectionChanged(status="qr_pending", reason="stale QR code scanned")]
        if account.qr_expires_at and account.qr_expires_at < timezone.now():
            return [ConnectionChanged(status="qr_pending", reason="QR code expired before it was scanned")]
        return [ConnectionChanged(status="connected", phone=phone, reason="device linked")]

    def disconnect(self, account) -> None:
        return None

    def health(self, account) -> Health:
        return Health(ok=True, detail="Sandbox backend: simulated inside WhatSnap, always reachable.")

    def send(self, account, *, to: str, text: str, media=None, idempotency_key: str, reply_to: str = "") -> SendResult:
        # Deterministic id: a retried send of the same message is the same sandbox message;
        # the simulated phone receives it at once.
        return SendResult(provider_id=f"sbx-out-{idempotency_key}", status="delivered")

    def parse_webhook(self, account, request) -> list:
        supplied = request.META.get(SIGNATURE_HEADER, "")
        if not supplied or not hmac.compare_digest(supplied, sign(account.webhook_secret, request.body)):
            raise WebhookForbidden("missing or wrong X-Sandbox-Signature")
        try:
            data = json.loads(request.body)
            if data.get("type", "message") == "status":
                return [DeliveryStatus(provider_id=str(data["id"]), status=str(data["status"]), error=data.get("error", ""))]
            at = data.get("at")
            return [
                InboundMessage(
                    provider_id=str(data["id"]),
                    from_phone=str(data["from"]),
                    name=str(data.get("name", "")),
                    text=str(data.get("text", "")),
                    media=tuple(data.get("media") or ()),
                    at=datetime.fromtimestamp(float(at), tz=dt_timezone.utc) if at else timezone.now(),
                )
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WebhookMalformed(f"sandbox payload not understood: {exc!r}") from None
