"""The one HTTP transport of the gateway backends (Evolution, WAHA, BlueBubbles, the Android
SMS gateway). Every call goes through whatsnap.guarded_fetch — the operator's own gateway as a
trusted origin, a person's device (an address they typed) checked — and fails the same way:

- an address that may not be called: final;
- no answer: transient, and ambiguous when the request may have reached the gateway (a send
  must then not be repeated by itself: it could go out twice);
- an answer outside the limits: ambiguous, it may have done its work;
- 401 (a gateway's `refused` statuses): a configuration problem, final; 5xx and 429:
  transient (retried with backoff); any other 4xx: final, with the gateway's own reason.

Twilio is not here: it is called through its SDK."""
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from django.conf import settings

from accounts.providers.base import ProviderError
from whatsnap import guarded_fetch

# An operator's WhatsApp gateway may answer with a file inline (base64): its answers are capped
# far above what any call of ours expects, as a bound on a worker's memory only.
OPERATOR_LIMITS = guarded_fetch.Limits(connect=5.0, total=15.0, max_bytes=32 * 1024 * 1024)


@dataclass(frozen=True)
class Gateway:
    """How one kind of gateway is called and how its failures are told."""

    service: str  # its name in error messages, e.g. "WAHA gateway"
    unauthorized: str  # the error when it refuses our key or password ({status}: the status code)
    reason_fields: tuple[str, ...] = ("message",)  # where its JSON errors keep their message ("a.b": nested)
    refused: tuple[int, ...] = (401,)
    # The operator's gateway, when its base URL is a setting: called as a trusted origin.
    base_setting: str = ""
    # The operator's own gateway (a trusted call, to the base of the setting) may be quoted: the
    # HTTP library's words for a failed call, an error answer's body. Nothing at an address a
    # person typed may be, even on a gateway that also has an operator base (the Android
    # gateway's cloud relay vs a phone): its errors would tell a port scan open from closed,
    # and whatever answers at a typed address is not ours to show.
    quotable: bool = False
    unreachable: str = "{service} unreachable at {where}"
    bad_answer: str = "Cannot use the answer of the {service} at {where}"

    def base(self) -> str:
        """The operator's gateway's base URL; a final error when it is not configured."""
        base = getattr(settings, self.base_setting)
        if not base:
            raise ProviderError(f"{self.base_setting} is not set: no {self.service} configured.", transient=False)
        return base

    def call(self, method: str, path: str, *, base: str | None = None, where: str = "", json_body: dict | None = None,
             ok_statuses=(), limits: guarded_fetch.Limits = OPERATOR_LIMITS, **target) -> httpx.Response:
        """One call of `path` below `base` (default: the operator's gateway); `target`: auth,
        headers, params for that origin. A failure, or an answer neither 2xx nor in
        `ok_statuses`, raises ProviderError."""
        trusted = base is None
        base = self.base() if base is None else base
        url = guarded_fetch.Target(base + path, purpose=guarded_fetch.GATEWAY, trusted=trusted, **target)
        with self.errors(where or base, quotable=self.quotable and trusted):
            response = guarded_fetch.request(method, url, limits=limits, json=json_body)
        response.quotable = self.quotable and trusted  # read by reason() and json()
        if response.is_success or response.status_code in ok_statuses:
            return response
        raise self.answer_error(response, method, path)

    @contextmanager
    def errors(self, where: str, *, quotable: bool = False):
        """The failures of a guarded call as ProviderErrors (see the module's docstring)."""
        try:
            yield
        except guarded_fetch.AddressRefused as exc:
            raise ProviderError(str(exc), transient=False) from None
        except guarded_fetch.FetchError as exc:  # it answered, but not within the limits
            raise ProviderError(f"{self.bad_answer.format(service=self.service, where=where)}: {exc}", ambiguous=True) from None
        except httpx.HTTPError as exc:
            said = str(exc) if quotable else f"it did not answer ({type(exc).__name__})."
            raise ProviderError(f"{self.unreachable.format(service=self.service, where=where)}: {said}",
                                ambiguous=request_may_have_arrived(exc)) from None

    def answer_error(self, response: httpx.Response, method: str, path: str) -> ProviderError:
        if response.status_code in self.refused:
            return ProviderError(self.unauthorized.format(status=response.status_code), transient=False)
        return ProviderError(
            f"{self.service} answered {response.status_code} to {method} {path}: {self.reason(response)}",
            transient=response.status_code >= 500 or response.status_code == 429,
        )

    def reason(self, response: httpx.Response) -> str:
        """The gateway's own error message, from the first of `reason_fields` its answer holds."""
        body = decoded(response)
        for path in self.reason_fields:
            value = body
            for key in path.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            if value:
                return ("; ".join(map(str, value)) if isinstance(value, list) else str(value))[:200]
        if not getattr(response, "quotable", False):
            return "no reason given"
        return (response.text if body is None else str(body))[:200]

    def json(self, response: httpx.Response):
        """The answer's JSON (None for an empty body); an answer that is not JSON is an error."""
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            said = f": {response.text[:120]!r}" if getattr(response, "quotable", False) else " (not shown: an address typed in WhatSnap)"
            raise ProviderError(f"{self.service} answered non-JSON{said}") from None

    def json_object(self, response: httpx.Response) -> dict:
        body = self.json(response)
        return body if isinstance(body, dict) else {}


def decoded(response: httpx.Response):
    """The answer's JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def request_may_have_arrived(exc: BaseException) -> bool:
    """httpx: a timeout after connecting, or a connection dropped mid-answer."""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return False
    return isinstance(exc, (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError))


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
