"""Broadcasts (issue 18): one message to a segment of contacts, sent through the accounts' paced
queues a few at a time (broadcasts/feeder.py), with a daily cap and a warm-up per account."""
from django.conf import settings
from django.db import models
from django.utils import timezone


class Broadcast(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Sending"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    class Match(models.TextChoices):
        ANY = "any", "Contacts with any of these tags"
        ALL = "all", "Contacts with all of these tags"

    class PauseKind(models.TextChoices):
        NONE = "", "—"
        PERSON = "person", "Paused by a person"
        ACCOUNT = "account", "An account disconnected (resumes when it reconnects)"
        FAILURES = "failures", "Too many sends failed (resume by hand)"

    EDITABLE = (Status.DRAFT, Status.SCHEDULED)
    FINISHED = (Status.COMPLETED, Status.CANCELLED)

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="broadcasts")
    name = models.CharField(max_length=120)
    text = models.TextField(help_text="merge fields such as {{first_name|there}} are filled in per contact")
    # null: each contact's own account (its account tag, else the account it last wrote to)
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    match = models.CharField(max_length=3, choices=Match.choices, default=Match.ANY)
    tag_ids = models.JSONField(default=list, help_text="ids of the location's tags the segment is made of")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    pause_kind = models.CharField(max_length=10, choices=PauseKind.choices, blank=True, default="")
    pause_reason = models.CharField(max_length=300, blank=True)
    # the account whose disconnection paused it: its reconnection resumes it
    paused_for_account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    scheduled_at = models.DateTimeField(null=True, blank=True)
    at_business_hours = models.BooleanField(default=False, help_text="start at the account's next business hours")
    # the daily cap of every account it uses is reached: it goes on at this time (not an error)
    waiting_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    live_published_at = models.DateTimeField(null=True, blank=True, editable=False)
    # the failure rate that pauses it counts sends handed over since then (its start, or the
    # last resume: a person who resumes it gives it a fresh window)
    failures_since = models.DateTimeField(null=True, blank=True, editable=False)
    # the accounts its recipients leave through (set when it starts): the feeder visits these
    account_ids = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "scheduled_at"], name="broadcast_due")]

    def __str__(self):
        return self.name

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class BroadcastRecipient(models.Model):
    """One contact of a broadcast, snapshotted when it starts. Its status follows its message's
    (sending counts as queued); skipped ones say why."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        READ = "read", "Read"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="recipients")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=300, blank=True)
    message = models.OneToOneField("conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # when it was handed to its account's queue: the daily cap counts these per local day
    queued_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["broadcast", "contact"], name="uniq_broadcast_contact")]
        indexes = [
            # the feeder's "next pending of this account" and every count by status
            models.Index(fields=["broadcast", "status", "account", "id"], name="recipient_feed"),
            # the failure rate of its last sends
            models.Index(fields=["broadcast", "queued_at"], name="recipient_last_queued"),
            models.Index(fields=["account", "queued_at"], name="recipient_account_day"),
        ]
