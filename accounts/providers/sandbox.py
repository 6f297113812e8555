"""The built-in Sandbox backend: a simulated phone inside WhatSnap.

It makes the whole product usable with no outside service. A WhatsApp-kind sandbox account
shows a QR whose payload is a link to the sandbox phone page; "Link device" there completes
the pairing. From that page a person writes into the account as any number and name, and
sees the replies. Sends are "delivered" at once; reactions and read receipts are accepted at
once too (the phone page shows them from what WhatSnap recorded). External scripts may post
signed JSON to the account's webhook URL (X-Sandbox-Signature: hex HMAC-SHA256 of the body with
the account's webhook secret); the phone page files the same JSON through parse_envelope().

The JSON, by `type` (`at`: epoch seconds, optional):
- "message" (the default): {id, from, name?, text?, media?, reply_to?, quoted_text?, group_id?, group_name?}
- "from_me": typed on the account's own phone: {id, to, text?, media?, reply_to?, quoted_text?}
- "reaction": {target, emoji ('' removes), from? | from_me: true, id?}
- "edit": {target, text, id?}; "delete": {target} (deleted for everyone)
- "chat_event": a group system item {id, group_id, text, group_name?}
- "status": {id, status, error?}
Any other type is kept unfiled with its reason."""
import hashlib
import hmac
import secrets
from datetime import datetime, timezone as dt_timezone

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.providers.base import (
    ChatEvent,
    ConnectionChanged,
    DeliveryStatus,
    Health,
    edit_id,
    InboundMessage,
    MessageDeleted,
    MessageEdited,
    Provider,
    QrUpdated,
    Reaction,
    SendResult,
    Unfiled,
    WebhookForbidden,
    WebhookMalformed,
    json_envelope,
)
from accounts.providers.media import ANY_MEDIA, media_bytes

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

    # every kind of file WhatSnap takes, up to 10 in one message (the simulated phone shows them)
    media_limits = ANY_MEDIA

    def send(self, account, *, to: str, text: str, media=None, idempotency_key: str, reply_to: str = "") -> SendResult:
        # Deterministic id: a retried send of the same message is the same sandbox message;
        # the simulated phone receives it at once. A stored file is read as a real backend
        # would (one no longer stored fails the send).
        for item in media or ():
            if item.get("storage_name"):
                media_bytes(item)
        return SendResult(provider_id=f"sbx-out-{idempotency_key}", status="delivered")

    # The simulated phone shows reactions and blue ticks from what WhatSnap recorded, so both
    # are accepted at once.
    supports_reactions = True
    supports_read_receipts = True

    def react(self, account, *, to: str, target_id: str, target_from_me: bool, emoji: str) -> None:
        return None

    def mark_read(self, account, *, to: str, provider_ids: list[str]) -> None:
        return None

    def parse_webhook(self, account, request) -> list:
        supplied = request.META.get(SIGNATURE_HEADER, "")
        if not supplied or not hmac.compare_digest(supplied, sign(account.webhook_secret, request.body)):
            raise WebhookForbidden("missing or wrong X-Sandbox-Signature")
        return self.parse_envelope(account, json_envelope(request))

    def parse_envelope(self, account, envelope: dict) -> list:
        kind = envelope.get("type", "message")
        parse = _PARSERS.get(kind) if isinstance(kind, str) else None
        if parse is None:
            return [Unfiled(reason=f"unsupported event type {str(kind)[:40]!r}", envelope=envelope, key=str(envelope.get("id", ""))[:100])]
        try:
            return [parse(envelope)]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WebhookMalformed(f"sandbox {kind} not understood: {exc!r}") from None


def _at(data: dict) -> datetime:
    at = data.get("at")
    return datetime.fromtimestamp(float(at), tz=dt_timezone.utc) if at else timezone.now()


def _message(data: dict, *, from_me: bool = False) -> InboundMessage:
    return InboundMessage(
        provider_id=str(data["id"]),
        from_phone=str(data["to"] if from_me else data["from"]),
        name="" if from_me else str(data.get("name", "")),
        text=str(data.get("text", "")),
        media=tuple(data.get("media") or ()),
        at=_at(data),
        group_id=str(data.get("group_id", "")),
        group_name=str(data.get("group_name", "")),
        from_me=from_me,
        reply_to=str(data.get("reply_to", "")),
        quoted_text=str(data.get("quoted_text", ""))[:300],
    )


def _reaction(data: dict) -> Reaction:
    target, emoji, from_me = str(data["target"]), str(data.get("emoji", "")), bool(data.get("from_me"))
    who = "me" if from_me else str(data["from"])
    return Reaction(provider_id=str(data.get("id") or f"{target}:{who}:{emoji}"), target_id=target, emoji=emoji,
                    at=_at(data), from_me=from_me, from_phone="" if from_me else who, chat=_chat(data))


def _edit(data: dict) -> MessageEdited:
    target, text = str(data["target"]), str(data["text"])
    return MessageEdited(provider_id=str(data.get("id") or edit_id(target, text)), target_id=target, text=text, at=_at(data),
                         from_me=bool(data.get("from_me")), by=str(data.get("from", "")), chat=_chat(data))


def _chat(data: dict) -> str:
    """The chat a reaction, edit or deletion is in: the group, or the phone that wrote (or was
    written to from the account's own phone)."""
    return str(data.get("group_id") or data.get("from") or data.get("to") or "")


_PARSERS = {
    "message": _message,
    "from_me": lambda data: _message(data, from_me=True),
    "reaction": _reaction,
    "edit": _edit,
    "delete": lambda data: MessageDeleted(target_id=str(data["target"]), at=_at(data), from_me=bool(data.get("from_me")),
                                          by=str(data.get("from", "")), chat=_chat(data)),
    "chat_event": lambda data: ChatEvent(provider_id=str(data["id"]), group_id=str(data["group_id"]), text=str(data["text"]),
                                         at=_at(data), group_name=str(data.get("group_name", ""))),
    "status": lambda data: DeliveryStatus(provider_id=str(data["id"]), status=str(data["status"]), error=str(data.get("error", ""))),
}
