"""Calls to SMS Gateway for Android: the phone itself (local mode, an address a person typed)
or the operator's cloud relay (cloud mode), both with the app's Basic auth username/password."""
import hashlib
import hmac

import httpx
from django.conf import settings

from accounts.providers.base import ProviderError
from accounts.providers.transport import Gateway
from whatsnap import guarded_fetch

# the gateway's own error message (its JSON `message`) at most, never other text: whatever
# answers at a typed address may not be a gateway, and its body is not ours to show
GATEWAY = Gateway(service="SMS gateway", unauthorized="SMS gateway refused the username/password ({status}).",
                  refused=(401, 403), base_setting="SMS_GATEWAY_CLOUD_BASE_URL",
                  unreachable="Cannot reach {where}", bad_answer="Cannot use the answer of {where}")
DEVICE_LIMITS = guarded_fetch.Limits(connect=5.0, total=15.0, max_bytes=1024 * 1024)


def sign(key: str, body: bytes, timestamp: str) -> str:
    return hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def webhook_id(account, event: str) -> str:
    return f"whatsnap-{account.pk}-{event.replace(':', '-')}"


def cloud(config: dict) -> bool:
    return config.get("mode", "local") == "cloud"


def device_url(config: dict) -> str:
    """The phone's address in local mode as typed ("192.168.1.20:8080" means http://)."""
    address = (config.get("device_url") or "").strip().rstrip("/")
    return address if not address or "://" in address else f"http://{address}"


def call(account, method: str, path: str, *, json_body: dict | None = None, ok_statuses=()) -> httpx.Response:
    if cloud(account.config):  # the operator's relay: its configured base, a trusted origin
        base, where = None, f"the SMS gateway cloud at {settings.SMS_GATEWAY_CLOUD_BASE_URL}"
    else:
        base = device_url(account.config)
        if not base:
            raise ProviderError("The phone's address (local mode) is not set.", transient=False)
        where = f"the phone at {base}"
    auth = (account.credentials.get("username", ""), account.credentials.get("password", ""))
    return GATEWAY.call(method, path, base=base, where=where, auth=auth, json_body=json_body, ok_statuses=ok_statuses,
                        limits=DEVICE_LIMITS)
