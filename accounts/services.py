"""Account lifecycle: create (with its tag), connect, status changes, disconnect, archive.

Network calls to backends are never made inside a transaction."""
import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Account, AccountEvent, AccountSettingsChange, ApiToken, Location, Membership, validate_country, validate_timezone
from accounts.providers import backends_for_kind, get_provider
from accounts.providers.base import ConnectionChanged, ProviderError, QrUpdated
from whatsnap import events
from whatsnap.errors import NOT_A_MEMBER, ApplicationError

logger = logging.getLogger(__name__)

def account_slug_suggest(*, location: Location, slug: str) -> str:
    for n in range(2, 100):
        candidate = f"{slug}-{n}"
        if not _slug_taken(location, candidate):
            return candidate
    return f"{slug}-{timezone.now():%Y%m%d%H%M%S}"


def _slug_taken(location: Location, slug: str) -> bool:
    if Account.objects.filter(location=location, slug=slug, archived_at__isnull=True).exists():
        return True
    # an account renamed later keeps its tag: a live account may hold this tag name under another slug
    return Account.objects.filter(location=location, tag__name=f"whatsnap-account-{slug}", archived_at__isnull=True).exists()


def _clean_slug(name: str, slug: str | None) -> str:
    value = slugify(slug or name)[:50]
    if not value:
        raise ApplicationError("Give the account a name with letters or digits, e.g. 'sales'.", field="name")
    return value


def _check_client_settings(backend: str, credentials: dict, config: dict) -> None:
    """Only the keys a backend declares settable, with an allowed value: the rest of config and
    credentials (gateway session names and tokens, pool numbers, link nonces) is WhatSnap's."""
    provider = get_provider(backend)
    unknown = sorted(set(config) - set(provider.settable_config))
    if unknown:
        allowed = ", ".join(provider.settable_config) or "none"
        raise ApplicationError(f"config cannot set {', '.join(unknown)} for the {backend} backend (settable: {allowed}).", field="config")
    for key, value in config.items():
        choices = provider.settable_config[key]
        if choices is not None and value not in choices:
            raise ApplicationError(f"config {key} must be one of {', '.join(choices)}.", field="config")
    unknown = sorted(set(credentials) - set(provider.settable_credentials))
    if unknown:
        allowed = ", ".join(provider.settable_credentials) or "none"
        raise ApplicationError(f"credentials cannot set {', '.join(unknown)} for the {backend} backend (settable: {allowed}).", field="credentials")


@transaction.atomic
def account_create(
    *,
    location: Location,
    kind: str,
    backend: str,
    name: str,
    slug: str | None = None,
    phone_number: str = "",
    credentials: dict | None = None,
    config: dict | None = None,
) -> Account:
    """Create the account and its unique tag `whatsnap-account-<slug>`. A slug already used
    in the location is refused with a suggestion, never silently suffixed."""
    if backend not in backends_for_kind(kind):
        raise ApplicationError(f"The {backend} backend cannot serve {kind} accounts.", field="backend")
    _check_client_settings(backend, credentials or {}, config or {})
    slug = _clean_slug(name, slug)
    if _slug_taken(location, slug):
        suggestion = account_slug_suggest(location=location, slug=slug)
        raise ApplicationError(
            f"The tag whatsnap-account-{slug} is already used by another account of {location.name}. "
            f"Pick another name, for example '{suggestion}'.",
            code="slug_taken",
            field="slug",
            extra={"suggestion": suggestion},
        )
    account = Account(
        location=location,
        kind=kind,
        backend=backend,
        name=name.strip(),
        slug=slug,
        phone_number=phone_number or "",
        credentials=credentials or {},
        config=config or {},
    )
    account.full_clean()
    try:
        with transaction.atomic():  # the account and its tag (made by contacts) together
            account.save()
            events.record("account.created", location_id=location.id, account=account)
    except IntegrityError:
        if not _slug_taken(location, slug):
            raise
        # a concurrent create of the same slug won the race
        raise ApplicationError(f"The tag whatsnap-account-{slug} was just taken.", code="slug_taken", field="slug") from None
    return account


def account_connect(*, account: Account) -> Account:
    """Start (or restart) the backend session and apply what it reports."""
    account_set_status(account=account, status=Account.Status.CONNECTING, reason="connect requested")
    try:
        events = get_provider(account.backend).connect(account)
    except ProviderError as exc:
        account_set_status(account=account, status=Account.Status.ERROR, reason=str(exc))
        return account
    account_apply_events(account=account, events=events)
    return account


def account_qr_renew(*, account: Account) -> Account:
    """The QR on screen expired while the account waits to be linked: fetch a new one. The
    status stays qr_pending (no history rows for a routine refresh)."""
    if account.status != Account.Status.QR_PENDING:
        return account
    try:
        events = get_provider(account.backend).renew_qr(account)
    except ProviderError as exc:
        account_set_status(account=account, status=Account.Status.ERROR, reason=f"QR refresh failed: {exc}")
        return account
    account_apply_events(account=account, events=events)
    return account


def account_apply_events(*, account: Account, events: list) -> None:
    for event in events:
        if isinstance(event, QrUpdated):
            account_qr_update(account=account, qr=event.qr, pairing_code=event.pairing_code, expires_in=event.expires_in)
        elif isinstance(event, ConnectionChanged):
            account_set_status(account=account, status=event.status, reason=event.reason, phone=event.phone)


@transaction.atomic
def account_qr_update(*, account: Account, qr: str, pairing_code: str = "", expires_in: int = 30) -> None:
    now = timezone.now()
    Account.objects.filter(pk=account.pk).update(
        qr_payload=qr,
        pairing_code=pairing_code,
        qr_expires_at=now + timezone.timedelta(seconds=expires_in),
        last_event_at=now,
    )
    account.qr_payload, account.pairing_code = qr, pairing_code
    account.qr_expires_at, account.last_event_at = now + timezone.timedelta(seconds=expires_in), now
    if account.status != Account.Status.QR_PENDING:
        account_set_status(account=account, status=Account.Status.QR_PENDING, reason="QR code issued")
    events.record("account.qr_updated", location_id=account.location_id, account=account)


@transaction.atomic
def account_set_status(*, account: Account, status: str, reason: str = "", phone: str = "", requested: bool = False) -> None:
    """Record a status change (and its history row); no-op when nothing changes. `requested`:
    a person asked for it (Disconnect), the backend did not report it (accounts.alerts reads it)."""
    current = Account.objects.select_for_update().get(pk=account.pk)
    now = timezone.now()
    fields = {"last_event_at": now}
    if phone and phone != current.phone_number:
        fields["phone_number"] = phone
    if status == Account.Status.ERROR:
        fields["last_error"] = reason
    elif status == Account.Status.CONNECTED:
        fields.update(last_error="", qr_payload="", pairing_code="", qr_expires_at=None)
    changed = status != current.status
    if changed:
        fields["status"] = status
        AccountEvent.objects.create(account=current, from_status=current.status, to_status=status, reason=reason[:300],
                                    requested=requested)
    Account.objects.filter(pk=account.pk).update(**fields)
    for key, value in fields.items():
        setattr(account, key, value)
    if changed or "phone_number" in fields:
        logger.info("account %s status %s -> %s (%s)", account.pk, current.status, status, reason)
        events.record("account.status_changed", location_id=account.location_id, account=account,
                      status=status, previous=current.status, reason=reason)


REFUSAL_NOTE_EVERY = timezone.timedelta(seconds=60)


def account_webhook_refused(*, account: Account, reason: str) -> None:
    """Keep why the account's last webhook was refused (the account page says it, with what to
    change). Written at most once a minute per account, whatever the reason: a flood of forged
    requests is no write storm. The reason is the provider's own sentence."""
    now = timezone.now()
    if account.webhook_refused_at and now - account.webhook_refused_at < REFUSAL_NOTE_EVERY:
        return
    Account.objects.filter(pk=account.pk).update(webhook_refused_at=now, webhook_refused_reason=reason[:300])
    account.webhook_refused_at, account.webhook_refused_reason = now, reason[:300]


def account_disconnect(*, account: Account, reason: str = "disconnected by a user") -> None:
    """A person takes the account down: no outage, so no alert (accounts.alerts), neither now
    nor for what the backend reports of it afterwards (Evolution answers a logout with
    'logged out' webhooks). Recorded before the backend is told, so that echo finds it."""
    account_set_status(account=account, status=Account.Status.DISCONNECTED, reason=reason, requested=True)
    try:
        get_provider(account.backend).disconnect(account)
    except ProviderError as exc:
        logger.warning("backend disconnect of account %s failed: %s", account.pk, exc)


def account_archive(*, account: Account) -> None:
    """'Delete': disconnect, hide, free the name. Contacts, conversations, messages and the
    tag (now a plain tag) stay."""
    # archived first: the disconnect that follows is no outage to alert anyone about
    with transaction.atomic():
        account.archived_at = timezone.now()
        Account.objects.filter(pk=account.pk).update(archived_at=account.archived_at)
        events.record("account.archived", location_id=account.location_id, account=account)  # its tag becomes a plain tag
    account_disconnect(account=account, reason="account deleted")


SETTINGS_FIELDS = ("name", "timezone", "business_hours", "signature", "default_assignee_id", "default_team_id",
                   "auto_reply_text", "send_per_minute", "send_jitter_seconds", "typing_delay_seconds",
                   "send_read_receipts", "history_days", "quiet_alert_minutes")


@transaction.atomic
def account_settings_update(*, account: Account, actor=None, **values) -> dict:
    """Validate and save per-account settings; record who changed what. Returns the changes."""
    current = Account.objects.select_for_update().get(pk=account.pk)
    changes = {}
    for field, value in values.items():
        if field not in SETTINGS_FIELDS:
            raise ApplicationError(f"{field} is not an account setting.", field=field)
        old = getattr(current, field)
        if old != value:
            changes[field] = [old, value]
            setattr(current, field, value)
    if not changes:
        return {}
    current.full_clean()
    current.save(update_fields=[f.removesuffix("_id") for f in changes])
    AccountSettingsChange.objects.create(account=current, actor=actor, changes=changes)
    events.record("account.settings_changed", location_id=current.location_id, account=current, changed=sorted(changes))
    for field in changes:
        setattr(account, field, getattr(current, field))
    return changes


# --- the location's own settings: details, members, API tokens --------------------------------
def location_update(*, location: Location, name: str, timezone_name: str, country: str | None = None,
                    agents_see_all: bool | None = None) -> Location:
    """Rename the location or change its time zone (reports and business hours use it) or its
    country (the region of numbers typed without a country code), or whether agents may open
    the inbox's All tab (None: unchanged)."""

    name = (name or "").strip()
    if not name:
        raise ApplicationError("The location needs a name.", field="name")
    if Location.objects.filter(name=name).exclude(pk=location.pk).exists():
        raise ApplicationError(f"Another location is called {name} already.", field="name")
    try:
        validate_timezone(timezone_name)
    except ValidationError as exc:
        raise ApplicationError(exc.messages[0], field="timezone") from None
    country = location.country if country is None else (country or "").strip().upper()
    try:
        validate_country(country)
    except ValidationError as exc:
        raise ApplicationError(exc.messages[0], field="country") from None
    agents_see_all = location.agents_see_all if agents_see_all is None else bool(agents_see_all)
    Location.objects.filter(pk=location.pk).update(name=name, timezone=timezone_name or "UTC", country=country, agents_see_all=agents_see_all)
    location.name, location.timezone, location.country, location.agents_see_all = name, timezone_name or "UTC", country, agents_see_all
    return location


def _other_admins(membership) -> bool:
    return Membership.objects.filter(location_id=membership.location_id, role=Membership.Role.ADMIN).exclude(pk=membership.pk).exists()


@transaction.atomic
def member_update(*, membership, role: str, capacity: int):
    """An admin changes a member's role or capacity; the last admin stays an admin."""
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if role not in Membership.Role.values:
        raise ApplicationError(f"Unknown role {role!r}.", field="role")
    if not 0 <= capacity <= 1000:
        raise ApplicationError("Capacity is between 0 and 1000 open conversations.", field="capacity")
    if membership.role == Membership.Role.ADMIN and role != Membership.Role.ADMIN and not _other_admins(membership):
        raise ApplicationError("The location needs at least one admin: make someone else admin first.", field="role")
    changed = [name for name, value in (("role", role), ("capacity", capacity)) if getattr(membership, name) != value]
    Membership.objects.filter(pk=membership.pk).update(role=role, capacity=capacity)
    membership.role, membership.capacity = role, capacity
    if changed:  # routing gives waiting conversations to a member whose capacity was raised
        events.record("member.changed", location_id=membership.location_id, membership=membership, changed=changed)
    return membership


@transaction.atomic
def member_set_availability(*, membership, availability: str):
    """Online, away or offline (the member themselves, or the API)."""
    if availability not in Membership.Availability.values:
        raise ApplicationError(f"Unknown availability {availability!r}.", field="availability")
    updated = Membership.objects.filter(pk=membership.pk).exclude(availability=availability).update(availability=availability)
    membership.availability = availability
    if updated:  # routing gives waiting conversations to a member coming online
        events.record("member.changed", location_id=membership.location_id, membership=membership, changed=["availability"])
    return membership


@transaction.atomic
def member_add(*, location: Location, username: str, email: str, password: str, role: str):
    """Add a person to the location as a NEW login. An existing user joins only by accepting
    an invitation (accounts.invitations): an admin must not pull someone else's login into
    their location. A taken name gets the same answer wherever it is used, so the form does
    not tell which usernames exist in other locations."""
    username = (username or "").strip()
    if not username:
        raise ApplicationError("Give the person a username.", field="username")
    if role not in Membership.Role.values:
        raise ApplicationError(f"Unknown role {role!r}.", field="role")
    User = get_user_model()
    username_check(username)
    if User.objects.filter(username__iexact=username).exists():
        raise ApplicationError(USERNAME_NOT_AVAILABLE, field="username")
    try:
        validate_password(password, User(username=username, email=email))
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), field="password") from None
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, email=(email or "").strip(), password=password)
    except IntegrityError:  # taken by a concurrent sign-up
        raise ApplicationError(USERNAME_NOT_AVAILABLE, field="username") from None
    return Membership.objects.create(user=user, location=location, role=role)


def username_check(username: str) -> None:
    """Django's own rule for usernames (letters, digits and @ . + - _): the forms apply it, and
    so must every service that makes a login. It also keeps people out of the `ghl:` names of
    the logins made for GHL users (ghl/embed.py)."""
    try:
        get_user_model().username_validator(username)
    except ValidationError:
        raise ApplicationError("A username may contain only letters, digits and @ . + - _ (no spaces).", field="username") from None


USERNAME_NOT_AVAILABLE = "That username is not available. Pick another one, or invite the person if they already use WhatSnap."


@transaction.atomic
def member_remove(*, membership) -> None:
    """Take a person out of the location: their open conversations become unassigned and their
    API keys for it stop working."""
    if membership.role == Membership.Role.ADMIN and not _other_admins(membership):
        raise ApplicationError("The location needs at least one admin.")
    events.record("member.removing", location_id=membership.location_id, membership=membership)  # their conversations: unassigned
    ApiToken.objects.filter(location_id=membership.location_id, user_id=membership.user_id).delete()
    membership.delete()


def api_token_create(*, location: Location, name: str, user=None) -> tuple["ApiToken", str]:
    """A REST API key for the location (for one member's view of it when `user` is given).
    Returns the token and its key: only a hash is stored, so show the key once, right now."""
    if user is not None and not Membership.objects.filter(user=user, location=location).exists():
        raise ApplicationError(NOT_A_MEMBER, field="user")
    token = ApiToken(location=location, name=(name or "").strip()[:80] or "token", user=user)
    key = token.issue_key()
    token.full_clean()
    token.save()
    return token, key
