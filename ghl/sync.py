"""The GHL outbox drainer: replays outbox rows against GHL in id order per contact, within the
location's rate limit, one drainer per location at a time (a lease on the connection row).

What happens on trouble:
- GHL rate-limits us (429) or is down (5xx, timeout): the whole location pauses (GHL is
  per-location limited and an outage affects every call), the row stays pending and the
  drain is scheduled for when the pause ends; backoff grows with jitter up to MAX_BACKOFF.
- GHL rejects one call (other 4xx): that row is failed with the response kept for the sync
  log; the rest go on. Staff retry it (or all failed) from the sync page or the admin.
- The refresh token is refused: the connection needs re-authorisation; rows wait.
Nothing is lost: a row only leaves `pending` as done or failed, with the reason.

What each operation does against GHL is in contact_sync.py, message_sync.py, message_notes.py,
merges.py and outbound.py (a message sent from GHL). The drain's task (drain_location) lives
here, next to the drainer that queues it again."""
import logging
import random
import time

from django.db.models import Q
from django.utils import timezone

from ghl.client import GhlClient, GhlRateLimited, GhlReauthorize, GhlRejected, GhlUnavailable
from ghl.contact_sync import ContactNotSynced, op_contact_upsert
from ghl.merges import op_contact_retire
from ghl.message_notes import op_message_note
from ghl.message_sync import op_inbound_message, op_message_status, op_outbound_message
from ghl.models import GhlConnection, OutboxItem
from ghl.outbound import op_provider_outbound
from whatsnap.tasks import run_now_or_at

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60
BATCH = 200
MAX_BACKOFF = 300.0
STATUS_403_TRIES = 6  # GHL answers 403 to a status update for a few seconds after its webhook
clock = timezone.now  # the drainer's clock: leases, pauses, backoff (tests move time)


def backoff_seconds(attempts: int) -> float:
    base = min(MAX_BACKOFF, 2.0 ** min(attempts, 12))
    return base * random.uniform(0.75, 1.25)


# --- the drain task ---------------------------------------------------------------------------
def drain_location(location_id: int) -> int:
    """django-q2 task: one drain of a location's outbox."""
    return location_drain(location_id=location_id)


def enqueue_location_drain(location_id: int, at=None) -> None:
    """Drain now, or at `at` (when GHL asked us to wait)."""
    run_now_or_at(drain_location, location_id, name=f"ghl-drain-{location_id}", at=at)


# --- lease ----------------------------------------------------------------------------------
def _take_lease(location_id: int) -> GhlConnection | None:
    now = clock()
    taken = (
        GhlConnection.objects.filter(location_id=location_id, status=GhlConnection.Status.CONNECTED)
        .filter(Q(drain_lease_until__isnull=True) | Q(drain_lease_until__lt=now))
        .filter(Q(paused_until__isnull=True) | Q(paused_until__lte=now))
        .update(drain_lease_until=now + timezone.timedelta(seconds=LEASE_SECONDS))
    )
    return GhlConnection.objects.select_related("location").get(location_id=location_id) if taken else None


def _release_lease(connection: GhlConnection) -> None:
    GhlConnection.objects.filter(pk=connection.pk).update(drain_lease_until=None)


def due_items(location_id: int):
    """Pending rows that may run now: due, and not behind a waiting row of the same contact."""
    now = clock()
    waiting = OutboxItem.objects.filter(
        location_id=location_id, status=OutboxItem.Status.PENDING, next_attempt_at__gt=now, contact__isnull=False
    ).values("contact_id")
    return (
        OutboxItem.objects.filter(location_id=location_id, status=OutboxItem.Status.PENDING, next_attempt_at__lte=now)
        .exclude(contact_id__in=waiting)
        .order_by("id")
    )


def location_drain(*, location_id: int, budget_seconds: float = 25.0, sleep=time.sleep) -> int:
    """Replay what is due for one location; returns how many rows were completed.

    The budget (25 s) + one rate-limit wait (<= 15 s) + one call (<= GHL_TIMEOUT_SECONDS)
    stays under the task timeout (60 s), so a drainer is not killed in the middle of a call."""
    connection = _take_lease(location_id)
    if connection is None:
        return 0
    client = GhlClient(connection, sleep=sleep)
    started, completed, resume_at = time.monotonic(), 0, None
    renewed = started
    try:
        while time.monotonic() - started < budget_seconds:
            batch = list(due_items(location_id)[:BATCH])
            if not batch:
                break
            blocked: set[int] = set()
            for item in batch:
                if time.monotonic() - started >= budget_seconds:
                    break
                if item.contact_id in blocked:
                    continue
                outcome = _run(client, item)
                if outcome == "done" or outcome == "failed":
                    completed += 1
                elif outcome == "retry":
                    blocked.add(item.contact_id)
                else:  # pause: the whole location waits
                    resume_at = outcome
                    break
                if time.monotonic() - renewed > LEASE_SECONDS / 4:
                    renewed = time.monotonic()
                    GhlConnection.objects.filter(pk=connection.pk).update(drain_lease_until=clock() + timezone.timedelta(seconds=LEASE_SECONDS))
            if resume_at is not None:
                break
    except GhlReauthorize:
        logger.warning("GHL sync for location %s stopped: re-authorisation needed", location_id)
        return completed
    finally:
        _release_lease(connection)
    if resume_at is not None:
        enqueue_location_drain(location_id, at=resume_at)
    else:
        nxt = OutboxItem.objects.filter(location_id=location_id, status=OutboxItem.Status.PENDING).order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
        if nxt is not None:
            enqueue_location_drain(location_id, at=None if nxt <= clock() else nxt)
    return completed


def _run(client: GhlClient, item: OutboxItem):
    """Run one row. Returns "done", "failed", "retry" (this row later), or a datetime (the
    whole location waits until then)."""
    record: dict = {}
    try:
        result = HANDLERS[item.operation](client, item, record)
    except GhlRateLimited as exc:
        until = clock() + timezone.timedelta(seconds=max(exc.wait_seconds, 0.05))
        _save(item, record, error=str(exc), status_code=exc.status)
        _pause(client.connection, until, str(exc))
        return until
    except GhlUnavailable as exc:
        attempts = item.attempts + 1
        until = clock() + timezone.timedelta(seconds=backoff_seconds(attempts))
        _save(item, record, error=str(exc), status_code=exc.status, attempts=attempts, next_attempt_at=until)
        _pause(client.connection, until, str(exc))
        _note_error(client.connection, str(exc))
        logger.warning("GHL unavailable for location %s (%s); retry at %s", item.location_id, exc, until.isoformat())
        return until
    except GhlReauthorize as exc:
        _save(item, record, error=str(exc), status_code=exc.status)
        _note_error(client.connection, str(exc))
        raise
    except GhlRejected as exc:
        attempts = item.attempts + 1
        if exc.status == 403 and item.operation == OutboxItem.Operation.MESSAGE_STATUS and attempts < STATUS_403_TRIES:
            _save(item, record, error=str(exc), status_code=exc.status, attempts=attempts,
                  next_attempt_at=clock() + timezone.timedelta(seconds=backoff_seconds(attempts)))
            return "retry"
        _save(item, record, error=str(exc), status_code=exc.status, attempts=attempts, status=OutboxItem.Status.FAILED)
        _note_error(client.connection, str(exc))
        logger.warning("GHL rejected outbox row %s (%s): %s", item.pk, item.operation, exc)
        return "failed"
    except ContactNotSynced as exc:
        _save(item, record, error=str(exc), attempts=item.attempts + 1, status=OutboxItem.Status.FAILED)
        return "failed"
    _save(item, record, error="", status=OutboxItem.Status.DONE, attempts=item.attempts + 1, result=result, status_code=(record.get("response") or {}).get("status"))
    now = time.monotonic()
    if now - getattr(client, "success_noted", -60.0) > 1.0:  # at most a write a second
        client.success_noted = now
        GhlConnection.objects.filter(pk=client.connection.pk).update(last_success_at=clock())
    return "done"


def _save(item: OutboxItem, record: dict, *, error: str, status_code=None, attempts=None, next_attempt_at=None, status=None, result=None) -> None:
    fields = {"last_error": error[:2000], "updated_at": clock()}
    if record:
        fields["request"] = record.get("request", {})
        fields["response"] = record.get("response", {})
    if status_code is not None:
        fields["last_status_code"] = status_code
    if attempts is not None:
        fields["attempts"] = attempts
    if next_attempt_at is not None:
        fields["next_attempt_at"] = next_attempt_at
    if status is not None:
        fields["status"] = status
        if status == OutboxItem.Status.DONE:
            fields["done_at"] = clock()
    if result is not None:
        fields["result"] = result[:200]
    OutboxItem.objects.filter(pk=item.pk).update(**fields)


def _pause(connection: GhlConnection, until, reason: str) -> None:
    GhlConnection.objects.filter(pk=connection.pk).update(paused_until=until, pause_reason=reason[:200])


def _note_error(connection: GhlConnection, error: str) -> None:
    GhlConnection.objects.filter(pk=connection.pk).update(last_error=error[:2000], last_error_at=clock())


# what each outbox operation does against GHL
HANDLERS = {
    OutboxItem.Operation.CONTACT_UPSERT: op_contact_upsert,
    OutboxItem.Operation.INBOUND_MESSAGE: op_inbound_message,
    OutboxItem.Operation.OUTBOUND_MESSAGE: op_outbound_message,
    OutboxItem.Operation.MESSAGE_STATUS: op_message_status,
    OutboxItem.Operation.MESSAGE_NOTE: op_message_note,
    OutboxItem.Operation.CONTACT_RETIRE: op_contact_retire,
    OutboxItem.Operation.PROVIDER_OUTBOUND: op_provider_outbound,
}
