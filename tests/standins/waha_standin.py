"""A loopback stand-in for a WAHA gateway (devlikeapro's WhatsApp HTTP API).

It speaks the documented wire format for what WhatSnap uses: `X-Api-Key` header auth;
sessions (POST /api/sessions — 422 when the name exists, PUT /api/sessions/{name},
GET /api/sessions/{name}[/me], POST /api/sessions/{name}/start|stop|logout); linking
(GET /api/{session}/auth/qr?format=raw -> {"value"}, 422 unless SCAN_QR_CODE;
POST /api/{session}/auth/request-code -> {"code"}); sending (POST /api/sendText, sendImage,
sendFile, startTyping, stopTyping; 422 unless the session is WORKING); received files at
GET /api/files/{session}/{file}. Sends are answered the
way the chosen engine answers (WEBJS: `id` object with `_serialized`; NOWEB: a Baileys `key`;
GOWS: a serialized `id` string). Webhook envelopes `{id, timestamp, event, session, me,
payload, engine, environment}` are built as WAHA posts them and signed like WAHA:
`X-Webhook-Hmac` = hex HMAC-SHA512 of the raw body with the session webhook's hmac.key,
`X-Webhook-Hmac-Algorithm: sha512`."""
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.standins.evolution_standin import LoopbackStandIn, Raw, Recorded

ENGINES = ("WEBJS", "NOWEB", "GOWS")


@dataclass
class Session:
    name: str
    config: dict
    status: str = "STOPPED"  # STOPPED | STARTING | SCAN_QR_CODE | WORKING | FAILED
    me: dict | None = None  # {"id": "<digits>@c.us", "pushName": ...} once linked
    qr_count: int = 0
    sent: list = field(default_factory=list)  # (serialized id, request body)
    presence: list = field(default_factory=list)  # ("typing" | "paused", chatId, monotonic time)

    @property
    def running(self) -> bool:
        return self.status not in ("STOPPED", "FAILED")


def _error(status: int, message: str):
    names = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 422: "Unprocessable Entity"}
    return status, {"statusCode": status, "message": message, "error": names.get(status, "Error")}


class WahaStandIn(LoopbackStandIn):
    def __init__(self, *, api_key: str = "waha-test-key", engine: str = "WEBJS", start_status: str | None = None):
        super().__init__()
        assert engine in ENGINES
        self.api_key = api_key
        self.engine = engine
        self.start_status = start_status  # e.g. "STARTING": a start that is not ready yet
        self.sessions: dict[str, Session] = {}
        self.files: dict[str, tuple[bytes, str]] = {}  # "<session>/<file>" -> (bytes, content type)

    # --- the API --------------------------------------------------------------------------
    def route(self, request: Recorded):
        if request.headers.get("x-api-key", "") != self.api_key:
            return _error(401, "Unauthorized")
        parts = request.path.strip("/").split("/")
        method = request.method
        if method == "GET" and parts[:2] == ["api", "files"]:
            found = self.files.get("/".join(parts[2:]))
            return (200, Raw(*found)) if found else _error(404, "File not found")
        if parts[:2] == ["api", "sessions"]:
            return self._sessions(method, parts[2:], request)
        if len(parts) == 4 and parts[0] == "api" and parts[2] == "auth":
            return self._auth(method, parts[1], parts[3], request)
        if method == "POST" and len(parts) == 2 and parts[0] == "api":
            return self._chatting(parts[1], request.json or {})
        return _error(404, f"Cannot {method} {request.path}")

    def _sessions(self, method: str, rest: list, request: Recorded):
        if not rest:
            if method == "POST":
                body = request.json or {}
                name = body.get("name") or "default"
                if name in self.sessions:
                    return _error(422, f"Session '{name}' already exists. Use PUT to update it.")
                self.sessions[name] = Session(name=name, config=body.get("config") or {})
                if body.get("start"):
                    self._start(self.sessions[name])
                return 201, self._dto(self.sessions[name])
            if method == "GET":
                return 200, [self._info(s) for s in self.sessions.values()]
            return _error(404, f"Cannot {method} {request.path}")
        session = self.sessions.get(rest[0])
        if session is None:
            return _error(404, "Session not found")
        action = rest[1] if len(rest) > 1 else ""
        if method == "GET" and not action:
            return 200, self._info(session)
        if method == "GET" and action == "me":
            return 200, session.me if session.status == "WORKING" else None
        if method == "PUT" and not action:
            was_running = session.running
            session.config = (request.json or {}).get("config") or {}
            session.status = "STOPPED"
            if was_running:
                self._start(session)
            return 200, self._dto(session)
        if method == "POST" and action == "start":
            if not session.running:
                self._start(session)
            return 201, self._dto(session)
        if method == "POST" and action == "stop":
            session.status = "STOPPED"
            return 201, self._dto(session)
        if method == "POST" and action == "logout":
            was_running = session.running
            session.me, session.status = None, "STOPPED"
            if was_running:  # WAHA restarts a session that was running
                self._start(session)
            return 201, self._dto(session)
        return _error(404, f"Cannot {method} {request.path}")

    def _start(self, session: Session) -> None:
        session.status = self.start_status or ("WORKING" if session.me else "SCAN_QR_CODE")

    def _dto(self, session: Session) -> dict:
        return {"name": session.name, "status": session.status, "config": session.config}

    def _info(self, session: Session) -> dict:
        me = session.me if session.status == "WORKING" else None
        return {**self._dto(session), "me": me, "engine": {"engine": self.engine}, "presence": None, "timestamps": {"activity": None}}

    def _auth(self, method: str, name: str, action: str, request: Recorded):
        session = self.sessions.get(name)
        if session is None:
            return _error(404, f"Session \"{name}\" does not exist")
        if session.status != "SCAN_QR_CODE":
            return _error(422, f"Can get QR code only in SCAN_QR_CODE status. The current status is '{session.status}'")
        if method == "GET" and action == "qr":
            if request.query.get("format") != "raw":
                return 400, {"statusCode": 400, "message": "the stand-in serves only format=raw"}
            session.qr_count += 1  # the previous code expired: WAHA shows the next one
            return 200, {"value": self.qr_code(name)}
        if method == "POST" and action == "request-code":
            phone = str((request.json or {}).get("phoneNumber", ""))
            if not phone.isdigit():
                return _error(400, "phoneNumber must be the international number, digits only")
            return 201, {"code": self.pairing_code}
        return _error(404, f"Cannot {method} {request.path}")

    pairing_code = "ABCD-EFGH"

    def qr_code(self, name: str) -> str:
        return f"2@waha-standin-{name}-{self.sessions[name].qr_count},key=,ref="

    def _chatting(self, action: str, body: dict):
        session = self.sessions.get(body.get("session", "default"))
        if session is None:
            return _error(404, f"Session \"{body.get('session')}\" does not exist")
        if session.status != "WORKING":
            return _error(422, f"Session status is not as expected. Try again later or restart the session. Status: {session.status}")
        chat = str(body.get("chatId", ""))
        if not (chat.endswith("@c.us") and chat.split("@")[0].isdigit()) and not chat.endswith("@g.us"):
            return _error(400, f"chatId {chat!r}: use <digits>@c.us or a group's @g.us id")
        if action in ("startTyping", "stopTyping"):
            session.presence.append(("typing" if action == "startTyping" else "paused", chat, time.monotonic()))
            return 201, {"result": True}
        if action == "sendText":
            if not isinstance(body.get("text"), str):
                return _error(400, "text must be a string")
            return 201, self._sent(session, chat, body, {"type": "chat", "body": body["text"]})
        if action in ("sendImage", "sendFile"):
            file = body.get("file") or {}
            if not file.get("url") and not file.get("data"):
                return _error(400, "file.url or file.data is required")
            if not file.get("mimetype"):
                return _error(400, "file.mimetype is required")
            kind = "image" if action == "sendImage" else "document"
            return 201, self._sent(session, chat, body, {"type": kind, "body": body.get("caption", ""), "mimetype": file["mimetype"]})
        return _error(404, f"Cannot POST /api/{action}")

    def _sent(self, session: Session, chat: str, body: dict, content: dict) -> dict:
        raw_id = "3EB0" + secrets.token_hex(8).upper()
        serialized = f"true_{chat}_{raw_id}"
        session.sent.append((serialized, body))
        now = int(time.time())
        if self.engine == "WEBJS":
            return {
                "id": {"fromMe": True, "remote": chat, "id": raw_id, "_serialized": serialized},
                "ack": 0, "hasMedia": content["type"] != "chat", "body": content["body"], "type": content["type"],
                "timestamp": now, "from": session.me["id"], "to": chat, "fromMe": True, "_data": {"id": {"_serialized": serialized}},
            }
        if self.engine == "NOWEB":
            remote = chat.replace("@c.us", "@s.whatsapp.net")
            return {"key": {"remoteJid": remote, "fromMe": True, "id": raw_id}, "message": {"conversation": content["body"]},
                    "messageTimestamp": str(now), "status": "PENDING"}
        return {"id": serialized, "_data": {"Info": {"ID": raw_id, "Chat": chat, "IsFromMe": True}}}

    # --- test helpers ---------------------------------------------------------------------
    def webhook(self, name: str) -> dict:
        return self.sessions[name].config["webhooks"][0]

    def webhook_path(self, name: str) -> str:
        """Path (+ query) of the session's webhook, for the Django test client."""
        parts = urlsplit(self.webhook(name)["url"])
        return f"{parts.path}?{parts.query}" if parts.query else parts.path

    def envelope(self, name: str, event: str, payload: dict) -> dict:
        session = self.sessions[name]
        return {
            "id": "evt_" + secrets.token_hex(13),
            "timestamp": int(time.time() * 1000),
            "event": event,
            "session": name,
            "metadata": {},
            "me": session.me,
            "payload": payload,
            "engine": self.engine,
            "environment": {"version": "2025.1.1", "engine": self.engine, "tier": "PLUS", "browser": None},
        }

    def signed(self, name: str, envelope: dict, *, key: str | None = None) -> tuple[bytes, dict]:
        """The raw body and the headers WAHA sends with it (as Django test-client kwargs)."""
        body = json.dumps(envelope, separators=(",", ":")).encode()
        secret = key if key is not None else self.webhook(name)["hmac"]["key"]
        digest = hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()
        return body, {"HTTP_X_WEBHOOK_HMAC": digest, "HTTP_X_WEBHOOK_HMAC_ALGORITHM": "sha512"}

    def session_status(self, name: str, status: str) -> dict:
        self.sessions[name].status = status
        return self.envelope(name, "session.status", {"status": status})

    def link(self, name: str, phone: str, *, push_name: str = "Shop") -> dict:
        """The phone scanned the QR: the session works; returns the session.status event."""
        self.sessions[name].me = {"id": f"{phone.lstrip('+')}@c.us", "pushName": push_name}
        return self.session_status(name, "WORKING")

    def message(
        self,
        name: str,
        *,
        chat: str,
        text: str = "hello",
        message_id: str | None = None,
        from_me: bool = False,
        participant: str | None = None,
        push_name: str = "",
        media: dict | None = None,
        timestamp: int | None = None,
        extra: dict | None = None,
    ) -> dict:
        raw_id = message_id or "3A" + secrets.token_hex(9).upper()
        serialized = f"{'true' if from_me else 'false'}_{chat}_{raw_id}" + (f"_{participant}" if participant else "")
        session = self.sessions[name]
        me = (session.me or {}).get("id", "")
        payload = {
            "id": serialized,
            "timestamp": timestamp or int(time.time()),
            "from": me if from_me else chat,
            "fromMe": from_me,
            "source": "app",
            "to": chat if from_me else me,
            "participant": participant,
            "body": text,
            "hasMedia": media is not None,
            "media": media,
            "ack": 1,
            "ackName": "SERVER",
            "vCards": [],
            "_data": {"id": {"fromMe": from_me, "remote": chat, "id": raw_id, "_serialized": serialized},
                      "notifyName": push_name, "type": "image" if media else "chat", "t": timestamp or int(time.time())},
            **(extra or {}),
        }
        return self.envelope(name, "message", payload)

    @staticmethod
    def media_url(name: str, serialized_id: str, ext: str = "jpg") -> str:
        """Where WAHA says a received file is: its own idea of its host name
        (WHATSAPP_API_HOSTNAME, here the default localhost:3000), /api/files/<session>/<id>."""
        return f"http://localhost:3000/api/files/{name}/{serialized_id}.{ext}"

    def message_ack(self, name: str, *, message_id: str, ack: int, chat: str = "") -> dict:
        names = {-1: "ERROR", 0: "PENDING", 1: "SERVER", 2: "DEVICE", 3: "READ", 4: "PLAYED"}
        payload = {"id": message_id, "from": chat, "to": chat, "participant": None, "fromMe": True, "ack": ack, "ackName": names[ack]}
        return self.envelope(name, "message.ack", payload)
