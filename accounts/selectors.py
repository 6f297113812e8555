from django.db.models import Count, Max, Q
from django.utils import timezone

from accounts.models import Account


def accounts_for_location(location):
    return (
        Account.objects.filter(location=location, archived_at__isnull=True)
        .select_related("tag")
        .annotate(contact_count=Count("contact_links", distinct=True))
        .order_by("name")
    )


def account_stats(account: Account) -> dict:
    # through the reverse relations of the apps above (contacts, conversations): not imported here
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    counts = account.messages.filter(created_at__gte=start).aggregate(
        inbound=Count("id", filter=Q(direction="inbound")),
        outbound=Count("id", filter=Q(direction="outbound")),
    )
    return {
        "contacts": account.contact_links.count(),
        "messages_in_today": counts["inbound"],
        "messages_out_today": counts["outbound"],
    }


def account_diagnostics(account: Account, *, health=None) -> list[dict]:
    """Each common failure as a check with what to do about it."""
    now = timezone.now()
    checks = []
    urls = account.webhook_urls()
    if account.is_sandbox:
        checks.append({"name": "Backend", "ok": True, "detail": "Sandbox: simulated inside WhatSnap; no outside service is contacted."})
    else:
        checks.append({
            "name": "Webhook URL",
            "ok": account.last_webhook_at is not None,
            "detail": (
                f"Last delivery {timezone.localtime(account.last_webhook_at):%Y-%m-%d %H:%M}."
                if account.last_webhook_at
                else f"Nothing has arrived yet. Configure {urls['inbound']} as the incoming-message webhook."
            ),
        })
    refused = webhook_refusal_check(account)
    if refused:
        checks.append(refused)
    if health is not None:
        checks.append({"name": "Backend reachable and credentials", "ok": health.ok, "detail": health.detail})
        checks.extend({"name": name, "ok": ok, "detail": advice} for name, ok, advice in health.checks if advice or not ok)
    if account.status == Account.Status.QR_PENDING and account.qr_expires_at and account.qr_expires_at < now:
        checks.append({"name": "QR code", "ok": False, "detail": "The QR code expired. Press Reconnect for a new one and scan it within a minute."})
    if account.status == Account.Status.LOGGED_OUT:
        checks.append({"name": "Session", "ok": False, "detail": "The phone unlinked this device (or was offline ~14 days). Press Reconnect and scan the QR again."})
    if account.status == Account.Status.DISCONNECTED:
        checks.append({"name": "Session", "ok": False, "detail": "Disconnected. Press Reconnect to start a new session."})
    if account.status == Account.Status.ERROR and not account.accepts_replies:
        checks.append({"name": "Last error", "ok": False, "detail": f"{account.last_error} — fix the cause (credentials, backend address) and press Reconnect."})
    if account.accepts_replies:
        checks.append({"name": "Session", "ok": True, "detail": f"Connected{' as ' + account.phone_number if account.phone_number else ''}."})
        retrying = account.messages.filter(status="queued", send_attempts__gt=0).count()
        if account.status == Account.Status.ERROR or retrying:
            failure = account.last_error.removeprefix(Account.SEND_FAILING) or "unknown error"
            checks.append({"name": "Sending", "ok": False, "detail": (
                f"The backend failed: {failure} — {retrying} message(s) waiting; "
                "they are retried automatically with backoff and fail with the reason after the last attempt. "
                "Replies can still be queued; the status returns to Connected with the first successful send.")})
    unfiled = unfiled_summary(account)
    if unfiled:
        total = sum(row["count"] for row in unfiled)
        checks.append({"name": "Unfiled webhooks", "ok": False, "unfiled": unfiled, "account_id": account.pk, "detail": (
            f"{total} webhook event(s) were accepted but not filed, kept with the reason. "
            "After an upgrade that handles them, an admin re-runs them here.")})
    return checks


WEBHOOK_REFUSAL_RECENT = timezone.timedelta(days=7)


def webhook_refusal_check(account: Account) -> dict | None:
    """Webhooks refused lately (bad or missing signature: the backend's reason says what to
    change), unless one was accepted after the last refusal."""
    refused_at = account.webhook_refused_at
    if not refused_at or timezone.now() - refused_at > WEBHOOK_REFUSAL_RECENT:
        return None
    if account.last_webhook_at and account.last_webhook_at >= refused_at:
        return None
    when = timezone.localtime(refused_at)
    return {"name": "Webhooks refused", "ok": False,
            "detail": f"Webhooks refused: {account.webhook_refused_reason or 'signature check failed'} (last at {when:%Y-%m-%d %H:%M})."}


UNFILED_REASONS_SHOWN = 20


def unfiled_summary(account: Account) -> list[dict]:
    """The account's unfiled events by reason: how many, the last one; most recent first.
    (InboundEvent lives in conversations, above: read through the reverse relation.)"""
    rows = (account.inbound_events.filter(status="unfiled").order_by().values("error")
            .annotate(count=Count("id"), last=Max("received_at")).order_by("-last")[:UNFILED_REASONS_SHOWN])
    return [{"reason": row["error"], "count": row["count"], "last": row["last"]} for row in rows]
