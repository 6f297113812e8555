"""Send pacing: messages leave one account in order, at most `send_per_minute` a minute with
random jitter, however many agents reply at once. (WhatsApp's typing delay is shown by the
gateway itself before it sends: see accounts/providers/evolution.py.)

One drainer per account at a time holds a lease (a conditional update on the account row);
it sends the oldest queued message when the account's next slot has come, books the next
slot, and goes on. The queue is the messages table itself (status queued, in id order), so it
is visible and survives restarts; a lost drainer's lease expires and the sweeper restarts it."""
import logging
import random
import time

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from conversations.models import Message

logger = logging.getLogger(__name__)

MAX_INLINE_WAIT = 5.0  # longer waits hand over to a scheduled drain instead of sleeping
# The longest one backend send may take: BlueBubbles 30 s read + 5 s connect; Evolution
# 15 s + the typing delay (<= 15 s, shown by the gateway before it sends) + 5 s connect.
SEND_ALLOWANCE = 40.0
# Renewed before each send, so it covers one inline wait + one send; a killed drainer's
# lease frees itself within a minute.
LEASE_SECONDS = MAX_INLINE_WAIT + SEND_ALLOWANCE + 10

clock = timezone.now  # tests replace these two
sleep = time.sleep


def interval_seconds(account: Account) -> float:
    base = 60.0 / max(account.send_per_minute, 1)
    jitter = random.uniform(0, account.send_jitter_seconds) if account.send_jitter_seconds else 0.0
    return base + jitter


def queue_of(account: Account):
    """Exactly the rows message_deliver can claim (its conditional update's filter), so the
    drainer never picks a row it would skip."""
    return Message.objects.filter(
        account=account, status=Message.Status.QUEUED, is_note=False,
        direction=Message.Direction.OUTBOUND, provider_message_id="",
    ).order_by("id")


def _take_lease(account_id: int) -> bool:
    now = clock()
    return bool(
        Account.objects.filter(pk=account_id)
        .filter(Q(drain_lease_until__isnull=True) | Q(drain_lease_until__lt=now))
        .update(drain_lease_until=now + timezone.timedelta(seconds=LEASE_SECONDS))
    )


def _release_lease(account_id: int) -> None:
    Account.objects.filter(pk=account_id).update(drain_lease_until=None)


def account_drain(*, account_id: int, budget_seconds: float = 50.0) -> int:
    """Send what is due for one account; returns how many were sent. Re-queues itself when
    work remains (now or at the next slot).

    A send starts only if its wait and the longest send still fit in the budget, and the
    budget stays under the task timeout (60 s): the worker is never killed in the middle of
    a send, which would leave the message `sending` (see services.messages_fail_stuck)."""
    from conversations.services import message_deliver
    from conversations.tasks import enqueue_account_drain

    if not _take_lease(account_id):
        return 0
    started, sent, next_at, more, skipped = time.monotonic(), 0, None, False, set()
    try:
        while True:
            account = Account.objects.get(pk=account_id)
            # a row another worker claimed first is passed over, never picked again in a loop
            message = queue_of(account).exclude(pk__in=skipped).first()
            if message is None:
                break
            wait = (account.next_send_at - clock()).total_seconds() if account.next_send_at else 0.0
            if wait > MAX_INLINE_WAIT:
                next_at = account.next_send_at
                break
            if time.monotonic() - started + max(wait, 0.0) + SEND_ALLOWANCE > budget_seconds:
                more = True  # a fresh task goes on at once
                break
            Account.objects.filter(pk=account_id).update(drain_lease_until=clock() + timezone.timedelta(seconds=LEASE_SECONDS))
            if wait > 0:
                sleep(wait)
            with transaction.atomic():
                Account.objects.filter(pk=account_id).update(
                    next_send_at=clock() + timezone.timedelta(seconds=interval_seconds(account))
                )
            if message_deliver(message_id=message.pk) == "skipped":
                skipped.add(message.pk)
                continue
            sent += 1
    finally:
        _release_lease(account_id)
    if next_at is not None:
        enqueue_account_drain(account_id, at=next_at)
    elif more or queue_of(Account(pk=account_id)).exists():
        enqueue_account_drain(account_id)
    return sent


def queue_eta(account: Account, limit: int = 50) -> list[tuple[Message, object]]:
    """The queued messages of an account with the time each is expected to leave (the pace
    plus the mean jitter and, on WhatsApp, the typing delay)."""
    at = max(account.next_send_at or clock(), clock())
    seconds = 60.0 / max(account.send_per_minute, 1) + account.send_jitter_seconds / 2
    if account.kind == Account.Kind.WHATSAPP:
        seconds += account.typing_delay_seconds
    step = timezone.timedelta(seconds=seconds)
    rows = []
    for message in queue_of(account).select_related("conversation__contact")[:limit]:
        rows.append((message, at))
        at += step
    return rows
