"""GHL's background work: a drain kick after a commit that wrote outbox rows, matching GHL
users after an install, and the minute sweep (registered with whatsnap.tasks in
GhlConfig.ready()). The drain task itself lives with the drainer (sync.drain_location), which
queues it again; tasks and one-off schedules stored by an earlier version name
`ghl.tasks.drain_location`, so that name stays importable here."""
import logging

from django.db.models import Q
from django.utils import timezone

from ghl.client import GhlError, refresh_tokens
from ghl.models import GhlConnection, OutboxItem, WebhookReceipt
from ghl.sync import drain_location, enqueue_location_drain
from ghl.user_sync import users_sync

logger = logging.getLogger(__name__)

__all__ = ["drain_location", "enqueue_location_drain", "kick", "sweep", "sync_users"]


def sync_users(location_id: int) -> int:
    """After an install: fetch the location's GHL users and match them to members by e-mail
    (assignedTo and the author of replies typed in GHL use the match)."""
    connection = GhlConnection.objects.select_related("location").filter(location_id=location_id, status=GhlConnection.Status.CONNECTED).first()
    if connection is None:
        return 0
    try:
        return users_sync(connection)
    except GhlError as exc:
        logger.warning("GHL users of location %s not fetched: %s (use 'Match GHL users' later)", location_id, exc)
        return 0


def kick(location_id: int) -> None:
    """After a commit that wrote outbox rows: start a drain. While one runs, the extra task
    finds the lease taken and ends at once; the running drainer sees the new rows, and checks
    again after letting go of the lease, so no row waits for the sweeper."""
    enqueue_location_drain(location_id)


def sweep() -> int:
    """Every minute: restart drains that should be running (a lost worker, a lost task) and
    forget webhook ids older than a day."""
    now = timezone.now()
    expiring = GhlConnection.objects.filter(
        status=GhlConnection.Status.CONNECTED, token_expires_at__lt=now + timezone.timedelta(hours=1)
    ).values_list("pk", "secrets")
    for pk, secrets in expiring:
        try:
            refresh_tokens(pk, stale_token=secrets.get("access_token"))
        except GhlError as exc:
            logger.warning("GHL token refresh for connection %s failed: %s", pk, exc)
    WebhookReceipt.objects.filter(received_at__lt=now - timezone.timedelta(days=1)).delete()
    locations = (
        GhlConnection.objects.filter(status=GhlConnection.Status.CONNECTED)
        .filter(Q(drain_lease_until__isnull=True) | Q(drain_lease_until__lt=now))
        .filter(Q(paused_until__isnull=True) | Q(paused_until__lte=now))
        .values_list("location_id", flat=True)
    )
    started = 0
    for location_id in locations:
        if OutboxItem.objects.filter(location_id=location_id, status=OutboxItem.Status.PENDING, next_attempt_at__lte=now).exists():
            enqueue_location_drain(location_id)
            started += 1
    return started
