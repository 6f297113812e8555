"""Reading a Twilio account through its SDK before anything is changed: the credentials, the
number (or a Messaging Service's sender pool) and the US A2P 10DLC campaign status."""
import logging
from dataclasses import dataclass

from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException

from accounts.providers.base import ProviderError

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 15
POOL_LIMIT = 400  # Twilio caps a Messaging Service sender pool at 400 numbers
A2P_VERIFIED = "VERIFIED"
A2P_NOT_REGISTERED = "NOT_REGISTERED"  # Twilio answered: no campaign on this service


@dataclass(frozen=True)
class TwilioSetup:
    """What Twilio says about an account's number(s), read before anything is changed."""

    phone: str  # E.164 of the number messages leave from (with a service: the first pool number)
    number_sid: str = ""  # PN… of that number (accounts without a Messaging Service)
    inbound_url: str = ""  # where Twilio posts inbound messages today
    pool: tuple[str, ...] = ()  # the Messaging Service's sender pool
    a2p_status: str = ""  # campaign_status, NOT_REGISTERED, or "" when Twilio did not say


def rest_client(credentials: dict):
    # The SDK's REST client (with `requests` under it) is imported on the first call, not when
    # the backend registry loads this module: most processes never call Twilio.
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
    return rest_client(account.credentials)


def call(what: str, fn):
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


def check_account(client, account_sid: str) -> None:
    try:
        client.api.v2010.accounts(account_sid).fetch()
    except TwilioRestException as exc:
        if exc.status == 404:  # the SID is not an account these credentials can see
            raise ProviderError(f"Twilio refused the credentials: {exc.msg}", transient=False) from None
        raise
    return None


def incoming_number(client, account_sid: str, phone: str) -> TwilioSetup:
    numbers = client.api.v2010.accounts(account_sid).incoming_phone_numbers
    if phone:
        found = [n for n in call("listing the phone numbers", lambda: numbers.list(phone_number=phone, limit=20))
                 if n.phone_number == phone]
        if not found:
            raise ProviderError(f"{phone} is not one of this Twilio account's phone numbers "
                                "(Twilio Console → Phone Numbers → Active numbers).", transient=False)
    else:
        found = call("listing the phone numbers", lambda: numbers.list(limit=21))
        if not found:
            raise ProviderError("This Twilio account has no phone numbers: buy one in the Twilio Console first.", transient=False)
        if len(found) > 1:
            listed = ", ".join(n.phone_number for n in found[:20])
            raise ProviderError(f"This Twilio account has several phone numbers ({listed}): enter the one to use.", transient=False)
    number = found[0]
    if not (number.capabilities or {}).get("sms"):
        raise ProviderError(f"{number.phone_number} cannot send or receive SMS; pick an SMS-capable number.", transient=False)
    return TwilioSetup(phone=number.phone_number, number_sid=number.sid, inbound_url=number.sms_url or "")


def service_pool(client, service_sid: str, phone: str) -> TwilioSetup:
    service = client.messaging.v1.services(service_sid)
    try:
        found = service.fetch()
    except TwilioRestException as exc:
        if exc.status == 404:
            raise ProviderError(f"Messaging Service {service_sid} is not in this Twilio account.", transient=False) from None
        raise
    pool = tuple(n.phone_number for n in call("listing the sender pool", lambda: service.phone_numbers.list(limit=POOL_LIMIT)))
    if not pool:
        raise ProviderError(f"Messaging Service {service_sid} has no phone numbers in its sender pool; add one in the Twilio Console.",
                            transient=False)
    if phone and phone not in pool:
        raise ProviderError(f"{phone} is not in the sender pool of Messaging Service {service_sid} ({', '.join(pool[:20])}).",
                            transient=False)
    return TwilioSetup(phone=phone or pool[0], pool=pool, inbound_url=found.inbound_request_url or "",
                       a2p_status=a2p_status(service, service_sid))


def a2p_status(service, service_sid: str) -> str:
    """The US A2P 10DLC campaign status, where Twilio reports one. It never blocks
    connecting: a service sending outside the US has no campaign."""
    try:
        campaigns = service.us_app_to_person.list(limit=1)
    except (TwilioException, OSError) as exc:
        logger.info("no A2P status for service %s: %s", service_sid, type(exc).__name__)
        return ""
    return (campaigns[0].campaign_status or "") if campaigns else A2P_NOT_REGISTERED


def inspect(client, credentials: dict, config: dict, phone: str) -> TwilioSetup:
    account_sid = credentials.get("account_sid", "")
    call("checking the credentials", lambda: check_account(client, account_sid))
    if not credentials.get("auth_token"):
        raise ProviderError("The Auth Token is required: Twilio signs the webhooks with it, even with an API key.",
                            transient=False)
    if config.get("messaging_service_sid"):
        return call("reading the Messaging Service", lambda: service_pool(client, config["messaging_service_sid"], phone))
    return incoming_number(client, account_sid, phone)


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


def sms_numbers(credentials: dict, config: dict) -> list[str]:
    """The numbers an account could use: the Messaging Service's sender pool, or the Twilio
    account's SMS-capable incoming numbers."""
    client = rest_client(credentials)
    account_sid = credentials.get("account_sid", "")
    call("checking the credentials", lambda: check_account(client, account_sid))
    if config.get("messaging_service_sid"):
        return list(call("reading the Messaging Service", lambda: service_pool(client, config["messaging_service_sid"], "")).pool)
    numbers = client.api.v2010.accounts(account_sid).incoming_phone_numbers
    found = call("listing the phone numbers", lambda: numbers.list(limit=POOL_LIMIT))
    return [n.phone_number for n in found if (n.capabilities or {}).get("sms")]
