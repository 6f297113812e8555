"""The Evolution API backend: one gateway instance per account, created and linked by
connect(), messages sent through it (the package's docstring tells the whole story)."""
import base64
import logging
from dataclasses import replace

from django.conf import settings

from accounts.providers import transport
from accounts.providers.base import (
    ConnectionChanged,
    Health,
    Provider,
    ProviderError,
    SendResult,
    gateway_resource_claim,
    gateway_resource_foreign,
)
from accounts.providers.evolution import chat
from accounts.providers.evolution.gateway import GATEWAY, call, fetch_instance_token, instance_name, qr_events, token_of, webhook_url
from accounts.providers.evolution.webhooks import WEBHOOK_EVENTS, envelope_events, verified_envelope
from accounts.providers.media import AUDIO, MB, MediaLimits, media_bytes

logger = logging.getLogger(__name__)


class EvolutionProvider(Provider):
    key = "evolution"
    label = "WhatsApp Web (Evolution API gateway)"
    kinds = ("whatsapp",)
    # One WhatsApp message carries one file (more go one message each), the file itself posted
    # to the gateway (media_bytes caps it at WhatsApp's 16 MB for photos and voice notes).
    media_limits = MediaLimits(max_files=1, max_file_bytes=16 * MB, max_total_bytes=16 * MB,
                               types=("image/jpeg", "image/png", "image/webp", "application/pdf", *AUDIO))
    choice_label = "WhatsApp Web gateway (Evolution API)"
    operator_settings = (GATEWAY.base_setting,)
    supports_reactions = True
    supports_read_receipts = True
    supports_history = True

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
        try:
            created = call("POST", "/instance/create", json_body=body, ok_statuses=(403, 409))
        except ProviderError as exc:
            if not exc.ambiguous:
                raise
            # No answer in time: the gateway may have created it all the same (ours: claimed
            # above, before asking). Resumed if it exists now.
            try:
                token = fetch_instance_token(name)
            except ProviderError:
                raise exc from None
            if token is None:
                raise
            return self._resume(account, name, webhook, body, token=token)
        if created.is_success:
            data = GATEWAY.json_object(created)
            self._remember(account, token=data.get("hash"))
            return qr_events(data.get("qrcode")) or [ConnectionChanged(status="connecting", reason="gateway instance created")]
        if not claimed_before:
            raise gateway_resource_foreign("The WhatsApp gateway", name)
        return self._resume(account, name, webhook, body)

    def _resume(self, account, name: str, webhook: dict, body: dict, token: str | None = None) -> list:
        """Our instance exists already (a reconnect, or a create whose answer was lost): learn
        its token if we never did (`token`: already looked up), point its webhook at us again,
        resume the session."""
        if not account.credentials.get("instance_token"):
            try:
                self._remember(account, token=fetch_instance_token(name) if token is None else token)
            except ProviderError as exc:  # not needed to connect: our URL secret authenticates its webhooks
                logger.warning("gateway instance %s: its token could not be read (%s); trying again on the next connect", name, exc)
        call("POST", f"/webhook/set/{name}", json_body={"webhook": {"enabled": True, **webhook}})
        suffix = f"?number={body['number']}" if "number" in body else ""
        data = GATEWAY.json_object(call("GET", f"/instance/connect/{name}{suffix}"))
        state = (data.get("instance") or {}).get("state")
        if state == "open":
            return [ConnectionChanged(status="connected", reason="WhatsApp session already linked")]
        return qr_events(data) or [ConnectionChanged(status="connecting", reason="gateway is starting the session")]

    def renew_qr(self, account) -> list:
        """Only ask the gateway for the session's current QR (GET /instance/connect): the
        instance and its webhook exist since connect()."""
        name = instance_name(account)
        suffix = f"?number={account.phone_number.lstrip('+')}" if account.phone_number else ""
        data = GATEWAY.json_object(call("GET", f"/instance/connect/{name}{suffix}"))
        if (data.get("instance") or {}).get("state") == "open":
            return [ConnectionChanged(status="connected", reason="WhatsApp session linked")]
        return qr_events(data)

    def _remember(self, account, *, token) -> None:
        """Keep the instance token (credentials): webhook envelopes carry it as their `apikey`."""
        token = token_of(token)
        if token:
            account.credentials = {**account.credentials, "instance_token": token}
            type(account).objects.filter(pk=account.pk).update(credentials=account.credentials)
        else:
            logger.info("gateway instance %s: no token shown; its webhooks are authenticated by our URL secret", instance_name(account))

    def disconnect(self, account) -> None:
        call("DELETE", f"/instance/logout/{instance_name(account)}", ok_statuses=(400, 404))

    def health(self, account) -> Health:
        try:
            data = GATEWAY.json_object(call("GET", f"/instance/connectionState/{instance_name(account)}"))
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
        # reply_to goes as `quoted: {key: {id}}` (src/validate/message.schema.ts): the gateway
        # finds the quoted message in its own store; one it does not keep goes out unquoted.
        name, number = instance_name(account), to.lstrip("+")
        delay_ms = int(getattr(account, "typing_delay_seconds", 0) or 0) * 1000
        extra = {"delay": delay_ms} if delay_ms else {}
        if reply_to:
            extra["quoted"] = {"key": {"id": reply_to}}
        limits = replace(transport.OPERATOR_LIMITS, total=transport.OPERATOR_LIMITS.total + delay_ms / 1000)
        if media:
            # One WhatsApp message carries one file: the first goes as the file, any others as
            # links in its caption (one send, so a retry can never repeat half of it).
            item = media[0]
            data, fetched_type = media_bytes(item)
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
            response = call("POST", f"/message/sendMedia/{name}", json_body=body, limits=limits)
        else:
            response = call("POST", f"/message/sendText/{name}", json_body={"number": number, "text": text, **extra}, limits=limits)
        provider_id = (GATEWAY.json_object(response).get("key") or {}).get("id")
        if not provider_id:
            raise ProviderError(f"WhatsApp gateway accepted the message but returned no key.id: {response.text[:120]!r}")
        return SendResult(provider_id=provider_id, status="sent")

    # --- in a chat ------------------------------------------------------------------------------
    def react(self, account, *, to: str, target_id: str, target_from_me: bool, emoji: str) -> None:
        chat.react(account, to=to, target_id=target_id, target_from_me=target_from_me, emoji=emoji)

    def mark_read(self, account, *, to: str, provider_ids: list[str]) -> None:
        chat.mark_read(account, to=to, provider_ids=provider_ids)

    def history(self, account, *, since) -> list:
        return chat.history(account, since=since)

    def resolve_lid(self, account, lid: str) -> str:
        return chat.resolve_lid(account, lid)

    # --- webhooks ----------------------------------------------------------------------------
    def parse_webhook(self, account, request) -> list:
        return envelope_events(account, verified_envelope(account, request))

    def parse_envelope(self, account, envelope: dict) -> list:
        return envelope_events(account, envelope)


def _media_type(content_type: str) -> str:
    major = content_type.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "document"
