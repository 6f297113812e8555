"""Writes of broadcasts: compose (validated: tags and account of the location, known merge
fields, a time in the future), schedule, start (the recipients are snapshotted then), pause,
resume, cancel. Sending is broadcasts/feeder.py."""
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.hours import next_open
from accounts.models import Account
from broadcasts import audience
from broadcasts.feeder import feed_on_commit
from broadcasts.models import Broadcast, BroadcastRecipient
from broadcasts.states import broadcast_move, broadcast_pause, broadcast_status_told
from contacts.models import Tag
from conversations.merge_fields import merge_fields_check
from conversations.sending import messages_withdraw
from whatsnap.errors import ApplicationError
from whatsnap.tasks import cancel_fallback, run_now_or_at

S = Broadcast.Status
R = BroadcastRecipient.Status
P = Broadcast.PauseKind
CANCELLED_REASON = "The broadcast was cancelled before this was sent."
EDITABLE_FIELDS = ("name", "text", "account", "match", "tag_ids", "scheduled_at", "at_business_hours")


def _schedule_name(broadcast_id: int) -> str:
    return f"broadcast-start-{broadcast_id}"


def next_business_time(account: Account, after: datetime) -> datetime:
    """The first moment at or after `after` inside the account's business hours (accounts.hours.next_open);
    `after` itself when it is inside them or the account has none."""
    opens = next_open(account, after)
    if opens is None:
        raise ApplicationError(f"The account {account.name} has no business hours in the coming week.", field="scheduled_at")
    return opens


def _clean(broadcast: Broadcast) -> None:
    broadcast.name = (broadcast.name or "").strip()
    if not broadcast.name:
        raise ApplicationError("Give the broadcast a name.", field="name")
    broadcast.text = (broadcast.text or "").strip()
    if not broadcast.text:
        raise ApplicationError("Write the message.", field="text")
    if len(broadcast.text) > 4000:
        raise ApplicationError("The message is longer than 4000 characters.", field="text")
    merge_fields_check(broadcast.text, field="text")
    if broadcast.match not in Broadcast.Match.values:
        raise ApplicationError("Choose 'any' or 'all' of the tags.", field="match")
    tag_ids = list(dict.fromkeys(broadcast.tag_ids or []))
    if not tag_ids:
        raise ApplicationError("Choose at least one tag: the broadcast goes to the contacts carrying them.", field="tag_ids")
    known = set(Tag.objects.filter(location_id=broadcast.location_id, pk__in=tag_ids).values_list("pk", flat=True))
    if known != set(tag_ids):
        raise ApplicationError("Choose tags of this location.", field="tag_ids")
    broadcast.tag_ids = tag_ids
    account = broadcast.account
    if account is not None and (account.location_id != broadcast.location_id or account.archived_at):
        raise ApplicationError("Choose an account of this location.", field="account")
    if broadcast.at_business_hours:
        if account is None:
            raise ApplicationError("'At the next business hours' needs a chosen account: the hours are the account's.",
                                   field="scheduled_at")
        broadcast.scheduled_at = next_business_time(account, max(broadcast.scheduled_at or timezone.now(), timezone.now()))
    elif broadcast.scheduled_at is not None and broadcast.scheduled_at <= timezone.now():
        raise ApplicationError("Choose a time in the future (or send now).", field="scheduled_at")


def _arm_schedule(broadcast: Broadcast) -> None:
    """A stored one-off schedule at its time (the minute sweep starts it too if that is lost)."""
    run_now_or_at(broadcast_start_due, broadcast.pk, name=_schedule_name(broadcast.pk), at=broadcast.scheduled_at)


@transaction.atomic
def broadcast_create(*, location, name: str, text: str, tag_ids: list[int], match: str = Broadcast.Match.ANY,
                     account: Account | None = None, scheduled_at: datetime | None = None, at_business_hours: bool = False,
                     created_by=None) -> Broadcast:
    """A draft, or scheduled when given a time (or 'at the next business hours')."""
    broadcast = Broadcast(location=location, name=name, text=text, tag_ids=list(tag_ids or []), match=match, account=account,
                          scheduled_at=scheduled_at, at_business_hours=at_business_hours, created_by=created_by)
    _clean(broadcast)
    if broadcast.scheduled_at is not None:
        broadcast.status = S.SCHEDULED
    broadcast.save()
    if broadcast.status == S.SCHEDULED:
        _arm_schedule(broadcast)
        broadcast_status_told(broadcast, S.DRAFT)
    return broadcast


@transaction.atomic
def broadcast_update(*, broadcast: Broadcast, **changes) -> Broadcast:
    """Edit a draft or a scheduled broadcast (until it starts). A time makes it scheduled; no
    time makes it a draft again."""
    broadcast = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
    if not broadcast.is_editable:
        raise ApplicationError(f"A broadcast that is {broadcast.get_status_display().lower()} cannot be edited.", code="not_editable")
    for name, value in changes.items():
        if name not in EDITABLE_FIELDS:
            raise ValueError(f"not an editable field: {name}")
        setattr(broadcast, name, value)
    _clean(broadcast)
    previous = broadcast.status
    broadcast.status = S.SCHEDULED if broadcast.scheduled_at else S.DRAFT
    broadcast.save()
    if broadcast.status == S.SCHEDULED:
        _arm_schedule(broadcast)
    else:
        cancel_fallback(_schedule_name(broadcast.pk))
    if previous != broadcast.status:
        broadcast_status_told(broadcast, previous)
    return broadcast


def _snapshot(broadcast: Broadcast) -> int:
    rows = []
    for row in audience.plan(location=broadcast.location, tag_ids=broadcast.tag_ids, match=broadcast.match,
                             account=broadcast.account):
        rows.append(BroadcastRecipient(broadcast=broadcast, contact_id=row.contact_id, account_id=row.account_id,
                                       status=R.SKIPPED if row.reason else R.PENDING, reason=row.reason[:300]))
    BroadcastRecipient.objects.bulk_create(rows, batch_size=2000)
    broadcast.account_ids = sorted({row.account_id for row in rows if row.account_id})
    Broadcast.objects.filter(pk=broadcast.pk).update(account_ids=broadcast.account_ids)
    return len(rows)


@transaction.atomic
def broadcast_start(*, broadcast: Broadcast, by_hand: bool = True) -> Broadcast:
    """Draft or scheduled -> running: the recipients are snapshotted now (the skipped ones with
    their reason) and the feeder starts handing them to the accounts' queues."""
    account = broadcast.account
    if by_hand and account is not None and not account.accepts_replies:
        raise ApplicationError(f"The account {account.name} is not connected ({account.get_status_display()}); "
                               "connect it first.", code="account_unavailable")
    now = timezone.now()
    if not broadcast_move(broadcast, from_statuses=[S.DRAFT, S.SCHEDULED], to=S.RUNNING, started_at=now, failures_since=now):
        raise ApplicationError("This broadcast has started already.", code="not_editable")
    cancel_fallback(_schedule_name(broadcast.pk))
    if not _snapshot(broadcast):
        raise ApplicationError("No contact carries these tags: nobody would get it.", field="tag_ids")
    feed_on_commit(broadcast.pk)
    return broadcast


def broadcast_start_due(broadcast_id: int) -> bool:
    """The task at a scheduled broadcast's time (and the sweep's): start it if it is still due."""
    broadcast = Broadcast.objects.select_related("location", "account").filter(
        pk=broadcast_id, status=S.SCHEDULED, scheduled_at__lte=timezone.now()).first()
    if broadcast is None:
        return False
    try:
        broadcast_start(broadcast=broadcast, by_hand=False)
    except ApplicationError as exc:  # e.g. nobody carries the tags any more: it is cancelled, saying why
        broadcast_cancel(broadcast=broadcast, reason=f"Not started: {exc.message}")
        return False
    return True


@transaction.atomic
def broadcast_pause_by_hand(*, broadcast: Broadcast, actor=None) -> Broadcast:
    who = f" by {actor.get_username()}" if actor is not None else ""
    if not broadcast_pause(broadcast=broadcast, kind=P.PERSON, reason=f"Paused{who}."):
        raise ApplicationError("Only a broadcast that is sending can be paused.", code="not_running")
    return broadcast


@transaction.atomic
def broadcast_resume(*, broadcast: Broadcast) -> Broadcast:
    """paused -> running (by hand, or when the account it waited for reconnects)."""
    if not broadcast_move(broadcast, from_statuses=[S.PAUSED], to=S.RUNNING, pause_kind="", pause_reason="",
                          paused_for_account=None, failures_since=timezone.now()):
        raise ApplicationError("Only a paused broadcast can be resumed.", code="not_paused")
    feed_on_commit(broadcast.pk)
    return broadcast


@transaction.atomic
def broadcast_cancel(*, broadcast: Broadcast, reason: str = "") -> Broadcast:
    """Any broadcast not finished: nothing more leaves. Recipients still waiting are skipped,
    and its messages still queued in an account's queue (at most the window per account) are
    withdrawn (conversations.sending.messages_withdraw: failed as withdrawn, not retryable)
    unless a drainer claimed them first."""
    if not broadcast_move(broadcast, from_statuses=[S.DRAFT, S.SCHEDULED, S.RUNNING, S.PAUSED], to=S.CANCELLED,
                          reason=reason, finished_at=timezone.now(), waiting_until=None, pause_reason=reason[:300]):
        raise ApplicationError("This broadcast is finished already.", code="finished")
    cancel_fallback(_schedule_name(broadcast.pk))
    broadcast.recipients.filter(status=R.PENDING).update(status=R.SKIPPED, reason=CANCELLED_REASON, updated_at=timezone.now())
    messages_withdraw(message_ids=broadcast.recipients.filter(status=R.QUEUED, message__isnull=False).values_list("message_id", flat=True),
                      reason=f"The broadcast “{broadcast.name}” was cancelled before this was sent.")
    return broadcast
