"""Calls to the WAHA gateway (WAHA_API_BASE_URL, the operator's; every call carries
WAHA_API_KEY in `X-Api-Key`) and what its answers mean."""
import logging
import re
from urllib.parse import quote

from django.conf import settings

from accounts.providers.base import ProviderError
from accounts.providers.transport import Gateway

logger = logging.getLogger(__name__)

GATEWAY = Gateway(service="WAHA gateway", unauthorized="The WAHA gateway refused WAHA_API_KEY (401).",
                  reason_fields=("message", "exception.message", "error"), base_setting="WAHA_API_BASE_URL", quotable=True)
# One file name as WAHA writes it ("false_14155550123@c.us_3EB0….jpg"): no other segment, no
# dot-dot, no percent-escape that a URL parser would turn into one.
FILE_NAME = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_@.\-]{0,200}")


# What a session's webhook posts to WhatSnap. `message.any` (not `message`) so the messages the
# account's own phone sends arrive too. WAHA refuses a session config naming an event it does
# not know (400): a gateway older than `message.edited` gets LEGACY_WEBHOOK_EVENTS instead.
WEBHOOK_EVENTS = ["message.any", "message.ack", "message.reaction", "message.edited", "message.revoked", "session.status"]
LEGACY_WEBHOOK_EVENTS = [e for e in WEBHOOK_EVENTS if e != "message.edited"]


def session_name(account) -> str:
    return account.gateway_resource


def webhook_url(account) -> str:
    return account.webhook_urls()["inbound"]


def chat_id(to: str) -> str:
    """Our recipient -> WAHA chatId: '+14155550123' -> '14155550123@c.us'; a group jid as is."""
    return to if "@" in to else f"{to.lstrip('+')}@c.us"


def call(method: str, path: str, *, json_body: dict | None = None, params: dict | None = None, ok_statuses=()):
    return GATEWAY.call(method, path, headers={"X-Api-Key": settings.WAHA_API_KEY}, params=params, json_body=json_body,
                        ok_statuses=ok_statuses)


def session_info(name: str) -> dict | None:
    """GET /api/sessions/{name}: the session's status (and `me` once linked); None if unknown."""
    response = call("GET", f"/api/sessions/{name}", ok_statuses=(404,))
    if response.status_code == 404:
        return None
    data = GATEWAY.json(response)
    return data if isinstance(data, dict) else {}


def qr_value(name: str) -> str:
    """The raw QR string (GET /api/{session}/auth/qr?format=raw -> {"value"}); '' when the
    session is not waiting for a scan (WAHA answers 422 then)."""
    response = call("GET", f"/api/{name}/auth/qr", params={"format": "raw"}, ok_statuses=(422,))
    if response.status_code == 422:
        return ""
    data = GATEWAY.json(response)
    return str((data or {}).get("value") or "") if isinstance(data, dict) else ""


def pairing_code(account, name: str) -> str:
    """A code to link with the phone number instead of the QR (POST …/auth/request-code);
    '' without a number, or when the engine cannot give one (the QR still works)."""
    if not account.phone_number:
        return ""
    try:
        data = GATEWAY.json(call("POST", f"/api/{name}/auth/request-code", json_body={"phoneNumber": account.phone_number.lstrip("+")}))
    except ProviderError as exc:
        if exc.transient:
            raise
        logger.warning("WAHA session %s gave no pairing code (the QR code still works): %s", name, exc)
        return ""
    return str((data or {}).get("code") or "") if isinstance(data, dict) else ""


def lid_phone(name: str, lid: str) -> str:
    """GET /api/{session}/lids/{lid} -> {lid, pn}: the phone JID WAHA knows for a LID ('' when
    it knows none, or the gateway predates the endpoint: 404)."""
    response = call("GET", f"/api/{name}/lids/{quote(lid, safe='@')}", ok_statuses=(404, 422))
    if not response.is_success:
        return ""
    data = GATEWAY.json(response)
    return str((data or {}).get("pn") or "") if isinstance(data, dict) else ""


def chats_overview(name: str, limit: int) -> list[dict]:
    """The session's chats, most recent first: GET /api/{session}/chats/overview (WAHA 2025+,
    `{id, name, lastMessage}`), else GET /api/{session}/chats sorted by conversationTimestamp."""
    response = call("GET", f"/api/{name}/chats/overview", params={"limit": limit, "offset": 0}, ok_statuses=(404,))
    if response.status_code == 404:
        params = {"limit": limit, "offset": 0, "sortBy": "conversationTimestamp", "sortOrder": "desc"}
        response = call("GET", f"/api/{name}/chats", params=params)
    data = GATEWAY.json(response)
    return [c for c in data if isinstance(c, dict)][:limit] if isinstance(data, list) else []


def chat_messages(name: str, chat: str, *, since: int, limit: int) -> list[dict]:
    """One page of a chat's messages from `since` (Unix seconds) on, newest first, without
    downloading media (GET /api/{session}/chats/{chatId}/messages)."""
    params = {"limit": limit, "offset": 0, "downloadMedia": "false", "filter.timestamp.gte": since,
              "sortBy": "timestamp", "sortOrder": "desc"}
    data = GATEWAY.json(call("GET", f"/api/{name}/chats/{quote(chat, safe='@')}/messages", params=params))
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []


def has_webhook(config, ours: dict) -> bool:
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


def own_file(account, path: str) -> str | None:
    prefix = f"/api/files/{account.gateway_resource}/"
    name = path[len(prefix):] if path.startswith(prefix) else ""
    return name if FILE_NAME.fullmatch(name) and ".." not in name else None


def sent_id(data, chat: str) -> str:
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
