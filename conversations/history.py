"""History on connect (issue 17, point 10): when an account whose backend keeps history
(Provider.supports_history) connects — the first time, or again after an outage — the messages
its gateway still holds from the last `history_days` days are imported.

They go through the ordinary path (webhook_events_record: deduped by provider id, so a message
already filed, or imported by an earlier connect, is not filed twice) as InboundMessage with
history=True: filing marks them imported — no routing, no auto-reply, no unread bump, nothing
to GHL. A reconnect asks only from an hour before the last import on (`HISTORY_OVERLAP`), at
most HISTORY_IMPORT_MAX_MESSAGES messages (the newest) per import. A gateway that fails is
logged and asked again HISTORY_RETRY_AFTER later; nothing is ever raised at the person who
connected the account."""
import logging
from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import InboundMessage, ProviderError
from conversations.receiving import webhook_events_record
from whatsnap.tasks import cancel_fallback, run_now_or_at, run_now_with_fallback

logger = logging.getLogger(__name__)

HISTORY_OVERLAP = timedelta(hours=1)  # a reconnect re-reads the last hour before the last import (deduped)
HISTORY_RETRY_AFTER = timedelta(minutes=10)


def history_wanted(account: Account) -> bool:
    """The account is connected, imports some days, and its backend keeps history."""
    if account.archived_at or account.history_days <= 0 or account.status != Account.Status.CONNECTED:
        return False
    try:
        return get_provider(account.backend).supports_history
    except LookupError:
        return False


def history_since(account: Account, now) -> timezone.datetime:
    since = now - timedelta(days=account.history_days)
    if account.history_imported_at:
        since = max(since, account.history_imported_at - HISTORY_OVERLAP)
    return since


def account_history_import(*, account: Account) -> int:
    """Ask the gateway for the account's recent history and store it for filing; returns how
    many messages were new. ProviderError propagates (the task decides what to do)."""
    if not history_wanted(account):
        return 0
    now = timezone.now()
    found = get_provider(account.backend).history(account, since=history_since(account, now))
    # history=True whatever the backend said: an imported message must never be routed or sent on
    messages = sorted((replace(m, history=True) for m in found if isinstance(m, InboundMessage)), key=lambda m: m.at)
    cap = settings.HISTORY_IMPORT_MAX_MESSAGES
    if len(messages) > cap:
        logger.info("account %s: history has %s messages, the newest %s imported", account.pk, len(messages), cap)
        messages = messages[-cap:]
    with transaction.atomic():
        new = webhook_events_record(account=account, events=messages) if messages else 0
        Account.objects.filter(pk=account.pk).update(history_imported_at=now)
        account.history_imported_at = now
    logger.info("account %s: %s history message(s) since %s, %s new", account.pk, len(messages), history_since(account, now), new)
    return new


def import_history(account_id: int) -> str:
    """The task (queued when an account connects). A transient gateway failure is logged and
    tried again later (a one-off schedule kept in the database); a permanent one is logged and
    the import is given up until the next connect."""
    account = Account.objects.select_related("location").filter(pk=account_id).first()
    if account is None or not history_wanted(account):
        return "not wanted"
    name = f"history-import-{account_id}"
    try:
        new = account_history_import(account=account)
    except ProviderError as exc:
        if exc.transient:
            logger.warning("history import of account %s failed, retried in %s: %s", account_id, HISTORY_RETRY_AFTER, exc)
            run_now_or_at(import_history, account_id, name=name, at=timezone.now() + HISTORY_RETRY_AFTER)
            return "retry later"
        logger.warning("history import of account %s failed for good (until the next connect): %s", account_id, exc)
        cancel_fallback(name)
        return "failed"
    cancel_fallback(name)
    return f"{new} new"


def history_on_connect(*, account: Account, status: str, previous: str) -> bool:
    """A status change (conversations.subscribers, after commit): the account came up (not a
    mere change of phone number) -> queue its history import. True when queued."""
    if status != Account.Status.CONNECTED or previous == Account.Status.CONNECTED or not history_wanted(account):
        return False
    # now, and kept as a row in case the broker loses it (the task cancels that row when done)
    run_now_with_fallback(import_history, account.pk, name=f"history-import-{account.pk}", after=HISTORY_RETRY_AFTER)
    return True
