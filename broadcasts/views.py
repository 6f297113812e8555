"""Broadcast pages: the list, the composer (with a live count of who it reaches), the progress
page (live), its recipients (paginated, by status) and the CSV of results. Every member sees
them; only admins compose, start, pause, resume or cancel (like Chatwoot's campaigns)."""
import csv

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.tenancy import admin_required, get_for_location, location_required
from broadcasts import audience, caps, selectors, services
from broadcasts.forms import BroadcastForm
from broadcasts.models import Broadcast, BroadcastRecipient
from contacts.models import Tag
from conversations.merge_fields import MergeContext, merge_fields_check, merge_fields_render
from conversations.models import MessageTemplate
from whatsnap.errors import ApplicationError
from whatsnap.params import page_param

R = BroadcastRecipient.Status
PER_PAGE = 50


def _is_admin(request) -> bool:
    return request.membership.role == "admin"


@location_required
def broadcast_list(request):
    rows = selectors.broadcasts_for(request.location).order_by("-created_at", "-id").annotate(
        n_total=Count("recipients"),
        n_sent=Count("recipients", filter=Q(recipients__status__in=[R.SENT, R.DELIVERED, R.READ])),
        n_failed=Count("recipients", filter=Q(recipients__status=R.FAILED)),
        n_skipped=Count("recipients", filter=Q(recipients__status=R.SKIPPED)),
    )
    page = Paginator(rows, PER_PAGE).get_page(page_param(request.GET.get("page")))
    return render(request, "broadcasts/list.html", {"page": page, "is_admin": _is_admin(request)})


def _save(request, form: BroadcastForm, broadcast: Broadcast | None):
    """Create or update from a valid form (and start it when asked); None when a rule refused."""
    try:
        with transaction.atomic():  # "send now" that cannot start leaves no draft behind
            values = form.service_values()
            if broadcast is None:
                broadcast = services.broadcast_create(location=request.location, created_by=request.user, **values)
            else:
                broadcast = services.broadcast_update(broadcast=broadcast, **values)
            if form.cleaned_data["when"] == "now":
                services.broadcast_start(broadcast=broadcast)
    except ApplicationError as exc:
        field = {"tag_ids": "tags"}.get(exc.field, exc.field)
        form.add_error(field if field in form.fields else None, exc.message)
        return None
    return broadcast


@admin_required
def broadcast_edit(request, pk=None):
    broadcast = get_for_location(Broadcast.objects.select_related("location"), request.location, pk=pk) if pk else None
    if broadcast is not None and not broadcast.is_editable:
        messages.error(request, "It has started: it can no longer be edited.")
        return redirect("broadcast-detail", pk=broadcast.pk)
    initial = BroadcastForm.initial_for(broadcast) if broadcast else None
    form = BroadcastForm(request.POST or None, initial=initial, location=request.location)
    confirm_now = None
    if request.method == "POST" and form.is_valid():
        confirm_now = _unconfirmed_send_now(request, form)
    if request.method == "POST" and form.is_valid() and confirm_now is None:
        saved = _save(request, form, broadcast)
        if saved is not None:
            messages.success(request, {"running": "Sending started.", "scheduled": "Scheduled.", "draft": "Draft saved."}.get(
                saved.status, "Saved."))
            return redirect("broadcast-detail", pk=saved.pk)
    templates = MessageTemplate.objects.filter(location=request.location).order_by("name")
    return render(request, "broadcasts/edit.html", {"form": form, "broadcast": broadcast, "templates": templates,
                                                     "confirm_now": confirm_now, "submit_label": _submit_label(form, confirm_now)},
                  status=400 if form.errors else 200)


def _unconfirmed_send_now(request, form: BroadcastForm) -> int | None:
    """"Send now" asks once, with the number of contacts it goes to (the page's script asks
    before submitting; without it the page asks): that number, or None when confirmed or
    not sending now (a segment reaching nobody goes on, to say so)."""
    if form.cleaned_data["when"] != "now" or request.POST.get("confirmed") == "1":
        return None
    data = form.cleaned_data
    try:
        merge_fields_check(data["text"], field="text")
    except ApplicationError:  # the error first (saving says it in place), the question after
        return None
    n = audience.preview(location=request.location, tag_ids=data["tags"], match=data["match"], account=data["account"])["to_send"]
    return n or None


SUBMIT_LABELS = {"draft": "Save draft", "at": "Schedule", "business": "Schedule", "now": "Send now"}


def _submit_label(form: BroadcastForm, confirm_now: int | None) -> str:
    """The button says what it does (the page's script keeps it in step with the When choice)."""
    when = form["when"].value() or "draft"
    if when == "now" and confirm_now:
        return f"Send to {confirm_now} contact{'s' if confirm_now != 1 else ''} now"
    return SUBMIT_LABELS.get(when, "Save")


@require_POST
@admin_required
def broadcast_preview(request):
    """The composer's live count: who it reaches, through which accounts, who is skipped and
    why, and the message as the first recipient reads it."""
    form = BroadcastForm(request.POST, location=request.location)
    form.is_valid()
    tag_ids, account = form.cleaned_data.get("tags") or [], form.cleaned_data.get("account")
    counts = audience.preview(location=request.location, tag_ids=tag_ids, match=form.cleaned_data.get("match") or "any",
                              account=account) if tag_ids else None
    text, sample, text_error = form.cleaned_data.get("text") or "", "", ""
    try:
        merge_fields_check(text, field="text")
    except ApplicationError as exc:  # an unknown merge field: said here, not rendered as nothing
        text_error = exc.message
    if counts and counts["to_send"] and text and not text_error:
        first = audience.first_to_send(location=request.location, tag_ids=tag_ids, match=form.cleaned_data.get("match") or "any",
                                       account=account)
        if first is not None:  # through the account it leaves by (each contact's own: the one chosen for them)
            sample = merge_fields_render(text, MergeContext(contact=first[0], account=first[1], agent=request.user))
    per_account = [(a, n, caps.cap_summary(a)) for a, n in counts["per_account"]] if counts else []
    return render(request, "broadcasts/_preview.html", {"counts": counts, "sample": sample, "account": account,
                                                        "per_account": per_account, "text_error": text_error})


def _detail_context(request, broadcast: Broadcast) -> dict:
    accounts = [broadcast.account] if broadcast.account else list(selectors.accounts_in_use(broadcast))
    counts = selectors.recipient_counts(broadcast)
    return {"broadcast": broadcast, "counts": counts, "is_admin": _is_admin(request), "still_leaving": selectors.still_leaving(counts),
            "skipped_reasons": selectors.skipped_reasons(broadcast),
            "caps": [(account, caps.cap_summary(account)) for account in accounts]}


@location_required
def broadcast_detail(request, pk):
    broadcast = get_for_location(selectors.broadcasts_for(request.location), request.location, pk=pk)
    return render(request, "broadcasts/detail.html", {**_detail_context(request, broadcast), **_recipients_context(request, broadcast),
                                                      "tags": Tag.objects.filter(location=request.location, pk__in=broadcast.tag_ids)})


@location_required
def broadcast_progress(request, pk):
    broadcast = get_for_location(selectors.broadcasts_for(request.location), request.location, pk=pk)
    return render(request, "broadcasts/_progress.html", _detail_context(request, broadcast))


def _recipients_context(request, broadcast: Broadcast) -> dict:
    status = request.GET.get("status", "")
    status = status if status in R.values else ""
    page = Paginator(selectors.recipients_of(broadcast, status=status), PER_PAGE).get_page(page_param(request.GET.get("page")))
    return {"broadcast": broadcast, "page": page, "status": status, "statuses": R.choices}


@location_required
def broadcast_recipients(request, pk):
    broadcast = get_for_location(Broadcast.objects.all(), request.location, pk=pk)
    return render(request, "broadcasts/_recipients.html", _recipients_context(request, broadcast))


ACTIONS = {
    "start": (lambda request, b: services.broadcast_start(broadcast=b), "Sending started."),
    "pause": (lambda request, b: services.broadcast_pause_by_hand(broadcast=b, actor=request.user), "Paused."),
    "resume": (lambda request, b: services.broadcast_resume(broadcast=b), "Resumed."),
    "cancel": (lambda request, b: services.broadcast_cancel(broadcast=b, reason=f"Cancelled by {request.user.get_username()}."),
               "Cancelled: nothing more will be sent."),
}


@require_POST
@admin_required
def broadcast_action(request, pk, action):
    broadcast = get_for_location(Broadcast.objects.select_related("location", "account"), request.location, pk=pk)
    if action not in ACTIONS:
        messages.error(request, "Unknown action.")
        return redirect("broadcast-detail", pk=pk)
    do, done = ACTIONS[action]
    try:
        do(request, broadcast)
        if action == "pause":  # what a pause does not stop, said when it is paused
            done = " ".join(filter(None, [done, selectors.still_leaving(selectors.recipient_counts(broadcast))]))
        messages.success(request, done)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("broadcast-detail", pk=pk)


class _Echo:
    def write(self, value):
        return value


CSV_HEADER = ["contact_id", "name", "phone", "account", "status", "reason", "message_id", "queued_at", "status_changed_at"]


def _csv_rows(broadcast: Broadcast):
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    rows = (BroadcastRecipient.objects.filter(broadcast=broadcast).order_by("id")
            .values_list("contact_id", "contact__name", "contact__phone", "account__name", "status", "reason", "message_id",
                         "queued_at", "message__status_changed_at"))
    for row in rows.iterator(chunk_size=2000):
        yield writer.writerow([_csv_safe(v) for v in row])


def _csv_safe(value):
    """No cell a spreadsheet would run as a formula (a contact's name is the contact's to choose)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not value[1:].replace(" ", "").isdigit():
        return "'" + value
    return value.isoformat() if hasattr(value, "isoformat") else value


@location_required
def broadcast_csv(request, pk):
    broadcast = get_for_location(Broadcast.objects.all(), request.location, pk=pk)
    response = StreamingHttpResponse(_csv_rows(broadcast), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="broadcast-{broadcast.pk}-results.csv"'
    return response
