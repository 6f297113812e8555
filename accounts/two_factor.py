"""Two-factor login for members: an authenticator app (django-otp TOTP device) with recovery
codes (a django-otp static device), and the location's "required" switch. The checks that
enforce it are in whatsnap.two_factor."""
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Location, Membership
from whatsnap.errors import ApplicationError
from whatsnap.two_factor import WRONG_CODE, check_code, has_device, throttle_message

RECOVERY_CODES = 10


def two_factor_pending_device(user) -> TOTPDevice | None:
    """The authenticator being set up (scanned, not yet confirmed with a code)."""
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).first()


@transaction.atomic
def two_factor_start(*, user) -> TOTPDevice:
    """A fresh secret to scan; an earlier unfinished set-up is dropped."""
    if has_device(user):
        raise ApplicationError("Two-factor login is on already.")
    TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def two_factor_confirm(*, user, code: str) -> tuple[TOTPDevice, list[str]]:
    """The first code from the app proves the scan worked: the device counts from now on, and
    recovery codes are made (returned once: show them, they are not shown again)."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user_id=user.pk, confirmed=False).first()
        error = _confirm_error(device, code)
        if not error:
            TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
            device.confirmed = True
            return device, _recovery_codes_new(user)
    # raised after the commit: a wrong code's throttle count must not be rolled back
    raise ApplicationError(error, field="code")


def _confirm_error(device, code: str) -> str:
    if device is None:
        return "Start the set-up first."
    return throttle_message(device) or ("" if device.verify_token("".join((code or "").split())) else WRONG_CODE)


def _recovery_codes_new(user) -> list[str]:
    StaticDevice.objects.filter(user_id=user.pk).delete()
    device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user_id=user.pk, device__confirmed=True).count()


def two_factor_disable(*, user, code: str) -> None:
    """Turning it off needs a current code (a borrowed session alone cannot), and is refused
    while a location of the user requires it."""
    required = Location.objects.filter(memberships__user=user, require_two_factor=True).order_by("name").first()
    if required:
        raise ApplicationError(f"{required.name} requires two-factor login, so it stays on.")
    device, error = check_code(user, code)
    if device is None:
        raise ApplicationError(error, field="code")
    with transaction.atomic():
        TOTPDevice.objects.filter(user_id=user.pk).delete()
        StaticDevice.objects.filter(user_id=user.pk).delete()


def location_two_factor_require(*, location: Location, required: bool, by) -> None:
    """An admin makes two-factor login required (or optional) for every member. Turning it on
    needs it on for themselves first, so the location keeps an admin who can get in."""
    if required and not has_device(by):
        raise ApplicationError("Turn on two-factor login for yourself first (My preferences).", field="required")
    Location.objects.filter(pk=location.pk).update(require_two_factor=required)
    location.require_two_factor = required


def two_factor_user_ids(location: Location) -> set[int]:
    """Members of the location who have two-factor on (the members table shows it)."""
    members = Membership.objects.filter(location=location).values("user_id")
    return set(TOTPDevice.objects.filter(user_id__in=members, confirmed=True).values_list("user_id", flat=True))
