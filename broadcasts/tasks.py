"""The broadcasts' minute sweep (registered in BroadcastsConfig.ready). The tasks themselves
live with the work they do: services.broadcast_start_due, feeder.feed_broadcast."""
from django.utils import timezone

from broadcasts.feeder import broadcast_feed
from broadcasts.models import Broadcast
from broadcasts.services import broadcast_start_due


def broadcasts_sweep() -> int:
    """Start scheduled broadcasts whose time has come (their one-off schedule was lost or the
    worker was down) and feed every running one (a lost top-up, a new local day)."""
    now = timezone.now()
    due = list(Broadcast.objects.filter(status=Broadcast.Status.SCHEDULED, scheduled_at__lte=now).values_list("pk", flat=True))
    started = sum(1 for pk in due if broadcast_start_due(pk))
    running = list(Broadcast.objects.filter(status=Broadcast.Status.RUNNING).values_list("pk", flat=True))
    return started + sum(broadcast_feed(broadcast_id=pk) for pk in running)
