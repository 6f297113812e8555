"""The moves of a broadcast's status that both the services and the feeder make, each a
conditional update (two workers never both pause or complete it), each told as
`broadcast.status_changed` (live pages, outgoing webhooks)."""
from django.utils import timezone

from broadcasts.models import Broadcast
from broadcasts.selectors import recipient_counts
from whatsnap import events

S = Broadcast.Status


def broadcast_status_told(broadcast: Broadcast, previous: str, reason: str = "") -> None:
    events.record("broadcast.status_changed", location_id=broadcast.location_id, broadcast=broadcast,
                  status=broadcast.status, previous=previous, reason=reason, counts=recipient_counts(broadcast))


def broadcast_move(broadcast: Broadcast, *, from_statuses, to: str, reason: str = "", **fields) -> bool:
    """Move it from one of `from_statuses` to `to` (with `fields`) if it is still there."""
    fields = {"status": to, "updated_at": timezone.now(), **fields}
    moved = Broadcast.objects.filter(pk=broadcast.pk, status__in=list(from_statuses)).update(**fields)
    if not moved:
        return False
    previous = broadcast.status
    for name, value in fields.items():
        setattr(broadcast, name, value)
    broadcast_status_told(broadcast, previous, reason)
    return True


def broadcast_pause(*, broadcast: Broadcast, kind: str, reason: str, account=None) -> bool:
    """running -> paused. kind: person, account (resumes when `account` reconnects) or failures."""
    return broadcast_move(broadcast, from_statuses=[S.RUNNING], to=S.PAUSED, reason=reason, pause_kind=kind,
                          pause_reason=reason[:300], paused_for_account=account, waiting_until=None)


def broadcast_complete(*, broadcast: Broadcast) -> bool:
    return broadcast_move(broadcast, from_statuses=[S.RUNNING], to=S.COMPLETED, finished_at=timezone.now(), waiting_until=None)
