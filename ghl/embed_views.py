"""WhatSnap as a custom page inside GoHighLevel: /ghl/app/ asks GHL (the parent frame) who is
looking, /ghl/app/sign-in/ signs that GHL user in as their member of the connected location
(ghl/embed.py) and the page goes on to the inbox. No second password.

The session is pinned to that location (accounts.tenancy.pin_session). A user with two-factor
still gives their code: GHL's word stands in for the password step only. Payloads that cannot
be read count as failed logins of one pseudo-username per address (django-axes), so guessing
at the format from one address is cut off like password guessing is."""
import json
import time

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.signals import user_login_failed
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from django.views.decorators.http import require_POST

from accounts.invitations import membership_mark_used
from accounts.tenancy import pin_session
from ghl import embed
from whatsnap import two_factor
from whatsnap.errors import ApplicationError
from whatsnap.login import PENDING_KEY

BACKEND = "django.contrib.auth.backends.ModelBackend"
# failures are counted against this name and the client's address
THROTTLE_NAME = "(sign-in from GoHighLevel)"
OUTSIDE_GHL = ("This page signs you in when WhatSnap is opened from GoHighLevel. To get in as your GHL user, open your "
               "sub-account in GoHighLevel and choose WhatSnap in its left menu.")
NO_ANSWER = "GoHighLevel did not hand over who you are. Reload the page; if it stays like this, open WhatSnap from the sub-account's menu again."
# said after embed.AGENCY_VIEW / embed.NOT_CONNECTED: what the GHL user can do about it
AGENCY_HINT = "Switch to a sub-account in GoHighLevel (the account switcher at the top of its left menu), then choose WhatSnap in its menu."
NOT_CONNECTED_HINT = "Or a GHL admin of this sub-account installs the WhatSnap app for it from GoHighLevel's App Marketplace; then open WhatSnap here again."
LOCKED = "Too many sign-ins from GoHighLevel failed from this address. Wait a while and reload."


@never_cache
@ensure_csrf_cookie
def embed_page(request):
    context = {
        "configured": bool(settings.GHL_SHARED_SECRET),
        "not_configured": embed.NOT_CONFIGURED,
        "outside": OUTSIDE_GHL,
        "no_answer": NO_ANSWER,
        "agency": embed.AGENCY_VIEW,
        "agency_hint": AGENCY_HINT,
        "not_connected": embed.NOT_CONNECTED,
        "not_connected_hint": NOT_CONNECTED_HINT,
        "locked": LOCKED,
        "origins": " ".join(settings.GHL_EMBED_ORIGINS),
    }
    return render(request, "ghl/embed.html", context)


def _payload(request):
    if len(request.body) > embed.MAX_PAYLOAD_CHARS * 2:
        return None
    try:
        body = json.loads(request.body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return body.get("encryptedData") if isinstance(body, dict) else None


@require_POST
@csrf_protect
@never_cache
def embed_sign_in(request):
    """JSON in ({encryptedData}), JSON out: {next} to go on to, or {error} to show."""
    credentials = {settings.AXES_USERNAME_FORM_FIELD: THROTTLE_NAME}
    if not AxesProxyHandler.is_allowed(request, credentials):
        return JsonResponse({"error": LOCKED}, status=429)
    try:
        who = embed.read_user_data(_payload(request))
    except ApplicationError as exc:
        if exc.code == "unreadable":
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        return JsonResponse({"error": exc.message}, status=403 if exc.code == "not_configured" else 400)
    try:
        membership = embed.member_for(location=embed.location_for(who), who=who)
    except ApplicationError as exc:
        return JsonResponse({"error": exc.message}, status=403)
    return JsonResponse({"next": _sign_in(request, membership)})


def _sign_in(request, membership) -> str:
    user = membership.user
    inbox = reverse("inbox")
    if two_factor.has_device(user):
        # GHL stands in for the password; the code step (whatsnap/login.py) finishes the login
        if request.user.is_authenticated:
            logout(request)
        request.session[PENDING_KEY] = {"user": user.pk, "backend": BACKEND, "next": inbox, "at": time.time()}
        pin_session(request.session, user, membership.location_id)
        return reverse("login-code")
    login(request, user, backend=BACKEND)
    pin_session(request.session, user, membership.location_id)
    membership_mark_used(membership=membership)
    return inbox
