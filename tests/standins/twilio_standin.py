"""A loopback stand-in for Twilio's REST API, as the twilio SDK calls it.

Two hosts, as at Twilio: `url` serves api.twilio.com (2010-04-01: Accounts/{sid}.json,
IncomingPhoneNumbers.json list + POST IncomingPhoneNumbers/{PN}.json update, Messages.json
create, GET Messages/{MM}/Media/{ME}: an inbound MMS attachment, answered with the file itself
where Twilio redirects to its CDN) and `messaging_url` serves messaging.twilio.com (v1: Services/{MG} fetch + update,
Services/{MG}/PhoneNumbers, Services/{MG}/Compliance/Usa2p). Requests are form-encoded, Basic
auth is checked against the account SID + auth token (or a configured API key + secret), and
answers are JSON shaped like Twilio's, errors `{code, message, more_info, status}`.
`fail_with()` / `down()` apply to both hosts."""
import base64
import re
import secrets
from email.utils import formatdate
from urllib.parse import parse_qs, urlencode

from tests.standins.evolution_standin import LoopbackStandIn, Raw, Recorded

API = "/2010-04-01"


def _error(status: int, code: int, message: str):
    return status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


def _not_found(path: str):
    return _error(404, 20404, f"The requested resource {path} was not found")


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def form(request: Recorded) -> dict[str, list[str]]:
    """The form-encoded body of a request, each name with all its values."""
    return parse_qs(request.body.decode(), keep_blank_values=True)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()  # SmsUrl -> sms_url


class _MessagingHost(LoopbackStandIn):
    """messaging.twilio.com: a second port sharing the API stand-in's state and lock."""

    def __init__(self, api: "TwilioStandIn"):
        super().__init__()
        self.api = api

    def route(self, request: Recorded):
        return self.api.route_messaging(request)


class TwilioStandIn(LoopbackStandIn):
    def __init__(self, *, account_sid: str = "AC" + "5" * 32, auth_token: str = "standin-auth-token",
                 api_keys: dict[str, str] | None = None):
        super().__init__()
        self.account_sid, self.auth_token = account_sid, auth_token
        self.api_keys = dict(api_keys or {})  # SK… -> secret
        self.numbers: dict[str, dict] = {}  # PN… -> IncomingPhoneNumber
        self.services: dict[str, dict] = {}  # MG… -> Service
        self.pools: dict[str, list[dict]] = {}  # MG… -> its PhoneNumbers
        self.campaigns: dict[str, list[dict]] = {}  # MG… -> its Usa2p records
        self.messages: list[dict] = []  # created messages, as answered, plus the request's form
        self.media: dict[str, tuple[bytes, str]] = {}  # "MM…/ME…" -> (bytes, content type)
        self.messaging = _MessagingHost(self)
        self.messaging.lock = self.lock
        self.messaging_url = self.messaging.url

    # --- set-up ---------------------------------------------------------------------------
    def add_number(self, phone: str, *, sms: bool = True) -> dict:
        sid = _sid("PN")
        self.numbers[sid] = {
            "sid": sid, "account_sid": self.account_sid, "friendly_name": phone, "phone_number": phone,
            "capabilities": {"voice": True, "sms": sms, "mms": sms, "fax": False},
            "sms_url": "", "sms_method": "POST", "sms_fallback_url": "", "status_callback": "", "status_callback_method": "POST",
            "voice_url": "", "api_version": "2010-04-01", "status": "in-use", "date_created": formatdate(usegmt=True),
            "uri": f"{API}/Accounts/{self.account_sid}/IncomingPhoneNumbers/{sid}.json",
        }
        return self.numbers[sid]

    def add_service(self, *, numbers: tuple[str, ...] = (), campaign_status: str | None = None) -> dict:
        """A Messaging Service whose pool holds `numbers` (each also an incoming number of the
        account); with campaign_status, one US A2P campaign in that state."""
        sid = _sid("MG")
        self.services[sid] = {
            "sid": sid, "account_sid": self.account_sid, "friendly_name": "Stand-in service", "inbound_request_url": None,
            "inbound_method": "POST", "fallback_url": None, "fallback_method": "POST", "status_callback": None,
            "sticky_sender": True, "use_inbound_webhook_on_number": False, "usecase": "undeclared",
            "us_app_to_person_registered": campaign_status is not None, "url": f"https://messaging.twilio.com/v1/Services/{sid}",
        }
        self.pools[sid] = []
        for phone in numbers:
            number = self.add_number(phone)
            self.pools[sid].append({
                "sid": number["sid"], "account_sid": self.account_sid, "service_sid": sid, "phone_number": phone,
                "country_code": "US", "capabilities": ["SMS", "MMS", "Voice"], "date_created": number["date_created"],
                "url": f"https://messaging.twilio.com/v1/Services/{sid}/PhoneNumbers/{number['sid']}",
            })
        self.campaigns[sid] = [] if campaign_status is None else [{
            "sid": _sid("QE"), "account_sid": self.account_sid, "brand_registration_sid": _sid("BN"), "messaging_service_sid": sid,
            "description": "Customer care", "message_samples": ["Your order is ready"], "us_app_to_person_usecase": "CUSTOMER_CARE",
            "has_embedded_links": False, "has_embedded_phone": False, "campaign_status": campaign_status, "campaign_id": "CSTANDIN",
            "is_externally_registered": False, "errors": [], "rate_limits": {},
        }]
        return self.services[sid]

    def add_media(self, content: bytes, content_type: str) -> str:
        """An inbound MMS attachment; returns its MediaUrl as Twilio's webhook gives it."""
        key = f"{_sid('MM')}/{_sid('ME')}"
        self.media[key] = (content, content_type)
        message, media = key.split("/")
        return f"{self.url}{API}/Accounts/{self.account_sid}/Messages/{message}/Media/{media}"

    def number(self, phone: str) -> dict:
        return next(n for n in self.numbers.values() if n["phone_number"] == phone)

    # --- webhooks as Twilio posts them (form fields) -----------------------------------------------
    def status_callback(self, sid: str, status: str, *, to: str = "+14155550123", from_: str = "+14155550199",
                        error_code: str = "") -> dict:
        """A StatusCallback request: a subset of the message's request properties plus
        MessageStatus and ErrorCode (twilio.com/docs/messaging/guides/track-outbound-message-status;
        statuses: twilio.com/docs/messaging/api/message-resource#message-status-values)."""
        fields = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status, "AccountSid": self.account_sid,
                  "From": from_, "To": to, "ApiVersion": "2010-04-01"}
        return {**fields, "ErrorCode": error_code} if error_code else fields

    def incoming_message(self, *, sid: str | None = None, from_: str = "+14155550123", to: str = "+14155550199",
                         body: str = "Hello?", media: list[tuple[str, str]] = ()) -> dict:
        """An incoming message request (twilio.com/docs/messaging/guides/webhook-request): media as
        (MediaUrl, MediaContentType) pairs."""
        sid = sid or _sid("MM" if media else "SM")
        fields = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": self.account_sid, "From": from_, "To": to,
                  "Body": body, "NumMedia": str(len(media)), "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01"}
        for i, (url, content_type) in enumerate(media):
            fields.update({f"MediaUrl{i}": url, f"MediaContentType{i}": content_type})
        return fields

    # --- both hosts share failure and shutdown ------------------------------------------------
    def fail_with(self, status: int, body=None) -> None:
        code = {401: 20003, 404: 20404, 429: 20429}.get(status, 20500)
        super().fail_with(status, body if body is not None else _error(status, code, "stand-in failure")[1])
        self.messaging.failure = self.failure

    def recover(self) -> None:
        super().recover()
        self.messaging.recover()

    def down(self) -> None:
        super().down()
        self.messaging.down()

    close = down

    # --- auth -----------------------------------------------------------------------------------
    def _authorised(self, request: Recorded) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        if user == self.account_sid:
            return secrets.compare_digest(password, self.auth_token)
        return user in self.api_keys and secrets.compare_digest(password, self.api_keys[user])

    # --- api.twilio.com ------------------------------------------------------------------------
    def route(self, request: Recorded):
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        base = f"{API}/Accounts/{self.account_sid}"
        path = request.path
        if not path.startswith(base):
            return _not_found(path)
        rest = path[len(base):]
        if request.method == "GET" and rest == ".json":
            return 200, {"sid": self.account_sid, "friendly_name": "Stand-in account", "status": "active", "type": "Full",
                         "owner_account_sid": self.account_sid, "uri": path}
        if request.method == "GET" and rest == "/IncomingPhoneNumbers.json":
            return self._list_numbers(request, path)
        match = re.fullmatch(r"/IncomingPhoneNumbers/(PN\w+)\.json", rest)
        if match and request.method == "POST":
            return self._update(self.numbers.get(match[1]), form(request), path)
        if request.method == "POST" and rest == "/Messages.json":
            return self._create_message(form(request), base)
        match = re.fullmatch(r"/Messages/(MM\w+)/Media/(ME\w+)", rest)
        if match and request.method == "GET" and f"{match[1]}/{match[2]}" in self.media:
            return 200, Raw(*self.media[f"{match[1]}/{match[2]}"])
        return _not_found(path)

    def _list_numbers(self, request: Recorded, path: str):
        numbers = list(self.numbers.values())
        if "PhoneNumber" in request.query:  # partial match, '*' any digit
            pattern = re.escape(request.query["PhoneNumber"]).replace(r"\*", r"\d")
            numbers = [n for n in numbers if re.search(pattern, n["phone_number"])]
        size, page = int(request.query.get("PageSize", 50)), int(request.query.get("Page", 0))
        chunk = numbers[page * size:(page + 1) * size]

        def uri(p):
            return f"{path}?{urlencode({**request.query, 'Page': p, 'PageSize': size})}"

        return 200, {
            "incoming_phone_numbers": chunk, "page": page, "page_size": size, "start": page * size,
            "end": page * size + max(len(chunk) - 1, 0), "uri": uri(page), "first_page_uri": uri(0),
            "previous_page_uri": uri(page - 1) if page else None,
            "next_page_uri": uri(page + 1) if (page + 1) * size < len(numbers) else None,
        }

    def _update(self, resource: dict | None, fields: dict, path: str):
        if resource is None:
            return _not_found(path)
        for name, values in fields.items():
            if name.endswith("Method") and values[-1].upper() not in ("GET", "POST"):
                return _error(400, 20001, f"{name} must be GET or POST")
            if _snake(name) in resource:
                if isinstance(resource[_snake(name)], bool):
                    if values[-1].lower() not in ("true", "false"):
                        return _error(400, 20001, f"{name} must be true or false")
                    resource[_snake(name)] = values[-1].lower() == "true"
                else:
                    resource[_snake(name)] = values[-1]
        return 200, resource

    def _create_message(self, fields: dict, base: str):
        def one(name):
            return (fields.get(name) or [""])[-1]

        to, sender, service_sid, body = one("To"), one("From"), one("MessagingServiceSid"), one("Body")
        media = fields.get("MediaUrl", [])
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not body and not media:
            return _error(400, 21602, "Message body is required.")
        if service_sid:
            if service_sid not in self.services:
                return _error(400, 21705, f"The Messaging Service Sid {service_sid} is invalid.")
        elif not sender:
            return _error(400, 21603, "A 'From' phone number is required.")
        elif not any(n["phone_number"] == sender and n["capabilities"]["sms"] for n in self.numbers.values()):
            return _error(400, 21606, f"The From phone number {sender} is not a valid, SMS-capable inbound phone number "
                                      "or short code for your account.")
        sid = _sid("SM")
        message = {
            "sid": sid, "account_sid": self.account_sid, "to": to, "from": sender or None, "messaging_service_sid": service_sid or None,
            "body": body, "num_media": str(len(media)), "num_segments": "1", "direction": "outbound-api",
            "status": "accepted" if service_sid else "queued", "api_version": "2010-04-01", "price": None,
            "error_code": None, "error_message": None, "date_created": formatdate(usegmt=True),
            "uri": f"{base}/Messages/{sid}.json",
        }
        self.messages.append({**message, "status_callback": one("StatusCallback"), "media_url": media})
        return 201, message

    # --- messaging.twilio.com ------------------------------------------------------------------
    def route_messaging(self, request: Recorded):
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        match = re.fullmatch(r"/v1/Services/(MG\w+)(/PhoneNumbers|/Compliance/Usa2p)?", request.path)
        service = self.services.get(match[1]) if match else None
        if service is None:
            return _not_found(request.path.removeprefix("/v1"))
        sid, sub = match[1], match[2]
        if sub is None and request.method == "GET":
            return 200, service
        if sub is None and request.method == "POST":
            return self._update(service, form(request), request.path)
        if sub == "/PhoneNumbers" and request.method == "GET":
            return 200, self._page("phone_numbers", self.pools[sid], request)
        if sub == "/Compliance/Usa2p" and request.method == "GET":
            return 200, self._page("compliance", self.campaigns[sid], request)
        return _error(405, 20004, "Method not allowed")

    def _page(self, key: str, records: list, request: Recorded) -> dict:
        size = int(request.query.get("PageSize", 50))
        url = f"https://messaging.twilio.com{request.path}?PageSize={size}&Page=0"
        return {key: records[:size], "meta": {"page": 0, "page_size": size, "first_page_url": url, "previous_page_url": None,
                                              "url": url, "next_page_url": None, "key": key}}
