"""A loopback stand-in for a WAHA gateway (devlikeapro's WhatsApp HTTP API).

It speaks the documented wire format for what WhatSnap uses: `X-Api-Key` header auth;
sessions (POST /api/sessions — 422 when the name exists, PUT /api/sessions/{name},
GET /api/sessions/{name}[/me], POST /api/sessions/{name}/start|stop|logout); linking
(GET /api/{session}/auth/qr?format=raw -> {"value"}, 422 unless SCAN_QR_CODE;
POST /api/{session}/auth/request-code -> {"code"}); sending (POST /api/sendText, sendImage,
sendFile, startTyping, stopTyping, each with an optional `reply_to`; PUT /api/reaction
{session, messageId, reaction}; POST /api/sendSeen {session, chatId, messageIds}; 422 unless
the session is WORKING); LIDs (GET /api/{session}/lids/{lid} -> {lid, pn}); history
(GET /api/{session}/chats/overview -> [{id, name, picture, lastMessage, _chat}],
GET /api/{session}/chats/{chatId}/messages with limit/offset, filter.timestamp.gte/lte,
filter.fromMe, sortOrder); received files at GET /api/files/{session}/{file}. A session's
webhook may name only events this WAHA knows (`known_events`; 400 otherwise, as WAHA's
validation answers). Sends are answered the
way the chosen engine answers (WEBJS: `id` object with `_serialized`; NOWEB: a Baileys `key`;
GOWS: a serialized `id` string). Webhook envelopes `{id, timestamp, event, session, me,
payload, engine, environment}` are built as WAHA posts them and signed like WAHA:
`X-Webhook-Hmac` = hex HMAC-SHA512 of the raw body with the session webhook's hmac.key,
`X-Webhook-Hmac-Algorithm: sha512`. Payloads per engine: tests/standins/waha_payloads.py."""
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.standins import waha_payloads as wire
from tests.standins.loopback import LoopbackStandIn, Raw, Recorded

ENGINES = ("WEBJS", "NOWEB", "GOWS")
# WAHAEvents of a current WAHA (devlikeapro/waha src/structures/enums.dto.ts)
EVENTS_NOW = ("session.status", "message", "message.reaction", "message.any", "message.ack", "message.ack.group",
              "message.waiting", "message.revoked", "message.edited", "state.change", "group.join", "group.leave",
              "group.v2.join", "group.v2.leave", "group.v2.update", "group.v2.participants", "presence.update",
              "poll.vote", "poll.vote.failed", "chat.archive", "call.received", "call.accepted", "call.rejected",
              "label.upsert", "label.deleted", "label.chat.added", "label.chat.deleted", "event.response",
              "event.response.failed", "engine.event")
# ...and of 2024.10.8, before message.edited (devlikeapro/waha@2024.10.8 src/structures/enums.dto.ts)
EVENTS_2024_10 = ("session.status", "message", "message.reaction", "message.any", "message.ack", "message.waiting",
                  "message.revoked", "state.change", "group.join", "group.leave", "presence.update", "poll.vote",
                  "poll.vote.failed", "chat.archive", "call.received", "call.accepted", "call.rejected", "label.upsert",
                  "label.deleted", "label.chat.added", "label.chat.deleted")


@dataclass
class Session:
    name: str
    config: dict
    status: str = "STOPPED"  # STOPPED | STARTING | SCAN_QR_CODE | WORKING | FAILED
    me: dict | None = None  # {"id": "<digits>@c.us", "pushName": ...} once linked
    qr_count: int = 0
    sent: list = field(default_factory=list)  # (serialized id, request body)
    presence: list = field(default_factory=list)  # ("typing" | "paused", chatId, monotonic time)
    reactions: list = field(default_factory=list)  # PUT /api/reaction bodies
    seen: list = field(default_factory=list)  # POST /api/sendSeen bodies
    history: dict = field(default_factory=dict)  # chat id -> [WAMessage] the engine still holds

    @property
    def running(self) -> bool:
        return self.status not in ("STOPPED", "FAILED")


def _parse_id(value):
    """WAHA's parseMessageIdSerialized (src/core/utils/ids.ts): 3 or 4 parts, else an error."""
    parts = value.split("_") if isinstance(value, str) else []
    return parts if len(parts) in (3, 4) and parts[0] in ("true", "false") else None


def _error(status: int, message: str):
    names = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 422: "Unprocessable Entity"}
    return status, {"statusCode": status, "message": message, "error": names.get(status, "Error")}


class WahaStandIn(LoopbackStandIn):
    def __init__(self, *, api_key: str = "waha-test-key", engine: str = "WEBJS", start_status: str | None = None,
                 known_events=EVENTS_NOW, overview: bool = True, lids_endpoint: bool = True):
        super().__init__()
        assert engine in ENGINES
        self.api_key = api_key
        self.engine = engine
        self.start_status = start_status  # e.g. "STARTING": a start that is not ready yet
        self.known_events = tuple(known_events)
        self.overview = overview  # GET /chats/overview exists (WAHA 2025+)
        self.lids_endpoint = lids_endpoint  # GET /lids/{lid} exists
        self.sessions: dict[str, Session] = {}
        self.files: dict[str, tuple[bytes, str]] = {}  # "<session>/<file>" -> (bytes, content type)
        self.lids: dict[str, str] = {}  # '…@lid' -> '…@c.us' the session knows
        self.me_lid: str | None = None  # the account's own LID, in `me` once linked

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
        if method in ("POST", "PUT") and len(parts) == 2 and parts[0] == "api":
            return self._chatting(method, parts[1], request.json or {})
        if method == "GET" and len(parts) >= 3 and parts[0] == "api" and parts[2] in ("lids", "chats"):
            return self._reading(parts[1], parts[2:], request.query)
        return _error(404, f"Cannot {method} {request.path}")

    def _refused_events(self, body: dict):
        """WAHA validates the webhook config (IsEnum(WAHAEvents) on `events`): 400 naming it."""
        for index, hook in enumerate(((body.get("config") or {}).get("webhooks") or [])):
            unknown = [e for e in hook.get("events") or [] if e not in self.known_events and e != "*"]
            if unknown:
                return 400, {"statusCode": 400, "error": "Bad Request", "message": [
                    f"config.webhooks.{index}.each value in events must be one of the following values: "
                    + ", ".join(self.known_events)]}
        return None

    def _sessions(self, method: str, rest: list, request: Recorded):
        if not rest:
            if method == "POST":
                body = request.json or {}
                name = body.get("name") or "default"
                if refused := self._refused_events(body):
                    return refused
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
            if refused := self._refused_events(request.json or {}):
                return refused
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

    def _chatting(self, method: str, action: str, body: dict):
        session = self.sessions.get(body.get("session", "default"))
        if session is None:
            return _error(404, f"Session \"{body.get('session')}\" does not exist")
        if session.status != "WORKING":
            return _error(422, f"Session status is not as expected. Try again later or restart the session. Status: {session.status}")
        if (method, action) == ("PUT", "reaction"):
            if _parse_id(body.get("messageId")) is None or not isinstance(body.get("reaction"), str):
                return _error(400, "messageId must be a serialized message id and reaction a string")
            session.reactions.append(body)
            return 200, None
        if method != "POST":
            return _error(404, f"Cannot {method} /api/{action}")
        chat = str(body.get("chatId", ""))
        if not (chat.endswith("@c.us") and chat.split("@")[0].isdigit()) and not chat.endswith(("@g.us", "@lid")):
            return _error(400, f"chatId {chat!r}: use <digits>@c.us, a @lid or a group's @g.us id")
        if body.get("reply_to") is not None and _parse_id(body["reply_to"]) is None:
            return _error(400, "reply_to must be a serialized message id (true|false_<chat>_<id>)")
        if action == "sendSeen":
            ids = body.get("messageIds") or []
            if any(_parse_id(i) is None for i in ids):  # each id names its own chat (parseMessageIdSerialized)
                return _error(400, "Message id be in format false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA[_participant]")
            session.seen.append(body)
            return 201, None
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
        if self.engine == "GOWS" and chat.endswith("@g.us"):  # messageResponse: buildMessageId(IsGroup, Sender=me)
            serialized += f"_{session.me['id']}"
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

    def _reading(self, name: str, rest: list, query: dict):
        session = self.sessions.get(name)
        if session is None:
            return _error(404, f"Session \"{name}\" does not exist")
        if session.status != "WORKING":
            return _error(422, f"Session status is not as expected. Status: {session.status}")
        if rest[0] == "lids" and len(rest) == 2 and self.lids_endpoint:
            lid = rest[1] if "@" in rest[1] else rest[1] + "@lid"
            if not lid.endswith("@lid"):
                return _error(422, "Invalid LID - it must end with @lid")
            return 200, {"lid": lid, "pn": self.lids.get(lid)}
        if rest == ["chats", "overview"] and self.overview:
            return 200, self._page([self._summary(c, m) for c, m in self._chats(session)], query)
        if rest == ["chats"]:
            chats = [{"id": c, "conversationTimestamp": m[-1]["timestamp"]} for c, m in self._chats(session)]
            return 200, self._page(chats, query)
        if len(rest) == 3 and rest[0] == "chats" and rest[2] == "messages":
            return 200, self._messages(session.history.get(rest[1], []), query)
        return _error(404, f"Cannot GET /api/{name}/{'/'.join(rest)}")

    @staticmethod
    def _chats(session: Session) -> list:
        chats = [(chat, sorted(msgs, key=lambda m: m["timestamp"])) for chat, msgs in session.history.items() if msgs]
        return sorted(chats, key=lambda cm: cm[1][-1]["timestamp"], reverse=True)

    @staticmethod
    def _summary(chat: str, messages: list) -> dict:
        return {"id": chat, "name": None, "picture": None, "lastMessage": messages[-1], "_chat": {"id": chat}}

    @staticmethod
    def _page(items: list, query: dict) -> list:
        offset, limit = int(query.get("offset") or 0), query.get("limit")
        return items[offset:offset + int(limit)] if limit is not None else items[offset:]

    def _messages(self, messages: list, query: dict) -> list:
        gte, lte = query.get("filter.timestamp.gte"), query.get("filter.timestamp.lte")
        found = [m for m in messages if (gte is None or m["timestamp"] >= int(gte)) and (lte is None or m["timestamp"] <= int(lte))]
        if query.get("filter.fromMe") is not None:
            found = [m for m in found if m["fromMe"] == (query["filter.fromMe"] == "true")]
        found.sort(key=lambda m: m["timestamp"], reverse=query.get("sortOrder") != "asc")
        if query.get("downloadMedia") == "false":
            found = [{**m, "media": None} for m in found]
        return self._page(found, {"limit": query.get("limit", 10), "offset": query.get("offset")})

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
            "me": self.me(name) if session.me else None,
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

    def me(self, name: str) -> dict:
        me = dict(self.sessions[name].me or {"id": "0@c.us"})
        return {**me, "lid": self.me_lid} if self.me_lid else me

    @staticmethod
    def new_id() -> str:
        return "3A" + secrets.token_hex(9).upper()

    def message(self, name: str, *, chat: str, text: str = "hello", message_id: str | None = None, from_me: bool = False,
                participant: str | None = None, push_name: str = "", media: dict | None = None, timestamp: int | None = None,
                extra: dict | None = None, alt: str | None = None, reply_to: dict | None = None, event: str = "message.any",
                kind: str = "chat") -> dict:
        """A message event as this engine posts it. `participant`: the group member who wrote;
        `alt`: the person's other id when the engine gives it (phone for a LID, and back);
        `reply_to`: {id (raw), participant, body} of the message it quotes."""
        addressing = "lid" if (participant or chat).endswith("@lid") else "pn"
        payload = wire.wa_message(self.engine, me=self.me(name), chat=chat, raw_id=message_id or self.new_id(), from_me=from_me,
                                  text=text, sender=participant, alt=alt, addressing=addressing, push_name=push_name, media=media,
                                  timestamp=timestamp or int(time.time()), reply_to=reply_to, extra=extra, kind=kind)
        return self.envelope(name, event, payload)

    def reaction(self, name: str, *, chat: str, target_id: str, target_from_me: bool, emoji: str, from_me: bool = False,
                 participant: str | None = None, author: str | None = None, message_id: str | None = None) -> dict:
        """A reaction (emoji '' removes it) on the message `target_id` (raw id); `author`: who
        wrote the target in a group when not the account."""
        target = {"raw_id": target_id, "from_me": target_from_me, "author": author}
        payload = wire.reaction(self.engine, me=self.me(name), chat=chat, raw_id=message_id or self.new_id(), from_me=from_me,
                                target=target, emoji=emoji, sender=participant, timestamp=int(time.time()))
        return self.envelope(name, "message.reaction", payload)

    def edited(self, name: str, *, chat: str, original_id: str, text: str, from_me: bool = False,
               participant: str | None = None, edit_id: str | None = None) -> dict:
        payload = wire.edited(self.engine, me=self.me(name), chat=chat, edit_id=edit_id or self.new_id(), original_id=original_id,
                              from_me=from_me, text=text, sender=participant, timestamp=int(time.time()))
        return self.envelope(name, "message.edited", payload)

    def revoked(self, name: str, *, chat: str, original_id: str, from_me: bool = False, participant: str | None = None,
                author: str | None = None, before_text: str | None = None) -> dict:
        payload = wire.revoked(self.engine, me=self.me(name), chat=chat, revoke_id=self.new_id(), original_id=original_id,
                               from_me=from_me, sender=participant, author=author, timestamp=int(time.time()),
                               before_text=before_text)
        return self.envelope(name, "message.revoked", payload)

    def hold(self, name: str, chat: str, envelope: dict) -> dict:
        """Keep a message event's payload in the session's history (what its chats endpoints serve)."""
        self.sessions[name].history.setdefault(chat, []).append(envelope["payload"])
        return envelope["payload"]

    @staticmethod
    def media_url(name: str, serialized_id: str, ext: str = "jpg") -> str:
        """Where WAHA says a received file is: its own idea of its host name
        (WHATSAPP_API_HOSTNAME, here the default localhost:3000), /api/files/<session>/<id>."""
        return f"http://localhost:3000/api/files/{name}/{serialized_id}.{ext}"

    def message_ack(self, name: str, *, message_id: str, ack: int, chat: str = "", from_me: bool = True) -> dict:
        return self.envelope(name, "message.ack", wire.ack(self.engine, message_id=message_id, ack_value=ack, chat=chat, from_me=from_me))
