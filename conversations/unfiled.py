"""Unfiled events (issue 17, point 1): webhooks answered 2xx that WhatSnap kept without filing,
each with its reason (InboundEvent.status "unfiled", the reason in `error`).

Two sorts. Kind "unfiled": the backend's parser did not understand the webhook; the row holds
{"reason", "envelope"} — the whole verified body — so after an upgrade an admin re-runs it
through Provider.parse_envelope(). Any other kind: a normalised event that filing could not
place (a reaction to a message not known yet, …); a re-run queues it for filing again.

A location admin re-runs them from the account page (per reason, or all), staff from the
admin (InboundEventAdmin). Unfiled rows older than UNFILED_EVENT_RETENTION_DAYS are deleted
by the minute sweep."""
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import ConnectionChanged, ProviderError, QrUpdated, Unfiled, WebhookMalformed
from conversations.models import InboundEvent
from conversations.receiving import process_inbound_event, webhook_events_record
from whatsnap.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

RERUN_BATCH = 200  # rows re-run by one click (the rest on the next one): a page answers in time
PRUNE_BATCH = 5000  # rows deleted by one sweep
FILED = "re-run: filed"


@dataclass
class RerunResult:
    filed: int = 0  # parsed into events and stored for filing (or nothing left to file)
    requeued: int = 0  # normalised events queued for filing again
    still_unfiled: int = 0
    left: int = 0  # beyond this batch, for the next click
    reasons: list[str] = field(default_factory=list)  # why the ones still unfiled are

    @property
    def total(self) -> int:
        return self.filed + self.requeued + self.still_unfiled

    def summary(self) -> str:
        text = f"Re-ran {self.total} unfiled event(s): {self.filed} filed, {self.requeued} queued for filing, {self.still_unfiled} still unfiled"
        if self.reasons:
            text += " (" + "; ".join(sorted(set(self.reasons))[:3]) + ")"
        if self.left:
            text += f". {self.left} more wait: re-run again"
        return text + "."


def unfiled_events(account: Account):
    return InboundEvent.objects.filter(account=account, status=InboundEvent.Status.UNFILED)


def unfiled_rerun(*, account: Account, reason: str | None = None, event_ids=None) -> RerunResult:
    """Re-run the account's unfiled events (those of one `reason`, or these `event_ids`, or
    all), oldest first, at most RERUN_BATCH of them."""
    rows = unfiled_events(account)
    if reason is not None:
        rows = rows.filter(error=reason)
    if event_ids is not None:
        rows = rows.filter(pk__in=list(event_ids))
    batch = list(rows.order_by("id")[:RERUN_BATCH])
    result = RerunResult(left=max(rows.count() - len(batch), 0))
    provider = get_provider(account.backend)
    for row in batch:
        if row.kind == InboundEvent.Kind.UNFILED:
            _rerun_envelope(account, provider, row, result)
        else:
            _requeue(row, result)
    logger.info("account %s: %s", account.pk, result.summary())
    return result


def _requeue(row: InboundEvent, result: RerunResult) -> None:
    """A normalised event filing could not place: filing tries again (its own rules decide)."""
    with transaction.atomic():
        claimed = InboundEvent.objects.filter(pk=row.pk, status=InboundEvent.Status.UNFILED).update(
            status=InboundEvent.Status.PENDING, attempts=0, processed_at=None)
        if claimed:
            enqueue_on_commit(process_inbound_event, row.pk)
            result.requeued += 1


def _rerun_envelope(account: Account, provider, row: InboundEvent, result: RerunResult) -> None:
    """A webhook the parser did not understand, read again by today's parser. Parsing happens
    outside any transaction (a backend may ask its gateway, e.g. for a LID's phone)."""
    original = str(row.payload.get("reason") or row.error)
    envelope = row.payload.get("envelope")
    try:
        if not isinstance(envelope, dict):
            raise WebhookMalformed("no stored webhook body to read again")
        parsed = provider.parse_envelope(account, envelope)
    except (WebhookMalformed, ProviderError) as exc:
        _keep(row, f"{original} (re-run: {exc})"[:500], result)
        return
    # A session event (QR, connection state) of an old webhook is stale: applying it now would
    # set a state the account left long ago.
    fileable = [e for e in parsed if not isinstance(e, (Unfiled, QrUpdated, ConnectionChanged))]
    unfiled = [e.reason for e in parsed if isinstance(e, Unfiled)]
    with transaction.atomic():
        if fileable:
            webhook_events_record(account=account, events=fileable)  # deduped: a repeat re-run files nothing twice
        if unfiled:
            _keep(row, "; ".join(dict.fromkeys(unfiled))[:500], result)
            return
        done = InboundEvent.objects.filter(pk=row.pk, status=InboundEvent.Status.UNFILED).update(
            status=InboundEvent.Status.DONE, error=FILED if fileable else "re-run: nothing to file (a stale session event)",
            processed_at=timezone.now())
        result.filed += bool(done)


def _keep(row: InboundEvent, reason: str, result: RerunResult) -> None:
    InboundEvent.objects.filter(pk=row.pk, status=InboundEvent.Status.UNFILED).update(error=reason, processed_at=timezone.now())
    result.still_unfiled += 1
    result.reasons.append(reason)


def unfiled_rerun_selected(*, queryset) -> RerunResult:
    """The admin's action: the selected rows that are unfiled, account by account."""
    total = RerunResult()
    rows = queryset.filter(status=InboundEvent.Status.UNFILED)
    by_account: dict[int, list[int]] = {}
    for pk, account_id in rows.values_list("pk", "account_id"):
        by_account.setdefault(account_id, []).append(pk)
    for account in Account.objects.filter(pk__in=by_account):
        result = unfiled_rerun(account=account, event_ids=by_account[account.pk])
        total.filed += result.filed
        total.requeued += result.requeued
        total.still_unfiled += result.still_unfiled
        total.left += result.left
        total.reasons += result.reasons
    return total


def unfiled_prune() -> int:
    """The minute sweep: unfiled events older than UNFILED_EVENT_RETENTION_DAYS go (0 keeps them)."""
    days = settings.UNFILED_EVENT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = timezone.now() - timezone.timedelta(days=days)
    old = InboundEvent.objects.filter(status=InboundEvent.Status.UNFILED, received_at__lt=cutoff)
    ids = list(old.order_by("id").values_list("id", flat=True)[:PRUNE_BATCH])
    if not ids:
        return 0
    deleted, _ = InboundEvent.objects.filter(pk__in=ids).delete()
    logger.info("%s unfiled event(s) older than %s days deleted", deleted, days)
    return deleted
