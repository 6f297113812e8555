import hashlib
import hmac
import secrets
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone as dj_tz

from accounts.hours import parse_hours
from accounts.providers import get_provider
from whatsnap.crypto import EncryptedJSONField, EncryptedTextField


def _new_secret() -> str:
    return secrets.token_urlsafe(24)


def new_gateway_resource() -> str:
    """The name of an account's session on a shared gateway (an Evolution instance, a WAHA
    session): chosen by WhatSnap alone, random (64 bits), so no tenant can guess or name
    another account's session. Letters, digits and '-' only: every gateway accepts it."""
    return f"whatsnap-{secrets.token_hex(8)}"


API_KEY_PREFIX = "wsn_"
API_KEY_VISIBLE = 8  # characters after "wsn_" kept in clear to tell keys apart (48 of 256 bits)


def new_api_key() -> str:
    """An API key: a fixed prefix (recognisable by secret scanners, and never starting with "-",
    which command lines would take for an option) and 32 random bytes."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_prefix(key: str) -> str:
    return key[len(API_KEY_PREFIX):len(API_KEY_PREFIX) + API_KEY_VISIBLE] if key.startswith(API_KEY_PREFIX) else ""


def api_key_hash(key: str) -> str:
    """SHA-256 of the whole key. A key is 32 random bytes, so a fast unsalted hash cannot be
    brute-forced, and it needs no server secret (rotating SECRET_KEY keeps keys working)."""
    return hashlib.sha256(key.encode()).hexdigest()


def validate_country(value: str) -> None:
    if value and (len(value) != 2 or value.upper() not in phonenumbers.SUPPORTED_REGIONS):
        raise ValidationError(f"{value!r} is not a country code; use two letters, e.g. US, GB, DE.")


def validate_timezone(value: str) -> None:
    if not value:
        return
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not a time zone name (e.g. America/New_York).") from None


class Location(models.Model):
    """The tenant: one business, one GHL sub-account."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    # ISO 3166 alpha-2: numbers typed without a country code are read as this country's
    country = models.CharField(max_length=2, blank=True, default="", validators=[validate_country],
                               help_text="numbers typed without +country code are read as this country's (blank: US)")
    ghl_location_id = models.CharField("GHL location id", max_length=64, blank=True, db_index=True)
    require_two_factor = models.BooleanField(default=False, help_text="members must log in with a code from an authenticator app")
    agents_see_all = models.BooleanField(default=True, help_text="agents may open the inbox's All tab (else: Mine and Unassigned only)")
    created_at = models.DateTimeField(default=dj_tz.now)

    class Meta:
        ordering = ["name"]

    @property
    def phone_region(self) -> str:
        """The region a number typed without +country code is read in."""
        return self.country or "US"

    def __str__(self):
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        AGENT = "agent", "Agent"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="memberships")
    class Availability(models.TextChoices):
        ONLINE = "online", "Online"
        AWAY = "away", "Away"
        OFFLINE = "offline", "Offline"

    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    availability = models.CharField(max_length=10, choices=Availability.choices, default=Availability.ONLINE)
    capacity = models.PositiveIntegerField(default=20, help_text="max open conversations assigned at once")
    timezone = models.CharField(max_length=64, blank=True, validators=[validate_timezone], help_text="blank = the location's")
    # when the member last switched to (or joined) this location: a login lands in the last one
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    notify_browser = models.BooleanField(default=True, help_text="a browser notification for a new message in my conversations")
    notify_sound = models.BooleanField(default=True, help_text="a sound for a new message in my conversations")
    notify_unassigned = models.BooleanField(default=False, help_text="also for new messages in unassigned conversations")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "location"], name="uniq_membership")]

    def __str__(self):
        return f"{self.user} @ {self.location} ({self.role})"


class ApiTokenQuerySet(models.QuerySet):
    def for_key(self, key: str) -> "ApiToken | None":
        """The token of a raw key: candidates found by the visible prefix, confirmed by a
        constant-time comparison of the hash (the key itself is never stored)."""
        digest = api_key_hash(key)
        for token in self.filter(prefix=api_key_prefix(key)):
            if hmac.compare_digest(token.key_hash, digest):
                return token
        return None


class ApiToken(models.Model):
    """A REST API key bound to one location; with a user it is scoped to that user's role.
    Only a prefix and a hash of the key are stored: the key is shown once, at creation
    (accounts.services.api_token_create)."""

    prefix = models.CharField(max_length=16, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="api_tokens")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    name = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(default=dj_tz.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    def issue_key(self) -> str:
        """Give this (unsaved) token a new key; returns the key, which is not kept anywhere."""
        key = new_api_key()
        self.prefix, self.key_hash = api_key_prefix(key), api_key_hash(key)
        return key

    @property
    def masked_key(self) -> str:
        return f"{API_KEY_PREFIX}{self.prefix}…" if self.prefix else "(key made before wsn_ keys)"

    def save(self, *args, **kwargs):
        if not self.key_hash:  # a row without a hash would be a key nobody can use or see
            raise ValueError("Create API tokens with accounts.services.api_token_create (or issue_key() first).")
        super().save(*args, **kwargs)

    def clean(self):
        if self.user_id and self.location_id and not Membership.objects.filter(user_id=self.user_id, location_id=self.location_id).exists():
            raise ValidationError({"user": "The user must be a member of the token's location."})

    def __str__(self):
        return f"{self.name or 'token'} {self.masked_key} ({self.location})"

    @property
    def is_admin(self) -> bool:
        if self.user_id is None:
            return True
        return Membership.objects.filter(
            user_id=self.user_id, location_id=self.location_id, role=Membership.Role.ADMIN
        ).exists()


class Account(models.Model):
    """One connected messaging number/identity of a location."""

    class Kind(models.TextChoices):
        WHATSAPP = "whatsapp", "WhatsApp"
        IMESSAGE = "imessage", "iMessage (Mac)"
        ANDROID_SMS = "android_sms", "SMS (Android phone)"
        TWILIO = "twilio", "Twilio SMS"

    # carrier SMS: the STOP / START / HELP keywords are the sender's opt-out and opt-in
    SMS_KINDS = frozenset({Kind.TWILIO, Kind.ANDROID_SMS})

    class Status(models.TextChoices):
        NEW = "new", "New"
        CONNECTING = "connecting", "Connecting"
        QR_PENDING = "qr_pending", "Waiting for QR scan"
        CONNECTED = "connected", "Connected"
        DISCONNECTED = "disconnected", "Disconnected"
        LOGGED_OUT = "logged_out", "Logged out"
        ERROR = "error", "Error"

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="accounts")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    backend = models.CharField(max_length=20)
    name = models.CharField("display name", max_length=80)
    slug = models.SlugField(max_length=60)
    phone_number = models.CharField(max_length=20, blank=True, help_text="E.164, once known")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW, db_index=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_webhook_at = models.DateTimeField(null=True, blank=True)
    # per-account settings
    timezone = models.CharField(max_length=64, blank=True, validators=[validate_timezone], help_text="blank = the location's")
    business_hours = models.JSONField(default=dict, blank=True)
    signature = models.CharField(max_length=200, blank=True)
    default_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    default_team = models.ForeignKey("routing.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    auto_reply_text = models.TextField(blank=True, help_text="sent once per conversation when a message arrives outside business hours")
    # send pacing: carriers and WhatsApp punish bursts
    send_per_minute = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(600)],
        help_text="at most this many messages a minute leave through this account (1–600)")
    send_jitter_seconds = models.PositiveIntegerField(
        default=2, validators=[MaxValueValidator(60)], help_text="random extra wait between two sends, up to this many seconds (0–60)")
    typing_delay_seconds = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(15)],
        help_text="WhatsApp: the gateway shows 'typing…' this long before each message (0–15 s)")
    # broadcasts (issue 18): a daily cap on broadcast messages (in the account's local day) and
    # a warm-up for new numbers; replies are never capped
    broadcast_daily_cap = models.PositiveIntegerField(
        default=1000, validators=[MaxValueValidator(100_000)],
        help_text="at most this many broadcast messages a day leave through this account, counted in its local day (0 = none)")
    broadcast_warmup = models.BooleanField(
        default=True, help_text="new number warm-up: a small broadcast cap on the first connected day (50) that doubles each day up to the daily cap")
    # what the gateway does beside messages (issue 17)
    send_read_receipts = models.BooleanField(
        default=True, help_text="WhatsApp: opening a conversation marks the contact's messages read on the phone (blue ticks)")
    history_days = models.PositiveIntegerField(
        default=7, validators=[MaxValueValidator(90)],
        help_text="when the account connects (first time or after an outage), import this many days of the history the gateway holds (0 = none)")
    quiet_alert_minutes = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(7 * 24 * 60)],
        help_text="raise an alert when no webhook has arrived for this many minutes (0 = never)")
    history_imported_at = models.DateTimeField(null=True, blank=True, editable=False)
    # the last webhook refused (bad or missing signature), why, and what to change
    webhook_refused_at = models.DateTimeField(null=True, blank=True, editable=False)
    webhook_refused_reason = models.CharField(max_length=300, blank=True, editable=False)
    # an alert raised for this account (disconnected, logged out, banned, silent) and not yet cleared
    alert = models.CharField(max_length=300, blank=True, editable=False)
    alert_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_send_at = models.DateTimeField(null=True, blank=True, editable=False)
    drain_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    # provider state
    credentials = EncryptedJSONField(blank=True, default=dict)
    config = models.JSONField(default=dict, blank=True, help_text="non-secret backend settings")
    # verifies the backend's webhooks (the account is found by the id in the URL, never by this)
    webhook_secret = EncryptedTextField(default=_new_secret, editable=False)
    # The account's own resource on a shared gateway; never taken from client input.
    gateway_resource = models.CharField(max_length=64, default=new_gateway_resource, editable=False)
    # Set (before the call) when WhatSnap first asks the gateway to create that resource: a
    # resource found existing is adopted only if WhatSnap asked to create it for this account.
    gateway_claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    qr_payload = models.TextField(blank=True)
    qr_expires_at = models.DateTimeField(null=True, blank=True)
    pairing_code = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(default=dj_tz.now)
    # Deleting an account archives it: its contacts, conversations and messages stay.
    archived_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["location", "slug"],
                condition=models.Q(archived_at__isnull=True),
                name="uniq_account_slug_per_location",
            ),
            # one gateway session belongs to one account, across every location
            models.UniqueConstraint(fields=["gateway_resource"], name="uniq_account_gateway_resource"),
        ]

    SEND_FAILING = "Sending failed: "  # last_error prefix of an error status set by failing sends

    @property
    def accepts_replies(self) -> bool:
        """Replies can be queued: connected, or in error only because sends are failing right
        now (the session is fine; queued messages are retried with backoff)."""
        if self.archived_at:
            return False
        return self.status == self.Status.CONNECTED or (
            self.status == self.Status.ERROR and self.last_error.startswith(self.SEND_FAILING))

    def clean(self):
        """What every way of saving settings must respect (the settings page, the admin, the API)."""
        errors = {}
        try:
            parse_hours(self.business_hours)
        except (ValueError, TypeError) as exc:
            errors["business_hours"] = f"Business hours: {exc}"
        if self.default_assignee_id and not Membership.objects.filter(user_id=self.default_assignee_id, location_id=self.location_id).exists():
            errors["default_assignee"] = "The default assignee must be a member of this account's location."
        if self.default_team_id and self.default_team.location_id != self.location_id:
            errors["default_team"] = "The default team must belong to this account's location."
        if errors:
            raise ValidationError(errors)

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def is_sandbox(self) -> bool:
        """Simulated inside WhatSnap (the sandbox backend): no outside service is contacted."""
        try:
            return get_provider(self.backend).simulated
        except LookupError:
            return False

    @property
    def webhook_kind(self) -> str:
        """The path segment of this account's webhook URL."""
        return "sandbox" if self.is_sandbox else self.kind

    def webhook_urls(self) -> dict[str, str]:
        """Where this account's backend posts messages (`inbound`) and delivery statuses (`status`)."""
        base = settings.PUBLIC_BASE_URL
        kwargs = {"kind": self.webhook_kind, "account_id": self.pk}
        return {"inbound": base + reverse("webhook", kwargs=kwargs), "status": base + reverse("webhook-status", kwargs=kwargs)}

    @property
    def tag_name(self) -> str:
        return f"whatsnap-account-{self.slug}"

    @property
    def platform(self) -> str:
        return self.kind


class AccountEvent(models.Model):
    """History of an account's status changes."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=dj_tz.now)
    from_status = models.CharField(max_length=20)
    to_status = models.CharField(max_length=20)
    reason = models.CharField(max_length=300, blank=True)
    # a person asked for it (Disconnect on the page, the API, the admin), not the backend
    requested = models.BooleanField(default=False)

    class Meta:
        ordering = ["-at", "-id"]


class AccountSettingsChange(models.Model):
    """Audit of settings changes: who, when, what (old -> new per field)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="settings_changes")
    at = models.DateTimeField(default=dj_tz.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    changes = models.JSONField()

    class Meta:
        ordering = ["-at", "-id"]


def invitation_token_hash(token: str) -> str:
    """SHA-256 of an invitation token (32 random bytes: a fast hash is enough, as for API keys)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Invitation(models.Model):
    """A person asked to join a location. Nobody becomes a member of a location without
    accepting: the link (its token is kept only as a hash) is passed on by the admin."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(blank=True)
    username = models.CharField(max_length=150, blank=True, help_text="only this login (or a new one of this name) can accept")
    role = models.CharField(max_length=10, choices=Membership.Role.choices, default=Membership.Role.AGENT)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=dj_tz.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(email="", username=""), name="invitation_addressed"),
        ]

    def __str__(self):
        return f"{self.username or self.email} → {self.location} ({self.role})"

    @property
    def addressee(self) -> str:
        return self.username or self.email

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > dj_tz.now()
