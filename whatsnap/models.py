from django.db import models
from django.utils import timezone


class LiveEvent(models.Model):
    """Embedded mode only: a live event crossing from a worker process to the web process,
    which relays it to its in-memory channel layer (see whatsnap/live.py)."""

    group = models.CharField(max_length=100)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)


class IdempotencyKey(models.Model):
    """A POST made with an `Idempotency-Key` header, remembered per API token so that a
    retry of the same request answers the first response instead of acting twice. The row
    is written in the transaction of the action itself (whatsnap/idempotency.py)."""

    token = models.ForeignKey("accounts.ApiToken", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body")
    response_status = models.PositiveIntegerField(default=0)
    response_body = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "hooks_idempotencykey"  # created by the hooks app, where the model lived first
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="uniq_idempotency_key_per_token")]
