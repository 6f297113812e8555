"""Invitations (created and revoked on /settings/, accepted on /invitations/<token>/) and the
location switcher in the header."""
from django.contrib import messages
from django.contrib.auth import login
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import invitations
from accounts.location_views import _failed, show_once
from accounts.models import Invitation, Membership
from accounts.tenancy import SESSION_KEY, admin_required, get_for_location, location_required, memberships_for_user
from whatsnap.errors import ApplicationError


@require_POST
@admin_required
def invitation_create(request):
    try:
        invitation, token = invitations.invitation_create(
            location=request.location, invited_by=request.user, email=request.POST.get("email", ""),
            username=request.POST.get("username", ""), role=request.POST.get("role", Membership.Role.AGENT))
    except ApplicationError as exc:
        return _failed(request, exc, "invite")
    emailed = invitations.invitation_email(invitation=invitation, token=token)
    # the link is shown once, on the page this redirects to: the server keeps just its hash
    show_once(request, invitation=invitation.pk, url=invitations.invitation_url(token), emailed=emailed)
    return redirect("settings")


@require_POST
@admin_required
def invitation_revoke(request, pk: int):
    invitation = get_for_location(Invitation.objects.all(), request.location, pk=pk)
    invitations.invitation_revoke(invitation=invitation)
    messages.success(request, f"Invitation for {invitation.addressee} revoked: its link no longer works.")
    return redirect("settings")


@never_cache
def invitation_accept(request, token: str):
    """Anyone with the link sees whom it is from; the logged-in user accepts with one button,
    a person without a login creates one here."""
    invitation = invitations.invitation_for_token(token)
    if invitation is None:
        raise Http404("No such invitation.")
    if not invitation.is_pending:
        return render(request, "accounts/invitation.html", {"invitation": invitation, "invalid": invitations.NOT_VALID}, status=410)
    if request.method != "POST":
        return render(request, "accounts/invitation.html", {"invitation": invitation})
    try:
        membership = _accept(request, invitation)
    except ApplicationError as exc:
        context = {"invitation": invitation, "error": exc.message, "field": exc.field, "values": request.POST}
        return render(request, "accounts/invitation.html", context, status=400)
    request.session[SESSION_KEY] = membership.location_id
    messages.success(request, f"Welcome to {membership.location.name}.")
    return redirect("home")


def _accept(request, invitation):
    if request.user.is_authenticated:
        return invitations.invitation_accept(invitation=invitation, user=request.user)
    membership = invitations.invitation_sign_up(invitation=invitation, username=request.POST.get("username", ""),
                                                password=request.POST.get("password", ""))
    login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
    return membership


@require_POST
@location_required
def location_switch(request):
    """Work in another of my locations; a location I am not a member of is a 404."""
    wanted = request.POST.get("location", "")
    membership = memberships_for_user(request.user).filter(location_id=wanted).first() if wanted.isdigit() else None
    if membership is None:
        raise Http404("No such location.")
    request.session[SESSION_KEY] = membership.location_id
    invitations.membership_mark_used(membership=membership)
    return redirect("home")
