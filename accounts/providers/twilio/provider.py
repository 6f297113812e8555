"""The Twilio backend (see the package's docstring): connect points the number's or the
Messaging Service's webhooks at WhatSnap, sends go through the SDK, webhooks are checked with
X-Twilio-Signature."""
import re

from django import forms
from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator

from accounts.providers.base import (
    ConnectionChanged,
    DeliveryStatus,
    Health,
    InboundMessage,
    Provider,
    ProviderError,
    SendResult,
    Unfiled,
    WebhookForbidden,
    WebhookMalformed,
)
from accounts.providers.media import MB, MediaLimits
from accounts.providers.twilio.setup import (
    A2P_VERIFIED,
    TwilioSetup,
    a2p_label,
    call,
    inspect,
    rest_client,
    sms_numbers,
    twilio_client,
)
from whatsnap import guarded_fetch

TWILIO_API = "https://api.twilio.com"  # where Twilio's media URLs live (TWILIO_API_BASE_URL overrides it)
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")

STATUS_MAP = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "failed",
    "canceled": "failed",
}


class TwilioProvider(Provider):
    key = "twilio"
    label = "Twilio"
    kinds = ("twilio",)
    # MMS: up to 10 media URLs, 5 MB for all of them together; Twilio fetches each URL itself
    # (a signed link on PUBLIC_BASE_URL). Types: Twilio's "Accepted content types for media"
    # (JPEG, PNG and GIF are resized for the handset; PDF and audio pass as they are).
    media_limits = MediaLimits(max_files=10, max_file_bytes=5 * MB, max_total_bytes=5 * MB,
                               types=("image/jpeg", "image/png", "image/gif", "application/pdf", "audio/mpeg", "audio/ogg",
                                      "audio/mp4", "audio/amr", "audio/webm"),
                               note="MMS reaches US and Canadian numbers")
    settable_config = {"messaging_service_sid": None}
    settable_credentials = ("account_sid", "auth_token", "api_key_sid", "api_key_secret")
    required_credentials = ("account_sid", "auth_token")
    choice_label = "Twilio"
    form_required_message = "Required to connect to Twilio."
    lists_numbers = True
    card_template = "accounts/_twilio.html"

    def webhook_answer(self, *, accepted: int, new: int):
        # Twilio reads the answer as TwiML: an empty <Response> sends no auto-reply
        return HttpResponse('<?xml version="1.0" encoding="UTF-8"?><Response></Response>', content_type="text/xml")

    # --- adding an account -------------------------------------------------------------------
    def settings_problems(self, *, kind: str, phone_number: str, credentials: dict, config: dict) -> dict[str, str]:
        if not ACCOUNT_SID.match(credentials.get("account_sid", "")):
            return {"credentials": "An Account SID starts with AC followed by 32 hex characters."}
        if bool(credentials.get("api_key_sid")) != bool(credentials.get("api_key_secret")):
            return {"credentials": "Give both api_key_sid and api_key_secret (or neither)."}
        return {}

    def form_fields(self) -> dict[str, forms.Field]:
        return {
            "account_sid": forms.RegexField(
                regex=ACCOUNT_SID, required=False, label="Account SID",
                error_messages={"invalid": "An Account SID starts with AC followed by 32 hex characters."},
            ),
            "auth_token": forms.CharField(
                required=False, widget=forms.PasswordInput(render_value=False),
                help_text="Twilio signs its webhooks with it, so it is needed even with an API key.",
            ),
            "api_key_sid": forms.RegexField(
                regex=r"^SK[0-9a-fA-F]{32}$", required=False, label="API Key SID (optional)",
                help_text="Use an API key instead of the Auth Token for Twilio's REST API.",
                error_messages={"invalid": "An API Key SID starts with SK followed by 32 hex characters."},
            ),
            "api_key_secret": forms.CharField(required=False, label="API Key secret", widget=forms.PasswordInput(render_value=False)),
            "messaging_service_sid": forms.RegexField(
                regex=r"^MG[0-9a-fA-F]{32}$", required=False, label="Messaging Service SID (optional)",
                error_messages={"invalid": "A Messaging Service SID starts with MG followed by 32 hex characters."},
            ),
        }

    def form_required(self, data: dict) -> tuple[str, ...]:
        return self.required_credentials

    def form_problems(self, data: dict) -> dict[str, str]:
        problems = super().form_problems(data)
        if bool(data.get("api_key_sid")) != bool(data.get("api_key_secret")):
            problems["api_key_secret" if data.get("api_key_sid") else "api_key_sid"] = "Give both the API Key SID and its secret."
        return problems

    def form_settings(self, data: dict) -> tuple[dict, dict]:
        credentials = {"account_sid": data["account_sid"], "auth_token": data["auth_token"]}
        if data.get("api_key_sid"):
            credentials.update(api_key_sid=data["api_key_sid"], api_key_secret=data["api_key_secret"])
        config = {"messaging_service_sid": data["messaging_service_sid"]} if data.get("messaging_service_sid") else {}
        return credentials, config

    def verify(self, *, credentials: dict, config: dict, phone: str = "") -> str:
        """Credentials and number as Twilio sees them (with no number: the account's only one,
        or the service's first pool number)."""
        return inspect(rest_client(credentials), credentials, config, phone).phone

    def list_numbers(self, *, credentials: dict, config: dict) -> list[str]:
        numbers = sms_numbers(credentials, config)
        if not numbers:
            raise ProviderError("No SMS-capable number in this Twilio account.", transient=False)
        return numbers

    # --- the account page ----------------------------------------------------------------------
    def account_card(self, account) -> dict:
        """The number(s) and, with a Messaging Service, its sender pool and US A2P 10DLC state,
        as recorded at the last connect."""
        config = account.config
        service = config.get("messaging_service_sid", "")
        a2p = config.get("a2p_status", "")
        return {
            "service_sid": service,
            "numbers": config.get("pool_numbers") or ([account.phone_number] if account.phone_number else []),
            "a2p_status": (a2p or "unknown") if service else "",
            "a2p_ok": a2p == A2P_VERIFIED,
            "a2p_label": a2p_label(a2p) if service else "",
            "checked_at": config.get("checked_at", ""),
        }

    # --- the session ---------------------------------------------------------------------------
    def media_request(self, account, item: dict) -> dict | None:
        """Twilio media URLs answer with HTTP Basic auth (account SID + auth token, or API
        key + secret) unless the account turned media auth off; they redirect to the file.
        The credentials go to Twilio's API origin only (the operator's, so trusted); any other
        URL, e.g. one posted with a reply, is fetched as is, without them."""
        request = super().media_request(account, item)
        if request is None or guarded_fetch.origin(request["url"]) != guarded_fetch.origin(settings.TWILIO_API_BASE_URL or TWILIO_API):
            return request
        creds = account.credentials
        if creds.get("api_key_sid"):
            request["auth"] = (creds["api_key_sid"], creds.get("api_key_secret", ""))
        elif creds.get("account_sid"):
            request["auth"] = (creds["account_sid"], creds.get("auth_token", ""))
        return {**request, "trusted": True}

    def connect(self, account) -> list:
        client = twilio_client(account)
        setup = inspect(client, account.credentials, account.config, account.phone_number)
        urls = account.webhook_urls()
        service_sid = account.config.get("messaging_service_sid")
        if service_sid:
            call("setting the Messaging Service webhooks", lambda: client.messaging.v1.services(service_sid).update(
                inbound_request_url=urls["inbound"], inbound_method="POST", status_callback=urls["status"],
                # with this on, Twilio would call each number's own SMS URL instead of ours
                use_inbound_webhook_on_number=False))
        else:
            # StatusCallback on the number is what Twilio calls for calls to it; message
            # statuses come from the status_callback given with each send (see send()).
            numbers = client.api.v2010.accounts(account.credentials["account_sid"]).incoming_phone_numbers
            call("setting the number's webhooks", lambda: numbers(setup.number_sid).update(
                sms_url=urls["inbound"], sms_method="POST", status_callback=urls["status"], status_callback_method="POST"))
        self._remember(account, setup)
        where = f"Messaging Service {service_sid} ({len(setup.pool)} numbers)" if service_sid else setup.phone
        return [ConnectionChanged(status="connected", phone=setup.phone, reason=f"credentials verified; webhooks set on {where}")]

    def _remember(self, account, setup: TwilioSetup) -> None:
        config = {k: v for k, v in account.config.items() if k not in ("phone_number_sid", "pool_numbers", "a2p_status")}
        if setup.number_sid:
            config["phone_number_sid"] = setup.number_sid
        if setup.pool:
            config.update(pool_numbers=list(setup.pool), a2p_status=setup.a2p_status)
        config["checked_at"] = timezone.now().isoformat()
        account.config = config
        type(account).objects.filter(pk=account.pk).update(config=config)

    def disconnect(self, account) -> None:
        return None

    def health(self, account) -> Health:
        try:
            setup = inspect(twilio_client(account), account.credentials, account.config, account.phone_number)
        except ProviderError as exc:
            return Health(ok=False, detail=str(exc), checks=[("Twilio credentials and number", False, str(exc))])
        inbound = account.webhook_urls()["inbound"]
        pointed = setup.inbound_url == inbound
        where = "the Messaging Service's Incoming Request URL" if setup.pool else f"{setup.phone}'s messaging webhook"
        advice = "" if pointed else f"{where} is {setup.inbound_url or 'empty'}, not {inbound}: press Reconnect."
        checks = [("Twilio credentials and number", True, ""), ("Inbound webhook points at WhatSnap", pointed, advice)]
        if setup.pool:
            checks.append(("US A2P 10DLC campaign", setup.a2p_status == A2P_VERIFIED, a2p_label(setup.a2p_status)))
        detail = "Twilio accepted the credentials." if pointed else advice
        return Health(ok=pointed, detail=detail, checks=checks)

    def send(self, account, *, to: str, text: str, media=None, idempotency_key: str, reply_to: str = "") -> SendResult:
        kwargs = {"to": to, "body": text, "status_callback": account.webhook_urls()["status"]}
        if account.config.get("messaging_service_sid"):
            kwargs["messaging_service_sid"] = account.config["messaging_service_sid"]
        else:
            kwargs["from_"] = account.phone_number
        if media:
            kwargs["media_url"] = [m["url"] for m in media][:10]
        try:
            msg = twilio_client(account).messages.create(**kwargs)
        except TwilioRestException as exc:
            raise ProviderError(f"Twilio error {exc.code}: {exc.msg}", transient=exc.status >= 500 or exc.status == 429) from None
        except (TwilioException, OSError) as exc:
            # a read timeout: Twilio may have taken the message; never send it again by itself.
            # (`requests` is the SDK's HTTP library, loaded with its REST client: see rest_client.)
            import requests

            ambiguous = isinstance(exc, (requests.exceptions.ReadTimeout, requests.exceptions.ChunkedEncodingError))
            raise ProviderError(f"Twilio is unreachable ({type(exc).__name__}).", ambiguous=ambiguous) from None
        return SendResult(provider_id=msg.sid, status=STATUS_MAP.get(msg.status, "sent"))

    def parse_webhook(self, account, request) -> list:
        token = account.credentials.get("auth_token", "")
        signature = request.META.get("HTTP_X_TWILIO_SIGNATURE", "")
        url = settings.PUBLIC_BASE_URL + request.get_full_path()
        params = request.POST.dict()
        if not token or not signature or not RequestValidator(token).validate(url, params, signature):
            raise WebhookForbidden("X-Twilio-Signature missing or invalid")
        if params.get("AccountSid") and params["AccountSid"] != account.credentials.get("account_sid"):
            raise WebhookForbidden("AccountSid does not belong to this account")
        # No check of `To`: every number of a Messaging Service pool (including ones added
        # after connecting) posts to this account's URL, and the signature proves the sender.
        return self.parse_envelope(account, params)

    def parse_envelope(self, account, envelope: dict) -> list:
        """A verified callback's form fields: an inbound message, or a status of one we sent
        (MessageStatus without a Body). What is neither, or a status we do not track, is kept."""
        params = {key: str(value) for key, value in envelope.items()}
        sid = params.get("MessageSid") or params.get("SmsSid")
        if not sid:
            return [Unfiled("Twilio callback without a MessageSid (neither a message nor its status)", envelope)]
        if "MessageStatus" in params and "Body" not in params:
            return _status(sid, params, envelope)
        if not params.get("From"):
            return [Unfiled("Twilio message without a From number", envelope, key=f"twilio:{sid}")]
        try:
            num_media = int(params.get("NumMedia", "0") or 0)
        except ValueError:
            raise WebhookMalformed("NumMedia is not a number") from None
        media = tuple(
            {"url": params[f"MediaUrl{i}"], "content_type": params.get(f"MediaContentType{i}", "")}
            for i in range(num_media)
            if f"MediaUrl{i}" in params
        )
        return [
            InboundMessage(
                provider_id=sid,
                from_phone=params["From"],
                name=params.get("ProfileName", ""),
                text=params.get("Body", ""),
                media=media,
                at=timezone.now(),
            )
        ]


def _status(sid: str, params: dict, envelope: dict) -> list:
    """Twilio's Message status values (its Message resource docs): the ones a send of ours
    moves through map to ours; partially_delivered, and receiving / received (an inbound
    message's own states, posted to a Messaging Service's status callback) are not tracked."""
    name = params["MessageStatus"].lower()
    status = STATUS_MAP.get(name)
    if status is None:
        return [Unfiled(f"Twilio status {name or '(empty)'} is not tracked", envelope, key=f"twilio:{sid}:{name}")]
    error = params.get("ErrorCode", "")
    return [DeliveryStatus(provider_id=sid, status=status, error=f"Twilio error {error}" if error else "")]

