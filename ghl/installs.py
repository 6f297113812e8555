"""Installs started in GHL: from the marketplace (a sub-account's admin picks the sub-account)
or by an agency for many sub-accounts at once (a company-level or bulk install).

GHL then redirects to our redirect URL with a `code` and nothing of ours: no `state`, and
nobody logged in to WhatSnap (FACTS.md; docs/oauth/Authorization.md). The code is exchanged
and its answer says what was installed (apps/oauth.json GetAccessCodeSuccessfulResponseDto):

- `userType` "Location" with a `locationId`: one sub-account. The WhatSnap location that holds
  that GHL location id (now, or before an uninstall) is connected again; otherwise, a new
  WhatSnap location is made for it, named and zoned as the sub-account (GET /locations/{id}).
- `userType` "Company": an agency. Its Company token is kept (GhlCompany), and each sub-account
  the app is installed in (`approvedLocations`, and GET /oauth/installedLocations when
  GHL_APP_ID is set) gets a GhlInstall row: a Location token is asked of the agency
  (POST /oauth/locationToken) and that sub-account connected as above. The app's INSTALL
  webhook for a later sub-account of a known agency adds a row too; UNINSTALL undoes.

A row waits while GHL is down and the minute sweep tries it again, so an install is never
dropped. Nobody is signed in here: a redirect that signs a browser in could be replayed into
someone else's browser (login CSRF). People get in from inside GHL (ghl/embed.py)."""
import logging
import secrets
from urllib.parse import urlencode

import httpx
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Location, Membership
from ghl.client import (GhlClient, GhlError, GhlUnavailable, http, location_token_request, seg, store_company_tokens, store_tokens,
                        token_request, version_for)
from ghl.models import GhlCompany, GhlConnection, GhlInstall
from ghl.services import forget_ghl_ids
from ghl.tasks import sync_users
from whatsnap.errors import ApplicationError
from whatsnap.tasks import enqueue

logger = logging.getLogger(__name__)

STATE_SALT = "whatsnap.ghl.oauth"
STATE_MAX_AGE = 15 * 60
INLINE_INSTALLS = 10  # sub-accounts connected while the installer waits; the rest by a task
RETRY_SECONDS = (30, 120, 600, 1800, 3600)


# --- an install started from WhatSnap's GoHighLevel page (its `state` checked) ---------------------
def redirect_uri() -> str:
    return f"{settings.PUBLIC_BASE_URL}{reverse('ghl-oauth-callback')}"


def install_url(*, location, user) -> str:
    if not settings.GHL_CLIENT_ID or not settings.GHL_CLIENT_SECRET:
        raise ApplicationError("GHL_CLIENT_ID and GHL_CLIENT_SECRET are not configured on this server.")
    state = signing.dumps({"l": location.pk, "u": user.pk, "n": secrets.token_urlsafe(8)}, salt=STATE_SALT)
    query = urlencode({
        "response_type": "code", "redirect_uri": redirect_uri(), "client_id": settings.GHL_CLIENT_ID,
        "scope": settings.GHL_SCOPES, "state": state,
    })
    return f"{settings.GHL_AUTHORIZE_URL}?{query}"


def install_complete(*, code: str, state: str, user) -> GhlConnection:
    """The OAuth callback of an install started in WhatSnap: check the state we signed (the
    admin who started it is the one finishing it), exchange the code, connect that location."""
    try:
        data = signing.loads(state or "", salt=STATE_SALT, max_age=STATE_MAX_AGE)
    except signing.BadSignature:
        raise ApplicationError("The GHL install link expired or was tampered with; start again from WhatSnap.") from None
    if data.get("u") != user.pk or not Membership.objects.filter(user=user, location_id=data.get("l"), role=Membership.Role.ADMIN).exists():
        raise ApplicationError("Only an admin of this location can connect GHL.", code="forbidden")
    if not code:
        raise ApplicationError("GHL did not send an authorisation code.")
    body = token_request({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri()})
    ghl_location_id = body.get("locationId") or ""
    if not ghl_location_id:
        raise ApplicationError("GHL's answer names no location: install the app for a sub-account (location), not an agency.")
    location, _ = location_connect(ghl_location_id=ghl_location_id, tokens=body, company_id=str(body.get("companyId") or ""),
                                   location=Location.objects.get(pk=data["l"]), user=user)
    return GhlConnection.objects.get(location=location)


# --- an install started in GHL (no state, nobody logged in) -------------------------------------
def install_from_ghl(*, code: str) -> list[GhlInstall]:
    """The OAuth redirect of an install started in GHL. Returns one row per sub-account (done,
    or pending with the reason it waits)."""
    if not settings.GHL_CLIENT_ID or not settings.GHL_CLIENT_SECRET:
        raise ApplicationError("GHL_CLIENT_ID and GHL_CLIENT_SECRET are not configured on this server.")
    if not code:
        raise ApplicationError("GHL did not send an authorisation code.")
    body = token_request({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri()}, user_type=None)
    if body.get("locationId"):
        location, provisioned = location_connect(ghl_location_id=str(body["locationId"]), tokens=body,
                                                 company_id=str(body.get("companyId") or ""))
        location.refresh_from_db()  # named from GHL just now
        return [GhlInstall(ghl_location_id=str(body["locationId"]), status=GhlInstall.Status.DONE, location=location, provisioned=provisioned)]
    if not body.get("companyId"):
        raise ApplicationError("GHL's answer names neither a sub-account nor an agency.")
    company = company_store(body)
    ids = list(dict.fromkeys([str(i) for i in body.get("approvedLocations") or []] + installed_locations(company)))
    rows = [installs_add(company, i) for i in ids]
    for row in rows[:INLINE_INSTALLS]:
        install_run(row.pk)
    if len(rows) > INLINE_INSTALLS:
        enqueue(installs_run_for, company.pk)
    return list(GhlInstall.objects.filter(pk__in=[r.pk for r in rows]).select_related("location").order_by("id"))


def company_store(body: dict) -> GhlCompany:
    with transaction.atomic():
        company, _ = GhlCompany.objects.select_for_update().get_or_create(company_id=str(body["companyId"]))
        store_company_tokens(company, body)
        company.installed_at, company.uninstalled_at = timezone.now(), None
        company.save()
    logger.info("GHL installed for agency %s", company.company_id)
    return company


def installed_locations(company: GhlCompany) -> list[str]:
    """GET /oauth/installedLocations (needs the app's id, GHL_APP_ID): the sub-accounts the app
    is installed in. Without GHL_APP_ID the token's approvedLocations stand alone."""
    if not settings.GHL_APP_ID:
        return []
    found: list[str] = []
    skip = 0
    while True:
        try:
            response = http().get(
                f"{settings.GHL_API_BASE_URL}/oauth/installedLocations",
                params={"companyId": company.company_id, "appId": settings.GHL_APP_ID, "isInstalled": "true", "limit": 100, "skip": skip},
                headers={"Authorization": f"Bearer {company.secrets.get('access_token', '')}", "Version": version_for("/oauth")},
            )
            data = response.json() if response.status_code < 400 else {}
        except (httpx.HTTPError, ValueError) as exc:  # the approved list still stands
            logger.warning("GHL installed locations of agency %s not read: %s", company.company_id, exc.__class__.__name__)
            return found
        page = [str(row.get("_id")) for row in data.get("locations") or [] if row.get("_id") and row.get("isInstalled", True)]
        found += page
        skip += 100
        if len(page) < 100 or skip >= int(data.get("count") or 0):
            return found


def installs_add(company: GhlCompany, ghl_location_id: str) -> GhlInstall:
    row, created = GhlInstall.objects.get_or_create(company=company, ghl_location_id=ghl_location_id)
    if not created and row.status != GhlInstall.Status.PENDING:
        GhlInstall.objects.filter(pk=row.pk).update(status=GhlInstall.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error="")
        row.refresh_from_db()
    return row


def install_run(install_id: int) -> bool:
    """Connect one sub-account of an agency: its Location token, then the location. A GHL
    outage leaves the row pending with a later attempt; a refusal fails it with the reason."""
    row = GhlInstall.objects.select_related("company").get(pk=install_id)
    if row.status != GhlInstall.Status.PENDING:
        return row.status == GhlInstall.Status.DONE
    try:
        tokens = location_token_request(row.company_id, row.ghl_location_id)
        location, provisioned = location_connect(ghl_location_id=row.ghl_location_id, tokens=tokens,
                                                 company_id=row.company.company_id, agency=row.company)
    except (GhlUnavailable, GhlError) as exc:
        retry = isinstance(exc, GhlUnavailable) or getattr(exc, "wait_seconds", None) is not None
        attempts = row.attempts + 1
        if retry and attempts <= len(RETRY_SECONDS):
            GhlInstall.objects.filter(pk=row.pk).update(
                attempts=attempts, last_error=str(exc)[:2000],
                next_attempt_at=timezone.now() + timezone.timedelta(seconds=RETRY_SECONDS[attempts - 1]))
        else:
            GhlInstall.objects.filter(pk=row.pk).update(attempts=attempts, last_error=str(exc)[:2000], status=GhlInstall.Status.FAILED)
        logger.warning("GHL sub-account %s of agency %s not connected yet: %s", row.ghl_location_id, row.company.company_id, exc)
        return False
    except ApplicationError as exc:
        GhlInstall.objects.filter(pk=row.pk).update(attempts=row.attempts + 1, last_error=exc.message, status=GhlInstall.Status.FAILED)
        return False
    GhlInstall.objects.filter(pk=row.pk).update(status=GhlInstall.Status.DONE, location=location, provisioned=provisioned, last_error="")
    return True


def installs_run_for(company_pk: int) -> int:
    """Task: connect the agency's waiting sub-accounts that are due."""
    return sum(install_run(pk) for pk in _due(GhlInstall.objects.filter(company_id=company_pk)))


def installs_sweep() -> int:
    """Minute sweep (registered in GhlConfig.ready()): waiting sub-accounts whose retry is due."""
    return sum(install_run(pk) for pk in _due(GhlInstall.objects.all()))


def _due(rows) -> list[int]:
    return list(rows.filter(status=GhlInstall.Status.PENDING, next_attempt_at__lte=timezone.now(),
                            company__status=GhlCompany.Status.CONNECTED).order_by("id").values_list("pk", flat=True)[:50])


# --- one sub-account: connect the location that holds it, or make one -----------------------------
def location_connect(*, ghl_location_id: str, tokens: dict, company_id: str, agency: GhlCompany | None = None,
                     location: Location | None = None, user=None) -> tuple[Location, bool]:
    """Store a sub-account's tokens on its WhatSnap location: the one given (an install started
    from WhatSnap), else the one holding that GHL location id now or at its last install, else a
    new one (GHL_PROVISION_LOCATIONS). Returns (location, made now)."""
    made = False
    with transaction.atomic():
        if location is None:
            location = _holder(ghl_location_id)
        if location is None:
            if not settings.GHL_PROVISION_LOCATIONS:
                raise ApplicationError("This GHL sub-account is not connected to WhatSnap, and this server does not create "
                                       "locations for new sub-accounts: connect it from WhatSnap's GoHighLevel page.")
            location, made = _provision(ghl_location_id), True
        location = Location.objects.select_for_update().get(pk=location.pk)
        clash = Location.objects.filter(ghl_location_id=ghl_location_id).exclude(pk=location.pk).first()
        if clash:
            # another tenant's location: said without its name (no error names another tenant)
            raise ApplicationError("That GHL sub-account is connected to another WhatSnap location already. Pick another "
                                   "sub-account, or have that location disconnect it first.")
        connection, _ = GhlConnection.objects.get_or_create(location=location)
        previous = connection.installed_ghl_location_id or location.ghl_location_id
        if previous and previous != ghl_location_id:
            forget_ghl_ids(location)
        connection.installed_ghl_location_id = ghl_location_id
        if agency is not None:  # a token of the agency's: no refresh token of its own
            connection.secrets = {**connection.secrets, "refresh_token": ""}
        store_tokens(connection, tokens)
        connection.agency = agency
        connection.company_id = company_id or connection.company_id
        connection.installed_by, connection.installed_at, connection.uninstalled_at = user, timezone.now(), None
        connection.paused_until, connection.pause_reason, connection.released = None, "", False
        connection.save()
        location.ghl_location_id = ghl_location_id
        location.save(update_fields=["ghl_location_id"])
    enqueue(sync_users, location.pk)
    if made:
        location_details(location.pk)
    logger.info("GHL installed for location %s (GHL location %s%s)", location.pk, ghl_location_id, ", new location" if made else "")
    return location, made


def _holder(ghl_location_id: str) -> Location | None:
    holder = Location.objects.filter(ghl_location_id=ghl_location_id).first()
    if holder is not None:
        return holder
    # uninstalled in GHL since: the location it was last installed for, unless that one moved on
    # or its admin disconnected it in WhatSnap (released)
    before = (GhlConnection.objects.filter(installed_ghl_location_id=ghl_location_id, location__ghl_location_id="", released=False)
              .select_related("location").order_by("-installed_at").first())
    return before.location if before else None


def _provision(ghl_location_id: str) -> Location:
    base = f"GHL sub-account {ghl_location_id}"[:100]
    return Location.objects.create(name=_free_name(base), slug=_free_slug(slugify(f"ghl-{ghl_location_id}")[:50] or "ghl"))


def _free_name(base: str) -> str:
    return _free("name", base, lambda n: f"{base[:110]} ({n})")


def _free_slug(base: str) -> str:
    return _free("slug", base, lambda n: f"{base[:52]}-{n}")


def _free(field: str, base: str, numbered) -> str:
    """`base`, or the first numbered form of it no location uses for `field` (unique)."""
    value, n = base, 1
    while Location.objects.filter(**{field: value}).exists():
        n += 1
        value = numbered(n)
    return value


def location_details(location_id: int) -> bool:
    """Name, time zone and country of a location made for a sub-account, from GHL
    (GET /locations/{id}, Version 2021-07-28, scope locations.readonly: GetLocationByIdSchema).
    GHL down: tried again by a task later; the location works meanwhile under its placeholder."""
    connection = GhlConnection.objects.select_related("location").filter(location_id=location_id, status=GhlConnection.Status.CONNECTED).first()
    if connection is None:
        return False
    location = connection.location
    try:
        data = GhlClient(connection).request("GET", f"/locations/{seg(location.ghl_location_id)}").data.get("location") or {}
    except GhlError as exc:
        logger.warning("GHL details of location %s not read (%s): kept its placeholder name", location_id, exc)
        return False
    fields = []
    name = str(data.get("name") or "").strip()[:100]
    if name and location.name.startswith("GHL sub-account "):
        location.name = _free_name(name)
        fields.append("name")
    zone = str(data.get("timezone") or "")
    try:
        Location._meta.get_field("timezone").run_validators(zone)
    except Exception:  # noqa: BLE001 — an unknown zone keeps UTC
        zone = ""
    if zone:
        location.timezone = zone
        fields.append("timezone")
    country = str(data.get("country") or "").upper()
    if len(country) == 2 and country.isalpha() and not location.country:
        location.country = country
        fields.append("country")
    if fields:
        location.save(update_fields=fields)
    return True


# --- the app's lifecycle webhooks -------------------------------------------------------------------
def app_installed(payload: dict) -> str:
    """INSTALL (docs/webhook events/AppInstall.md): a sub-account of an agency we hold a Company
    token for gets its install row (the webhook only stores; a task connects it). An install
    without such an agency completes through the OAuth redirect, which carries the code."""
    ghl_location_id = str(payload.get("locationId") or "")
    company = GhlCompany.objects.filter(company_id=str(payload.get("companyId") or ""), status=GhlCompany.Status.CONNECTED).first()
    if not ghl_location_id:
        return "agency install: completed by the OAuth redirect"
    if company is None:
        return "sub-account install: completed by the OAuth redirect (no agency token here)"
    row = installs_add(company, ghl_location_id)
    transaction.on_commit(lambda: enqueue(installs_run_for, company.pk))
    return f"sub-account {ghl_location_id} queued for connection (install #{row.pk})"


def app_uninstalled(payload: dict, uninstall_location) -> str:
    """UNINSTALL (docs/webhook events/AppUninstall.md): of one sub-account (locationId), or of
    an agency (companyId only) — then every sub-account connected through it too."""
    ghl_location_id = str(payload.get("locationId") or "")
    if ghl_location_id:
        return "uninstalled" if uninstall_location(ghl_location_id=ghl_location_id) else "unknown location"
    company = GhlCompany.objects.filter(company_id=str(payload.get("companyId") or "")).first()
    if company is None:
        return "unknown agency"
    GhlCompany.objects.filter(pk=company.pk).update(status=GhlCompany.Status.UNINSTALLED, secrets={}, uninstalled_at=timezone.now(),
                                                    token_expires_at=None)
    GhlInstall.objects.filter(company=company, status=GhlInstall.Status.PENDING).update(status=GhlInstall.Status.FAILED, last_error="agency uninstalled")
    done = 0
    for ghl_id in GhlConnection.objects.filter(agency=company).exclude(location__ghl_location_id="").values_list("location__ghl_location_id", flat=True):
        done += bool(uninstall_location(ghl_location_id=ghl_id))
    return f"agency uninstalled ({done} sub-account(s))"
