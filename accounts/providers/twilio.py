"""Twilio Programmable Messaging through the official SDK.

Connecting checks the credentials (Account SID + Auth Token, or an API Key SID + Secret for
the REST calls), finds the number among the account's IncomingPhoneNumbers — or, with a
Messaging Service, in the service's sender pool — and points its inbound webhook and status
callback at our URLs (built from PUBLIC_BASE_URL). For a Messaging Service it also reads the
US A2P 10DLC campaign status; pool numbers and that status are kept in `account.config`.

Inbound and status webhooks are form-encoded and signed with X-Twilio-Signature (HMAC-SHA1 of
the public URL + sorted params with the account's Auth Token — Twilio signs with the Auth
Token even when the REST calls use an API key, so the token is always required). The URL is
rebuilt from PUBLIC_BASE_URL so the check holds behind a proxy. The account id is in our URL,
so the signature is checked with that account's own token whatever number of a Messaging
Service pool the message came to."""
import logging
from dataclasses import dataclass

from django.conf import settings
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
    WebhookForbidden,
    WebhookMalformed,
)
from whatsnap import guarded_fetch

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 15
TWILIO_API = "https://api.twilio.com"  # where Twilio's media URLs live (TWILIO_API_BASE_URL overrides it)
POOL_LIMIT = 400  # Twilio caps a Messaging Service sender pool at 400 numbers
A2P_VERIFIED = "VERIFIED"
A2P_NOT_REGISTERED = "NOT_REGISTERED"  # Twilio answered: no campaign on this service

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


@dataclass(frozen=True)
class TwilioSetup:
    """What Twilio says about an account's number(s), read before anything is changed."""

    phone: str  # E.164 of the number messages leave from (with a service: the first pool number)
    number_sid: str = ""  # PN… of that number (accounts without a Messaging Service)
    inbound_url: str = ""  # where Twilio posts inbound messages today
    pool: tuple[str, ...] = ()  # the Messaging Service's sender pool
    a2p_status: str = ""  # campaign_status, NOT_REGISTERED, or "" when Twilio did not say


def _client(credentials: dict):
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    account_sid = credentials.get("account_sid")
    http = TwilioHttpClient(timeout=TIMEOUT_SECONDS)
    if credentials.get("api_key_sid"):
        if not (account_sid and credentials.get("api_key_secret")):
            raise ProviderError("An API Key SID needs its secret and the Account SID.", transient=False)
        client = Client(credentials["api_key_sid"], credentials["api_key_secret"], account_sid, http_client=http)
    else:
        if not (account_sid and credentials.get("auth_token")):
            raise ProviderError("The Account SID and Auth Token are required.", transient=False)
        client = Client(account_sid, credentials["auth_token"], http_client=http)
    if settings.TWILIO_API_BASE_URL:
        client.api.base_url = settings.TWILIO_API_BASE_URL
    if settings.TWILIO_MESSAGING_BASE_URL:
        client.messaging.base_url = settings.TWILIO_MESSAGING_BASE_URL
    return client


def twilio_client(account):
    return _client(account.credentials)


def _call(what: str, fn):
    """Run one SDK call; turn its failures into a ProviderError that says what to do."""
    try:
        return fn()
    except TwilioRestException as exc:
        if exc.status in (401, 403):
            raise ProviderError(f"Twilio refused the credentials: {exc.msg}", transient=False) from None
        transient = exc.status >= 500 or exc.status == 429
        raise ProviderError(f"Twilio error {exc.status} while {what}: {exc.msg}", transient=transient) from None
    except (TwilioException, OSError) as exc:
        raise ProviderError(f"Twilio is unreachable ({type(exc).__name__}) while {what}.") from None


def _check_account(client, account_sid: str) -> None:
    try:
        client.api.v2010.accounts(account_sid).fetch()
    except TwilioRestException as exc:
        if exc.status == 404:  # the SID is not an account these credentials can see
            raise ProviderError(f"Twilio refused the credentials: {exc.msg}", transient=False) from None
        raise
    return None


def _incoming_number(client, account_sid: str, phone: str) -> TwilioSetup:
    numbers = client.api.v2010.accounts(account_sid).incoming_phone_numbers
    if phone:
        found = [n for n in _call("listing the phone numbers", lambda: numbers.list(phone_number=phone, limit=20))
                 if n.phone_number == phone]
        if not found:
            raise ProviderError(f"{phone} is not one of this Twilio account's phone numbers "
                                "(Twilio Console → Phone Numbers → Active numbers).", transient=False)
    else:
        found = _call("listing the phone numbers", lambda: numbers.list(limit=21))
        if not found:
            raise ProviderError("This Twilio account has no phone numbers: buy one in the Twilio Console first.", transient=False)
        if len(found) > 1:
            listed = ", ".join(n.phone_number for n in found[:20])
            raise ProviderError(f"This Twilio account has several phone numbers ({listed}): enter the one to use.", transient=False)
    number = found[0]
    if not (number.capabilities or {}).get("sms"):
        raise ProviderError(f"{number.phone_number} cannot send or receive SMS; pick an SMS-capable number.", transient=False)
    return TwilioSetup(phone=number.phone_number, number_sid=number.sid, inbound_url=number.sms_url or "")


def _service_pool(client, service_sid: str, phone: str) -> TwilioSetup:
    service = client.messaging.v1.services(service_sid)
    try:
        found = service.fetch()
    except TwilioRestException as exc:
        if exc.status == 404:
            raise ProviderError(f"Messaging Service {service_sid} is not in this Twilio account.", transient=False) from None
        raise
    pool = tuple(n.phone_number for n in _call("listing the sender pool", lambda: service.phone_numbers.list(limit=POOL_LIMIT)))
    if not pool:
        raise ProviderError(f"Messaging Service {service_sid} has no phone numbers in its sender pool; add one in the Twilio Console.",
                            transient=False)
    if phone and phone not in pool:
        raise ProviderError(f"{phone} is not in the sender pool of Messaging Service {service_sid} ({', '.join(pool[:20])}).",
                            transient=False)
    return TwilioSetup(phone=phone or pool[0], pool=pool, inbound_url=found.inbound_request_url or "",
                       a2p_status=_a2p_status(service, service_sid))


def _a2p_status(service, service_sid: str) -> str:
    """The US A2P 10DLC campaign status, where Twilio reports one. It never blocks
    connecting: a service sending outside the US has no campaign."""
    try:
        campaigns = service.us_app_to_person.list(limit=1)
    except (TwilioException, OSError) as exc:
        logger.info("no A2P status for service %s: %s", service_sid, type(exc).__name__)
        return ""
    return (campaigns[0].campaign_status or "") if campaigns else A2P_NOT_REGISTERED


def _inspect(client, credentials: dict, config: dict, phone: str) -> TwilioSetup:
    account_sid = credentials.get("account_sid", "")
    _call("checking the credentials", lambda: _check_account(client, account_sid))
    if not credentials.get("auth_token"):
        raise ProviderError("The Auth Token is required: Twilio signs the webhooks with it, even with an API key.",
                            transient=False)
    if config.get("messaging_service_sid"):
        return _call("reading the Messaging Service", lambda: _service_pool(client, config["messaging_service_sid"], phone))
    return _incoming_number(client, account_sid, phone)


class TwilioProvider(Provider):
    key = "twilio"
    label = "Twilio"
    kinds = ("twilio",)
    settable_config = {"messaging_service_sid": None}
    settable_credentials = ("account_sid", "auth_token", "api_key_sid", "api_key_secret")

    def webhook_answer(self, *, accepted: int, new: int):
        from django.http import HttpResponse

        # Twilio reads the answer as TwiML: an empty <Response> sends no auto-reply
        return HttpResponse('<?xml version="1.0" encoding="UTF-8"?><Response></Response>', content_type="text/xml")


    def sms_numbers(self, *, credentials: dict, config: dict) -> list[str]:
        """The numbers this account could use (the Add Account form's picker): the Messaging
        Service's sender pool, or the Twilio account's SMS-capable incoming numbers."""
        client = _client(credentials)
        account_sid = credentials.get("account_sid", "")
        _call("checking the credentials", lambda: _check_account(client, account_sid))
        if config.get("messaging_service_sid"):
            return list(_call("reading the Messaging Service", lambda: _service_pool(client, config["messaging_service_sid"], "")).pool)
        numbers = client.api.v2010.accounts(account_sid).incoming_phone_numbers
        found = _call("listing the phone numbers", lambda: numbers.list(limit=POOL_LIMIT))
        return [n.phone_number for n in found if (n.capabilities or {}).get("sms")]

    def verify(self, *, credentials: dict, config: dict, phone: str = "") -> TwilioSetup:
        """Check credentials and number without changing anything (the Add Account form)."""
        return _inspect(_client(credentials), credentials, config, phone)

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
        from accounts.services import account_webhook_urls

        client = twilio_client(account)
        setup = _inspect(client, account.credentials, account.config, account.phone_number)
        urls = account_webhook_urls(account)
        service_sid = account.config.get("messaging_service_sid")
        if service_sid:
            _call("setting the Messaging Service webhooks", lambda: client.messaging.v1.services(service_sid).update(
                inbound_request_url=urls["inbound"], inbound_method="POST", status_callback=urls["status"],
                # with this on, Twilio would call each number's own SMS URL instead of ours
                use_inbound_webhook_on_number=False))
        else:
            # StatusCallback on the number is what Twilio calls for calls to it; message
            # statuses come from the status_callback given with each send (see send()).
            numbers = client.api.v2010.accounts(account.credentials["account_sid"]).incoming_phone_numbers
            _call("setting the number's webhooks", lambda: numbers(setup.number_sid).update(
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
        from accounts.services import account_webhook_urls

        try:
            setup = _inspect(twilio_client(account), account.credentials, account.config, account.phone_number)
        except ProviderError as exc:
            return Health(ok=False, detail=str(exc), checks=[("Twilio credentials and number", False, str(exc))])
        inbound = account_webhook_urls(account)["inbound"]
        pointed = setup.inbound_url == inbound
        where = "the Messaging Service's Incoming Request URL" if setup.pool else f"{setup.phone}'s messaging webhook"
        advice = "" if pointed else f"{where} is {setup.inbound_url or 'empty'}, not {inbound}: press Reconnect."
        checks = [("Twilio credentials and number", True, ""), ("Inbound webhook points at WhatSnap", pointed, advice)]
        if setup.pool:
            checks.append(("US A2P 10DLC campaign", setup.a2p_status == A2P_VERIFIED, a2p_label(setup.a2p_status)))
        detail = "Twilio accepted the credentials." if pointed else advice
        return Health(ok=pointed, detail=detail, checks=checks)

    def send(self, account, *, to: str, text: str, media=None, idempotency_key: str) -> SendResult:
        from accounts.services import account_webhook_urls

        kwargs = {"to": to, "body": text, "status_callback": account_webhook_urls(account)["status"]}
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
            # a read timeout: Twilio may have taken the message; never send it again by itself
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
        sid = params.get("MessageSid") or params.get("SmsSid")
        if not sid:
            raise WebhookMalformed("MessageSid is missing")
        if "MessageStatus" in params and "Body" not in params:
            status = STATUS_MAP.get(params["MessageStatus"].lower())
            if status is None:
                return []
            error = params.get("ErrorCode", "")
            return [DeliveryStatus(provider_id=sid, status=status, error=f"Twilio error {error}" if error else "")]
        if "From" not in params:
            raise WebhookMalformed("From is missing")
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


A2P_LABELS = {
    A2P_VERIFIED: "Verified: US A2P 10DLC campaign approved.",
    "IN_PROGRESS": "In review: US carriers may filter or block messages until the campaign is verified.",
    "PENDING": "Pending: US carriers may filter or block messages until the campaign is verified.",
    "FAILED": "Failed: the campaign was rejected; fix it in the Twilio Console (Messaging → Regulatory Compliance).",
    "SUSPENDED": "Suspended: messages to US numbers are blocked; see the Twilio Console.",
    A2P_NOT_REGISTERED: "No US A2P 10DLC campaign on this Messaging Service: US carriers block unregistered traffic.",
    "": "Not reported by Twilio.",
}


def a2p_label(status: str) -> str:
    return A2P_LABELS.get(status, f"{status}: see the Twilio Console.")
