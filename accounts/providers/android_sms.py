"""SMS through an Android phone running SMS Gateway for Android (capcom6).

Two modes, same API: `local` talks to the phone itself (config device_url, e.g.
http://192.168.1.20:8080: a person's input, so called through whatsnap.guarded_fetch, which
allows a LAN address only with GATEWAY_ALLOW_PRIVATE_URLS); `cloud` talks to the operator's
SMS_GATEWAY_CLOUD_BASE_URL, which relays to the phone. Both use Basic auth with the
username/password shown in the app. Connect registers our webhook for the four SMS events
(fixed ids, so reconnecting replaces rather than adds).

Webhooks come straight from the phone, signed: X-Signature = hex HMAC-SHA256(signing key,
raw body + X-Timestamp); older than 5 minutes is refused. The phone retries (up to ~2 days),
so inbound messages are keyed by their payload messageId (see _inbound)."""
import hashlib
import hmac
import json
import logging
import time
from datetime import datetime

import httpx
from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.providers.base import (
    ConnectionChanged,
    DeliveryStatus,
    Health,
    InboundMessage,
    Provider,
    ProviderError,
    SendResult,
    WebhookForbidden,
    WebhookMalformed,
)
from accounts.providers.transport import Gateway, decoded
from whatsnap import guarded_fetch

logger = logging.getLogger(__name__)

# the gateway's own error message (its JSON `message`) at most, never other text: whatever
# answers at a typed address may not be a gateway, and its body is not ours to show
GATEWAY = Gateway(service="SMS gateway", unauthorized="SMS gateway refused the username/password ({status}).",
                  refused=(401, 403), base_setting="SMS_GATEWAY_CLOUD_BASE_URL",
                  unreachable="Cannot reach {where}", bad_answer="Cannot use the answer of {where}")
DEVICE_LIMITS = guarded_fetch.Limits(connect=5.0, total=15.0, max_bytes=1024 * 1024)
EVENTS = ("sms:received", "sms:sent", "sms:delivered", "sms:failed")
MAX_SKEW_SECONDS = 5 * 60
STATE_STATUS = {"Pending": "queued", "Processed": "queued", "Sent": "sent", "Delivered": "delivered", "Failed": "failed"}


def sign(key: str, body: bytes, timestamp: str) -> str:
    return hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def webhook_id(account, event: str) -> str:
    return f"whatsnap-{account.pk}-{event.replace(':', '-')}"


def _cloud(config: dict) -> bool:
    return config.get("mode", "local") == "cloud"


def device_url(config: dict) -> str:
    """The phone's address in local mode as typed ("192.168.1.20:8080" means http://)."""
    address = (config.get("device_url") or "").strip().rstrip("/")
    return address if not address or "://" in address else f"http://{address}"


def _call(account, method: str, path: str, *, json_body: dict | None = None, ok_statuses=()) -> httpx.Response:
    if _cloud(account.config):  # the operator's relay: its configured base, a trusted origin
        base, where = None, f"the SMS gateway cloud at {settings.SMS_GATEWAY_CLOUD_BASE_URL}"
    else:
        base = device_url(account.config)
        if not base:
            raise ProviderError("The phone's address (local mode) is not set.", transient=False)
        where = f"the phone at {base}"
    auth = (account.credentials.get("username", ""), account.credentials.get("password", ""))
    return GATEWAY.call(method, path, base=base, where=where, auth=auth, json_body=json_body, ok_statuses=ok_statuses,
                        limits=DEVICE_LIMITS)


class AndroidSmsProvider(Provider):
    key = "android_sms"
    label = "SMS (SMS Gateway for Android)"
    kinds = ("android_sms",)
    settable_config = {"mode": ("local", "cloud"), "device_url": None}
    settable_credentials = ("username", "password", "signing_key")
    idempotent_sends = True  # the gateway answers 409 to a second message with our id
    required_credentials = ("username", "password", "signing_key")
    form_field_of_setting = {"device_url": "gateway_address"}

    def form_fields(self) -> dict[str, forms.Field]:
        return {
            "gateway_mode": forms.ChoiceField(
                required=False,
                label="SMS Gateway mode",
                choices=[("local", "Local server (the phone's own address)"), ("cloud", "Cloud server (api.sms-gate.app)")],
                initial="local",
            ),
            "gateway_address": forms.CharField(
                required=False, max_length=200, label="Phone address (local mode)",
                help_text="The phone's address as the WhatSnap server reaches it, e.g. http://phone.example.com:8080. "
                          "A local-network address (192.168.…) works only when the server is on that network and its operator "
                          "allows it; otherwise use cloud mode."
            ),
            "gateway_username": forms.CharField(required=False, max_length=100, label="SMS Gateway username"),
            "gateway_password": forms.CharField(required=False, label="SMS Gateway password", widget=forms.PasswordInput),
            "gateway_signing_key": forms.CharField(
                required=False,
                label="Webhook signing key",
                widget=forms.PasswordInput,
                help_text="In the app: Settings → Webhooks → Signing Key.",
            ),
        }

    def form_required(self, data: dict) -> tuple[str, ...]:
        required = ("gateway_username", "gateway_password", "gateway_signing_key")
        return required if data.get("gateway_mode", "local") == "cloud" else (*required, "gateway_address")

    def form_settings(self, data: dict) -> tuple[dict, dict]:
        mode = data.get("gateway_mode") or "local"
        config = {"mode": mode, **({"device_url": data["gateway_address"]} if mode == "local" else {})}
        credentials = {"username": data["gateway_username"], "password": data["gateway_password"],
                       "signing_key": data["gateway_signing_key"]}
        return credentials, config

    def address_problems(self, *, credentials: dict, config: dict) -> dict[str, str]:
        if _cloud(config) or not device_url(config):
            return {}
        problem = guarded_fetch.address_problem(device_url(config), purpose=guarded_fetch.GATEWAY)
        return {"device_url": problem} if problem else {}

    def connect(self, account) -> list:
        url = account.webhook_urls()["inbound"]
        for event in EVENTS:
            _call(account, "POST", "/webhooks", json_body={"id": webhook_id(account, event), "url": url, "event": event})
        return [ConnectionChanged(status="connected", phone=account.phone_number, reason="webhooks registered on the SMS gateway")]

    def disconnect(self, account) -> None:
        for event in EVENTS:
            _call(account, "DELETE", f"/webhooks/{webhook_id(account, event)}", ok_statuses=(404,))

    def health(self, account) -> Health:
        try:
            listed = GATEWAY.json(_call(account, "GET", "/webhooks")) or []
        except ProviderError as exc:
            return Health(ok=False, detail=str(exc), checks=[("SMS gateway reachable", False, str(exc))])
        registered = {w.get("event") for w in listed if isinstance(w, dict) and w.get("id", "").startswith(f"whatsnap-{account.pk}-")}
        missing = [e for e in EVENTS if e not in registered]
        advice = f"Reconnect the account to register: {', '.join(missing)}" if missing else ""
        return Health(
            ok=not missing,
            detail="SMS gateway reachable" + (f"; webhooks missing: {', '.join(missing)}" if missing else ", webhooks registered."),
            checks=[("SMS gateway reachable", True, ""), ("webhooks registered", not missing, advice)],
        )

    def send(self, account, *, to: str, text: str, media=None, idempotency_key: str, reply_to: str = "") -> SendResult:
        if media:  # SMS carries text only: send the links
            text = "\n".join([text, *(m["url"] for m in media if m.get("url"))]).strip()
        body = {"textMessage": {"text": text}, "phoneNumbers": [to], "id": idempotency_key}
        response = _call(account, "POST", "/message", json_body=body, ok_statuses=(409,))
        if response.status_code == 409:
            # The gateway already holds a message with this id: an earlier attempt got
            # through. Count it as sent; never send a second copy.
            logger.info("SMS gateway already has message %s; not sending it again", idempotency_key)
            return SendResult(provider_id=idempotency_key, status="sent")
        body = decoded(response)
        state = body.get("state", "Pending") if isinstance(body, dict) else "Pending"
        if state == "Failed":
            raise ProviderError("The phone reported the SMS as failed.", transient=False)
        return SendResult(provider_id=idempotency_key, status=STATE_STATUS.get(state, "queued"))

    def parse_webhook(self, account, request) -> list:
        _verify(account, request)
        try:
            envelope = json.loads(request.body)
            event, payload = envelope["event"], envelope.get("payload") or {}
            if event == "sms:received":
                return [_inbound(payload)]
            status = {"sms:sent": "sent", "sms:delivered": "delivered", "sms:failed": "failed"}.get(event)
            if status is None:
                return []  # system:ping, data SMS, MMS: nothing to file
            error = str(payload.get("reason") or "") if status == "failed" else ""
            return [DeliveryStatus(provider_id=str(payload["messageId"]), status=status, error=error)]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WebhookMalformed(f"SMS gateway payload not understood: {exc!r}") from None


def _verify(account, request) -> None:
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


def _inbound(payload: dict) -> InboundMessage:
    received_at = str(payload.get("receivedAt") or "")
    # The app derives messageId from a 32-bit hash of the message: stable across the phone's
    # retries, but two messages can share it. Qualified by the receive time it stays the
    # same for a redelivery and tells different messages apart.
    provider_id = f"{payload['messageId']}@{received_at}" if received_at else str(payload["messageId"])
    sender = payload.get("sender") or payload["phoneNumber"]  # older app versions name it phoneNumber
    return InboundMessage(
        provider_id=provider_id[:128],
        from_phone=str(sender),
        name="",
        text=str(payload.get("message") or ""),
        at=_parse_time(received_at),
    )


def _parse_time(value: str) -> datetime:
    parsed = parse_datetime(value) if value else None
    if parsed is None:
        return timezone.now()
    return parsed if parsed.tzinfo else timezone.make_aware(parsed)
