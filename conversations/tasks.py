"""django-q2 entry points: thin, they call services."""
import logging

from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from conversations.models import InboundEvent

logger = logging.getLogger(__name__)



def process_inbound_event(event_id: int) -> str:
    from conversations.services import inbound_event_process

    return inbound_event_process(event_id=event_id)


_broker = None


def _shared_broker():
    """One broker (and so one Redis connection pool) per process: a new one per task costs
    a TCP connect on the webhook's ack path."""
    global _broker
    if _broker is None:
        from django_q.brokers import get_broker

        _broker = get_broker()
    return _broker


def _enqueue(func, *args) -> None:
    global _broker
    try:
        async_task(func, *args, group=func.__name__, broker=_shared_broker())
    except Exception:
        _broker = None
        # The row is stored; the sweeper queues it again once the broker is back.
        logger.warning("task broker unavailable; %s%s left for the sweeper", func.__name__, args, exc_info=True)


def enqueue_inbound_event(event_id: int) -> None:
    transaction.on_commit(lambda: _enqueue(process_inbound_event, event_id))


def enqueue_message_delivery(message_id: int) -> None:
    """Outbound messages leave through their account's paced queue (conversations/pacing.py)."""
    from conversations.models import Message

    account_id = Message.objects.filter(pk=message_id).values_list("account_id", flat=True).first()
    if account_id is not None:
        enqueue_account_drain(account_id)


def drain_account(account_id: int) -> int:
    from conversations.pacing import account_drain

    return account_drain(account_id=account_id)


def run_now_or_at(func, arg: int, *, name: str, at=None) -> None:
    """Queue `func(arg)` now, or at `at` as a one-off schedule kept in the database (it survives
    restarts; one per name, so rescheduling moves it instead of piling up)."""
    if at is None:
        _enqueue(func, arg)
        return
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=name,
        defaults={"func": f"{func.__module__}.{func.__name__}", "args": repr((arg,)),
                  "schedule_type": Schedule.ONCE, "next_run": at, "repeats": 1},
    )


def enqueue_account_drain(account_id: int, at=None) -> None:
    """Drain now, or at `at`."""
    run_now_or_at(drain_account, account_id, name=f"drain-account-{account_id}", at=at)


def sweep_pending() -> int:
    """Scheduled every minute: re-queue inbound events whose task never ran or failed (worker
    or broker was down, a status overtook its message) and sends stuck in queued; fail sends
    whose worker died mid-send (never re-sent by themselves); reopen snoozed conversations
    that are due."""
    from conversations.models import Message

    from django.conf import settings

    cutoff = timezone.now() - timezone.timedelta(seconds=settings.RETRY_PENDING_AFTER_SECONDS)
    ids = list(
        InboundEvent.objects.filter(status=InboundEvent.Status.PENDING, received_at__lt=cutoff)
        .order_by("id")
        .values_list("id", flat=True)[:5000]
    )
    for pk in ids:
        _enqueue(process_inbound_event, pk)
    queued = list(
        Message.objects.filter(status=Message.Status.QUEUED, provider_message_id="", created_at__lt=cutoff)
        .order_by().values_list("account_id", flat=True).distinct()[:1000]
    )
    for account_id in queued:
        _enqueue(drain_account, account_id)
    from conversations.inbox import conversations_wake_snoozed
    from conversations.services import messages_fail_stuck

    from conversations.rollups import rollup_refresh_all
    from ghl.tasks import sweep as ghl_sweep

    return len(ids) + len(queued) + messages_fail_stuck() + conversations_wake_snoozed() + ghl_sweep() + rollup_refresh_all()
