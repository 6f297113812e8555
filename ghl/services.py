"""GHL outbox writers. Called inside the transaction of the local change; the rows are
drained by the GHL sync tasks. A location that has not installed the GHL app gets none."""
from ghl.models import OutboxItem


def outbox_enqueue(*, location, operation: str, contact=None, payload: dict) -> OutboxItem | None:
    if not location.ghl_location_id:
        return None
    return OutboxItem.objects.create(location=location, contact=contact, operation=operation, payload=payload)
