from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from whatsnap.crypto import EncryptedJSONField


class GhlConnection(models.Model):
    """A location's installation of the WhatSnap GHL app: tokens (encrypted), the sync
    drainer's lease and the rate-limit state shared by every worker."""

    class Status(models.TextChoices):
        CONNECTED = "connected", "Connected"
        REAUTHORIZE = "reauthorize", "Needs re-authorisation"
        UNINSTALLED = "uninstalled", "Uninstalled"

    class Mode(models.TextChoices):
        SMS = "sms", "Default SMS provider (replaces LC Phone)"
        CUSTOM = "custom", "Custom conversation provider"

    location = models.OneToOneField("accounts.Location", on_delete=models.CASCADE, related_name="ghl")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CONNECTED)
    provider_mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.SMS)
    company_id = models.CharField(max_length=64, blank=True)
    # set when the Location token comes from an agency's Company token (no refresh token of
    # its own: a new one is asked of the company when it expires)
    agency = models.ForeignKey("GhlCompany", null=True, blank=True, on_delete=models.SET_NULL, related_name="connections")
    # the GHL location of the last install; kept through an uninstall, so a reinstall into
    # another GHL location knows the stored GHL ids belong to the old one
    installed_ghl_location_id = models.CharField(max_length=64, blank=True)
    scope = models.TextField(blank=True)
    # access_token, refresh_token
    secrets = EncryptedJSONField(blank=True, default=dict)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    # an admin pressed Disconnect in WhatSnap: an install started in GHL makes a new location
    # instead of bringing this one back (the tenant chose to leave that sub-account)
    released = models.BooleanField(default=False)
    installed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    installed_at = models.DateTimeField(default=timezone.now)
    uninstalled_at = models.DateTimeField(null=True, blank=True)
    # drain bookkeeping
    drain_lease_until = models.DateTimeField(null=True, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True, help_text="GHL rate-limited us or is down: wait")
    pause_reason = models.CharField(max_length=200, blank=True)
    rate_log = models.JSONField(default=list, blank=True, help_text="epoch seconds of recent requests")
    daily_date = models.DateField(null=True, blank=True)
    daily_count = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # what a GHL send goes out through when the contact has no account tag and the sending
    # GHL user chose no account (ghl/send_choice.py); set on the GoHighLevel page
    default_sms_account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                            help_text="GHL sends through the SMS provider without an account tag")
    default_whatsapp_account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                                 help_text="GHL sends through the WhatsApp provider without an account tag")

    def __str__(self):
        return f"GHL for {self.location}"

    def clean(self):
        for field in ("default_sms_account", "default_whatsapp_account"):
            account = getattr(self, field)
            if account is not None and account.location_id != self.location_id:
                raise ValidationError({field: "The account must belong to this location."})

    @property
    def active(self) -> bool:
        return self.status == self.Status.CONNECTED


class GhlCompany(models.Model):
    """An agency (GHL company) that installed the app at company level (an agency or bulk
    install): its Company token (encrypted) obtains a Location token for each sub-account the
    app is installed in (POST /oauth/locationToken), so the agency installs once for many."""

    class Status(models.TextChoices):
        CONNECTED = "connected", "Connected"
        REAUTHORIZE = "reauthorize", "Needs re-authorisation"
        UNINSTALLED = "uninstalled", "Uninstalled"

    company_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CONNECTED)
    scope = models.TextField(blank=True)
    # access_token, refresh_token
    secrets = EncryptedJSONField(blank=True, default=dict)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    installed_at = models.DateTimeField(default=timezone.now)
    uninstalled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "GHL agency"
        verbose_name_plural = "GHL agencies"

    def __str__(self):
        return self.name or self.company_id


class GhlInstall(models.Model):
    """One sub-account to connect for an agency install (or an INSTALL webhook): its Location
    token is asked for and the WhatSnap location connected or made. Kept until done, so GHL
    being down delays an install but never drops it (the minute sweep retries)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    company = models.ForeignKey(GhlCompany, on_delete=models.CASCADE, related_name="installs")
    ghl_location_id = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    location = models.ForeignKey("accounts.Location", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    provisioned = models.BooleanField(default=False, help_text="a new WhatSnap location was made for it")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company", "ghl_location_id"], name="uniq_ghl_install")]

    def __str__(self):
        return f"{self.ghl_location_id} ({self.status})"


class OutboxItem(models.Model):
    """One operation to replay against GoHighLevel, written in the same transaction as the
    local change it mirrors, so a GHL outage delays work but never loses it. Drained in id
    order per contact (ghl/sync.py)."""

    class Operation(models.TextChoices):
        CONTACT_UPSERT = "contact_upsert", "Contact upsert (name, tags, assignee)"
        INBOUND_MESSAGE = "inbound_message", "Inbound message"
        OUTBOUND_MESSAGE = "outbound_message", "Outbound message log"
        MESSAGE_STATUS = "message_status", "Message status"
        MESSAGE_NOTE = "message_note", "Reactions / edit / deletion note"
        CONTACT_RETIRE = "contact_retire", "Merged-away GHL contact marked"
        PROVIDER_OUTBOUND = "provider_outbound", "Send from GHL (contact read, account chosen)"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="ghl_outbox")
    # SET_NULL: a deleted contact's message rows still have their message to post
    contact = models.ForeignKey("contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL)
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    operation = models.CharField(max_length=30, choices=Operation.choices)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    request = models.JSONField(default=dict, blank=True, help_text="last request (method, path, body)")
    response = models.JSONField(default=dict, blank=True, help_text="last response (status, body)")
    result = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    done_at = models.DateTimeField(null=True, blank=True)
    # Set just before a message is posted, cleared when GHL answers. Still set on the next
    # attempt means the last post went out and no answer was read (a timeout, or the worker
    # died): GHL may hold the message, so it is looked up (direction, text, provider, dateAdded:
    # message_sync.find_posted_message) before posting again.
    unconfirmed_post_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["location", "status", "id"], name="ghl_outbox_drain")]

    def __str__(self):
        return f"{self.get_operation_display()} #{self.pk} ({self.status})"


class ContactSync(models.Model):
    """What GHL was last told about a contact, so unchanged contacts cost no API call and
    tag changes are sent as additions/removals (GHL's upsert would replace all tags)."""

    contact = models.OneToOneField("contacts.Contact", on_delete=models.CASCADE, related_name="ghl_sync")
    fingerprint = models.CharField(max_length=64, blank=True)
    tags = models.JSONField(default=list, blank=True)
    fields = models.JSONField(default=dict, blank=True, help_text="name and assignedTo as last sent")
    synced_at = models.DateTimeField(default=timezone.now)


class GhlMessageLink(models.Model):
    """Our message <-> GHL's message id, both directions: inbound messages we posted, and
    replies typed in GHL (the unique key makes a redelivered webhook a no-op)."""

    class Origin(models.TextChoices):
        WHATSNAP = "whatsnap", "Posted by WhatSnap"
        GHL = "ghl", "Typed in GHL"

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="+")
    message = models.OneToOneField("conversations.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="ghl_link")
    ghl_message_id = models.CharField(max_length=64)
    ghl_conversation_id = models.CharField(max_length=64, blank=True)
    origin = models.CharField(max_length=10, choices=Origin.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["location", "ghl_message_id"], name="uniq_ghl_message")]


class GhlUser(models.Model):
    """A GHL user of the location, matched to our user by e-mail (for assignedTo, and for
    the author of replies typed in GHL)."""

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="ghl_users")
    ghl_user_id = models.CharField(max_length=64)
    email = models.EmailField(blank=True)
    name = models.CharField(max_length=150, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="ghl_users")
    # the account this user's sends from GHL go through when the contact has no account tag
    sends_through = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["location", "ghl_user_id"], name="uniq_ghl_user")]

    def clean(self):
        if self.sends_through is not None and self.sends_through.location_id != self.location_id:
            raise ValidationError({"sends_through": "The account must belong to this location."})


class WebhookReceipt(models.Model):
    """GHL webhook ids seen recently: a replayed webhook is refused."""

    webhook_id = models.CharField(max_length=100, unique=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)


class GhlMessageNote(models.Model):
    """The GHL contact note that tells what happened to a message after GHL got it (reactions,
    an edit, a deletion for everyone): GHL's API has no way to change a message it holds, so
    one note per message is kept current (created, updated, removed when nothing is left)."""

    message = models.OneToOneField("conversations.Message", on_delete=models.CASCADE, related_name="ghl_note")
    ghl_contact_id = models.CharField(max_length=64)
    ghl_note_id = models.CharField(max_length=64)
    fingerprint = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)


class GhlRetiredContact(models.Model):
    """A GHL contact that stands for a contact merged away in WhatSnap (GHL's API cannot merge
    contacts): marked `whatsnap-merged` with a note, and a reply typed on it in GHL still
    reaches the person, through the contact it was merged into."""

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="+")
    ghl_contact_id = models.CharField(max_length=64)
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="ghl_retired")
    retired_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["location", "ghl_contact_id"], name="uniq_ghl_retired_contact")]
