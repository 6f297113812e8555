"""/settings/: the location's own settings — my preferences (every member); the location's
name and time zone, its members and invitations, and its REST API keys (admins)."""
import json
import time

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import services
from accounts.invitations import invitations_pending
from accounts.models import ApiToken, Invitation, Membership, validate_timezone
from accounts.tenancy import admin_required, get_for_location, location_required
from accounts.two_factor import two_factor_user_ids
from whatsnap import crypto
from whatsnap.errors import ApplicationError
from whatsnap.two_factor import has_device


def _context(request, **extra) -> dict:
    location = request.location
    context = {"location": location, "membership": request.membership, "roles": Membership.Role.choices, "errors": {}, "values": {}}
    if request.membership.role == Membership.Role.ADMIN:
        context["members"] = Membership.objects.filter(location=location).select_related("user").order_by("user__username")
        context["tokens"] = ApiToken.objects.filter(location=location).select_related("user").order_by("-created_at")
        context["invitations"] = invitations_pending(location)
        context["two_factor_ids"] = two_factor_user_ids(location)
    context["two_factor_on"] = has_device(request.user)
    context.update(extra)
    return context


# A new API key or invitation link is shown once, on the page the creating POST redirects to
# (so a reload shows the page, not a second key). It waits in the session for that one request.
SHOW_ONCE = "settings-show-once"


SHOW_ONCE_SECONDS = 60


def show_once(request, **secret) -> None:
    """Kept encrypted (the session is a database row) and for a minute at most."""
    request.session[SHOW_ONCE] = {"until": time.time() + SHOW_ONCE_SECONDS, "secret": crypto.encrypt(json.dumps(secret))}


def _shown_once(request) -> dict:
    slot = request.session.pop(SHOW_ONCE, None) or {}
    if not slot or slot.get("until", 0) < time.time():
        return {}
    secret = json.loads(crypto.decrypt(slot["secret"]))
    if "key" in secret:
        token = ApiToken.objects.filter(location=request.location, pk=secret.get("token")).first()
        return {"new_token": token, "new_key": secret["key"]} if token else {}
    if "url" in secret:
        invitation = Invitation.objects.filter(location=request.location, pk=secret.get("invitation")).first()
        return {"new_invitation": {"invitation": invitation, "url": secret["url"], "emailed": secret.get("emailed")}} if invitation else {}
    return {}


@location_required
def settings_page(request):
    response = render(request, "accounts/location_settings.html", _context(request, **_shown_once(request)))
    response["Cache-Control"] = "no-store"  # it may carry a key shown once
    return response


def _failed(request, exc: ApplicationError, form: str):
    """Re-render the page with the error next to the field of the form that was sent, and what
    was typed back in that form only (another form must not offer it, e.g. to invite)."""
    context = _context(request, errors={f"{form}_{exc.field or 'all'}": exc.message}, values={form: request.POST})
    return render(request, "accounts/location_settings.html", context, status=400)


@require_POST
@location_required
def my_preferences(request):
    zone = request.POST.get("timezone", "").strip()
    try:
        validate_timezone(zone)
    except ValidationError as exc:
        return _failed(request, ApplicationError(exc.messages[0], field="timezone"), "me")
    Membership.objects.filter(pk=request.membership.pk).update(timezone=zone)
    messages.success(request, "Your time zone is saved: times are shown in " + (zone or f"the location's ({request.location.timezone})") + ".")
    return redirect("settings")


def _checkbox(request, name: str) -> bool | None:
    """A checkbox of the form sent (unticked: absent); None when the form did not show it."""
    return name in request.POST if f"{name}_shown" in request.POST else None


@require_POST
@admin_required
def location_details(request):
    try:
        services.location_update(location=request.location, name=request.POST.get("name", ""), timezone_name=request.POST.get("timezone", "").strip(),
                                 country=request.POST.get("country", ""), agents_see_all=_checkbox(request, "agents_see_all"))
    except ApplicationError as exc:
        return _failed(request, exc, "location")
    messages.success(request, "Location saved.")
    return redirect("settings")


@require_POST
@admin_required
def member_add(request):
    try:
        membership = services.member_add(location=request.location, username=request.POST.get("username", ""),
                                         email=request.POST.get("email", ""), password=request.POST.get("password", ""),
                                         role=request.POST.get("role", Membership.Role.AGENT))
    except ApplicationError as exc:
        return _failed(request, exc, "add")
    messages.success(request, f"{membership.user.get_username()} added as {membership.get_role_display().lower()}.")
    return redirect("settings")


@require_POST
@admin_required
def member_change(request, pk: int):
    membership = get_for_location(Membership.objects.select_related("user"), request.location, pk=pk)
    try:
        if request.POST.get("action") == "remove":
            services.member_remove(membership=membership)
            messages.success(request, f"{membership.user.get_username()} removed; their open conversations are unassigned.")
        else:
            try:
                capacity = int(request.POST.get("capacity", membership.capacity))
            except ValueError:
                raise ApplicationError("Capacity is a whole number.", field="capacity") from None
            services.member_update(membership=membership, role=request.POST.get("role", membership.role), capacity=capacity)
            messages.success(request, f"{membership.user.get_username()} saved.")
    except ApplicationError as exc:
        return _failed(request, exc, f"member{pk}")
    return redirect("settings")


@require_POST
@admin_required
def token_create(request):
    user = None
    if request.POST.get("user"):
        user = get_user_model().objects.filter(pk=request.POST["user"], memberships__location=request.location).first()
        if user is None:
            return _failed(request, ApplicationError("Pick a member of this location.", field="user"), "token")
    token, key = services.api_token_create(location=request.location, name=request.POST.get("name", ""), user=user)
    show_once(request, token=token.pk, key=key)  # only a hash is kept: this is the one showing
    return redirect("settings")


@require_POST
@admin_required
def token_revoke(request, pk: int):
    token = get_for_location(ApiToken.objects.all(), request.location, pk=pk)
    token.delete()
    messages.success(request, f"API key “{token.name}” revoked: it no longer works.")
    return redirect("settings")
