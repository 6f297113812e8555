"""Joining a location with consent: an admin invites, the person accepts with their own login
(or signs up on the invitation page). Also which location a member works in: the one they
switched to or joined last."""
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invitation, Location, Membership, invitation_token_hash
from accounts.services import username_check
# the invitee reads this, not an admin
USERNAME_TAKEN_FOR_INVITEE = "That username is taken. If it is yours, log in first and open this link again to accept."
from whatsnap.errors import ApplicationError

logger = logging.getLogger(__name__)

NOT_VALID = "This invitation link is not valid any more: it was revoked, has expired or was used already. Ask for a new one."


def invitation_url(token: str) -> str:
    return settings.PUBLIC_BASE_URL + reverse("invitation-accept", kwargs={"token": token})


def _addressee(email: str, username: str) -> tuple[str, str]:
    email, username = (email or "").strip(), (username or "").strip()
    if not (email or username):
        raise ApplicationError("Give the person's e-mail address or their WhatSnap username.", field="email")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise ApplicationError(f"{email} is not an e-mail address.", field="email") from None
    return email, username


@transaction.atomic
def invitation_create(*, location: Location, invited_by, email: str = "", username: str = "", role: str) -> tuple[Invitation, str]:
    """A new invitation and its token (shown once; only its hash is kept). A newer invitation
    to the same person replaces a pending one (the admin lost the first link)."""
    email, username = _addressee(email, username)
    if role not in Membership.Role.values:
        raise ApplicationError(f"Unknown role {role!r}.", field="role")
    if username and Membership.objects.filter(location=location, user__username=username).exists():
        raise ApplicationError(f"{username} is a member of {location.name} already.", field="username")
    _pending(location.invitations.filter(email=email, username=username)).update(revoked_at=timezone.now())
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        location=location, email=email, username=username, role=role, invited_by=invited_by,
        token_hash=invitation_token_hash(token), expires_at=timezone.now() + timedelta(days=settings.INVITATION_VALID_DAYS))
    invitation.full_clean()
    invitation.save()
    return invitation, token


def invitation_email(*, invitation: Invitation, token: str) -> bool:
    """E-mail the link when an SMTP server is configured (never into the server log, where the
    link would let any reader join). True when it went out. Call it outside transactions."""
    from django.core.mail import send_mail

    if not (settings.INVITATION_EMAILS and invitation.email):
        return False
    inviter = invitation.invited_by.get_username() if invitation.invited_by else "An admin"
    body = (f"{inviter} invites you to work in {invitation.location.name} on WhatSnap as {invitation.get_role_display().lower()}.\n\n"
            f"Accept with your WhatSnap login (or create one) here:\n{invitation_url(token)}\n\n"
            f"The link works once and expires on {invitation.expires_at:%Y-%m-%d}.")
    try:
        send_mail(f"Join {invitation.location.name} on WhatSnap", body, None, [invitation.email])
    except Exception as exc:  # SMTP trouble must not lose the invitation: the admin has the link
        logger.warning("invitation %s: e-mail not sent: %s", invitation.pk, type(exc).__name__)
        return False
    return True


def _pending(queryset):
    return queryset.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())


def invitations_pending(location: Location):
    return _pending(location.invitations.all()).select_related("invited_by")


def invitation_revoke(*, invitation: Invitation) -> None:
    Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(revoked_at=timezone.now())


def invitation_for_token(token: str) -> Invitation | None:
    """The invitation of a link, whatever its state (the page says when it is not valid)."""
    return Invitation.objects.select_related("location", "invited_by").filter(token_hash=invitation_token_hash(token)).first()


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user) -> Membership:
    """The person said yes: they become a member with the invited role (a member already keeps
    their role), and the location becomes the one they work in."""
    current = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not current.is_pending:
        raise ApplicationError(NOT_VALID, code="invitation_invalid")
    if current.username and current.username != user.get_username():
        raise ApplicationError(f"This invitation is for the login {current.username}. Log in as {current.username} to accept it.",
                               code="invitation_other_user")
    membership, _ = Membership.objects.get_or_create(user=user, location_id=current.location_id, defaults={"role": current.role})
    Invitation.objects.filter(pk=current.pk).update(accepted_at=timezone.now(), accepted_by=user)
    membership_mark_used(membership=membership)
    return membership


@transaction.atomic
def invitation_sign_up(*, invitation: Invitation, username: str, password: str) -> Membership:
    """A person without a WhatSnap login creates one on the invitation page and accepts."""
    from django.contrib.auth.password_validation import validate_password

    username = invitation.username or (username or "").strip()  # an invitation to a name is for that name only
    if not username:
        raise ApplicationError("Pick a username.", field="username")
    username_check(username)
    User = get_user_model()
    if User.objects.filter(username__iexact=username).exists():
        raise ApplicationError(USERNAME_TAKEN_FOR_INVITEE, field="username")
    try:
        validate_password(password, User(username=username, email=invitation.email))
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), field="password") from None
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, email=invitation.email, password=password)
    except IntegrityError:  # taken by a concurrent sign-up
        raise ApplicationError(USERNAME_TAKEN_FOR_INVITEE, field="username") from None
    return invitation_accept(invitation=invitation, user=user)


def membership_mark_used(*, membership: Membership) -> None:
    """Remember the location the member works in now: their next login lands there."""
    now = timezone.now()
    Membership.objects.filter(pk=membership.pk).update(last_used_at=now)
    membership.last_used_at = now
