"""The provider contract: every messaging backend is one module implementing Provider.

Webhook parsing returns normalised events; verification happens inside parse_webhook and a
bad signature raises WebhookForbidden before anything is stored."""
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from whatsnap import guarded_fetch


# --- normalised events ---------------------------------------------------------------------
@dataclass(frozen=True)
class QrUpdated:
    qr: str  # the payload to encode in the QR image
    pairing_code: str = ""
    expires_in: int = 30


@dataclass(frozen=True)
class ConnectionChanged:
    status: str  # one of Account.Status
    phone: str = ""  # E.164 of the linked number, when the backend says it
    reason: str = ""


@dataclass(frozen=True)
class InboundMessage:
    provider_id: str
    from_phone: str  # raw sender as the platform gives it
    name: str
    text: str
    at: datetime
    media: tuple[dict, ...] = ()
    group_id: str = ""  # WhatsApp group jid; the sender is then the participant
    group_name: str = ""


@dataclass(frozen=True)
class DeliveryStatus:
    provider_id: str
    status: str  # queued|sent|delivered|read|failed
    error: str = ""


# --- errors ----------------------------------------------------------------------------------
class WebhookForbidden(Exception):
    """Signature / shared secret missing or wrong: answer 403, store nothing."""


class WebhookMalformed(Exception):
    """Verified but unparseable payload: answer 400 with the reason, store nothing."""


class ProviderError(Exception):
    """A backend call failed. transient=True means retrying later may succeed; ambiguous=True
    means the request may have reached the backend (no answer in time), so a send must not be
    repeated by itself (it could go out twice)."""

    def __init__(self, message: str, *, transient: bool = True, ambiguous: bool = False):
        super().__init__(message)
        self.transient = transient
        self.ambiguous = ambiguous


def answer_error(service: str, response, method: str, path: str, reason: str, *, unauthorized: str, refused=(401,)) -> ProviderError:
    """The ProviderError for a gateway's error answer: 401 (`refused`) is a configuration problem (not
    retried, `unauthorized` says what to fix); 5xx and 429 are transient (retried with backoff);
    any other 4xx is final, with the gateway's reason."""
    if response.status_code in refused:
        return ProviderError(unauthorized, transient=False)
    return ProviderError(
        f"{service} answered {response.status_code} to {method} {path}: {reason}",
        transient=response.status_code >= 500 or response.status_code == 429,
    )


def request_may_have_arrived(exc: BaseException) -> bool:
    """httpx: a timeout after connecting, or a connection dropped mid-answer."""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return False
    return isinstance(exc, (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError))


def gateway_resource_claim(account) -> bool:
    """Record, before asking a shared gateway to create the account's session, that WhatSnap
    asked for it. Returns True when it had been claimed before: only then may a session found
    existing under that name be adopted (it is this account's own, e.g. a create whose answer
    was lost); a name that exists but was never claimed here belongs to someone else."""
    from django.utils import timezone

    claimed_now = type(account).objects.filter(pk=account.pk, gateway_claimed_at__isnull=True).update(
        gateway_claimed_at=timezone.now())
    return claimed_now == 0


def gateway_resource_foreign(service: str, name: str) -> "ProviderError":
    return ProviderError(
        f"{service} already has a session named {name} that WhatSnap did not create for this account; "
        "it is not adopted. Ask the gateway's operator to remove it, or delete and re-add this account.",
        transient=False)


@contextmanager
def device_errors(*, unreachable: str, bad_answer: str):
    """A call to a person's own device (an address they typed, through the guard) with its
    failures as ProviderErrors: a refused address is final; an answer outside the limits, or
    none in time, may have done its work (ambiguous)."""
    try:
        yield
    except guarded_fetch.AddressRefused as exc:
        raise ProviderError(str(exc), transient=False) from None
    except guarded_fetch.FetchError as exc:  # it answered, but not within the limits
        raise ProviderError(f"{bad_answer}: {exc}", ambiguous=True) from None
    except httpx.HTTPError as exc:
        raise ProviderError(f"{unreachable}: it did not answer ({type(exc).__name__}).",
                            ambiguous=request_may_have_arrived(exc)) from None


def media_download(url: str) -> tuple[bytes, str]:
    """(body, content type) of an attachment link, fetched through the guard, for a backend
    that is handed the file itself rather than its link: a gateway given a link would follow
    it on its own, redirects and DNS included, from inside the operator's network."""
    # WhatsApp's limit for photos and videos; a worker holds the file (and its base64) in memory
    limits = guarded_fetch.Limits(connect=5.0, total=30.0, max_bytes=16 * 1024 * 1024)
    try:
        response = guarded_fetch.request("GET", guarded_fetch.Target(url, purpose=guarded_fetch.MEDIA), limits=limits)
    except guarded_fetch.AddressRefused as exc:
        raise ProviderError(f"Not sent: {exc}", transient=False) from None
    except guarded_fetch.TooLarge:
        raise ProviderError("Not sent: the attachment is larger than 16 MB (send a link to it instead).", transient=False) from None
    except (guarded_fetch.FetchError, httpx.HTTPError) as exc:
        raise ProviderError(f"The attachment could not be downloaded: {exc}") from None
    if not response.is_success:
        raise ProviderError(f"The attachment could not be downloaded (its address answered {response.status_code}).",
                            transient=response.status_code >= 500)
    return response.content, response.headers.get("content-type", "").split(";")[0].strip()


@dataclass(frozen=True)
class SendResult:
    provider_id: str
    status: str = "sent"  # the furthest state the backend already reports (sandbox: delivered)


@dataclass
class Health:
    ok: bool
    detail: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # (name, ok, advice)


class Provider(ABC):
    """The contract every backend implements (an abstract class: a backend missing one of
    these methods cannot be instantiated, so it fails when loaded, not mid-request)."""

    key: str = ""
    label: str = ""
    kinds: tuple[str, ...] = ()  # Account.Kind values this backend can serve
    # True when the backend refuses a second message with the same idempotency key: then a
    # send whose answer was lost (a timeout) is simply tried again, it cannot go out twice
    idempotent_sends: bool = False
    # What a client (API, Add Account form) may put in an account's config and credentials, and
    # the values a config key may take (None: any text). Everything else in those dicts is
    # written by WhatSnap itself (gateway tokens, pool numbers, link nonces) and never settable.
    settable_config: dict[str, tuple[str, ...] | None] = {}
    settable_credentials: tuple[str, ...] = ()

    @abstractmethod
    def connect(self, account) -> list:
        """Start or resume the session; returns the events it produced (QR, connection)."""

    def renew_qr(self, account) -> list:
        """A fresh QR code for a session still waiting to be linked (the last one expired).
        By default the session is simply resumed with connect()."""
        return self.connect(account)

    def media_request(self, account, item: dict) -> dict | None:
        """How to fetch an attachment for the inbox, as whatsnap.guarded_fetch.Target fields
        (url; auth/params/headers when the backend wants credentials, which go to that origin
        only; trusted=True for an operator-configured origin; purpose "gateway" for the
        person's own device), or None when there is nothing to fetch. By default its URL, as
        an attachment anyone may have given."""
        url = item.get("url") or ""
        return {"url": url} if url.startswith(("http://", "https://")) else None

    def address_problems(self, *, credentials: dict, config: dict) -> dict[str, str]:
        """The addresses a person typed that this backend would call (their device) and may
        not be called: setting name -> short reason. Checked when an account is added."""
        return {}

    @abstractmethod
    def disconnect(self, account) -> None:
        """End the session on the backend's side."""

    @abstractmethod
    def health(self, account) -> Health:
        """Is the backend reachable and are the credentials accepted (read-only)."""

    @abstractmethod
    def send(self, account, *, to: str, text: str, media: list[dict] | None = None, idempotency_key: str) -> SendResult:
        """Send once per idempotency_key; return the provider's message id and status.
        Raise ProviderError on failure."""

    @abstractmethod
    def parse_webhook(self, account, request) -> list:
        """Verify a webhook (raise WebhookForbidden / WebhookMalformed) and normalise it."""

    def webhook_max_bytes(self) -> int:
        """Larger webhook bodies are refused (413) before they are parsed."""
        from django.conf import settings

        return settings.WEBHOOK_MAX_BYTES

    def webhook_answer(self, *, accepted: int, new: int):
        """The HTTP answer to an accepted webhook (what the backend expects to read)."""
        from django.http import JsonResponse

        return JsonResponse({"accepted": accepted, "new": new})

    def setup_webhook_url(self, account) -> str | None:
        """The URL a person must enter on the device, for backends whose webhooks are not
        registered by connect() (it may carry the account's shared secret)."""
        return None
