"""A loopback stand-in for GoHighLevel's API v2 (services.leadconnectorhq.com), speaking the
documented wire format of the endpoints WhatSnap uses:

- POST /oauth/token (form: client_id, client_secret, grant_type authorization_code |
  refresh_token, code / refresh_token, user_type, redirect_uri); refresh tokens are
  single-use and rotate, access tokens expire;
- GET /contacts/search/duplicate, POST /contacts/upsert (its `tags` replace all tags),
  POST /contacts/ (create; only locationId required, so a contact may have no phone),
  PUT /contacts/{id}, POST and DELETE /contacts/{id}/tags, GET /contacts/{id};
- GET and POST /contacts/{id}/notes, PUT and DELETE /contacts/{id}/notes/{noteId};
- POST /conversations/messages/inbound, PUT /conversations/messages/{id}/status,
  GET /conversations/search (by contactId), GET /conversations/{id}/messages (newest first,
  paged by lastMessageId, each message as GetMessageResponseDto in apps/conversations.json:
  id, messageType, contactId, conversationId, dateAdded, body, direction, status, attachments,
  conversationProviderId, source — and no altId);
- GET /users/search.

GET /contacts/{id} answers with the documented contact (contact_view: name, firstName, lastName,
phone, tags, dnd, ...); every status PUT is kept in `status_updates`; `add_contact` makes a
contact as GHL's own forms and imports do (WhatSnap has never seen it).

It checks the bearer token and the `Version` header each family needs, enforces the
per-location burst limit (answering 429 with the X-RateLimit-* headers), and can be told to
fail (any status), to hang, to do the work and answer too late, or to go down, to refuse
messages for a contact without a phone, and to call back (`on_outbound_added`) while it adds an
outbound message, before answering. It also signs webhooks with its own Ed25519 key, as GHL
signs X-GHL-Signature."""
import base64
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

CONVERSATIONS_VERSION = "2021-04-15"
DEFAULT_VERSION = "2021-07-28"


@dataclass
class Call:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    at: float
    status: int = 0

    @property
    def json(self):
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def form(self):
        return dict(parse_qsl(self.body.decode()))


class GhlStandIn:
    def __init__(self, *, client_id="ghl-client", client_secret="ghl-secret", rate_limit=100, window=10.0, token_ttl=86399):
        self.client_id, self.client_secret = client_id, client_secret
        self.rate_limit, self.window, self.token_ttl = rate_limit, window, token_ttl
        self.calls: list[Call] = []
        self.lock = threading.RLock()
        self.codes: dict[str, dict] = {}  # code -> {locationId, companyId} or {companyId, userType: Company}
        self.locations: dict[str, dict] = {}  # GHL location id -> {id, companyId, name, timezone, country}
        self.installed: dict[str, list[str]] = {}  # company id -> sub-accounts the app is installed in
        self.app_id = "app-whatsnap"
        self.access: dict[str, dict] = {}  # token -> {locationId, expires}
        self.refresh: dict[str, dict] = {}
        self.contacts: dict[str, dict] = {}
        self.messages: dict[str, dict] = {}
        self.notes: dict[str, dict] = {}
        self.status_updates: list[tuple[str, dict]] = []  # (message id, body) of every status PUT that reached us
        self.refuse_messages_without_phone = False
        self.on_outbound_added = None  # callable(message dict), run before the post is answered
        self.users: list[dict] = []
        self.windows: dict[str, deque] = {}
        self.throttled = 0
        self.failures: deque = deque()  # statuses to answer to the next API calls
        self.failure_all: int | None = None
        self.hang_seconds = 0.0
        self.late_answers: dict[str, float] = {}  # path prefix -> seconds: do the work, answer late (once)
        self.status_403_left = 0
        self.retry_after = None  # seconds, sent with the 429s of fail_next()
        self.daily_remaining: int | None = None  # when set, sent as X-RateLimit-Daily-Remaining
        self.drop_custom_without_provider = True
        # locations where the app's SMS provider is an extra one ("Is this a Custom Conversation
        # Provider" checked, docs/marketplace modules/ConversationProviders.md): a post there
        # without conversationProviderId is dropped (201, empty body), as GHL does
        self.custom_provider_locations: set[str] = set()
        self.keeps_posted_date = True  # dateAdded = the post's `date`; False: the time it was stored
        self.allow_duplicates = False  # the location setting "Allow Duplicate Contact": upsert always creates
        self._key = ed25519.Ed25519PrivateKey.generate()
        self.public_pem = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave as separate writes

            def _serve(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                call = Call(self.command, parts.path, dict(parse_qsl(parts.query)), {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                status, payload, headers = standin.dispatch(call)
                data = b"" if payload is None else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, str(v))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # --- test controls ----------------------------------------------------------------------
    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def issue_code(self, location_id="ghl-loc-1", company_id="ghl-company-1", user_id="ghl-user-installer") -> str:
        """The code GHL hands our redirect URL after an install of the app for one sub-account
        (a Location token: userType "Location", locationId set)."""
        code = "code-" + secrets.token_hex(6)
        self.codes[code] = {"locationId": location_id, "companyId": company_id, "userId": user_id}
        return code

    def issue_company_code(self, company_id="ghl-company-1", locations=(), user_id="ghl-agency-admin") -> str:
        """The code after an agency (company-level, bulk) install: exchanged, it gives a Company
        token (userType "Company", no locationId; approvedLocations and isBulkInstallation set —
        apps/oauth.json GetAccessCodeSuccessfulResponseDto). `locations` are the sub-accounts the
        app is installed in ({id: {name, timezone, country}} or ids registered with add_location)."""
        for location_id in locations:
            self.installed.setdefault(company_id, [])
            if location_id not in self.installed[company_id]:
                self.installed[company_id].append(location_id)
        code = "code-" + secrets.token_hex(6)
        self.codes[code] = {"companyId": company_id, "userType": "Company", "userId": user_id}
        return code

    def add_location(self, location_id: str, *, name: str, timezone_name="America/Chicago", country="US", company_id="ghl-company-1"):
        """A GHL sub-account (what GET /locations/{locationId} answers)."""
        self.locations[location_id] = {"id": location_id, "companyId": company_id, "name": name, "timezone": timezone_name, "country": country}

    def expire_access_tokens(self):
        with self.lock:
            for info in self.access.values():
                info["expires"] = 0

    def fail_next(self, *statuses: int):
        self.failures.extend(statuses)

    def go_down(self, status=500):
        self.failure_all = status

    def recover(self):
        self.failure_all = None
        self.hang_seconds = 0.0

    def api_calls(self, method=None, path_prefix=""):
        return [c for c in self.calls if c.path != "/oauth/token" and (method is None or c.method == method) and c.path.startswith(path_prefix)]

    def sign(self, payload: dict) -> tuple[bytes, dict]:
        raw = json.dumps(payload).encode()
        return raw, {"HTTP_X_GHL_SIGNATURE": base64.b64encode(self._key.sign(raw)).decode()}

    def provider_outbound(self, *, location_id, contact_id, text, message_id=None, phone="", user_id="", webhook_id=None, timestamp=True,
                          kind="SMS"):
        """ProviderOutboundMessage as GHL delivers it (highlevel-api-docs, docs/webhook events/
        ProviderOutboundMessage.md): type "SMS" from the default SMS provider, "Custom" otherwise."""
        payload = {
            "type": kind, "locationId": location_id, "contactId": contact_id, "messageId": message_id or "ghl-msg-" + secrets.token_hex(5),
            "phone": phone, "message": text, "attachments": [], "userId": user_id,
        }
        if webhook_id:
            payload["webhookId"] = webhook_id
        if timestamp:
            payload["timestamp"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        return payload

    # --- dispatch ---------------------------------------------------------------------------
    def dispatch(self, call: Call):
        with self.lock:
            self.calls.append(call)
        if self.hang_seconds:
            time.sleep(self.hang_seconds)
        status, payload, headers = self._dispatch(call)
        call.status = status
        added = payload.get("messageId") if isinstance(payload, dict) and call.path == "/conversations/messages/inbound" else None
        if added and self.on_outbound_added and self.messages[added].get("direction") == "outbound":
            self.on_outbound_added(dict(self.messages[added]))
        late = next((p for p in self.late_answers if call.path.startswith(p)), None)
        if late is not None:
            time.sleep(self.late_answers.pop(late))
        return status, payload, headers

    def _dispatch(self, call: Call):
        if call.path == "/oauth/token" and call.method == "POST":
            return (*self._token(call.form), {})
        if call.path in ("/oauth/locationToken", "/oauth/installedLocations"):
            return (*self._agency(call), {})
        with self.lock:
            token = (call.headers.get("authorization") or "").removeprefix("Bearer ").strip()
            info = self.access.get(token)
            if info is None or info["expires"] < time.time():
                return 401, {"statusCode": 401, "message": "Invalid JWT"}, {}
            want = CONVERSATIONS_VERSION if call.path.startswith("/conversations") else DEFAULT_VERSION
            if call.headers.get("version") != want:
                return 400, {"statusCode": 400, "message": f"Version header must be {want}"}, {}
            location = info.get("locationId")
            if location is None:  # a Company token calls only the agency endpoints
                return 403, {"statusCode": 403, "message": "This route is not yet supported by the IAM Service. Use a Location token"}, {}
            window = self.windows.setdefault(location, deque())
            now = time.time()
            while window and window[0] <= now - self.window:
                window.popleft()
            if len(window) >= self.rate_limit:
                self.throttled += 1
                return 429, {"statusCode": 429, "message": "Too many requests"}, self._rl_headers(window)
            window.append(now)
            if self.failure_all:
                return self.failure_all, {"statusCode": self.failure_all, "message": "stand-in outage"}, {}
            if self.failures:
                status = self.failures.popleft()
                headers = {}
                if status == 429:  # GHL's 429 carries its rate-limit headers: this window is used up
                    headers = {**self._rl_headers(window), "X-RateLimit-Remaining": 0}
                    if self.retry_after:
                        headers["Retry-After"] = self.retry_after
                return status, {"statusCode": status, "message": "stand-in failure"}, headers
            status, payload = self._api(call, location)
            return status, payload, self._rl_headers(window)

    def _rl_headers(self, window):
        headers = {
            "X-RateLimit-Max": self.rate_limit,
            "X-RateLimit-Remaining": max(self.rate_limit - len(window), 0),
            "X-RateLimit-Interval-Milliseconds": int(self.window * 1000),
        }
        if self.daily_remaining is not None:
            headers["X-RateLimit-Daily-Remaining"] = self.daily_remaining
        return headers

    def _token(self, form):
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "client credentials are wrong"}
        if form.get("grant_type") == "authorization_code":
            grant = self.codes.pop(form.get("code", ""), None)
        elif form.get("grant_type") == "refresh_token":
            grant = self.refresh.pop(form.get("refresh_token", ""), None)  # single use
        else:
            return 400, {"error": "unsupported_grant_type"}
        if grant is None:
            return 400, {"error": "invalid_grant", "error_description": "code or refresh token is invalid"}
        access, refresh = "at-" + secrets.token_hex(8), "rt-" + secrets.token_hex(8)
        self.refresh[refresh] = dict(grant)
        if grant.get("userType") == "Company":
            self.access[access] = {"companyId": grant["companyId"], "userType": "Company", "expires": time.time() + self.token_ttl}
            return 200, {
                "access_token": access, "token_type": "Bearer", "expires_in": self.token_ttl, "refresh_token": refresh,
                "scope": "oauth.write oauth.readonly conversations/message.write contacts.write locations.readonly", "userType": "Company",
                "companyId": grant["companyId"], "userId": grant.get("userId", ""), "isBulkInstallation": True,
                "approvedLocations": list(self.installed.get(grant["companyId"], [])),
            }
        self.access[access] = {"locationId": grant["locationId"], "expires": time.time() + self.token_ttl}
        return 200, {
            "access_token": access, "token_type": "Bearer", "expires_in": self.token_ttl, "refresh_token": refresh,
            "scope": "conversations/message.write contacts.write locations.readonly", "userType": "Location",
            "locationId": grant["locationId"], "companyId": grant["companyId"], "userId": grant.get("userId", "ghl-user-installer"),
        }

    def _agency(self, call: Call):
        """POST /oauth/locationToken (form companyId, locationId; a Company token; Version
        2021-07-28): a Location token without a refresh token (GetLocationAccessTokenSuccessfulResponseDto).
        GET /oauth/installedLocations?companyId=&appId=&isInstalled=: {locations: [{_id, name,
        address, isInstalled}], count} (apps/oauth.json)."""
        with self.lock:
            token = (call.headers.get("authorization") or "").removeprefix("Bearer ").strip()
            info = self.access.get(token)
            if info is None or info["expires"] < time.time():
                return 401, {"statusCode": 401, "message": "Invalid JWT"}
            if info.get("userType") != "Company":
                return 401, {"statusCode": 401, "message": "This route requires an Agency token"}
            if call.headers.get("version") != DEFAULT_VERSION:
                return 400, {"statusCode": 400, "message": f"Version header must be {DEFAULT_VERSION}"}
            company = info["companyId"]
            if call.path == "/oauth/installedLocations" and call.method == "GET":
                if call.query.get("companyId") != company or call.query.get("appId") != self.app_id:
                    return 400, {"statusCode": 400, "message": "companyId and appId are required"}
                rows = [{"_id": i, "name": self.locations.get(i, {}).get("name", i), "address": "", "isInstalled": True}
                        for i in self.installed.get(company, [])]
                return 200, {"locations": rows, "count": len(rows)}
            if call.path == "/oauth/locationToken" and call.method == "POST":
                form = call.form
                if form.get("companyId") != company or form.get("locationId") not in self.installed.get(company, []):
                    return 400, {"statusCode": 400, "message": "Location not found or the app is not installed there"}
                access = "at-" + secrets.token_hex(8)
                self.access[access] = {"locationId": form["locationId"], "expires": time.time() + self.token_ttl}
                return 201, {"access_token": access, "token_type": "Bearer", "expires_in": self.token_ttl,
                             "scope": "conversations/message.write contacts.write locations.readonly",
                             "locationId": form["locationId"], "userId": "ghl-agency-admin", "appId": self.app_id}
            return 404, {"message": f"Cannot {call.method} {call.path}"}

    def _api(self, call: Call, location: str):
        path, body = call.path, call.json or {}
        if path == "/contacts/search/duplicate" and call.method == "GET":
            if call.query.get("locationId") != location:
                return 403, {"message": "The token does not have access to this location"}
            match = next((c for c in self.contacts.values() if c["locationId"] == location and c["phone"] == call.query.get("number")), None)
            return 200, {"contact": match}
        if path == "/contacts/upsert" and call.method == "POST":
            if body.get("locationId") != location or not body.get("phone"):
                return 422, {"message": ["locationId and phone are required"]}
            match = None if self.allow_duplicates else next(
                (c for c in self.contacts.values() if c["locationId"] == location and c["phone"] == body["phone"]), None)
            new = match is None
            if new:
                match = {"id": "c-" + secrets.token_hex(6), "locationId": location, "phone": body["phone"], "name": "", "tags": [], "assignedTo": None, "source": ""}
                self.contacts[match["id"]] = match
            for key in ("name", "assignedTo", "source"):
                if key in body:
                    match[key] = body[key]
            if "tags" in body:
                match["tags"] = list(body["tags"])  # replaces, as documented
            _keep_custom_fields(match, body)
            return 200, {"new": new, "contact": dict(match)}
        if path == "/contacts/" and call.method == "POST":
            if body.get("locationId") != location:
                return 422, {"message": ["locationId is required"]}
            contact = {"id": "c-" + secrets.token_hex(6), "locationId": location, "phone": body.get("phone") or None,
                       "name": body.get("name", ""), "tags": list(body.get("tags") or []), "assignedTo": body.get("assignedTo"),
                       "source": body.get("source", "")}
            self.contacts[contact["id"]] = contact
            return 201, {"contact": dict(contact)}
        m = re.fullmatch(r"/contacts/([^/]+)/notes(?:/([^/]+))?", path)
        if m:
            return self._notes(call, location, m.group(1), m.group(2), body)
        m = re.fullmatch(r"/contacts/([^/]+)(/tags)?", path)
        if m:
            contact = self.contacts.get(m.group(1))
            if contact is None or contact["locationId"] != location:
                return 404, {"message": "Contact not found"}
            if m.group(2) and call.method == "POST":
                contact["tags"] = contact["tags"] + [t for t in body.get("tags", []) if t not in contact["tags"]]
                return 201, {"tags": contact["tags"]}
            if m.group(2) and call.method == "DELETE":
                contact["tags"] = [t for t in contact["tags"] if t not in body.get("tags", [])]
                return 200, {"tags": contact["tags"]}
            if not m.group(2) and call.method == "PUT":
                if "tags" in body:
                    contact["tags"] = list(body["tags"])
                for key in ("name", "assignedTo", "phone"):
                    if key in body:
                        contact[key] = body[key] or None
                _keep_custom_fields(contact, body)
                return 200, {"succeded": True, "contact": dict(contact)}
            if not m.group(2) and call.method == "GET":
                return 200, {"contact": self.contact_view(contact)}
        if path == "/conversations/messages/inbound" and call.method == "POST":
            contact = self.contacts.get(body.get("contactId", ""))
            if contact is None or contact["locationId"] != location:
                return 400, {"message": "Contact not found"}
            if body.get("type") not in ("SMS", "Custom", "WhatsApp", "Email", "GMB", "IG", "FB", "WebChat", "Live_Chat", "Call"):
                return 422, {"message": ["type must be a valid enum value"]}
            if body.get("type") == "Custom" and not body.get("conversationProviderId") and self.drop_custom_without_provider:
                return 201, None  # documented: silently dropped
            if location in self.custom_provider_locations and not body.get("conversationProviderId"):
                return 201, None  # a custom provider's message without its id: silently dropped
            if self.refuse_messages_without_phone and not contact.get("phone"):
                return 400, {"statusCode": 400, "message": "The contact has no phone number"}
            mid = "m-" + secrets.token_hex(6)
            custom = body.get("type") == "Custom" or (body.get("conversationProviderId") and location in self.custom_provider_locations)
            added = (self.keeps_posted_date and _ms_time(body.get("date"))) or _ms_time(datetime.now(timezone.utc).isoformat())
            self.messages[mid] = {**body, "id": mid, "locationId": location, "conversationId": "conv-" + contact["id"], "status": "delivered" if body.get("direction") != "outbound" else "pending",
                                  "dateAdded": added, "source": "api", "messageType": "TYPE_CUSTOM_PROVIDER_SMS" if custom else "TYPE_SMS"}
            return 200, {"success": True, "conversationId": "conv-" + contact["id"], "messageId": mid, "message": "Message added"}
        m = re.fullmatch(r"/conversations/messages/([^/]+)/status", path)
        if m and call.method == "PUT":
            if self.status_403_left > 0:
                self.status_403_left -= 1
                return 403, {"message": "The token is not authorized for this message yet"}
            self.status_updates.append((m.group(1), body))
            message = self.messages.get(m.group(1))
            if message is None:
                return 404, {"message": "Message not found"}
            if body.get("status") not in ("delivered", "failed", "pending", "read"):
                return 422, {"message": ["status must be delivered, failed, pending or read"]}
            message["status"] = body["status"]
            message["error"] = body.get("error")
            return 200, {"success": True}
        if path == "/conversations/search" and call.method == "GET":
            if call.query.get("locationId") != location:
                return 403, {"message": "The token does not have access to this location"}
            ids = dict.fromkeys(m["conversationId"] for m in self.messages.values()
                                if m["locationId"] == location and m.get("contactId") == call.query.get("contactId"))
            return 200, {"conversations": [{"id": i, "contactId": call.query.get("contactId"), "locationId": location} for i in ids], "total": len(ids)}
        m = re.fullmatch(r"/conversations/([^/]+)/messages", path)
        if m and call.method == "GET":
            newest_first = [x for x in reversed(list(self.messages.values())) if x["locationId"] == location and x["conversationId"] == m.group(1)]
            if not newest_first:
                return 400, {"statusCode": 400, "message": "Conversation not found"}
            start = 0
            if call.query.get("lastMessageId"):
                start = next((i + 1 for i, x in enumerate(newest_first) if x["id"] == call.query["lastMessageId"]), len(newest_first))
            limit = int(call.query.get("limit") or 20)
            page = newest_first[start:start + limit]
            return 200, {"messages": {
                "lastMessageId": page[-1]["id"] if page else None, "nextPage": start + limit < len(newest_first),
                "messages": [{"id": x["id"], "messageType": x.get("messageType", "TYPE_SMS"), "locationId": location, "contactId": x.get("contactId"),
                              "conversationId": x["conversationId"], "dateAdded": x.get("dateAdded"), "body": x.get("message", ""),
                              "direction": x.get("direction", "inbound"), "status": x.get("status"), "contentType": "text/plain",
                              "attachments": list(x.get("attachments") or []), "source": x.get("source"),
                              **{k: x[k] for k in ("conversationProviderId", "userId") if x.get(k)}} for x in page],
            }}
        m = re.fullmatch(r"/conversations/messages/([^/]+)", path)
        if m and call.method == "GET":  # Get message by message id: GetMessageResponseDto
            x = self.messages.get(m.group(1))
            if x is None or x["locationId"] != location:
                return 404, {"statusCode": 404, "message": "Message not found"}
            return 200, {"id": x["id"], "messageType": x.get("messageType", "TYPE_SMS"), "locationId": location, "contactId": x.get("contactId"),
                         "conversationId": x["conversationId"], "dateAdded": x.get("dateAdded"), "body": x.get("message", ""),
                         "direction": x.get("direction", "inbound"), "status": x.get("status"), "contentType": "text/plain",
                         "source": x.get("source"), **{k: x[k] for k in ("conversationProviderId", "userId") if x.get(k)}}
        m = re.fullmatch(r"/locations/([^/]+)", path)
        if m and call.method == "GET":
            if m.group(1) != location:
                return 403, {"statusCode": 403, "message": "The token does not have access to this location"}
            details = self.locations.get(location) or {"id": location, "name": "", "timezone": "", "country": ""}
            return 200, {"location": dict(details)}
        if path == "/users/search" and call.method == "GET":
            return 200, {"users": [u for u in self.users], "count": len(self.users)}
        return 404, {"message": f"Cannot {call.method} {path}"}

    def _notes(self, call: Call, location: str, contact_id: str, note_id: str | None, body: dict):
        contact = self.contacts.get(contact_id)
        if contact is None or contact["locationId"] != location:
            return 404, {"message": "Contact not found"}
        if note_id is None and call.method == "GET":
            return 200, {"notes": [dict(n) for n in self.notes.values() if n["contactId"] == contact_id]}
        if note_id is None and call.method == "POST":
            if not body.get("body"):
                return 422, {"message": ["body should not be empty"]}
            note = {"id": "n-" + secrets.token_hex(6), "contactId": contact_id, "body": body["body"],
                    "dateAdded": datetime.now(timezone.utc).isoformat()}
            self.notes[note["id"]] = note
            return 201, {"note": dict(note)}
        note = self.notes.get(note_id or "")
        if note is None or note["contactId"] != contact_id:
            return 404, {"message": "Note not found"}
        if call.method == "PUT":
            note["body"] = body.get("body", note["body"])
            return 200, {"note": dict(note)}
        if call.method == "DELETE":
            del self.notes[note_id]
            return 200, {"succeded": True}
        return 404, {"message": f"Cannot {call.method} {call.path}"}

    @staticmethod
    def contact_view(contact: dict) -> dict:
        """GET /contacts/{contactId}: {contact: GetContectByIdSchema} (GoHighLevel/highlevel-api-docs,
        apps/contacts.json): name and its firstName/lastName parts, phone, tags, dnd and dndSettings
        ({SMS|WhatsApp|…: {status: active|inactive|permanent, message, code}}), ..."""
        name = contact.get("name") or ""
        first, _, last = name.partition(" ")
        return {
            "id": contact["id"], "locationId": contact["locationId"], "name": name or None,
            "firstName": contact.get("firstName", first or None), "lastName": contact.get("lastName", last or None),
            "phone": contact.get("phone"), "email": contact.get("email"), "tags": list(contact.get("tags") or []),
            "dnd": bool(contact.get("dnd")), "dndSettings": contact.get("dndSettings") or {}, "type": "lead", "source": contact.get("source") or None,
            "assignedTo": contact.get("assignedTo"), "country": contact.get("country", "US"),
            "dateAdded": contact.get("dateAdded", "2026-01-02T05:18:26.704Z"),
            "customFields": [{"id": k, "value": v} for k, v in (contact.get("customFields") or {}).items()],
        }

    def add_contact(self, location_id: str, *, phone=None, name="", tags=(), first_name=None, last_name=None, **extra) -> str:
        """A contact made in GHL itself (a form, an import, a person): WhatSnap has never seen it."""
        cid = "c-" + secrets.token_hex(6)
        contact = {"id": cid, "locationId": location_id, "phone": phone, "name": name, "tags": list(tags), "assignedTo": None, "source": "form", **extra}
        if first_name is not None:
            contact["firstName"], contact["lastName"] = first_name, last_name
        with self.lock:
            self.contacts[cid] = contact
        return cid

    def notes_of(self, contact_id: str) -> list[str]:
        return [n["body"] for n in self.notes.values() if n["contactId"] == contact_id]

    def add_provider_message(self, location_id: str, contact_id: str, text: str, *, date: str | None = None,
                             provider_id: str | None = None, user_id: str = "ghl-user-1") -> str:
        """A reply typed in GHL: GHL stores it, then calls the provider's Delivery URL. `date`
        (ISO) backdates it; `provider_id` is the provider it went through."""
        mid = "m-" + secrets.token_hex(6)
        with self.lock:
            self.messages[mid] = {"id": mid, "locationId": location_id, "contactId": contact_id, "message": text, "direction": "outbound", "status": "pending",
                                  "conversationId": "conv-" + contact_id, "dateAdded": _ms_time(date or datetime.now(timezone.utc).isoformat()),
                                  "source": "app", "userId": user_id, "messageType": "TYPE_SMS", "conversationProviderId": provider_id}
        return mid


def _keep_custom_fields(contact: dict, body: dict) -> None:
    """customFields of an upsert or PUT: [{id or key, field_value}] (GoHighLevel/highlevel-api-docs,
    apps/contacts.json, customFieldsInputStringSchema: "Pass either `id` or `key`"); each named
    field takes its value, the others keep theirs. Kept as contact["customFields"] {id|key: value}."""
    for item in body.get("customFields") or []:
        which = item.get("id") or item.get("key")
        if which:
            contact.setdefault("customFields", {})[which] = item.get("field_value")


def _ms_time(value) -> str | None:
    """An ISO time as GHL writes dateAdded ("2024-03-27T18:13:49.000Z"), None if unreadable."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
