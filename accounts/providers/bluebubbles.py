"""iMessage through a Mac running BlueBubbles Server (its REST API and webhooks).

The account's credentials hold the server URL and password; every call authenticates with
`?password=`. BlueBubbles webhooks are configured on the server itself and sent unsigned,
once, without retry: we accept them only with the account's secret in our URL (`?secret=`),
which is the URL to paste into the server's webhook settings (see `webhook_url`).

The server URL is a person's input: every call to it goes through whatsnap.guarded_fetch (a
Mac on the shop's LAN needs GATEWAY_ALLOW_PRIVATE_URLS), follows no redirect, and an error
shows the server's JSON error message at most, never its raw body."""
import hmac
import json
import logging
from datetime import datetime, timezone as dt_timezone

from django import forms
from django.utils import timezone

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

# AppleScript sends wait for the message to appear in Messages' database before answering.
LIMITS = guarded_fetch.Limits(connect=5.0, total=30.0, max_bytes=1024 * 1024)
# the server's own error message at most: whatever answers at a typed address may not be
# BlueBubbles, and its raw body is not ours to show
GATEWAY = Gateway(service="BlueBubbles", unauthorized="BlueBubbles refused the server password (401).",
                  reason_fields=("error.message", "message"), unreachable="BlueBubbles server unreachable at {where}",
                  bad_answer="BlueBubbles server at {where}")


def webhook_url(account) -> str:
    """The URL to register in BlueBubbles Server -> API & Webhooks."""
    return f"{account.webhook_urls()['inbound']}?secret={account.webhook_secret}"


def chat_guid(account, to: str) -> str:
    if ";" in to:  # a group thread's contact is the chat itself: iMessage;+;chat123
        return to
    service = account.config.get("service", "iMessage")  # "SMS" for green-bubble-only numbers
    return f"{service};-;{to}"


def _call(account, method: str, path: str, *, json_body: dict | None = None) -> dict:
    server = (account.credentials.get("server_url") or "").rstrip("/")
    password = account.credentials.get("password") or ""
    if not server or not password:
        raise ProviderError("BlueBubbles server URL and password are required.", transient=False)
    response = GATEWAY.call(method, path, base=server, params={"password": password}, json_body=json_body, limits=LIMITS)
    body = decoded(response)
    return body if isinstance(body, dict) else {}


class BlueBubblesProvider(Provider):
    key = "bluebubbles"
    label = "iMessage (BlueBubbles on a Mac)"
    kinds = ("imessage",)
    settable_config = {"service": ("iMessage", "SMS"), "send_method": ("apple-script", "private-api")}
    settable_credentials = ("server_url", "password")
    required_credentials = ("server_url", "password")
    form_field_of_setting = {"server_url": "bluebubbles_url"}

    def form_fields(self) -> dict[str, forms.Field]:
        return {
            "bluebubbles_url": forms.URLField(
                required=False, label="BlueBubbles server URL", help_text="As shown in BlueBubbles Server, e.g. https://mac.example.com:1234"
            ),
            "bluebubbles_password": forms.CharField(required=False, label="BlueBubbles server password", widget=forms.PasswordInput),
        }

    def form_required(self, data: dict) -> tuple[str, ...]:
        return ("bluebubbles_url", "bluebubbles_password")

    def form_settings(self, data: dict) -> tuple[dict, dict]:
        return {"server_url": data["bluebubbles_url"], "password": data["bluebubbles_password"]}, {}

    def setup_webhook_url(self, account) -> str:
        return webhook_url(account)

    def address_problems(self, *, credentials: dict, config: dict) -> dict[str, str]:
        server = (credentials.get("server_url") or "").strip()
        problem = guarded_fetch.address_problem(server, purpose=guarded_fetch.GATEWAY) if server else ""
        return {"server_url": problem} if problem else {}

    def media_request(self, account, item: dict) -> dict | None:
        """Attachments stay on the Mac: GET /api/v1/attachment/{guid}/download (password auth)."""
        guid = item.get("attachment_guid")
        server = (account.credentials.get("server_url") or "").rstrip("/")
        if not guid or not server:
            return super().media_request(account, item)
        return {"url": f"{server}/api/v1/attachment/{guid}/download", "purpose": guarded_fetch.GATEWAY,
                "params": {"password": account.credentials.get("password", "")}}

    def connect(self, account) -> list:
        # Nothing to register remotely: the server's webhooks are set in its own settings.
        _call(account, "GET", "/api/v1/ping")
        return [ConnectionChanged(status="connected", phone=account.phone_number, reason="BlueBubbles server answered ping")]

    def disconnect(self, account) -> None:
        return None

    def health(self, account) -> Health:
        try:
            _call(account, "GET", "/api/v1/ping")
        except ProviderError as exc:
            return Health(ok=False, detail=str(exc), checks=[("BlueBubbles server reachable", False, str(exc))])
        advice = "BlueBubbles Server -> API & Webhooks must hold the account's webhook URL, with its ?secret=."
        return Health(ok=True, detail="BlueBubbles server answered ping.", checks=[("BlueBubbles server reachable", True, advice)])

    def send(self, account, *, to: str, text: str, media=None, idempotency_key: str, reply_to: str = "") -> SendResult:
        if media:  # attachments need a multipart upload of the file; send the links instead
            text = "\n".join([text, *(m["url"] for m in media if m.get("url"))]).strip()
        body = {
            "chatGuid": chat_guid(account, to),
            "message": text,
            "tempGuid": idempotency_key,  # BlueBubbles refuses a reused tempGuid while it is queued
            "method": account.config.get("send_method", "apple-script"),
        }
        data = _call(account, "POST", "/api/v1/message/text", json_body=body).get("data") or {}
        return SendResult(provider_id=str(data.get("guid") or idempotency_key), status="sent")

    def parse_webhook(self, account, request) -> list:
        secret = request.GET.get("secret", "")
        if not secret or not hmac.compare_digest(secret.encode(), account.webhook_secret.encode()):
            raise WebhookForbidden("missing or wrong ?secret= in the webhook URL")
        try:
            envelope = json.loads(request.body)
            kind, data = envelope.get("type"), envelope.get("data") or {}
            if kind == "new-message":
                return _inbound(data)
            if kind == "updated-message":
                return _receipt(data)
            if kind == "message-send-error":
                return _send_error(data)
            return []
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WebhookMalformed(f"BlueBubbles payload not understood: {exc!r}") from None


def _inbound(data: dict) -> list:
    if data.get("isFromMe"):
        return []  # echoes of what we (or the Mac's owner) sent
    handle = data.get("handle") or {}
    if not handle.get("address"):
        logger.info("BlueBubbles message %s without a sender handle skipped", data.get("guid"))
        return []
    chat = (data.get("chats") or [{}])[0]
    is_group = ";+;" in (chat.get("guid") or "")
    media = tuple(
        {"url": "", "content_type": a.get("mimeType") or "", "filename": a.get("transferName") or "", "attachment_guid": a.get("guid", "")}
        for a in data.get("attachments") or ()
    )
    return [
        InboundMessage(
            provider_id=str(data["guid"]),
            from_phone=str(handle["address"]),
            name="",
            text=str(data.get("text") or ""),
            media=media,
            at=_epoch_ms(data.get("dateCreated")),
            group_id=chat["guid"] if is_group else "",
            group_name=(chat.get("displayName") or "") if is_group else "",
        )
    ]


def _receipt(data: dict) -> list:
    if not data.get("isFromMe"):
        return []
    if data.get("error"):
        return [DeliveryStatus(provider_id=str(data["guid"]), status="failed", error=f"iMessage error {data['error']}")]
    if data.get("dateRead"):
        return [DeliveryStatus(provider_id=str(data["guid"]), status="read")]
    if data.get("dateDelivered"):
        return [DeliveryStatus(provider_id=str(data["guid"]), status="delivered")]
    return []


def _send_error(data: dict) -> list:
    guid = data.get("guid") or data.get("tempGuid")
    if not guid:
        return []
    return [DeliveryStatus(provider_id=str(guid), status="failed", error=f"iMessage error {data.get('error', 'unknown')}")]


def _epoch_ms(value) -> datetime:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=dt_timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return timezone.now()
