"""The conversations app's minute sweep, and the task names earlier versions queued.

Tasks are queued by the module that owns the work (receiving.process_inbound_event,
pacing.drain_account) through whatsnap.tasks. Tasks and one-off schedules stored by an earlier
version name `conversations.tasks.process_inbound_event` / `conversations.tasks.drain_account`:
those names stay importable here so a deploy never strands queued work."""
from django.conf import settings
from django.utils import timezone

from conversations.actions import conversations_wake_snoozed
from conversations.ingest import inbound_events_drain
from conversations.models import InboundEvent, Message
from conversations.pacing import drain_account, messages_fail_stuck
from conversations.receiving import process_inbound_event
from conversations.rollups import rollup_refresh_all
from conversations.unfiled import unfiled_prune
from whatsnap.tasks import enqueue

__all__ = ["drain_account", "process_inbound_event", "sweep_pending", "inbound_event_requeue", "unfiled_prune",
           "inbound_events_drain"]


def inbound_event_requeue(event_id: int) -> None:
    """Queue a stored event for filing again (the sweep, the admin's "re-run")."""
    enqueue(process_inbound_event, event_id)


def sweep_pending() -> int:
    """Every minute (registered with whatsnap.tasks): re-queue inbound events no claim loop took
    or whose filing failed (worker was down, a status overtook its message) and sends stuck in
    queued; fail sends whose worker died mid-send (never re-sent by themselves); reopen snoozed
    conversations that are due; refresh the report rollups."""
    cutoff = timezone.now() - timezone.timedelta(seconds=settings.RETRY_PENDING_AFTER_SECONDS)
    waiting = list(
        InboundEvent.objects.filter(status=InboundEvent.Status.PENDING, received_at__lt=cutoff)
        .order_by("id")
        .values_list("id", "attempts")[:5000]
    )
    ids = [pk for pk, _ in waiting]
    for pk, attempts in waiting:
        if attempts:  # tried and failed, or waiting for what it refers to: retried one by one
            inbound_event_requeue(pk)
    if any(not attempts for _, attempts in waiting):
        # never tried: no claim loop took them (no worker running, or its loop stopped); one
        # task files them in batches instead of one task per event
        enqueue(inbound_events_drain)
    queued = list(
        Message.objects.filter(status=Message.Status.QUEUED, provider_message_id="", created_at__lt=cutoff)
        .order_by().values_list("account_id", flat=True).distinct()[:1000]
    )
    for account_id in queued:
        enqueue(drain_account, account_id)
    return len(ids) + len(queued) + messages_fail_stuck() + conversations_wake_snoozed() + rollup_refresh_all()
