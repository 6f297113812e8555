"""A loopback stand-in for SMS Gateway for Android (capcom6), local or cloud mode.

Basic auth; POST /messages (and the older /message) `{textMessage: {text}, phoneNumbers, id?}`
-> 202 (a reused id -> 409); POST/GET/DELETE /webhooks. Cloud mode serves the same API under
/3rdparty/v1. `legacy_app` plays an app before 1.28 (no /messages: 404) and before the MMS
events (a webhook for them refused). Webhook helpers build the envelope `{id, webhookId,
event, deviceId, payload}` and sign it as the app does: X-Signature = hex HMAC-SHA256(signing
key, body + X-Timestamp). Payloads as capcom6/android-sms-gateway emits them
(app/src/main/java/me/capcom/smsgateway/modules/webhooks/payload/*.kt, built in
modules/receiver/ReceiverService.kt; dates as GsonBuilder.kt formats them)."""
import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import datetime, timezone

from tests.standins.evolution_standin import LoopbackStandIn, Recorded

CLOUD_PREFIX = "/3rdparty/v1"
# modules/webhooks/domain/WebHookEvent.kt
EVENTS = {"sms:received", "sms:sent", "sms:delivered", "sms:failed", "system:ping", "sms:data-received", "mms:received",
          "mms:downloaded", "app:started", "sms:cancelled"}
MMS_EVENTS = {"mms:received", "mms:downloaded"}


class AndroidSmsStandIn(LoopbackStandIn):
    def __init__(self, *, username: str = "sms", password: str = "phone-pass", signing_key: str = "signing-key-123", cloud: bool = False,
                 legacy_app: bool = False):
        super().__init__()
        self.legacy_app = legacy_app
        self.username, self.password, self.signing_key = username, password, signing_key
        self.prefix = CLOUD_PREFIX if cloud else ""
        self.device_id = "ffffffffceb0b1db0000018e937c815b"
        self.webhooks: dict[str, dict] = {}
        self.messages: dict[str, dict] = {}
        self.answer_delay = 0.0  # seconds: take the message, then answer this late

    @property
    def base_url(self) -> str:
        return self.url + self.prefix

    def route(self, request: Recorded):
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return 401, {"message": "Unauthorized"}
        if not request.path.startswith(self.prefix):
            return 404, {"message": "Not Found"}
        path = request.path[len(self.prefix):]
        if request.method == "POST" and path in ("/message", "/messages") and not (self.legacy_app and path == "/messages"):
            answer = self._send(request.json)
            if self.answer_delay:
                time.sleep(self.answer_delay)
            return answer
        if request.method == "GET" and path == "/webhooks":
            return 200, list(self.webhooks.values())
        if request.method == "POST" and path == "/webhooks":
            body = request.json
            if body.get("event") not in EVENTS or not body.get("url") or self.legacy_app and body["event"] in MMS_EVENTS:
                return 400, {"message": f"invalid webhook: {body}"}
            hook = {"id": body.get("id") or secrets.token_urlsafe(16), "url": body["url"], "event": body["event"]}
            self.webhooks[hook["id"]] = hook  # the same id replaces
            return 201, hook
        if request.method == "DELETE" and path.startswith("/webhooks/"):
            self.webhooks.pop(path.rsplit("/", 1)[-1], None)
            return 204, None
        return 404, {"message": "Not Found"}

    def _send(self, body: dict):
        text = (body.get("textMessage") or {}).get("text") or body.get("message")
        numbers = body.get("phoneNumbers") or []
        if not text or not numbers:
            return 400, {"message": "textMessage.text and phoneNumbers are required"}
        message_id = body.get("id") or secrets.token_urlsafe(16)
        if message_id in self.messages:
            return 409, {"message": f"message with id {message_id} already exists"}
        answer = {
            "id": message_id,
            "deviceId": self.device_id,
            "state": "Pending",
            "isHashed": False,
            "isEncrypted": False,
            "recipients": [{"phoneNumber": n, "state": "Pending"} for n in numbers],
            "states": {},
        }
        self.messages[message_id] = {"text": text, "phoneNumbers": numbers, **answer}
        return 202, answer

    # --- webhooks as the phone sends them ---------------------------------------------------
    def hook_url(self, event: str) -> str:
        return next(h["url"] for h in self.webhooks.values() if h["event"] == event)

    def envelope(self, event: str, payload: dict, *, event_id: str | None = None) -> dict:
        hook = next((h for h in self.webhooks.values() if h["event"] == event), {"id": "unregistered"})
        return {"deviceId": self.device_id, "event": event, "id": event_id or secrets.token_urlsafe(15), "payload": payload, "webhookId": hook["id"]}

    def sms_received(self, *, sender: str = "+14155550123", text: str = "hello", message_id: str | None = None,
                     received_at: str | None = None, **kw) -> dict:
        payload = {
            "messageId": message_id or format(secrets.randbits(32), "x"),
            "message": text,
            "sender": sender,
            "recipient": "+14155550111",
            "simNumber": 1,
            "receivedAt": received_at or datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds"),
        }
        return self.envelope("sms:received", payload, **kw)

    def mms_downloaded(self, *, sender: str = "+14155550123", body: str | None = "Here is the photo", subject: str | None = None,
                       attachments: list | None = None, message_id: str = "1042", received_at: str | None = None) -> dict:
        """MmsDownloadedPayload: messageId is the MMS's row id on the phone; each attachment's
        data is the part's bytes in base64 (null when the phone could not read it)."""
        payload = {
            "messageId": message_id,
            "sender": sender,
            "recipient": "+14155550111",
            "simNumber": 1,
            "phoneNumber": sender,
            "body": body,
            "subject": subject,
            "attachments": attachments if attachments is not None else [
                {"partId": 7, "contentType": "image/jpeg", "name": "IMG_0001.jpg", "size": 10,
                 "data": base64.b64encode(b"jpeg-bytes").decode()}],
            "receivedAt": received_at or datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds"),
        }
        return self.envelope("mms:downloaded", payload)

    def mms_received(self, *, sender: str = "+14155550123", transaction_id: str = "T1a2b3c", size: int = 48213) -> dict:
        """MmsReceivedPayload: the MMS notification, before the phone downloads the message."""
        payload = {
            "messageId": transaction_id, "sender": sender, "recipient": "+14155550111", "simNumber": 1, "phoneNumber": sender,
            "transactionId": transaction_id, "subject": None, "size": size, "contentClass": None,
            "receivedAt": datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds"),
        }
        return self.envelope("mms:received", payload)

    def sms_status(self, event: str, message_id: str, *, phone: str = "+14155550123", reason: str = "") -> dict:
        stamp = datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds")
        field = {"sms:sent": "sentAt", "sms:delivered": "deliveredAt", "sms:failed": "failedAt"}[event]
        payload = {"messageId": message_id, "phoneNumber": phone, "simNumber": None, field: stamp}
        if event == "sms:failed":
            payload["reason"] = reason or "RESULT_ERROR_GENERIC_FAILURE"
        return self.envelope(event, payload)

    def signed(self, envelope: dict, *, key: str | None = None, timestamp: int | None = None) -> tuple[bytes, dict]:
        """The body and the headers (as Django test-client META) the phone would send."""
        body = json.dumps(envelope).encode()
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        signature = hmac.new((key or self.signing_key).encode(), body + stamp.encode(), hashlib.sha256).hexdigest()
        return body, {"HTTP_X_SIGNATURE": signature, "HTTP_X_TIMESTAMP": stamp}
