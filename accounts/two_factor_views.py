"""/settings/two-factor/: a member turns two-factor login on (scan, confirm, recovery codes
shown once) or off; /settings/location/two-factor/: an admin makes it required."""
import segno
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from accounts import two_factor
from accounts.location_views import _failed
from accounts.tenancy import admin_required, location_required
from whatsnap.errors import ApplicationError
from whatsnap.two_factor import has_device


def _page(request, status=200, **extra):
    enabled = has_device(request.user)
    pending = None if enabled else two_factor.two_factor_pending_device(request.user)
    context = {"enabled": enabled, "pending": pending,
               "codes_left": two_factor.recovery_codes_left(request.user), **extra}
    if pending is not None:
        context["qr_svg"] = segno.make(pending.config_url, error="m").svg_inline(scale=4, border=2)
        context["secret"] = _base32(pending)
    return render(request, "accounts/two_factor.html", context, status=status)


def _base32(device) -> str:
    """The secret as apps take it when typed in instead of scanned, in groups of four."""
    from base64 import b32encode

    text = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))


@never_cache
@location_required
def two_factor_page(request):
    return _page(request)


@require_POST
@location_required
def two_factor_start(request):
    try:
        two_factor.two_factor_start(user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("two-factor")


@sensitive_post_parameters("code")
@never_cache
@require_POST
@location_required
def two_factor_confirm(request):
    try:
        device, codes = two_factor.two_factor_confirm(user=request.user, code=request.POST.get("code", ""))
    except ApplicationError as exc:
        return _page(request, status=400, error=exc.message)
    otp_login(request, device)  # this session gave the code: it stays logged in
    # the recovery codes are on this answer only
    return _page(request, recovery_codes=codes)


@sensitive_post_parameters("code")
@require_POST
@location_required
def two_factor_disable(request):
    try:
        two_factor.two_factor_disable(user=request.user, code=request.POST.get("code", ""))
    except ApplicationError as exc:
        return _page(request, status=400, error=exc.message)
    messages.success(request, "Two-factor login is off: your password alone logs you in.")
    return redirect("two-factor")


@require_POST
@admin_required
def location_two_factor(request):
    required = request.POST.get("required") == "on"
    try:
        two_factor.location_two_factor_require(location=request.location, required=required, by=request.user)
    except ApplicationError as exc:
        return _failed(request, exc, "location")
    messages.success(request, "Every member now needs two-factor login." if required else "Two-factor login is optional again.")
    return redirect("settings")
