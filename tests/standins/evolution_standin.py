"""A loopback stand-in for an Evolution API v2 gateway, plus the small threaded HTTP server
base the other backend stand-ins share (LoopbackStandIn).

It speaks the documented wire format: `apikey` header auth, /instance/create|connect|
connectionState|logout, /webhook/set, /message/sendText|sendMedia, and builds webhook
envelopes `{event, instance, data, destination, date_time, sender, server_url, apikey}` as
the gateway posts them (event names lower-case dotted, e.g. `messages.upsert`)."""
import json
from abc import ABC, abstractmethod
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


# --- shared base -----------------------------------------------------------------------------
@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict  # lower-case names
    body: bytes

    @property
    def json(self):
        return json.loads(self.body) if self.body else None


@dataclass
class Raw:
    """A non-JSON answer (a file)."""

    body: bytes
    content_type: str


class LoopbackStandIn(ABC):
    """A threaded HTTP server on 127.0.0.1 at a random port. Subclasses implement
    `route(request) -> (status, json-able body or None)`. Every request is recorded;
    `fail_with()` makes every answer an error, `down()` closes the port."""

    def __init__(self):
        self.requests: list[Recorded] = []
        self.failure: tuple[int, object] | None = None
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                request = Recorded(
                    self.command, parts.path, dict(parse_qsl(parts.query)), {k.lower(): v for k, v in self.headers.items()}, body
                )
                status, payload = standin.dispatch(request)
                content_type = "application/json"
                if isinstance(payload, Raw):
                    data, content_type = payload.body, payload.content_type
                else:
                    data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.is_up = True

    def dispatch(self, request: Recorded):
        with self.lock:
            self.requests.append(request)
            if self.failure is not None:
                return self.failure
            try:
                return self.route(request)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                return 400, {"status": 400, "error": "Bad Request", "message": f"stand-in could not read the request: {exc!r}"}

    @abstractmethod
    def route(self, request: Recorded):
        """(status, JSON-able body | Raw | None) for one request."""

    def fail_with(self, status: int, body=None) -> None:
        self.failure = (status, body if body is not None else {"status": status, "message": "stand-in failure"})

    def recover(self) -> None:
        self.failure = None

    def down(self) -> None:
        """Stop listening: calls now get 'connection refused'."""
        if self.is_up:
            self.server.shutdown()
            self.server.server_close()
            self.is_up = False

    close = down

    def received(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.down()


# --- Evolution API --------------------------------------------------------------------------
@dataclass
class Instance:
    name: str
    token: str
    webhook: dict
    number: str = ""
    state: str = "connecting"  # open | close | connecting
    wuid: str = ""
    qr_count: int = 0
    sent: list = field(default_factory=list)
    presence: list = field(default_factory=list)  # ("composing", ms) shown before a send


def _error(status: int, message: str):
    names = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
    return status, {"status": status, "error": names.get(status, "Error"), "response": {"message": [message]}}


class EvolutionStandIn(LoopbackStandIn):
    def __init__(self, *, api_key: str = "global-test-key"):
        super().__init__()
        self.api_key = api_key
        self.instances: dict[str, Instance] = {}

    # --- the API --------------------------------------------------------------------------
    def route(self, request: Recorded):
        key = request.headers.get("apikey", "")
        parts = request.path.strip("/").split("/")
        name = parts[2] if len(parts) > 2 else ""
        instance = self.instances.get(name)
        if key != self.api_key and not (instance and key == instance.token):
            return 401, {"status": 401, "error": "Unauthorized", "response": {"message": "Unauthorized"}}
        if request.method == "POST" and request.path == "/instance/create":
            return self._create(request.json)
        if parts[0] == "instance" and instance is None and name:
            return _error(404, f'The "{name}" instance does not exist')
        if request.method == "GET" and parts[:2] == ["instance", "connect"]:
            if instance.state == "open":
                return 200, {"instance": {"instanceName": name, "state": "open"}}
            instance.state = "connecting"
            return 200, self._qrcode(instance)
        if request.method == "GET" and parts[:2] == ["instance", "connectionState"]:
            return 200, {"instance": {"instanceName": name, "state": instance.state}}
        if request.method == "DELETE" and parts[:2] == ["instance", "logout"]:
            if instance.state != "open":
                return _error(400, f'The "{name}" instance is not connected')
            instance.state = "close"
            return 200, {"status": "SUCCESS", "error": False, "response": {"message": "Instance logged out"}}
        if request.method == "POST" and parts[:2] == ["webhook", "set"]:
            if instance is None:
                return _error(404, f'The "{name}" instance does not exist')
            instance.webhook = {k: v for k, v in request.json["webhook"].items() if k != "enabled"}
            return 201, {"id": secrets.token_hex(8), "enabled": True, **instance.webhook}
        if request.method == "POST" and parts[:2] == ["message", "sendText"]:
            return self._send(instance, name, request.json, {"conversation": request.json["text"]}, "conversation")
        if request.method == "POST" and parts[:2] == ["message", "sendMedia"]:
            body = request.json
            kind = f"{body['mediatype']}Message"
            content = {kind: {"url": body["media"], "mimetype": body.get("mimetype", ""), "caption": body.get("caption", "")}}
            return self._send(instance, name, body, content, kind)
        return _error(404, f"Cannot {request.method} {request.path}")

    def _create(self, body: dict):
        name = body["instanceName"]
        if body.get("integration") != "WHATSAPP-BAILEYS":
            return _error(400, "integration must be WHATSAPP-BAILEYS")
        if name in self.instances:
            return _error(403, f'This name "{name}" is already in use.')
        instance = Instance(name=name, token=secrets.token_hex(16).upper(), webhook=body.get("webhook") or {}, number=body.get("number", ""))
        self.instances[name] = instance
        answer = {
            "instance": {"instanceName": name, "instanceId": secrets.token_hex(16), "integration": "WHATSAPP-BAILEYS", "status": "connecting"},
            "hash": instance.token,
            "webhook": instance.webhook,
            "settings": {"rejectCall": False, "groupsIgnore": False, "alwaysOnline": False},
        }
        if body.get("qrcode"):
            answer["qrcode"] = self._qrcode(instance)
        return 201, answer

    def _qrcode(self, instance: Instance) -> dict:
        instance.qr_count += 1
        return {
            "pairingCode": "WZYEH1YY" if instance.number else None,
            "code": self.qr_code(instance.name),
            "base64": "data:image/png;base64,iVBORw0KGgo=",
            "count": instance.qr_count,
        }

    def qr_code(self, name: str) -> str:
        return f"2@standin-{name}-{self.instances[name].qr_count},key=,ref="

    def _send(self, instance: Instance, name: str, body: dict, content: dict, kind: str):
        if instance is None:
            return _error(404, f'The "{name}" instance does not exist')
        if instance.state != "open":
            return _error(400, "Connection Closed")
        number = body["number"]
        if not (str(number).isdigit() or str(number).endswith("@g.us")):
            return _error(400, f"{number} is not a WhatsApp number")
        delay = body.get("delay", 0)
        if not isinstance(delay, int) or delay < 0:
            return _error(400, "delay must be a whole number of milliseconds")
        if delay:
            instance.presence.append(("composing", delay))
            time.sleep(delay / 1000)  # the gateway shows "typing…", then sends
        message = {
            "key": {"remoteJid": number if "@" in str(number) else f"{number}@s.whatsapp.net", "fromMe": True, "id": "3EB0" + secrets.token_hex(8).upper()},
            "pushName": "",
            "status": "PENDING",
            "message": content,
            "messageType": kind,
            "messageTimestamp": int(time.time()),
            "instanceId": instance.name,
            "source": "unknown",
        }
        instance.sent.append(message)
        return 201, message

    # --- test helpers ---------------------------------------------------------------------
    def webhook_path(self, name: str) -> str:
        """Path + query of the webhook the instance was created with (for the test client)."""
        parts = urlsplit(self.instances[name].webhook["url"])
        return f"{parts.path}?{parts.query}" if parts.query else parts.path

    def envelope(self, name: str, event: str, data, *, apikey: str | None = None) -> dict:
        instance = self.instances[name]
        return {
            "event": event,
            "instance": name,
            "data": data,
            "destination": instance.webhook.get("url", ""),
            "date_time": datetime.now(timezone.utc).isoformat(),
            "sender": instance.wuid or None,
            "server_url": self.url,
            "apikey": instance.token if apikey is None else apikey,
        }

    def link(self, name: str, phone: str, *, profile_name: str = "Shop") -> dict:
        """The phone scanned the QR: the instance opens; returns the CONNECTION_UPDATE event."""
        instance = self.instances[name]
        instance.state, instance.wuid = "open", f"{phone.lstrip('+')}@s.whatsapp.net"
        return self.connection_update(name, "open", profile_name=profile_name)

    def connection_update(self, name: str, state: str, *, status_reason: int = 200, profile_name: str = "") -> dict:
        instance = self.instances[name]
        if state != "open":
            instance.state = state
        data = {"instance": name, "wuid": instance.wuid, "profileName": profile_name, "state": state, "statusReason": status_reason}
        return self.envelope(name, "connection.update", data)

    def qrcode_updated(self, name: str) -> dict:
        qrcode = self._qrcode(self.instances[name])
        return self.envelope(name, "qrcode.updated", {"qrcode": {"instance": name, **qrcode}})

    def messages_upsert(
        self,
        name: str,
        *,
        remote_jid: str,
        text: str = "hello",
        message_id: str | None = None,
        from_me: bool = False,
        push_name: str = "",
        participant: str | None = None,
        remote_jid_alt: str | None = None,
        sender_pn: str | None = None,
        message: dict | None = None,
        timestamp: int | None = None,
    ) -> dict:
        key = {"remoteJid": remote_jid, "fromMe": from_me, "id": message_id or "3A" + secrets.token_hex(9).upper()}
        if participant is not None:
            key["participant"] = participant
        if remote_jid_alt is not None:
            key["remoteJidAlt"] = remote_jid_alt
        if sender_pn is not None:
            key["senderPn"] = sender_pn
        data = {
            "key": key,
            "pushName": push_name,
            "status": "DELIVERY_ACK",
            "message": message if message is not None else {"conversation": text},
            "messageType": next(iter(message)) if message else "conversation",
            "messageTimestamp": timestamp or int(time.time()),
            "instanceId": name,
            "source": "android",
        }
        return self.envelope(name, "messages.upsert", data)

    def messages_update(self, name: str, *, key_id: str, status: str, remote_jid: str = "", from_me: bool = True) -> dict:
        data = {
            "messageId": secrets.token_hex(12),
            "keyId": key_id,
            "remoteJid": remote_jid,
            "fromMe": from_me,
            "participant": remote_jid,
            "status": status,
            "instanceId": name,
        }
        return self.envelope(name, "messages.update", data)

    def logout_instance(self, name: str) -> dict:
        self.instances[name].state = "close"
        return self.envelope(name, "logout.instance", {"instance": name, "state": "closed"})
