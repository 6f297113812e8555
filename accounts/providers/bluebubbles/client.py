"""Calls to a BlueBubbles Server: the account's server URL and password (`?password=`), the chat
guids it names chats by, and the webhook URL a person pastes into the server's settings.

The server URL is a person's input: every call goes through whatsnap.guarded_fetch (a Mac on
the shop's LAN needs GATEWAY_ALLOW_PRIVATE_URLS), follows no redirect, and an error shows the
server's JSON error message at most, never its raw body."""
from urllib.parse import quote

from accounts.providers.base import ProviderError
from accounts.providers.transport import Gateway, decoded
from whatsnap import guarded_fetch

# AppleScript sends wait for the message to appear in Messages' database before answering.
LIMITS = guarded_fetch.Limits(connect=5.0, total=30.0, max_bytes=1024 * 1024)
# A page of history is up to HISTORY_PAGE serialised messages (a few KB each with their chats).
HISTORY_LIMITS = guarded_fetch.Limits(connect=5.0, total=60.0, max_bytes=16 * 1024 * 1024)
# the server's own error message at most: whatever answers at a typed address may not be
# BlueBubbles, and its raw body is not ours to show
GATEWAY = Gateway(service="BlueBubbles", unauthorized="BlueBubbles refused the server password (401).",
                  reason_fields=("error.message", "message"), unreachable="BlueBubbles server unreachable at {where}",
                  bad_answer="BlueBubbles server at {where}")
PRIVATE_API = "private-api"


def webhook_url(account) -> str:
    """The URL to register in BlueBubbles Server -> API & Webhooks."""
    return f"{account.webhook_urls()['inbound']}?secret={account.webhook_secret}"


def chat_guid(account, to: str) -> str:
    if ";" in to:  # a group thread's contact is the chat itself: iMessage;+;chat123
        return to
    service = account.config.get("service", "iMessage")  # "SMS" for green-bubble-only numbers
    return f"{service};-;{to}"


def chat_path(guid: str) -> str:
    """A chat guid as one path segment (it holds ';' and '+')."""
    return quote(guid, safe="")


def uses_private_api(account) -> bool:
    return account.config.get("send_method", "apple-script") == PRIVATE_API


def require_private_api(account, what: str) -> None:
    """Reactions, read receipts and quoted replies exist only through the server's Private API
    helper; an account sending with AppleScript is told so plainly (never retried)."""
    if not uses_private_api(account):
        raise ProviderError(
            f"{what} needs BlueBubbles' Private API: enable it on the Mac (BlueBubbles Server -> Private API) "
            "and set this account's send method to private-api.", transient=False)


def call(account, method: str, path: str, *, json_body: dict | None = None,
         limits: guarded_fetch.Limits = LIMITS) -> dict:
    server = (account.credentials.get("server_url") or "").rstrip("/")
    password = account.credentials.get("password") or ""
    if not server or not password:
        raise ProviderError("BlueBubbles server URL and password are required.", transient=False)
    response = GATEWAY.call(method, path, base=server, params={"password": password}, json_body=json_body, limits=limits)
    body = decoded(response)
    return body if isinstance(body, dict) else {}
