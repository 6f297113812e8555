"""The inbox's scheduled replies: schedule from the composer, then the list above it (live),
edit in place and cancel. Agents change their own; admins any (conversations.scheduling)."""
from datetime import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import Account
from accounts.tenancy import get_for_location, location_required
from conversations.composer import business_hours_hint, is_admin, scheduled_context
from conversations.merge_fields import MergeContext, merge_fields_render
from conversations.models import Conversation, ScheduledMessage
from conversations.scheduling import (
    can_change, scheduled_message_cancel, scheduled_message_create, scheduled_message_update, zone_for)
from conversations.views import _thread_context
from whatsnap.errors import ApplicationError


def _conversation(request, pk):
    return get_for_location(Conversation.objects.select_related("contact", "account", "assignee"), request.location, pk=pk)


def _scheduled(request, pk) -> ScheduledMessage:
    return get_for_location(ScheduledMessage.objects.select_related("conversation__contact", "conversation__account", "account",
                                                                    "created_by"),
                            request.location, pk=pk)


def _send_at(request):
    """The form's date-time (a datetime-local field), read in the person's zone."""
    raw = request.POST.get("send_at", "").strip()
    if not raw:
        return None
    try:
        naive = datetime.fromisoformat(raw)
    except ValueError:
        raise ApplicationError("Give a date and time like 2026-12-24 09:30.", field="send_at") from None
    if timezone.is_aware(naive):
        return naive
    return timezone.make_aware(naive, zone_for(location=request.location, membership=request.membership))


def _when(request) -> dict:
    if request.POST.get("when") == "hours":
        return {"send_at": None, "at_business_hours": True}
    return {"send_at": _send_at(request), "at_business_hours": False}


@require_POST
@location_required
def conversation_schedule(request, pk):
    """The composer's Schedule: the reply is stored to leave later; the composer comes back
    empty with it listed above (or with the error in place and the text kept)."""
    conversation = _conversation(request, pk)
    text = request.POST.get("text", "")
    error = field = None
    try:
        if request.POST.get("mode") == "note":
            raise ApplicationError("Private notes are saved at once; only replies can be scheduled.", field="mode")
        account = None
        if request.POST.get("account"):
            account = get_for_location(Account.objects.all(), request.location, pk=request.POST["account"])
        scheduled_message_create(conversation=conversation, text=text, account=account, created_by=request.user, **_when(request))
    except ApplicationError as exc:
        error, field = exc.message, exc.field
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("conversation", pk=pk)
    # the error is shown in the open Schedule popover (next to the time when it is about it)
    ctx = _thread_context(request, conversation, draft=text if error else "")
    ctx.update(schedule_open=bool(error), schedule_form=request.POST if error else None, schedule_error=error,
               schedule_error_field=field)
    return render(request, "conversations/_thread_and_composer.html", ctx)


def _list(request, conversation, **extra):
    ctx = {"conversation": conversation, "business_hours": business_hours_hint(conversation.account),
           **scheduled_context(request, conversation), **extra}
    return render(request, "conversations/_scheduled.html", ctx)


@location_required
def conversation_scheduled(request, pk):
    """The scheduled replies above the composer (it refreshes itself live)."""
    return _list(request, _conversation(request, pk))


def _changeable(request, pk) -> ScheduledMessage:
    scheduled = _scheduled(request, pk)
    if not can_change(scheduled, user=request.user, is_admin=is_admin(request)):
        raise PermissionDenied("Only its author or an admin can change a scheduled message.")
    return scheduled


@location_required
def scheduled_edit(request, pk):
    """GET: the row becomes a form; POST: saved (a failed one is scheduled again)."""
    scheduled = _changeable(request, pk)
    conversation = scheduled.conversation
    if request.method != "POST":  # opens as it was chosen: a time, or the next business hours
        return _list(request, conversation, editing=scheduled.pk, edit_when="hours" if scheduled.at_business_hours else "at")
    try:
        scheduled_message_update(scheduled=scheduled, text=request.POST.get("text", ""), **_when(request))
    except ApplicationError as exc:
        if not request.htmx:
            messages.error(request, exc.message)
            return redirect("conversation", pk=conversation.pk)
        return _list(request, conversation, editing=scheduled.pk, edit_error=exc.message, edit_form=request.POST,
                     edit_when=request.POST.get("when", "at"))
    return _list(request, conversation) if request.htmx else redirect("conversation", pk=conversation.pk)


@require_POST
@location_required
def scheduled_cancel(request, pk):
    """Cancelled (or a failed one dismissed); its text, as the contact would have read it, goes
    back to the sender: the composer takes it when empty (composer.js), else it is shown."""
    scheduled = _changeable(request, pk)
    error = cancelled_text = None
    try:
        scheduled_message_cancel(scheduled=scheduled)
        cancelled_text = merge_fields_render(scheduled.text, MergeContext(
            contact=scheduled.conversation.contact, account=scheduled.account, agent=scheduled.created_by))
    except ApplicationError as exc:
        error = exc.message
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.info(request, f"Scheduled reply cancelled. Its text: {cancelled_text}")
        return redirect("conversation", pk=scheduled.conversation_id)
    return _list(request, scheduled.conversation, list_error=error, cancelled_text=cancelled_text)
