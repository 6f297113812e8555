"""The WAHA backend: one WAHA session per account, created and linked by connect(), messages
sent through it (the package's docstring tells the whole story)."""
import base64
import logging
import time
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from accounts.providers.base import (
    ConnectionChanged,
    Health,
    Provider,
    ProviderError,
    QrUpdated,
    SendResult,
    gateway_resource_claim,
    gateway_resource_foreign,
)
from accounts.providers.media import AUDIO, MB, MediaLimits, media_bytes
from accounts.providers.waha.client import (
    GATEWAY,
    LEGACY_WEBHOOK_EVENTS,
    WEBHOOK_EVENTS,
    call,
    chat_id,
    has_webhook,
    lid_phone,
    own_file,
    pairing_code,
    qr_value,
    sent_id,
    session_info,
    session_name,
    webhook_url,
)
from accounts.providers.waha.history import recent_messages
from accounts.providers.waha.jids import lid_of, parse_id
from accounts.providers.waha.webhooks import parse_envelope, parse_webhook, status_event
from accounts.providers.whatsapp_ids import phone_from_jid

logger = logging.getLogger(__name__)

# WAHA renews the code on its own (the first one lives about a minute, the next ones ~20 s):
# the inbox asks again after this long.
QR_LIFETIME_SECONDS = 20


class WahaProvider(Provider):
    key = "waha"
    label = "WhatsApp Web (WAHA gateway)"
    kinds = ("whatsapp",)
    # as Evolution: one file per WhatsApp message, posted to WAHA itself, 16 MB at most
    media_limits = MediaLimits(max_files=1, max_file_bytes=16 * MB, max_total_bytes=16 * MB,
                               types=("image/jpeg", "image/png", "image/webp", "application/pdf", *AUDIO))
    choice_label = "WhatsApp Web gateway (WAHA)"
    operator_settings = (GATEWAY.base_setting,)

    def webhook_max_bytes(self) -> int:
        return settings.WHATSAPP_WEBHOOK_MAX_BYTES  # media arrives inline, base64

    # --- session -----------------------------------------------------------------------------
    def connect(self, account) -> list:
        name = session_name(account)
        config = self._config(account, WEBHOOK_EVENTS)
        claimed_before = gateway_resource_claim(account)
        created = self._configure("POST", "/api/sessions", account, {"name": name}, ok_statuses=(409, 422))
        if not created.is_success and not claimed_before:
            raise gateway_resource_foreign("The WAHA gateway", name)
        if not created.is_success:
            # WAHA refuses a second session of the same name (422 "already exists. Use PUT").
            # A reconnect points its webhook at us again (with today's events: a session
            # created before subscribes to fewer), unless it does already: an update restarts
            # a running session, which a linked account need not go through.
            existing = session_info(name)
            if existing is None:
                raise ProviderError(f"WAHA gateway refused to create session {name}: {GATEWAY.reason(created)}", transient=False)
            if not has_webhook(existing.get("config"), config["webhooks"][0]):
                self._configure("PUT", f"/api/sessions/{name}", account, {})
        call("POST", f"/api/sessions/{name}/start")  # idempotent: a running session stays as it is
        info = session_info(name)
        if info is None:
            raise ProviderError(f"WAHA session {name} vanished right after it was started.")
        status = str(info.get("status") or "")
        if status == "SCAN_QR_CODE":
            qr = qr_value(name)
            if qr:
                return [QrUpdated(qr=qr, pairing_code=pairing_code(account, name), expires_in=QR_LIFETIME_SECONDS)]
        if status == "WORKING" and not info.get("me"):
            me = GATEWAY.json(call("GET", f"/api/sessions/{name}/me", ok_statuses=(404,)))
            info["me"] = me if isinstance(me, dict) else None
        event = status_event(status, info.get("me"))
        return [event or ConnectionChanged(status="connecting", reason=f"WAHA session is {status or 'starting'}")]

    @staticmethod
    def _config(account, events: list[str]) -> dict:
        return {"webhooks": [{"url": webhook_url(account), "events": events, "hmac": {"key": account.webhook_secret}}]}

    def _configure(self, method: str, path: str, account, body: dict, ok_statuses=()) -> httpx.Response:
        """Create or update the session with our webhook. A WAHA older than one of our events
        refuses the whole config (400 naming `events`): it then gets the events it knows."""
        response = call(method, path, json_body={**body, "config": self._config(account, WEBHOOK_EVENTS)},
                        ok_statuses=(400, *ok_statuses))
        if response.status_code == 400 and "events" in GATEWAY.reason(response).lower():
            logger.warning("WAHA gateway refused webhook events %s; subscribing to %s (upgrade WAHA for edits)",
                           WEBHOOK_EVENTS, LEGACY_WEBHOOK_EVENTS)
            response = call(method, path, json_body={**body, "config": self._config(account, LEGACY_WEBHOOK_EVENTS)},
                            ok_statuses=ok_statuses)
        elif response.status_code == 400:
            raise GATEWAY.answer_error(response, method, path)
        return response

    def renew_qr(self, account) -> list:
        """Only ask WAHA for the session's current QR: the session and its webhook exist since
        connect(). The pairing code stays the one connect() got."""
        qr = qr_value(session_name(account))
        if not qr:
            return []
        return [QrUpdated(qr=qr, pairing_code=account.pairing_code or "", expires_in=QR_LIFETIME_SECONDS)]

    def disconnect(self, account) -> None:
        # Stop first: WAHA's logout restarts a running session (it would ask for a new QR).
        name = session_name(account)
        call("POST", f"/api/sessions/{name}/stop", ok_statuses=(404,))
        call("POST", f"/api/sessions/{name}/logout", ok_statuses=(404, 422))

    def health(self, account) -> Health:
        name = session_name(account)
        try:
            info = session_info(name)
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
        file_name = own_file(account, urlsplit(url).path)
        if not settings.WAHA_API_BASE_URL or file_name is None:
            return {"url": url}
        path = f"/api/files/{account.gateway_resource}/{file_name}"
        return {"url": settings.WAHA_API_BASE_URL + path, "headers": {"X-Api-Key": settings.WAHA_API_KEY}, "trusted": True}

    # --- send --------------------------------------------------------------------------------
    def send(self, account, *, to: str, text: str, media=None, idempotency_key: str, reply_to: str = "") -> SendResult:
        # WAHA has no idempotency key; message_deliver's claim makes this call happen once.
        name, chat = session_name(account), chat_id(to)
        delay = int(getattr(account, "typing_delay_seconds", 0) or 0)
        if delay:
            self._typing(name, chat, delay)
        try:
            response = self._send(name, chat, text, media, reply_to)
        finally:
            if delay:
                self._typing_off(name, chat)
        provider_id = sent_id(GATEWAY.json(response), chat)
        if not provider_id:
            raise ProviderError(f"WAHA gateway accepted the message but returned no message id: {response.text[:120]!r}")
        return SendResult(provider_id=provider_id, status="sent")

    def _send(self, name: str, chat: str, text: str, media, reply_to: str = "") -> httpx.Response:
        # reply_to: the serialized id of the message quoted (WAHA's `reply_to` on every send)
        quote = {"reply_to": reply_to} if reply_to else {}
        if media:
            # One WhatsApp message carries one file: the first goes as the file, any others as
            # links in its caption (one send, so a retry can never repeat half of it).
            item = media[0]
            data, fetched_type = media_bytes(item)
            content_type = item.get("content_type") or fetched_type or "application/octet-stream"
            caption = "\n".join([text, *(m["url"] for m in media[1:] if m.get("url"))]).strip()
            file = {
                "data": base64.b64encode(data).decode(),  # the file itself: the gateway follows no link of ours
                "mimetype": content_type,
                "filename": item.get("filename") or item["url"].rsplit("/", 1)[-1][:80] or "file",
            }
            endpoint = "/api/sendImage" if content_type.startswith("image/") else "/api/sendFile"
            return call("POST", endpoint, json_body={"session": name, "chatId": chat, "file": file, "caption": caption, **quote})
        return call("POST", "/api/sendText", json_body={"session": name, "chatId": chat, "text": text, **quote})

    def _typing(self, name: str, chat: str, seconds: int) -> None:
        """Show "typing…" for the account's typing delay before the send. A gateway that does
        not answer stops the send here (nothing went out, it is retried); an engine that cannot
        show typing only loses the effect."""
        try:
            call("POST", "/api/startTyping", json_body={"session": name, "chatId": chat})
        except ProviderError as exc:
            if exc.transient:
                raise ProviderError(str(exc), transient=True, ambiguous=False) from None
            logger.warning("WAHA session %s could not show typing to %s: %s", name, chat, exc)
            return
        time.sleep(seconds)

    def _typing_off(self, name: str, chat: str) -> None:
        # The message went out already: whatever happens here must not make it look failed.
        try:
            call("POST", "/api/stopTyping", json_body={"session": name, "chatId": chat})
        except ProviderError as exc:
            logger.info("WAHA session %s: stopTyping for %s failed after the send: %s", name, chat, exc)

    # --- reactions, read receipts, history, LIDs -------------------------------------------------
    supports_reactions = True
    supports_read_receipts = True
    supports_history = True

    def react(self, account, *, to: str, target_id: str, target_from_me: bool, emoji: str) -> None:
        """PUT /api/reaction {session, messageId, reaction}: the serialized id names the chat and
        whose message it is; '' removes the account's reaction."""
        call("PUT", "/api/reaction", json_body={"session": session_name(account), "messageId": target_id, "reaction": emoji})

    def mark_read(self, account, *, to: str, provider_ids: list[str]) -> None:
        """POST /api/sendSeen {session, chatId, messageIds} (blue ticks for those messages)."""
        body = {"session": session_name(account), "chatId": chat_id(to), "messageIds": list(provider_ids)}
        call("POST", "/api/sendSeen", json_body=body)

    def history(self, account, *, since) -> list:
        return recent_messages(account, since=since)

    def resolve_lid(self, account, lid: str) -> str:
        """GET /api/{session}/lids/{lid}: '' when WAHA knows no phone for it (or predates the
        endpoint); ProviderError when the gateway cannot be asked."""
        lid = lid_of(lid)
        return phone_from_jid(lid_phone(session_name(account), lid)) if lid else ""

    def message_id_core(self, provider_id: str) -> str:
        """The raw WhatsApp id inside `true_<chat>_<id>[_<participant>]`: the chat part names one
        person by LID in one id and by phone in another."""
        key = parse_id(provider_id)
        return key.raw_id if key else ""

    # --- webhooks ----------------------------------------------------------------------------
    def parse_webhook(self, account, request) -> list:
        return parse_webhook(account, request)

    def parse_envelope(self, account, envelope: dict) -> list:
        return parse_envelope(account, envelope)
