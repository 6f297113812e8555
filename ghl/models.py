from django.db import models
from django.utils import timezone


class OutboxItem(models.Model):
    """One operation to replay against GoHighLevel, written in the same transaction as the
    local change it mirrors, so a GHL outage delays work but never loses it."""

    class Operation(models.TextChoices):
        CONTACT_UPSERT = "contact_upsert", "Contact upsert (with tags)"
        INBOUND_MESSAGE = "inbound_message", "Inbound message"
        OUTBOUND_MESSAGE = "outbound_message", "Outbound message log"
        MESSAGE_STATUS = "message_status", "Message status"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="ghl_outbox")
    contact = models.ForeignKey("contacts.Contact", null=True, blank=True, on_delete=models.CASCADE)
    operation = models.CharField(max_length=30, choices=Operation.choices)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
