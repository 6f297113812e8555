"""The GoHighLevel page: install, connection, sync health, the sync log and its retries, and
the accounts sends from GHL go through (send_views.py saves them)."""
import hashlib
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import Location
from accounts.tenancy import admin_required, get_for_location, location_required
from ghl import installs, services
from ghl.client import GhlError, GhlRejected
from ghl.models import GhlConnection, GhlInstall, GhlUser, OutboxItem
from ghl.send_views import ghl_sending, sending_context
from ghl.user_sync import users_sync
from whatsnap.errors import ApplicationError
from whatsnap.params import id_param

logger = logging.getLogger(__name__)
PAGE = 50
INSTALLED_KEY = "ghl_installed"  # this browser's last install from GHL: its reload shows it again
__all__ = ["ghl_home", "ghl_action", "ghl_sending", "oauth_start", "oauth_callback"]


@location_required
def ghl_home(request):
    location = request.location
    health = services.sync_health(location)
    items = OutboxItem.objects.filter(location=location).select_related("contact").order_by("-id")
    status = request.GET.get("status", "")
    if status in OutboxItem.Status.values:
        items = items.filter(status=status)
    operation = request.GET.get("operation", "")
    if operation in OutboxItem.Operation.values:
        items = items.filter(operation=operation)
    before = id_param(request.GET.get("before"))
    if before:
        items = items.filter(id__lt=before)
    rows = list(items[: PAGE + 1])
    context = {
        **health,
        "items": rows[:PAGE],
        "older": rows[PAGE - 1].pk if len(rows) > PAGE else None,
        "status": status,
        "operation": operation,
        "statuses": OutboxItem.Status.choices,
        "operations": OutboxItem.Operation.choices,
        "modes": GhlConnection.Mode.choices,
        "ghl_users": GhlUser.objects.filter(location=location).select_related("user", "sends_through").order_by("name"),
        "webhook_urls": _webhook_urls(request, health["connection"]),
        "provider_id_set": bool(settings.GHL_CONVERSATION_PROVIDER_ID),
        **{k: v for k, v in sending_context(location).items() if k not in ("connection", "ghl_users")},
    }
    return render(request, "ghl/home.html", context)


def _webhook_urls(request, connection):
    return {
        "provider": settings.PUBLIC_BASE_URL + reverse("ghl-provider-webhook"),
        "whatsapp_provider": settings.PUBLIC_BASE_URL + reverse("ghl-whatsapp-provider-webhook"),
        "app": settings.PUBLIC_BASE_URL + reverse("ghl-app-webhook"),
    }


@admin_required
def oauth_start(request):
    try:
        return redirect(installs.install_url(location=request.location, user=request.user))
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("ghl-home")


def oauth_callback(request):
    """GHL's redirect after an install. With our `state`: started from WhatSnap's page by an
    admin (who must be the one logged in). Without: started in GHL's marketplace or by an
    agency — nobody is logged in here, and the page says how to get in (installs.py)."""
    if not request.GET.get("state"):
        return _install_from_ghl(request)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.GET.get("error"):
        messages.error(request, f"GHL did not authorise the app: {request.GET.get('error_description') or request.GET['error']}")
        return redirect("ghl-home")
    try:
        connection = installs.install_complete(code=request.GET.get("code", ""), state=request.GET.get("state", ""), user=request.user)
    except ApplicationError as exc:
        if exc.code == "forbidden":
            return render(request, "ghl/oauth_error.html", {"error": exc.message}, status=403)
        return render(request, "ghl/oauth_error.html", {"error": exc.message}, status=400)
    except GhlRejected as exc:
        return render(request, "ghl/oauth_error.html", {"error": str(exc)}, status=400)
    except GhlError as exc:
        return render(request, "ghl/oauth_error.html", {"error": f"{exc} — try again in a moment."}, status=502)
    request.session["location_id"] = connection.location_id
    messages.success(request, "GoHighLevel is connected: new contacts and messages sync from now on.")
    return redirect("ghl-home")


def _install_from_ghl(request):
    if request.GET.get("error"):
        return _install_error(request, f"GHL did not authorise the app: {request.GET.get('error_description') or request.GET['error']}.", 400)
    code = request.GET.get("code", "")
    seen = request.session.get(INSTALLED_KEY) or {}
    if code and seen.get("code") == _digest(code):
        # the page reloaded: GHL's code works once, so show this browser's install as it stands now
        return _installed_page(request, _rows_again(seen.get("rows") or []))
    try:
        rows = installs.install_from_ghl(code=code)
    except ApplicationError as exc:
        return _install_error(request, exc.message, 400)
    except GhlRejected as exc:
        return _install_error(request, f"{exc}.", 400, title="This install link did not work", hint=(
            "GHL's install link works once. If the install just went through, it stands: open WhatSnap from the sub-account's "
            "left menu in GoHighLevel. Otherwise start the install again from GoHighLevel."))
    except GhlError as exc:
        return _install_error(request, f"{exc}.", 502, hint="Nothing was installed. Start the install again from GoHighLevel in a moment.")
    request.session[INSTALLED_KEY] = {"code": _digest(code), "rows": [
        {"ghl": r.ghl_location_id, "install": r.pk, "location": r.location_id, "provisioned": r.provisioned} for r in rows]}
    return _installed_page(request, rows)


def _install_error(request, error: str, status: int, hint: str = "", title: str = ""):
    return render(request, "ghl/oauth_error.html", {"error": error, "hint": hint or "Start the install again from GoHighLevel.", "title": title},
                  status=status)


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()  # the code itself is a credential: not kept


def _rows_again(saved: list[dict]) -> list[GhlInstall]:
    """The rows of this browser's install, read again (an agency's waiting sub-account may be
    connected by now)."""
    fresh = GhlInstall.objects.select_related("location").in_bulk([r["install"] for r in saved if r.get("install")])
    locations = Location.objects.in_bulk([r["location"] for r in saved if r.get("location") and not r.get("install")])
    rows = []
    for r in saved:
        if r.get("install") in fresh:
            rows.append(fresh[r["install"]])
        elif r.get("location") in locations:
            rows.append(GhlInstall(ghl_location_id=r["ghl"], status=GhlInstall.Status.DONE, location=locations[r["location"]],
                                   provisioned=r.get("provisioned", False)))
    return rows


def _installed_page(request, rows: list[GhlInstall]):
    now = timezone.now()
    for row in rows:
        wait = (row.next_attempt_at - now).total_seconds() if row.next_attempt_at else 0
        row.retry_in = "in under a minute" if wait < 60 else f"in about {round(wait / 60)} minutes"
    counts = {status: sum(row.status == status for row in rows) for status in GhlInstall.Status.values}
    return render(request, "ghl/installed.html", {
        "rows": rows, "done": counts.get("done", 0), "pending": counts.get("pending", 0), "failed": counts.get("failed", 0),
        "app_url": settings.PUBLIC_BASE_URL + reverse("ghl-embed"), "webhook_urls": _webhook_urls(request, None),
    })


@admin_required
@require_POST
def ghl_action(request, action: str):
    location = request.location
    try:
        with transaction.atomic():
            if action == "retry":
                item = get_for_location(OutboxItem.objects.all(), location, pk=request.POST.get("item"))
                services.outbox_retry(item=item)
                messages.success(request, f"Sync operation #{item.pk} queued again.")
            elif action == "retry-failed":
                n = services.outbox_retry_failed(location=location)
                messages.success(request, f"{n} failed operation(s) queued again, in their original order.")
            elif action == "resume":
                services.resume_now(location=location)
                messages.success(request, "Trying GHL again now.")
            elif action == "backfill":
                n = services.contacts_backfill(location=location)
                messages.success(request, f"{n} contact(s) queued for GHL; unchanged ones cost no API call.")
            elif action == "mode":
                mode = request.POST.get("mode")
                if mode not in GhlConnection.Mode.values:
                    raise ApplicationError("Pick a provider mode.")
                GhlConnection.objects.filter(location=location).update(provider_mode=mode)
                messages.success(request, "Provider mode saved.")
            elif action == "disconnect":
                services.disconnect(location=location, actor=request.user)
                messages.success(request, "GHL disconnected. Pending sync operations are kept for a reconnect.")
            elif action == "users":
                connection = GhlConnection.objects.select_related("location").filter(location=location, status=GhlConnection.Status.CONNECTED).first()
                if connection is None:
                    raise ApplicationError("Connect GHL first.")
                n = users_sync(connection)
                messages.success(request, f"{n} GHL user(s) fetched and matched to members by e-mail.")
            else:
                return HttpResponseBadRequest("Unknown action.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    except GhlError as exc:
        messages.error(request, f"GHL: {exc}")
    return redirect("ghl-home")
