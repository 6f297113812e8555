"""Live progress: a broadcast's page follows the topic `broadcast:<id>`, the list `broadcasts`.
Progress is published at most once a second per broadcast (a conditional update on
live_published_at decides), not once per recipient; status changes always are."""
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from broadcasts.models import Broadcast
from whatsnap.live import publish_on_commit

PROGRESS_EVERY = timedelta(seconds=1)


def topics(broadcast_id: int) -> list[str]:
    return [f"broadcast:{broadcast_id}", "broadcasts"]


def publish_progress(*, broadcast_id: int, location_id: int, force: bool = False) -> bool:
    now = timezone.now()
    if not force:
        due = Q(live_published_at__isnull=True) | Q(live_published_at__lte=now - PROGRESS_EVERY)
        if not Broadcast.objects.filter(due, pk=broadcast_id).update(live_published_at=now):
            return False
    publish_on_commit(location_id=location_id, event="broadcast.progress", topics=topics(broadcast_id),
                      data={"broadcast": broadcast_id})
    return True
