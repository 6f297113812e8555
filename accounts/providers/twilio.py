"""Twilio Programmable Messaging through the official SDK.

Inbound and status webhooks are form-encoded and signed with X-Twilio-Signature (HMAC-SHA1 of
the public URL + sorted params with the auth token); the URL is rebuilt from PUBLIC_BASE_URL so
the check holds behind a proxy. The account id is in our URL, so the signature is checked with
that account's own token whatever number of a Messaging Service pool the message came to."""
import logging

from django.conf import settings
from django.utils import timezone
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator

from accounts.providers.base import (
    DeliveryStatus,
    Health,
    InboundMessage,
    Provider,
    ProviderError,
    SendResult,
    WebhookForbidden,
    WebhookMalformed,
)

logger = logging.getLogger(__name__)

STATUS_MAP = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "failed",
    "canceled": "failed",
}


def twilio_client(account):
    from twilio.rest import Client

    creds = account.credentials
    if creds.get("api_key_sid"):
        client = Client(creds["api_key_sid"], creds["api_key_secret"], creds["account_sid"])
    else:
        client = Client(creds.get("account_sid"), creds.get("auth_token"))
    if settings.TWILIO_API_BASE_URL:
        client.api.base_url = settings.TWILIO_API_BASE_URL
    return client


class TwilioProvider(Provider):
    key = "twilio"
    label = "Twilio"
    kinds = ("twilio",)

    def connect(self, account) -> list:
        from accounts.providers.base import ConnectionChanged

        try:
            twilio_client(account).api.v2010.accounts(account.credentials["account_sid"]).fetch()
        except TwilioRestException as exc:
            permanent = exc.status in (401, 403, 404)
            raise ProviderError(f"Twilio refused the credentials: {exc.msg}", transient=not permanent) from None
        except (TwilioException, OSError) as exc:
            raise ProviderError(f"Twilio is unreachable: {exc}") from None
        return [ConnectionChanged(status="connected", phone=account.phone_number, reason="credentials verified")]

    def disconnect(self, account) -> None:
        return None

    def health(self, account) -> Health:
        try:
            self.connect(account)
        except ProviderError as exc:
            return Health(ok=False, detail=str(exc))
        return Health(ok=True, detail="Twilio accepted the credentials.")

    def send(self, account, *, to: str, text: str, media=None, idempotency_key: str) -> SendResult:
        from django.urls import reverse

        status_url = settings.PUBLIC_BASE_URL + reverse(
            "webhook-status", kwargs={"kind": account.webhook_kind, "account_id": account.pk}
        )
        kwargs = {"to": to, "body": text, "status_callback": status_url}
        if account.config.get("messaging_service_sid"):
            kwargs["messaging_service_sid"] = account.config["messaging_service_sid"]
        else:
            kwargs["from_"] = account.phone_number
        if media:
            kwargs["media_url"] = [m["url"] for m in media][:10]
        try:
            msg = twilio_client(account).messages.create(**kwargs)
        except TwilioRestException as exc:
            raise ProviderError(f"Twilio error {exc.code}: {exc.msg}", transient=exc.status >= 500 or exc.status == 429) from None
        except (TwilioException, OSError) as exc:
            raise ProviderError(f"Twilio is unreachable: {exc}") from None
        return SendResult(provider_id=msg.sid, status=STATUS_MAP.get(msg.status, "sent"))

    def parse_webhook(self, account, request) -> list:
        token = account.credentials.get("auth_token", "")
        signature = request.META.get("HTTP_X_TWILIO_SIGNATURE", "")
        url = settings.PUBLIC_BASE_URL + request.get_full_path()
        params = request.POST.dict()
        if not token or not signature or not RequestValidator(token).validate(url, params, signature):
            raise WebhookForbidden("X-Twilio-Signature missing or invalid")
        if params.get("AccountSid") and params["AccountSid"] != account.credentials.get("account_sid"):
            raise WebhookForbidden("AccountSid does not belong to this account")
        sid = params.get("MessageSid") or params.get("SmsSid")
        if not sid:
            raise WebhookMalformed("MessageSid is missing")
        if "MessageStatus" in params and "Body" not in params:
            status = STATUS_MAP.get(params["MessageStatus"].lower())
            if status is None:
                return []
            error = params.get("ErrorCode", "")
            return [DeliveryStatus(provider_id=sid, status=status, error=f"Twilio error {error}" if error else "")]
        if "From" not in params:
            raise WebhookMalformed("From is missing")
        try:
            num_media = int(params.get("NumMedia", "0") or 0)
        except ValueError:
            raise WebhookMalformed("NumMedia is not a number") from None
        media = tuple(
            {"url": params[f"MediaUrl{i}"], "content_type": params.get(f"MediaContentType{i}", "")}
            for i in range(num_media)
            if f"MediaUrl{i}" in params
        )
        return [
            InboundMessage(
                provider_id=sid,
                from_phone=params["From"],
                name=params.get("ProfileName", ""),
                text=params.get("Body", ""),
                media=media,
                at=timezone.now(),
            )
        ]
