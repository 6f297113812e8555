"""Outgoing webhooks: a location's subscriptions, their deliveries and every attempt. (The REST
API's idempotency keys, which lived here, are whatsnap.models.IdempotencyKey now.)"""
import secrets
import uuid

from django.db import models
from django.utils import timezone

from whatsnap.crypto import decrypt, encrypt


class Event(models.TextChoices):
    MESSAGE_RECEIVED = "message.received", "Message received"
    MESSAGE_STATUS = "message.status", "Message status changed"
    CONTACT_CREATED = "contact.created", "Contact created"
    CONVERSATION_ASSIGNED = "conversation.assigned", "Conversation assigned"
    ACCOUNT_STATUS = "account.status", "Account alert raised or cleared"
    BROADCAST_STATUS = "broadcast.status", "Broadcast scheduled, started, paused, resumed, completed or cancelled"


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookSubscription(models.Model):
    """A URL of an external system that wants some of a location's events, signed with a
    secret of its own (stored encrypted)."""

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="webhook_subscriptions")
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, help_text="event names, e.g. [\"message.received\"]")
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    secret_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.url} ({', '.join(self.events)})"

    def clean(self):
        from django.core.exceptions import ValidationError

        if not isinstance(self.events, list) or not self.events or any(e not in Event.values for e in self.events):
            raise ValidationError({"events": f"A list of event names from: {', '.join(Event.values)}."})
        if not self.url.startswith(("https://", "http://")):
            raise ValidationError({"url": "The URL must start with https:// (or http://)."})

    @property
    def secret(self) -> str:
        return decrypt(self.secret_encrypted)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_encrypted = encrypt(value)


class WebhookDelivery(models.Model):
    """One event for one subscription: written in the transaction of the change it reports,
    posted by a task after commit, retried with exponential backoff."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed (gave up)"

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="+")
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40, choices=Event.choices)
    event_id = models.UUIDField(default=uuid.uuid4, db_index=True, help_text="the same for every subscription and replay")
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    replay_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays")
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="hook_delivery_due")]

    def __str__(self):
        return f"{self.event} #{self.pk} → {self.subscription.url}"


class WebhookAttempt(models.Model):
    """One POST of a delivery: what the receiver answered (or why it could not)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]

