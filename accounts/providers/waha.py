"""WhatsApp through a self-hosted WAHA gateway (devlikeapro's WhatsApp HTTP API; WhatsApp Web,
QR or pairing-code linking).

One gateway (WAHA_API_BASE_URL) serves every account; each account is one WAHA session named
by WhatSnap (`Account.gateway_resource`: random, unique across locations; so WAHA Plus, which
runs many sessions, is needed: WAHA Core runs only `default`, which no tenant may claim).
connect() creates the session with its webhook pointing back at us, or, when WhatSnap created
it for this account before, updates it and starts it; a session of that name WhatSnap did not
ask to create for this account is never adopted. Calls carry
WAHA_API_KEY in the `X-Api-Key` header.

Webhooks are signed: the session's webhook is registered with an HMAC key (the account's
webhook secret) and WAHA sends `X-Webhook-Hmac` = hex HMAC-SHA512 of the raw body, with
`X-Webhook-Hmac-Algorithm: sha512`. Nothing unsigned or wrongly signed is accepted.

Envelopes are `{event, session, me, payload, engine, ...}`; we use `message` (incoming messages
only: our own sends and messages typed on the phone also arrive, marked fromMe),
`message.ack` (delivery receipts) and `session.status`. Payload shapes differ a little between
WAHA's engines (WEBJS, NOWEB, GOWS); the fields read here are the ones its docs give for all."""
import base64
import hashlib
import hmac
import json
import logging
import re
import time
from datetime import datetime, timezone as dt_timezone
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.utils import timezone

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
    answer_error,
    gateway_resource_claim,
    gateway_resource_foreign,
    media_download,
    request_may_have_arrived,
)
from accounts.providers.whatsapp_ids import first_phone, phone_from_jid

logger = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(15.0, connect=5.0)
WEBHOOK_EVENTS = ["message", "message.ack", "session.status"]
HMAC_ALGORITHM = "sha512"
# WAHA renews the code on its own (the first one lives about a minute, the next ones ~20 s):
# the inbox asks again after this long.
QR_LIFETIME_SECONDS = 20
# message.ack: ackName (or its number) -> our delivery statuses; PENDING (0) says nothing new.
ACK_NAMES = {-1: "ERROR", 0: "PENDING", 1: "SERVER", 2: "DEVICE", 3: "READ", 4: "PLAYED"}
ACK_STATUS = {"ERROR": "failed", "SERVER": "sent", "DEVICE": "delivered", "READ": "read", "PLAYED": "read"}
NOT_A_CHAT = ("status@broadcast",)
NOT_A_CHAT_SUFFIXES = ("@newsletter", "@broadcast")


# --- small helpers -------------------------------------------------------------------------
def session_name(account) -> str:
    return account.gateway_resource


def webhook_url(account) -> str:
    from accounts.services import account_webhook_urls

    return account_webhook_urls(account)["inbound"]


def chat_id(to: str) -> str:
    """Our recipient -> WAHA chatId: '+14155550123' -> '14155550123@c.us'; a group jid as is."""
    return to if "@" in to else f"{to.lstrip('+')}@c.us"


def _call(method: str, path: str, *, json_body: dict | None = None, params: dict | None = None, ok_statuses=(), timeout=TIMEOUT) -> httpx.Response:
    base = settings.WAHA_API_BASE_URL
    if not base:
        raise ProviderError("WAHA_API_BASE_URL is not set: no WAHA gateway configured.", transient=False)
    try:
        response = httpx.request(
            method, base + path, json=json_body, params=params, headers={"X-Api-Key": settings.WAHA_API_KEY}, timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise ProviderError(f"WAHA gateway unreachable at {base}: {exc}", ambiguous=request_may_have_arrived(exc)) from None
    if response.is_success or response.status_code in ok_statuses:
        return response
    raise answer_error("WAHA gateway", response, method, path, _reason(response),
                       unauthorized="The WAHA gateway refused WAHA_API_KEY (401).")


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict):
        return str(body)[:200]
    message = body.get("message") or (body.get("exception") or {}).get("message") or body.get("error")
    if isinstance(message, list):
        message = "; ".join(str(m) for m in message)
    return str(message or body)[:200]


def _json(response: httpx.Response):
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise ProviderError(f"WAHA gateway answered non-JSON: {response.text[:120]!r}") from None


def _session_info(name: str) -> dict | None:
    """GET /api/sessions/{name}: the session's status (and `me` once linked); None if unknown."""
    response = _call("GET", f"/api/sessions/{name}", ok_statuses=(404,))
    if response.status_code == 404:
        return None
    data = _json(response)
    return data if isinstance(data, dict) else {}


def _qr_value(name: str) -> str:
    """The raw QR string (GET /api/{session}/auth/qr?format=raw -> {"value"}); '' when the
    session is not waiting for a scan (WAHA answers 422 then)."""
    response = _call("GET", f"/api/{name}/auth/qr", params={"format": "raw"}, ok_statuses=(422,))
    if response.status_code == 422:
        return ""
    data = _json(response)
    return str((data or {}).get("value") or "") if isinstance(data, dict) else ""


def _pairing_code(account, name: str) -> str:
    """A code to link with the phone number instead of the QR (POST …/auth/request-code);
    '' without a number, or when the engine cannot give one (the QR still works)."""
    if not account.phone_number:
        return ""
    try:
        data = _json(_call("POST", f"/api/{name}/auth/request-code", json_body={"phoneNumber": account.phone_number.lstrip("+")}))
    except ProviderError as exc:
        if exc.transient:
            raise
        logger.warning("WAHA session %s gave no pairing code (the QR code still works): %s", name, exc)
        return ""
    return str((data or {}).get("code") or "") if isinstance(data, dict) else ""


def _has_webhook(config, ours: dict) -> bool:
    """Does the session's stored config already post our events to our URL with our key?"""
    hooks = (config or {}).get("webhooks") if isinstance(config, dict) else None
    for hook in hooks or []:
        if not isinstance(hook, dict):
            continue
        if (hook.get("url"), (hook.get("hmac") or {}).get("key")) == (ours["url"], ours["hmac"]["key"]) and set(
            hook.get("events") or []
        ) >= set(ours["events"]):
            return True
    return False


def _me_phone(me) -> str:
    return phone_from_jid((me or {}).get("id") or "") if isinstance(me, dict) else ""


def _status_event(status: str, me=None) -> ConnectionChanged | None:
    """A WAHA session status -> our connection status (SCAN_QR_CODE is handled by the caller)."""
    if status == "WORKING":
        name = (me.get("pushName") or "") if isinstance(me, dict) else ""
        return ConnectionChanged(status="connected", phone=_me_phone(me), reason=f"WhatsApp linked {name}".strip())
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


# One file name as WAHA writes it ("false_14155550123@c.us_3EB0….jpg"): no other segment, no
# dot-dot, no percent-escape that a URL parser would turn into one.
FILE_NAME = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_@.\-]{0,200}")


def _own_file(account, path: str) -> str | None:
    prefix = f"/api/files/{account.gateway_resource}/"
    name = path[len(prefix):] if path.startswith(prefix) else ""
    return name if FILE_NAME.fullmatch(name) and ".." not in name else None


class WahaProvider(Provider):
    key = "waha"
    label = "WhatsApp Web (WAHA gateway)"
    kinds = ("whatsapp",)

    def webhook_max_bytes(self) -> int:
        return settings.WHATSAPP_WEBHOOK_MAX_BYTES  # media arrives inline, base64


    # --- session -----------------------------------------------------------------------------
    def connect(self, account) -> list:
        name = session_name(account)
        config = {"webhooks": [{"url": webhook_url(account), "events": WEBHOOK_EVENTS, "hmac": {"key": account.webhook_secret}}]}
        claimed_before = gateway_resource_claim(account)
        created = _call("POST", "/api/sessions", json_body={"name": name, "config": config}, ok_statuses=(409, 422))
        if not created.is_success and not claimed_before:
            raise gateway_resource_foreign("The WAHA gateway", name)
        if not created.is_success:
            # WAHA refuses a second session of the same name (422 "already exists. Use PUT").
            # A reconnect points its webhook at us again, unless it does already: an update
            # restarts a running session, which a linked account need not go through.
            existing = _session_info(name)
            if existing is None:
                raise ProviderError(f"WAHA gateway refused to create session {name}: {_reason(created)}", transient=False)
            if not _has_webhook(existing.get("config"), config["webhooks"][0]):
                _call("PUT", f"/api/sessions/{name}", json_body={"config": config})
        _call("POST", f"/api/sessions/{name}/start")  # idempotent: a running session stays as it is
        info = _session_info(name)
        if info is None:
            raise ProviderError(f"WAHA session {name} vanished right after it was started.")
        status = str(info.get("status") or "")
        if status == "SCAN_QR_CODE":
            qr = _qr_value(name)
            if qr:
                return [QrUpdated(qr=qr, pairing_code=_pairing_code(account, name), expires_in=QR_LIFETIME_SECONDS)]
        if status == "WORKING" and not info.get("me"):
            me = _json(_call("GET", f"/api/sessions/{name}/me", ok_statuses=(404,)))
            info["me"] = me if isinstance(me, dict) else None
        event = _status_event(status, info.get("me"))
        return [event or ConnectionChanged(status="connecting", reason=f"WAHA session is {status or 'starting'}")]

    def renew_qr(self, account) -> list:
        """Only ask WAHA for the session's current QR: the session and its webhook exist since
        connect(). The pairing code stays the one connect() got."""
        qr = _qr_value(session_name(account))
        if not qr:
            return []
        return [QrUpdated(qr=qr, pairing_code=account.pairing_code or "", expires_in=QR_LIFETIME_SECONDS)]

    def disconnect(self, account) -> None:
        # Stop first: WAHA's logout restarts a running session (it would ask for a new QR).
        name = session_name(account)
        _call("POST", f"/api/sessions/{name}/stop", ok_statuses=(404,))
        _call("POST", f"/api/sessions/{name}/logout", ok_statuses=(404, 422))

    def health(self, account) -> Health:
        name = session_name(account)
        try:
            info = _session_info(name)
        except ProviderError as exc:
            return Health(ok=False, detail=str(exc), checks=[("gateway reachable", False, str(exc))])
        if info is None:
            advice = "Reconnect the account: the WAHA gateway has no session for it."
            return Health(ok=False, detail=f"WAHA session {name} does not exist.",
                          checks=[("gateway reachable", True, ""), ("WhatsApp session linked", False, advice)])
        status = str(info.get("status") or "unknown")
        ok = status == "WORKING"
        advice = "" if ok else "Reconnect the account and scan the QR code with WhatsApp."
        return Health(
            ok=ok,
            detail=f"WAHA session {name} is {status}.",
            checks=[("gateway reachable", True, ""), ("WhatsApp session linked", ok, advice)],
        )

    def media_request(self, account, item: dict) -> dict | None:
        """WAHA serves received files at /api/files/<session>/<file> behind the API key. The
        URL in the webhook carries WAHA's own idea of its host name (WHATSAPP_API_HOSTNAME), so
        the path is fetched from WAHA_API_BASE_URL. The key is sent only for one file of this
        account's own session (the operator's key opens every tenant's sessions, and an
        attachment URL can come from a client): anything else is fetched as any link, without
        the key, through the guard."""
        url = item.get("url") or ""
        if not url.startswith(("http://", "https://")):
            return None
        file_name = _own_file(account, urlsplit(url).path)
        if not settings.WAHA_API_BASE_URL or file_name is None:
            return {"url": url}
        path = f"/api/files/{account.gateway_resource}/{file_name}"
        return {"url": settings.WAHA_API_BASE_URL + path, "headers": {"X-Api-Key": settings.WAHA_API_KEY}, "trusted": True}

    # --- send --------------------------------------------------------------------------------
    def send(self, account, *, to: str, text: str, media=None, idempotency_key: str) -> SendResult:
        # WAHA has no idempotency key; message_deliver's claim makes this call happen once.
        name, chat = session_name(account), chat_id(to)
        delay = int(getattr(account, "typing_delay_seconds", 0) or 0)
        if delay:
            self._typing(name, chat, delay)
        try:
            response = self._send(name, chat, text, media)
        finally:
            if delay:
                self._typing_off(name, chat)
        provider_id = _sent_id(_json(response), chat)
        if not provider_id:
            raise ProviderError(f"WAHA gateway accepted the message but returned no message id: {response.text[:120]!r}")
        return SendResult(provider_id=provider_id, status="sent")

    def _send(self, name: str, chat: str, text: str, media) -> httpx.Response:
        if media:
            # One WhatsApp message carries one file: the first goes as the file, any others as
            # links in its caption (one send, so a retry can never repeat half of it).
            item = media[0]
            data, fetched_type = media_download(item["url"])
            content_type = item.get("content_type") or fetched_type or "application/octet-stream"
            caption = "\n".join([text, *(m["url"] for m in media[1:] if m.get("url"))]).strip()
            file = {
                "data": base64.b64encode(data).decode(),  # the file itself: the gateway follows no link of ours
                "mimetype": content_type,
                "filename": item.get("filename") or item["url"].rsplit("/", 1)[-1][:80] or "file",
            }
            endpoint = "/api/sendImage" if content_type.startswith("image/") else "/api/sendFile"
            return _call("POST", endpoint, json_body={"session": name, "chatId": chat, "file": file, "caption": caption})
        return _call("POST", "/api/sendText", json_body={"session": name, "chatId": chat, "text": text})

    def _typing(self, name: str, chat: str, seconds: int) -> None:
        """Show "typing…" for the account's typing delay before the send. A gateway that does
        not answer stops the send here (nothing went out, it is retried); an engine that cannot
        show typing only loses the effect."""
        try:
            _call("POST", "/api/startTyping", json_body={"session": name, "chatId": chat})
        except ProviderError as exc:
            if exc.transient:
                raise ProviderError(str(exc), transient=True, ambiguous=False) from None
            logger.warning("WAHA session %s could not show typing to %s: %s", name, chat, exc)
            return
        time.sleep(seconds)

    def _typing_off(self, name: str, chat: str) -> None:
        # The message went out already: whatever happens here must not make it look failed.
        try:
            _call("POST", "/api/stopTyping", json_body={"session": name, "chatId": chat})
        except ProviderError as exc:
            logger.info("WAHA session %s: stopTyping for %s failed after the send: %s", name, chat, exc)

    # --- webhooks ----------------------------------------------------------------------------
    def parse_webhook(self, account, request) -> list:
        _verify_signature(account, request)
        try:
            envelope = json.loads(request.body)
        except ValueError:
            raise WebhookMalformed("body is not JSON") from None
        if not isinstance(envelope, dict):
            raise WebhookMalformed("body is not a JSON object")
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


def _verify_signature(account, request) -> None:
    supplied = request.headers.get("X-Webhook-Hmac", "").strip().lower()
    if not supplied:
        raise WebhookForbidden("no X-Webhook-Hmac header (the session's webhook must have our HMAC key)")
    algorithm = request.headers.get("X-Webhook-Hmac-Algorithm", HMAC_ALGORITHM).strip().lower()
    if algorithm != HMAC_ALGORITHM:
        raise WebhookForbidden(f"X-Webhook-Hmac-Algorithm {algorithm!r}, expected {HMAC_ALGORITHM}")
    expected = hmac.new(account.webhook_secret.encode(), request.body, hashlib.sha512).hexdigest()
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise WebhookForbidden("X-Webhook-Hmac does not match the body")


def _sent_id(data, chat: str) -> str:
    """The sent message's id in the serialized form message.ack events carry
    ('true_<chat>_<id>'). Engines answer differently: a string `id` (GOWS), an `id` object
    with `_serialized` (WEBJS), or a Baileys `key` (NOWEB)."""
    if not isinstance(data, dict):
        return ""
    ident = data.get("id")
    if isinstance(ident, str) and ident:
        return ident
    if isinstance(ident, dict):
        if ident.get("_serialized"):
            return str(ident["_serialized"])
        key = {"id": ident.get("id"), "fromMe": ident.get("fromMe", True), "remoteJid": ident.get("remote")}
    else:
        key = data.get("key") if isinstance(data.get("key"), dict) else {}
    if not key.get("id"):
        return ""
    remote = str(key.get("remoteJid") or chat)
    if remote.endswith("@s.whatsapp.net"):
        remote = remote.split("@", 1)[0].split(":", 1)[0] + "@c.us"
    return f"{'true' if key.get('fromMe', True) else 'false'}_{remote}_{key['id']}"


# --- event mapping -------------------------------------------------------------------------
def _on_session_status(account, envelope: dict, payload: dict) -> list:
    status = str(payload.get("status") or "")
    if status == "SCAN_QR_CODE":
        # WAHA posts no QR itself. The webhook is answered without calling the gateway: the
        # account page, seeing "waiting for a scan" without a code, asks for one (renew_qr).
        return [ConnectionChanged(status="qr_pending", reason="WAHA session waits for a QR scan")]
    event = _status_event(status, payload.get("me") or envelope.get("me"))
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
            at=_timestamp(payload.get("timestamp")),
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


def _timestamp(value) -> datetime:
    try:
        seconds = int(value)
        if seconds > 10**11:  # milliseconds
            seconds //= 1000
        return datetime.fromtimestamp(seconds, tz=dt_timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return timezone.now()


_HANDLERS = {
    "message": _on_message,
    "message.ack": _on_ack,
    "session.status": _on_session_status,
}
