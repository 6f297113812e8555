"""Account alerts (issue 17, point 11): an account that stops receiving — disconnected, logged
out or banned (backends report a ban as logged_out or error, with the reason), in error, or
silent for longer than its `quiet_alert_minutes` — carries one alert until it is back.

An alert is `Account.alert` (a sentence) and `Account.alert_at` (when it was raised). Raising
or clearing it records "account.alert" (outgoing webhooks, live pages listen) and e-mails the
location's admins once: one e-mail when it is raised, one when it clears; a standing alert whose
cause changes (disconnected -> logged out) is re-worded without a second e-mail. Every member
sees a banner while it stands (accounts.context_processors), which adds what they can do about
it (an admin reconnects on the account's page). A disconnect a person asked for is no outage:
it raises nothing, nor does what the backend reports of it, until the account is started again."""
import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format

from accounts.models import Account, AccountEvent, Membership
from whatsnap import events
from whatsnap.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

DOWN_STATUSES = (Account.Status.DISCONNECTED, Account.Status.LOGGED_OUT, Account.Status.ERROR)
STARTED_STATUSES = (Account.Status.CONNECTING, Account.Status.QR_PENDING, Account.Status.CONNECTED)
TIME_FORMAT = "M j, H:i"  # as the pages write times

# The alert is one sentence (the banner, the e-mail, the outgoing webhook) saying what happened;
# what to do about it depends on who reads it, so the banner adds that (admin or agent).
def status_alert(account: Account, status: str, reason: str) -> str:
    """The sentence of the alert for an account that moved to `status` (for `reason`)."""
    why = f" ({reason})" if reason else ""
    if status == Account.Status.LOGGED_OUT:
        text = (f"{account.name} was logged out{why}: the phone unlinked it, or WhatsApp banned the number. "
                "Nothing is received until it is reconnected and its QR code scanned again.")
    elif status == Account.Status.DISCONNECTED:
        text = f"{account.name} is disconnected{why}. Nothing is received until it is reconnected."
    else:
        text = f"{account.name} is in error: {reason or 'unknown error'}. Nothing is received until it is fixed and reconnected."
    return text[:300]


QUIET_ADVICE = {
    Account.Kind.WHATSAPP: "Check that the gateway and the phone are online.",
    Account.Kind.ANDROID_SMS: "Check that the phone and its SMS gateway app are online.",
    Account.Kind.IMESSAGE: "Check that the Mac and BlueBubbles Server are online.",
    Account.Kind.TWILIO: "Check that the number's incoming-message webhook at Twilio still points to WhatSnap.",
}


def quiet_alert(account: Account, since) -> str:
    when = date_format(timezone.localtime(since), TIME_FORMAT)
    if account.is_sandbox:
        advice = "This is a Sandbox account: messages arrive only from its sandbox phone, and nobody has written from it since."
    else:
        advice = QUIET_ADVICE.get(account.kind, "Check that its backend is online.")
    return f"{account.name} has received nothing for over {account.quiet_alert_minutes} minutes (last activity {when}). {advice}"[:300]


# --- raising and clearing ------------------------------------------------------------------------
@transaction.atomic
def account_alert_raise(*, account: Account, alert: str) -> bool:
    """Raise the account's alert, or re-word the one standing. True when newly raised (only
    then are the admins e-mailed)."""
    alert = alert.strip()[:300]
    current = Account.objects.select_for_update().get(pk=account.pk)
    if not alert or current.alert == alert or current.archived_at:
        return False
    raised = not current.alert
    fields = {"alert": alert, "alert_at": timezone.now() if raised else current.alert_at}
    Account.objects.filter(pk=account.pk).update(**fields)
    for key, value in fields.items():
        setattr(account, key, value)
    logger.info("account %s alert %s: %s", account.pk, "raised" if raised else "re-worded", alert)
    events.record("account.alert", location_id=account.location_id, account=account, alert=alert, cleared=False)
    if raised:
        enqueue_on_commit(alert_email_send, account.pk, fields["alert_at"].isoformat(), False)
    return raised


@transaction.atomic
def account_alert_clear(*, account: Account, why: str = "") -> bool:
    """The account is back: its alert (if any) clears. True when one stood."""
    current = Account.objects.select_for_update().get(pk=account.pk)
    if not current.alert:
        account.alert, account.alert_at = "", None
        return False
    Account.objects.filter(pk=account.pk).update(alert="", alert_at=None)
    account.alert, account.alert_at = "", None
    logger.info("account %s alert cleared (%s): %s", account.pk, why or "back", current.alert)
    events.record("account.alert", location_id=account.location_id, account=account, alert="", cleared=True)
    if not current.archived_at:
        enqueue_on_commit(alert_email_send, account.pk, current.alert, True)
    return True


def account_alert_follow_status(*, account: Account, status: str, reason: str) -> None:
    """A status change (accounts.subscribers): down -> alert; connected -> clear. An error of
    failing sends is not an outage (the session is up and sends are retried), nor is a
    session still starting (connecting, QR), nor one a person took down: a standing alert
    stays until connected."""
    if status == Account.Status.CONNECTED:
        account_alert_clear(account=account, why="connected")
    elif (status in DOWN_STATUSES and not account.accepts_replies and not account.archived_at
          and not taken_down_on_purpose(account)):
        account_alert_raise(account=account, alert=status_alert(account, status, reason))


def taken_down_on_purpose(account: Account) -> bool:
    """A person disconnected the account (AccountEvent.requested) and it has not been started
    again since: this change is that disconnect, or the backend's echo of it."""
    history = AccountEvent.objects.filter(account_id=account.pk).order_by("-at", "-id").only("to_status", "requested")
    for change in history[:20]:
        if change.requested:
            return True
        if change.to_status in STARTED_STATUSES:
            return False
    return False


def account_alert_heard_from(*, account: Account) -> None:
    """A webhook arrived: an alert standing while the session is up is a silence alert, and it
    clears. (An alert of a down session clears when the session says it is connected.) Cheap
    when there is nothing to clear: it reads the account already loaded."""
    if account.alert and account.accepts_replies:
        account_alert_clear(account=account, why="a webhook arrived")


def _silent_since(account: Account):
    """The last sign of life: a webhook, or a session event (connect, QR, status)."""
    heard = [t for t in (account.last_webhook_at, account.last_event_at) if t]
    return max(heard) if heard else account.created_at


def quiet_accounts_sweep() -> int:
    """Every minute (registered with whatsnap.tasks): raise the silence alert of every session
    that is up but has received nothing for longer than its quiet_alert_minutes, and clear the
    ones that heard something since (a webhook filed without the webhook view, e.g. the
    sandbox phone). Returns how many alerts moved."""
    now = timezone.now()
    moved = 0
    watched = Account.objects.filter(archived_at__isnull=True, quiet_alert_minutes__gt=0,
                                     status__in=(Account.Status.CONNECTED, Account.Status.ERROR))
    for account in watched.select_related("location"):
        if not account.accepts_replies:
            continue
        since = _silent_since(account)
        quiet = now - since >= timedelta(minutes=account.quiet_alert_minutes)
        if quiet and not account.alert:
            moved += account_alert_raise(account=account, alert=quiet_alert(account, since))
        elif account.alert and not quiet:
            moved += account_alert_clear(account=account, why="activity again")
    return moved


def alerts_for_location(location_id: int):
    """The standing alerts of a location's accounts (the banner), oldest first."""
    return (Account.objects.filter(location_id=location_id, archived_at__isnull=True).exclude(alert="")
            .order_by("alert_at", "pk").only("pk", "name", "alert", "alert_at", "location_id", "status", "last_error",
                                             "archived_at"))


# --- the e-mail to the location's admins -----------------------------------------------------------
def _admin_addresses(location_id: int) -> list[str]:
    admins = Membership.objects.filter(location_id=location_id, role=Membership.Role.ADMIN, user__is_active=True)
    return sorted({email for email in admins.values_list("user__email", flat=True) if email})


def alert_email_send(account_id: int, detail: str, cleared: bool) -> int:
    """The task: one e-mail to each admin of the account's location (with an address) saying
    that the alert was raised (`detail`: when; sent only while that very alert still stands,
    so an account deleted or back before the worker ran e-mails nobody), or that the account
    is back (`detail`: the alert that cleared). A failing mail server is logged, never raised:
    the alert itself stands on the pages and went out as a webhook."""
    account = Account.objects.select_related("location").filter(pk=account_id).first()
    if account is None or account.archived_at:
        return 0
    if not cleared and not (account.alert and account.alert_at and account.alert_at.isoformat() == detail):
        return 0
    alert = detail if cleared else account.alert
    recipients = _admin_addresses(account.location_id)
    if not recipients:
        return 0
    link = settings.PUBLIC_BASE_URL + reverse("account-detail", args=[account.pk])
    label = f"{account.name} ({account.get_kind_display()}, {account.location.name})"
    if cleared:
        subject = f"[WhatSnap] {label} is back"
        body = f"{label} is receiving again.\n\nThe alert was: {alert}\n\n{link}\n"
    else:
        subject = f"[WhatSnap] {label} needs attention"
        body = f"{alert}\n\nOpen the account: {link}\n\nYou get one e-mail when this alert clears; none in between.\n"
    try:
        return send_mass_mail([(subject, body, None, [address]) for address in recipients])
    except Exception:
        logger.warning("alert e-mail for account %s not sent", account.pk, exc_info=True)
        return 0
