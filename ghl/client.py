"""GoHighLevel API v2 client: bearer token per location (refreshed before expiry and once
on a 401), the Version header each endpoint family needs, and a rate limiter shared by all
processes through the connection row (a sliding window under GHL's 100 requests / 10 s
burst limit, and the daily limit).

Errors are sorted for the outbox: `GhlRateLimited` and `GhlUnavailable` mean "wait and try
again" (nothing is lost), `GhlRejected` is a 4xx that retrying will not fix, and
`GhlReauthorize` means the location must install the app again."""
import logging
import time
from dataclasses import dataclass
from datetime import timezone as dt_timezone
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ghl.models import GhlCompany, GhlConnection

logger = logging.getLogger(__name__)

VERSION_CONVERSATIONS = "2021-04-15"
VERSION_DEFAULT = "2021-07-28"
REFRESH_MARGIN = timezone.timedelta(minutes=5)
WINDOW_MARGIN = 1.03  # our clock starts before the request reaches GHL: keep a little slack


class GhlError(Exception):
    def __init__(self, message: str, *, status: int | None = None, body=None, unanswered: bool = False):
        super().__init__(message)
        self.status = status
        self.body = body
        # True when the request went out and no answer was read (GHL may have acted on it);
        # False when GHL answered, or the request never left (no slot, no connection).
        self.unanswered = unanswered


class GhlRateLimited(GhlError):
    def __init__(self, message: str, *, wait_seconds: float, status: int | None = 429, body=None):
        super().__init__(message, status=status, body=body)
        self.wait_seconds = wait_seconds


class GhlUnavailable(GhlError):
    """5xx, timeout, connection refused: GHL is down or slow."""


class GhlRejected(GhlError):
    """A 4xx other than 401/429: recorded and surfaced, not retried by itself."""


class GhlReauthorize(GhlError):
    """The refresh token was refused: an admin must install the app again."""


@dataclass
class GhlResponse:
    status: int
    data: dict
    headers: dict


_http: httpx.Client | None = None


def http() -> httpx.Client:
    global _http
    if _http is None:
        _http = httpx.Client(timeout=settings.GHL_TIMEOUT_SECONDS, headers={"Accept": "application/json"})
    return _http


def seg(value) -> str:
    """An id put into an API path, quoted as one path segment (ids come from GHL's answers and
    webhooks: '../' or '?' in one must not reach another endpoint)."""
    return quote(str(value), safe="")


def version_for(path: str) -> str:
    return VERSION_CONVERSATIONS if path.startswith("/conversations") else VERSION_DEFAULT


def _body(response: httpx.Response):
    try:
        return response.json()
    except ValueError:
        return {"text": response.text[:2000]}


# --- OAuth ----------------------------------------------------------------------------------
def token_request(form: dict, *, user_type: str | None = "Location") -> dict:
    """POST /oauth/token (form-encoded). Returns GHL's JSON or raises. `user_type` None leaves
    the choice to GHL (optional in apps/oauth.json GetAccessCodebodyDto): a code from an
    install started in GHL may be a sub-account's or an agency's, and the answer's `userType`
    says which."""
    form = {"client_id": settings.GHL_CLIENT_ID, "client_secret": settings.GHL_CLIENT_SECRET, **form}
    if user_type:
        form["user_type"] = user_type
    try:
        response = http().post(f"{settings.GHL_API_BASE_URL}/oauth/token", data=form)
    except httpx.HTTPError as exc:
        raise GhlUnavailable(f"GHL token endpoint unreachable: {exc.__class__.__name__}") from None
    return _token_answer(response)


def location_token_request(agency_id: int, ghl_location_id: str) -> dict:
    """POST /oauth/locationToken with the agency's Company token (form companyId, locationId;
    Version 2021-07-28; apps/oauth.json): a sub-account's Location token. It comes without a
    refresh token: when it expires, the agency is asked again."""
    company = company_refresh(agency_id)
    try:
        response = http().post(
            f"{settings.GHL_API_BASE_URL}/oauth/locationToken",
            data={"companyId": company.company_id, "locationId": ghl_location_id},
            headers={"Authorization": f"Bearer {company.secrets.get('access_token', '')}", "Version": VERSION_DEFAULT},
        )
    except httpx.HTTPError as exc:
        raise GhlUnavailable(f"GHL location-token endpoint unreachable: {exc.__class__.__name__}") from None
    return _token_answer(response)


def _token_answer(response: httpx.Response) -> dict:
    body = _body(response)
    if response.status_code >= 500:
        raise GhlUnavailable(f"GHL token endpoint answered {response.status_code}", status=response.status_code, body=body)
    if response.status_code == 429:
        raise GhlRateLimited("GHL token endpoint rate-limited us", wait_seconds=10, body=body)
    if response.status_code >= 400 or "access_token" not in body:
        detail = body.get("error_description") or body.get("error") or body.get("message") or "no access token"
        raise GhlRejected(f"GHL refused the token request: {detail}", status=response.status_code, body=body)
    return body


def store_tokens(connection: GhlConnection, body: dict) -> None:
    connection.secrets = {
        **connection.secrets,
        "access_token": body["access_token"],
        "refresh_token": body.get("refresh_token") or connection.secrets.get("refresh_token", ""),
    }
    connection.token_expires_at = timezone.now() + timezone.timedelta(seconds=int(body.get("expires_in") or 86399))
    if body.get("scope"):
        connection.scope = body["scope"]
    connection.status = GhlConnection.Status.CONNECTED


def refresh_tokens(connection_id: int, *, stale_token: str | None = None) -> GhlConnection:
    """Refresh under a row lock: GHL's refresh tokens are single-use, so two workers must not
    both spend the same one. A worker that waited finds fresh tokens and uses them."""
    refused = None
    with transaction.atomic():
        connection = GhlConnection.objects.select_for_update().get(pk=connection_id)
        fresh = connection.token_expires_at and connection.token_expires_at - timezone.now() > REFRESH_MARGIN
        if fresh and connection.secrets.get("access_token") != stale_token:
            return connection
        if connection.status != GhlConnection.Status.CONNECTED:
            raise GhlReauthorize("The GHL app is not installed for this location.")
        try:
            if connection.agency_id and not connection.secrets.get("refresh_token"):
                body = location_token_request(connection.agency_id, connection.installed_ghl_location_id)
            else:
                body = token_request({"grant_type": "refresh_token", "refresh_token": connection.secrets.get("refresh_token", "")})
        except GhlRejected as exc:
            refused = exc
            GhlConnection.objects.filter(pk=connection_id).update(
                status=GhlConnection.Status.REAUTHORIZE, last_error=str(exc)[:2000], last_error_at=timezone.now()
            )
        else:
            store_tokens(connection, body)
            connection.save(update_fields=["secrets", "token_expires_at", "scope", "status"])
    if refused is not None:
        logger.warning("GHL refresh refused for location %s: re-authorisation needed", connection.location_id)
        raise GhlReauthorize(str(refused), status=refused.status, body=refused.body)
    logger.info("GHL tokens refreshed for location %s", connection.location_id)
    return connection


def company_refresh(agency_id: int) -> GhlCompany:
    """The agency with a Company token good for a while: refreshed (user_type Company) under a
    row lock when it is near expiry — refresh tokens are single-use, as for a location."""
    refused = None
    with transaction.atomic():
        company = GhlCompany.objects.select_for_update().get(pk=agency_id)
        if company.status != GhlCompany.Status.CONNECTED:
            raise GhlReauthorize("The GHL app is not installed for this agency.")
        if company.token_expires_at and company.token_expires_at - timezone.now() > REFRESH_MARGIN:
            return company
        try:
            body = token_request({"grant_type": "refresh_token", "refresh_token": company.secrets.get("refresh_token", "")}, user_type="Company")
        except GhlRejected as exc:
            refused = exc
            GhlCompany.objects.filter(pk=agency_id).update(status=GhlCompany.Status.REAUTHORIZE)
        else:
            store_company_tokens(company, body)
            company.save(update_fields=["secrets", "token_expires_at", "scope", "status"])
    if refused is not None:
        logger.warning("GHL refresh refused for agency %s: re-authorisation needed", agency_id)
        raise GhlReauthorize(str(refused), status=refused.status, body=refused.body)
    return company


def store_company_tokens(company: GhlCompany, body: dict) -> None:
    company.secrets = {**company.secrets, "access_token": body["access_token"],
                       "refresh_token": body.get("refresh_token") or company.secrets.get("refresh_token", "")}
    company.token_expires_at = timezone.now() + timezone.timedelta(seconds=int(body.get("expires_in") or 86399))
    if body.get("scope"):
        company.scope = body["scope"]
    company.status = GhlCompany.Status.CONNECTED


# --- rate limit -----------------------------------------------------------------------------
def acquire_slot(connection_id: int) -> float:
    """Take one request slot; returns 0 when granted, else the seconds to wait first."""
    limit = settings.GHL_RATE_LIMIT_REQUESTS
    window = settings.GHL_RATE_LIMIT_WINDOW_SECONDS * WINDOW_MARGIN
    with transaction.atomic():
        row = GhlConnection.objects.select_for_update().only("rate_log", "daily_date", "daily_count").get(pk=connection_id)
        now = time.time()
        today = timezone.now().date()
        daily = row.daily_count if row.daily_date == today else 0
        if daily >= settings.GHL_DAILY_LIMIT:
            tomorrow = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) + timezone.timedelta(days=1)
            raise GhlRateLimited("GHL's daily request limit is used up", wait_seconds=(tomorrow - timezone.now()).total_seconds(), status=None)
        log = [t for t in row.rate_log if t > now - window]
        if len(log) >= limit:
            return max(log[len(log) - limit] + window - now, 0.001)
        log.append(now)
        GhlConnection.objects.filter(pk=connection_id).update(rate_log=log, daily_date=today, daily_count=daily + 1)
        return 0.0


class GhlClient:
    def __init__(self, connection: GhlConnection, *, sleep=time.sleep, max_inline_wait: float = 15.0):
        self.connection = connection
        self.sleep = sleep
        self.max_inline_wait = max_inline_wait
        self.calls = 0
        self.resume_at = 0.0  # time.monotonic() before which GHL's headers said we would get a 429
        self.resume_reason = ""

    def _token(self) -> str:
        conn = self.connection
        if not conn.token_expires_at or conn.token_expires_at - timezone.now() < REFRESH_MARGIN:
            self.connection = refresh_tokens(conn.pk, stale_token=conn.secrets.get("access_token"))
        return self.connection.secrets.get("access_token", "")

    def _wait_for_slot(self) -> None:
        left = self.resume_at - time.monotonic()
        if left > 0:  # GHL said no request of this window (or day) remains: no certain 429
            raise GhlRateLimited(self.resume_reason, wait_seconds=left, status=None)
        while True:
            wait = acquire_slot(self.connection.pk)
            if not wait:
                return
            if wait > self.max_inline_wait:
                raise GhlRateLimited("rate limit window full", wait_seconds=wait, status=None)
            self.sleep(wait)

    def request(self, method: str, path: str, *, json: dict | None = None, params: dict | None = None, record: dict | None = None) -> GhlResponse:
        """One API call (refreshing the token once on a 401). `record`, when given, receives
        the request and response for the sync log."""
        refreshed = False
        while True:
            token = self._token()
            self._wait_for_slot()
            self.calls += 1
            if record is not None:
                record["request"] = {"method": method, "path": path, "params": params or {}, "body": json or {}}
            try:
                response = http().request(
                    method,
                    f"{settings.GHL_API_BASE_URL}{path}",
                    json=json,
                    params=params,
                    headers={"Authorization": f"Bearer {token}", "Version": version_for(path)},
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise GhlUnavailable(f"GHL unreachable ({exc.__class__.__name__})") from None
            except httpx.TimeoutException:
                raise GhlUnavailable(f"GHL did not answer {method} {path} within {settings.GHL_TIMEOUT_SECONDS:g} s", unanswered=True) from None
            except httpx.HTTPError as exc:
                raise GhlUnavailable(f"GHL unreachable ({exc.__class__.__name__})", unanswered=True) from None
            body = _body(response)
            if record is not None:
                record["response"] = {"status": response.status_code, "body": body}
            status = response.status_code
            if status == 401 and not refreshed:
                refreshed = True
                self.connection = refresh_tokens(self.connection.pk, stale_token=token)
                continue
            if status == 401:
                raise GhlReauthorize("GHL refused the refreshed token", status=status, body=body)
            if status == 429:
                raise GhlRateLimited("GHL answered 429", wait_seconds=_wait_from_headers(response.headers), body=body)
            if status >= 500:
                raise GhlUnavailable(f"GHL answered {status} to {method} {path}", status=status, body=body)
            if status >= 400:
                message = body.get("message") if isinstance(body, dict) else None
                if isinstance(message, list):
                    message = "; ".join(str(m) for m in message)
                raise GhlRejected(f"GHL answered {status} to {method} {path}: {message or body}", status=status, body=body)
            self._note_exhausted(response.headers)
            return GhlResponse(status=status, data=body if isinstance(body, dict) else {}, headers=dict(response.headers))

    def _note_exhausted(self, headers) -> None:
        """After an answer that says no request remains (X-RateLimit-Remaining or
        X-RateLimit-Daily-Remaining 0), the next call of this client waits instead of firing
        into a certain 429."""
        if _header_number(headers, "X-RateLimit-Daily-Remaining") == 0:
            self.resume_at, self.resume_reason = time.monotonic() + _until_tomorrow(), "GHL's daily request limit is used up"
        elif _header_number(headers, "X-RateLimit-Remaining") == 0:
            self.resume_at = time.monotonic() + _interval(headers)
            self.resume_reason = "GHL's rate-limit window is used up (X-RateLimit-Remaining: 0)"


def _header_number(headers, name: str) -> float | None:
    try:
        return float(headers.get(name))
    except (TypeError, ValueError):
        return None


def _interval(headers) -> float:
    ms = _header_number(headers, "X-RateLimit-Interval-Milliseconds")
    return ms / 1000.0 if ms and ms > 0 else settings.GHL_RATE_LIMIT_WINDOW_SECONDS


def _until_tomorrow() -> float:
    """Seconds to the next UTC midnight: the day our own daily limiter (acquire_slot) counts."""
    now = timezone.now()
    return (now.replace(hour=0, minute=0, second=0, microsecond=0) + timezone.timedelta(days=1) - now).total_seconds()


def _retry_after(raw) -> float | None:
    """Retry-After as delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt_timezone.utc)
    return max((when - timezone.now()).total_seconds(), 0.0)


def _wait_from_headers(headers) -> float:
    """How long a 429 asks us to wait. GHL documents no Retry-After (honoured if present); its
    headers are X-RateLimit-Max, -Remaining, -Interval-Milliseconds, -Daily-Remaining (FACTS.md,
    GHL rate limits): the daily limit used up waits for the next day, else the burst interval."""
    retry_after = _retry_after(headers.get("Retry-After"))
    if retry_after is not None:
        return retry_after
    if _header_number(headers, "X-RateLimit-Daily-Remaining") == 0:
        return _until_tomorrow()
    return _interval(headers)
