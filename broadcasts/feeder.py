"""The feeder: hands a running broadcast's recipients to their accounts' send queues a few at a
time (BROADCAST_QUEUE_WINDOW per account), so a reply an agent types meanwhile waits behind at
most that many, and the account's own pace (conversations/pacing.py) decides when each leaves.

It runs when one of its messages leaves the queue (message.status_changed), when it starts or
resumes, and from the minute sweep as a safety net. One feeder per broadcast at a time (the
broadcast row is locked), and each recipient is claimed with a conditional update (pending ->
queued), so nobody is sent twice whatever the number of workers.

Before topping up it checks, in this order: the broadcast still runs; the failure rate of its
last sends (pauses it, resume by hand); each account is connected (pauses it, resumes when the
account reconnects); each account's cap for today (broadcasts/caps.py: waits for the next local
day, not an error). When nobody is waiting or queued any more it is completed."""
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from accounts.models import Account
from broadcasts.caps import clock, left_today, next_day_start
from broadcasts.models import Broadcast, BroadcastRecipient
from broadcasts.states import broadcast_complete, broadcast_pause
from conversations.merge_fields import MergeContext, merge_fields_render
from conversations.models import Conversation
from conversations.sending import message_send
from whatsnap.errors import ApplicationError
from whatsnap.tasks import enqueue, run_now_or_at

logger = logging.getLogger(__name__)

S = Broadcast.Status
R = BroadcastRecipient.Status
SENT_OR_FAILED = (R.SENT, R.DELIVERED, R.READ, R.FAILED)


def feed_broadcast(broadcast_id: int) -> int:
    """The task (queued on commit, from the sweep, at the next local day)."""
    return broadcast_feed(broadcast_id=broadcast_id)


def feed_on_commit(broadcast_id: int) -> None:
    transaction.on_commit(lambda: enqueue(feed_broadcast, broadcast_id))


def failure_rate_too_high(broadcast: Broadcast) -> str:
    """The reason to pause when the failure rate of its last sends crosses the threshold."""
    sample = settings.BROADCAST_FAILURE_SAMPLE
    # the newest handed over, by index; those still in a queue are not counted
    handed = broadcast.recipients.filter(queued_at__isnull=False)
    if broadcast.failures_since:
        handed = handed.filter(queued_at__gte=broadcast.failures_since)
    newest = (handed.order_by("-queued_at")
              .values_list("status", flat=True)[:sample + settings.BROADCAST_QUEUE_WINDOW * max(len(broadcast.account_ids), 1)])
    last = [status for status in newest if status in SENT_OR_FAILED][:sample]
    if sample <= 0 or len(last) < sample:
        return ""
    failed = sum(1 for status in last if status == R.FAILED)
    if failed / len(last) >= settings.BROADCAST_FAILURE_RATE:
        return (f"{failed} of its last {len(last)} messages failed (the limit is {settings.BROADCAST_FAILURE_RATE:.0%}): "
                "paused to protect the numbers. Look at the failed recipients, then resume.")
    return ""


@transaction.atomic
def broadcast_feed(*, broadcast_id: int, check_failures: bool = True) -> int:
    """Top up each account's window; returns how many messages it queued. check_failures:
    look at the failure rate first (after a failed send, from the sweep; not after a success)."""
    broadcast = Broadcast.objects.select_for_update(of=("self",)).select_related("created_by").filter(pk=broadcast_id).first()
    if broadcast is None or broadcast.status != S.RUNNING:
        return 0
    reason = failure_rate_too_high(broadcast) if check_failures else ""
    if reason:
        broadcast_pause(broadcast=broadcast, kind=Broadcast.PauseKind.FAILURES, reason=reason)
        return 0
    pending = broadcast.recipients.filter(status=R.PENDING)
    account_ids = broadcast.account_ids or pending.order_by().values_list("account_id", flat=True).distinct()
    waiting_ids = [pk for pk in account_ids if pk and pending.filter(account_id=pk).exists()]
    in_flight = dict(broadcast.recipients.filter(status=R.QUEUED).order_by().values_list("account_id").annotate(n=Count("id")))
    if not waiting_ids:
        if not in_flight:
            broadcast_complete(broadcast=broadcast)
        return 0
    queued, resume_at = 0, None
    for account in Account.objects.filter(pk__in=waiting_ids).select_related("location").order_by("pk"):
        if not account.accepts_replies:
            broadcast_pause(broadcast=broadcast, kind=Broadcast.PauseKind.ACCOUNT, account=account,
                            reason=f"The account {account.name} is not connected ({account.get_status_display()}); "
                                   "it goes on by itself when it reconnects.")
            return queued
        room = settings.BROADCAST_QUEUE_WINDOW - in_flight.get(account.pk, 0)
        if room <= 0:
            continue
        left = left_today(account)
        if left <= 0:
            resume_at = min(filter(None, [resume_at, next_day_start(account)]))
            continue
        next_ones = pending.filter(account=account).select_related("contact").order_by("id")
        for recipient in next_ones[:min(room, left)]:
            queued += _hand_over(broadcast, recipient, account)
    _note_waiting(broadcast, resume_at)
    return queued


def _note_waiting(broadcast: Broadcast, resume_at) -> None:
    """An account reached today's cap: the page says until when; a stored schedule feeds it
    then (the sweep would too)."""
    if resume_at != broadcast.waiting_until:
        Broadcast.objects.filter(pk=broadcast.pk).update(waiting_until=resume_at)
        broadcast.waiting_until = resume_at
    if resume_at is not None:
        run_now_or_at(feed_broadcast, broadcast.pk, name=f"broadcast-feed-{broadcast.pk}", at=resume_at)


def _hand_over(broadcast: Broadcast, recipient: BroadcastRecipient, account: Account) -> int:
    """Claim one recipient (pending -> queued) and queue its message; 1 if queued."""
    now = clock()
    claimed = BroadcastRecipient.objects.filter(pk=recipient.pk, status=R.PENDING).update(
        status=R.QUEUED, queued_at=now, updated_at=now)
    if not claimed:
        return 0
    contact = recipient.contact
    text = merge_fields_render(broadcast.text, MergeContext(contact=contact, account=account, agent=broadcast.created_by))
    conversation = (Conversation.objects.filter(contact=contact, account=account).first()
                    or Conversation(location=account.location, contact=contact))
    try:
        with transaction.atomic():
            message = message_send(conversation=conversation, text=text, author=broadcast.created_by, account=account)
    except ApplicationError as exc:  # e.g. opted out since it started: not sent, not counted
        BroadcastRecipient.objects.filter(pk=recipient.pk).update(status=R.SKIPPED, reason=exc.message[:300], queued_at=None,
                                                                  updated_at=timezone.now())
        return 0
    BroadcastRecipient.objects.filter(pk=recipient.pk).update(message=message)
    return 1
