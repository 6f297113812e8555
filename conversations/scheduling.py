"""Scheduled replies (issue 18, point 4): a reply stored now that leaves at a chosen moment, or
when the account's business hours next begin.

A scheduled message is a row (ScheduledMessage), so it survives restarts. It leaves through
`scheduled_message_send`, run by a one-off schedule kept in the database at its time
(whatsnap.tasks.run_now_or_at) and, as a safety net, by the minute sweep for any due row the
schedule missed. Both claim the row with a conditional update in the same transaction that queues
the message (conversations.sending.message_send), so it is sent exactly once: a second claimer
finds it no longer pending. It can be edited or cancelled until then. Merge fields are filled in
when it leaves; if it cannot leave (the contact opted out, the account is disconnected) it ends
"failed" with the reason, for the agent to see."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from accounts.hours import next_open, parse_hours
from accounts.models import Membership
from conversations.merge_fields import MergeContext, merge_fields_check, merge_fields_render
from conversations.models import Conversation, ScheduledMessage
from conversations.sending import message_send
from whatsnap import events
from whatsnap.errors import ApplicationError
from whatsnap.tasks import cancel_fallback, enqueue, enqueue_on_commit, run_now_or_at

TEXT_MAX = 4000
FURTHEST = timedelta(days=366)
OPEN = (ScheduledMessage.Status.PENDING, ScheduledMessage.Status.FAILED)  # may still be edited or cancelled


def zone_for(*, location, membership=None) -> ZoneInfo:
    """The zone a person's date-times are read and shown in: their own, else the location's."""
    return ZoneInfo((membership.timezone if membership is not None else "") or location.timezone or "UTC")


def scheduled_for(conversation: Conversation):
    """What is still to leave (and what could not), shown above the composer."""
    return (ScheduledMessage.objects.filter(conversation=conversation, status__in=OPEN)
            .select_related("created_by", "account").order_by("send_at", "id"))


def can_change(scheduled: ScheduledMessage, *, user, is_admin: bool) -> bool:
    """Admins change any; others only their own."""
    return is_admin or (user is not None and user.pk is not None and scheduled.created_by_id == user.pk)


def business_hours_start(account, *, now: datetime | None = None) -> datetime:
    """When 'at the next business hours' sends for this account (now, if it is open)."""
    if not parse_hours(account.business_hours):
        raise ApplicationError(f"The account {account.name} has no business hours set; pick a date and time instead.",
                               field="send_at", code="no_business_hours")
    opens = next_open(account, now or timezone.now())
    if opens is None:
        raise ApplicationError(f"The business hours of {account.name} have no open day; pick a date and time instead.",
                               field="send_at", code="no_business_hours")
    return opens


def _when(*, account, send_at: datetime | None, at_business_hours: bool) -> datetime:
    now = timezone.now()
    if at_business_hours:
        return business_hours_start(account, now=now)
    if send_at is None:
        raise ApplicationError("Pick the date and time it should leave.", field="send_at")
    if timezone.is_naive(send_at):
        raise ApplicationError("Give the time with its time zone.", field="send_at")
    if send_at <= now:
        raise ApplicationError("That time has passed; pick a time in the future (or send it now).", field="send_at")
    if send_at > now + FURTHEST:
        raise ApplicationError("Schedule it at most a year ahead.", field="send_at")
    return send_at


def _text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ApplicationError("Type the message to schedule.", field="text")
    if len(text) > TEXT_MAX:
        raise ApplicationError(f"Keep it to {TEXT_MAX} characters.", field="text")
    merge_fields_check(text, field="text")
    return text


def _schedule_name(pk: int) -> str:
    return f"scheduled-message-{pk}"


def _plan(pk: int, when: datetime) -> None:
    """Its one-off schedule at `when` (moved when rescheduled); due already (business hours
    open now): queued as well once committed, rather than at the scheduler's next look."""
    run_now_or_at(scheduled_message_send, pk, name=_schedule_name(pk), at=when)
    if when <= timezone.now():
        enqueue_on_commit(scheduled_message_send, pk)


@transaction.atomic
def scheduled_message_create(*, conversation: Conversation, text: str, send_at: datetime | None = None,
                             at_business_hours: bool = False, created_by=None, account=None) -> ScheduledMessage:
    """Store a reply to leave later through the conversation's account (or `account`, another of
    the contact's accounts in the same location)."""
    account = account or conversation.account
    if account.location_id != conversation.location_id:
        raise ApplicationError("That account is not in this conversation's location.", field="account")
    text = _text(text)
    if conversation.contact.opted_out:
        raise ApplicationError(f"{conversation.contact.display_name} replied STOP and has opted out; nothing can be scheduled.",
                               code="opted_out")
    when = _when(account=account, send_at=send_at, at_business_hours=at_business_hours)
    scheduled = ScheduledMessage.objects.create(
        location_id=conversation.location_id, conversation=conversation, account=account, text=text, send_at=when,
        at_business_hours=at_business_hours, created_by=created_by)
    _plan(scheduled.pk, when)
    events.record("scheduled_message.created", location_id=conversation.location_id, scheduled=scheduled, conversation=conversation)
    return scheduled


@transaction.atomic
def scheduled_message_update(*, scheduled: ScheduledMessage, text: str | None = None, send_at: datetime | None = None,
                             at_business_hours: bool = False) -> ScheduledMessage:
    """New text and/or time for a message that has not left (a failed one is scheduled again)."""
    text = scheduled.text if text is None else _text(text)
    if send_at is None and not at_business_hours:  # the time stays, and how it was chosen
        when, by_hours = scheduled.send_at, scheduled.at_business_hours
        if when <= timezone.now():
            raise ApplicationError("Its time has passed; pick a new date and time.", field="send_at")
    else:
        when, by_hours = _when(account=scheduled.account, send_at=send_at, at_business_hours=at_business_hours), at_business_hours
    changed = ScheduledMessage.objects.filter(pk=scheduled.pk, status__in=OPEN).update(
        text=text, send_at=when, at_business_hours=by_hours, status=ScheduledMessage.Status.PENDING, error="",
        updated_at=timezone.now())
    if not changed:
        raise _gone(scheduled)
    scheduled.refresh_from_db()
    _plan(scheduled.pk, when)
    events.record("scheduled_message.changed", location_id=scheduled.location_id, scheduled=scheduled,
                  conversation=scheduled.conversation)
    return scheduled


@transaction.atomic
def scheduled_message_cancel(*, scheduled: ScheduledMessage) -> ScheduledMessage:
    changed = ScheduledMessage.objects.filter(pk=scheduled.pk, status__in=OPEN).update(
        status=ScheduledMessage.Status.CANCELLED, updated_at=timezone.now())
    if not changed:
        raise _gone(scheduled)
    cancel_fallback(_schedule_name(scheduled.pk))
    scheduled.refresh_from_db()
    events.record("scheduled_message.cancelled", location_id=scheduled.location_id, scheduled=scheduled,
                  conversation=scheduled.conversation)
    return scheduled


def _gone(scheduled: ScheduledMessage) -> ApplicationError:
    status = ScheduledMessage.objects.filter(pk=scheduled.pk).values_list("status", flat=True).first()
    if status == ScheduledMessage.Status.SENT:
        return ApplicationError("It has left already; it can no longer be changed.", code="already_sent")
    return ApplicationError("It was cancelled.", code="cancelled")


def scheduled_message_send(scheduled_id: int) -> bool:
    """Task: send one due scheduled message, exactly once. True when this call sent it."""
    now = timezone.now()
    try:
        with transaction.atomic():
            claimed = ScheduledMessage.objects.filter(pk=scheduled_id, status=ScheduledMessage.Status.PENDING,
                                                      send_at__lte=now).update(status=ScheduledMessage.Status.SENT, updated_at=now)
            if not claimed:
                return False  # sent, cancelled or moved later meanwhile; or not due yet (the sweep comes back)
            scheduled = ScheduledMessage.objects.select_related(
                "conversation__contact", "conversation__account", "account", "created_by").get(pk=scheduled_id)
            if scheduled.created_by_id and not Membership.objects.filter(
                    user_id=scheduled.created_by_id, location_id=scheduled.location_id).exists():
                raise ApplicationError(AUTHOR_LEFT)  # rolls the claim back; failed below
            conversation = scheduled.conversation
            text = merge_fields_render(scheduled.text, MergeContext(contact=conversation.contact, account=scheduled.account,
                                                                    agent=scheduled.created_by))
            message = message_send(conversation=conversation, text=text, author=scheduled.created_by, account=scheduled.account)
            ScheduledMessage.objects.filter(pk=scheduled_id).update(message=message)
            scheduled.message = message
            events.record("scheduled_message.sent", location_id=scheduled.location_id, scheduled=scheduled,
                          conversation=conversation, message=message)
            cancel_fallback(_schedule_name(scheduled_id))  # when the sweep sent it, its one-off schedule goes too
        return True
    except ApplicationError as exc:
        _fail(scheduled_id, exc.message)
        return False


AUTHOR_LEFT = "Not sent: the person who scheduled it left the location."


def scheduled_messages_of_leaving_member(*, location_id: int, user_id: int) -> int:
    """A person taken out of the location: what they scheduled does not go out in their name
    after they left. Each row fails with the reason (a colleague can schedule it again)."""
    ids = list(ScheduledMessage.objects.filter(location_id=location_id, created_by_id=user_id,
                                               status=ScheduledMessage.Status.PENDING).values_list("pk", flat=True))
    for pk in ids:
        _fail(pk, AUTHOR_LEFT)
    return len(ids)


@transaction.atomic
def _fail(scheduled_id: int, reason: str) -> None:
    failed = ScheduledMessage.objects.filter(pk=scheduled_id, status=ScheduledMessage.Status.PENDING).update(
        status=ScheduledMessage.Status.FAILED, error=reason[:300], updated_at=timezone.now())
    if failed:
        scheduled = ScheduledMessage.objects.select_related("conversation").get(pk=scheduled_id)
        cancel_fallback(_schedule_name(scheduled_id))
        events.record("scheduled_message.failed", location_id=scheduled.location_id, scheduled=scheduled,
                      conversation=scheduled.conversation, error=scheduled.error)


def scheduled_messages_sweep() -> int:
    """Minute sweep (the safety net): queue every due scheduled message whose one-off schedule
    has not sent it (the broker or the scheduler was down, a restart)."""
    due = list(ScheduledMessage.objects.filter(status=ScheduledMessage.Status.PENDING, send_at__lte=timezone.now())
               .order_by("send_at").values_list("pk", flat=True)[:1000])
    for pk in due:
        enqueue(scheduled_message_send, pk)
    return len(due)
