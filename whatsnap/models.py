from django.db import models
from django.utils import timezone


class LiveEvent(models.Model):
    """Embedded mode only: a live event crossing from a worker process to the web process,
    which relays it to its in-memory channel layer (see whatsnap/live.py)."""

    group = models.CharField(max_length=100)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
