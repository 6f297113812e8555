"""Which location a request acts for, and the checks that keep tenants apart."""
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.models import Membership
from whatsnap.params import id_param

SESSION_KEY = "location_id"
# A session signed in from inside GHL works in that one location only (ghl/embed_views.py):
# {"user": pk, "location": pk}; other memberships of the user are out of its reach.
PINNED_KEY = "pinned_location"


def pin_session(session, user, location_id: int) -> None:
    session[PINNED_KEY] = {"user": user.pk, "location": location_id}
    session[SESSION_KEY] = location_id


def pinned_location_id(session, user) -> int | None:
    pin = session.get(PINNED_KEY)
    return pin["location"] if isinstance(pin, dict) and pin.get("user") == user.pk else None


def memberships_for_user(user):
    if not user.is_authenticated:
        return Membership.objects.none()
    qs = Membership.objects.filter(user=user).select_related("location").order_by("location__name")
    pinned = getattr(user, "pinned_location_id", None)  # set by the middleware for a pinned session
    return qs.filter(location_id=pinned) if pinned is not None else qs


def membership_for(user, location_id: int | None):
    """The membership of the location chosen in this session; else the one the user used
    last (a login lands where they worked, never in whichever location sorts first)."""
    from django.db.models import F

    qs = memberships_for_user(user)
    if location_id is not None:
        found = qs.filter(location_id=location_id).first()
        if found:
            return found
    return qs.order_by(F("last_used_at").desc(nulls_last=True), "location__name").first()


class CurrentLocationMiddleware:
    """Sets request.location and request.membership from the session (or the membership used
    last). A user without any membership has request.location = None."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.utils import timezone

        request.location = None
        request.membership = None
        if request.user.is_authenticated:
            pinned = pinned_location_id(request.session, request.user)
            if pinned is not None:
                # the switcher, switching and the live socket (which reads SESSION_KEY) stay in it
                request.user.pinned_location_id = pinned
                if request.session.get(SESSION_KEY) != pinned:
                    request.session[SESSION_KEY] = pinned
            membership = membership_for(request.user, request.session.get(SESSION_KEY))
            if membership:
                request.location = membership.location
                request.membership = membership
                # times on pages are shown in the agent's zone (else the location's)
                timezone.activate(membership.timezone or membership.location.timezone or "UTC")
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def location_required(view):
    """Login + a membership; otherwise the login page or a clear 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        from django.contrib.auth.views import redirect_to_login

        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if request.location is None:
            raise PermissionDenied("Your user belongs to no location yet. Ask an admin to add you.")
        return view(request, *args, **kwargs)

    return wrapper


def admin_required(view):
    @wraps(view)
    @location_required
    def wrapper(request, *args, **kwargs):
        if request.membership.role != "admin":
            raise PermissionDenied("Only location admins can do this.")
        return view(request, *args, **kwargs)

    return wrapper


def get_for_location(queryset, location, **lookup):
    """Fetch one object of the current location; another location's object is a 404, and so
    is an id that is no id at all (junk, or past the database's integer range)."""
    for key in ("pk", "id"):
        if key in lookup and id_param(lookup[key]) is None:
            raise Http404
    try:
        return queryset.get(location=location, **lookup)
    except queryset.model.DoesNotExist:
        raise Http404 from None
