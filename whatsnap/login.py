"""Logging in: password, then (for users with two-factor) a code — both steps throttled.

One view serves /login/ and /admin/login/, so the admin has the same lockout and code step.
django-axes counts failures per username + client address (settings AXES_*); a wrong code
counts as a failed login too, and django-otp's own per-device throttling slows guessing of
codes further. The session becomes the user's only after the last step."""
import ipaddress
import time

from axes.backends import AxesStandaloneBackend
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_lockout_response
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.signals import user_login_failed
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login

from whatsnap import two_factor

PENDING_KEY = "login_pending"


class LockoutBackend(AxesStandaloneBackend):
    """Axes' lockout check, skipped when authenticate() is called without a request: that
    is never a login over HTTP (the shell, the test client's login()), and axes would raise."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_ip(request) -> str | None:
    """The address failures are counted against. Each of the TRUSTED_PROXY_COUNT proxies
    appends the address it saw to X-Forwarded-For, so the client is that many entries from
    the right; entries further left were written by the client itself and are ignored."""
    remote = request.META.get("REMOTE_ADDR") or None
    count = settings.TRUSTED_PROXY_COUNT
    if not count:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < count:
        return remote  # did not come through every proxy
    try:
        return str(ipaddress.ip_address(hops[-count]))
    except ValueError:
        return remote


class LoginView(auth_views.LoginView):
    """The password step. A user with a confirmed two-factor device is not logged in yet:
    the session only remembers who typed the right password, for the code step."""

    template_name = "registration/login.html"

    def form_valid(self, form):
        user = form.get_user()
        if not two_factor.has_device(user):
            return super().form_valid(form)
        self.request.session[PENDING_KEY] = {
            "user": user.pk, "backend": user.backend, "next": self.get_success_url(), "at": time.time()}
        return redirect("login-code")


def _pending_user(request):
    """The user who passed the password step in this session lately, or None."""
    pending = request.session.get(PENDING_KEY)
    if not pending or time.time() - pending["at"] > settings.LOGIN_CODE_STEP_SECONDS:
        return None
    return get_user_model().objects.filter(pk=pending["user"], is_active=True).first()


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def login_code(request):
    """The code step: a 6-digit code from the authenticator app, or a recovery code."""
    user = _pending_user(request)
    if user is None:
        request.session.pop(PENDING_KEY, None)
        return redirect("login")
    if request.method != "POST":
        return render(request, "registration/login_code.html", {})
    credentials = {settings.AXES_USERNAME_FORM_FIELD: user.get_username()}
    if not AxesProxyHandler.is_allowed(request, credentials):
        return get_lockout_response(request, None, credentials)
    device, error = two_factor.check_code(user, request.POST.get("code", ""))
    if device is None:
        # counts towards the same lockout as a wrong password
        user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        return render(request, "registration/login_code.html", {"error": error}, status=400)
    return _finish_login(request, user, device)


def _finish_login(request, user, device):
    pending = request.session.pop(PENDING_KEY)
    auth_login(request, user, backend=pending["backend"])
    otp_login(request, device)
    return redirect(pending["next"])
