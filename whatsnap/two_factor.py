"""Two-factor checks shared by the login, the pages, the admin and the live websocket.

A user "has two-factor" when they have a confirmed TOTP device (django-otp); their recovery
codes are a django-otp static device beside it. A session is verified when the login's code
step (or turning two-factor on in it) recorded the device in it (django_otp.login)."""
import math

from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

WRONG_CODE = "That code is not right."


def has_device(user) -> bool:
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).exists()


def _device_for_code(user, code: str):
    """Digits are an authenticator code; anything else can only be a recovery code."""
    model = TOTPDevice if code.isdigit() and len(code) in (6, 8) else StaticDevice
    return model.objects.select_for_update().filter(user_id=user.pk, confirmed=True).first()


def throttle_message(device) -> str:
    """'' when the device may verify a code now; otherwise how long to wait (django-otp's
    throttle doubles the wait after each wrong code)."""
    allowed, info = device.verify_is_allowed()
    if allowed:
        return ""
    until = (info or {}).get("locked_until")
    seconds = max(1, math.ceil((until - timezone.now()).total_seconds())) if until else 1
    return f"Too many wrong codes: wait {seconds} s and try again."


def check_code(user, code: str):
    """(device, '') when the code is right — a recovery code is used up — else (None, why)."""
    code = "".join((code or "").split()).lower()  # codes are read aloud and typed with spaces
    with transaction.atomic():
        device = _device_for_code(user, code) if code else None
        if device is None:
            return None, WRONG_CODE
        waiting = throttle_message(device)
        if waiting:
            return None, waiting
        if device.verify_token(code):
            return device, ""
    return None, WRONG_CODE


def session_is_verified(session, user) -> bool:
    """django-otp's middleware check, for places without it (the websocket)."""
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    return device is not None and device.user_id == user.pk and device.confirmed


def blocked_reason(user, *, verified: bool, location) -> str:
    """'code': the user has two-factor but this session never gave a code (it was logged in
    before two-factor was turned on); 'setup': their location requires two-factor and they
    have none yet; '' when nothing is missing."""
    if verified:
        return ""
    if has_device(user):
        return "code"
    if location is not None and location.require_two_factor:
        return "setup"
    return ""


# Paths a session without its second factor may still use: no session pages at all (API,
# webhooks, probes, static files), the login itself, and what setting up needs.
UNGUARDED = ("/static/", "/api/", "/webhooks/", "/ghl/webhooks/", "/healthz", "/livez", "/login/", "/logout/")
SETUP_ALLOWED = ("/settings/two-factor/", "/location/switch/", "/invitations/")


class TwoFactorMiddleware:
    """Pages need the second factor: a stale session of a two-factor user is logged out, and
    a member of a location that requires two-factor is sent to set it up first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if not user.is_authenticated or request.path.startswith(UNGUARDED):
            return self.get_response(request)
        reason = blocked_reason(user, verified=user.is_verified(), location=request.location)
        if reason == "code":
            logout(request)
            return _go(request, redirect_to_login(request.get_full_path()).url)
        if reason == "setup" and not request.path.startswith(SETUP_ALLOWED):
            return _go(request, reverse("two-factor"))
        request.two_factor_setup_pending = reason == "setup"  # the page shows no menu that would bounce
        return self.get_response(request)


def _go(request, url: str):
    """A redirect that also works for HTMX requests (which would swap the target page in)."""
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return redirect(url)
