"""The send queue's slots (conversations/pacing.next_slot): a send a little late keeps the
pace by booking from its own slot; a send much later starts from now (no catch-up burst); and
no drain task is queued while a drainer holds the account's lease."""
from datetime import timedelta

from django.utils import timezone

from accounts.models import Account
from conversations import pacing


def account(spm=300, at=None):
    return Account(send_per_minute=spm, send_jitter_seconds=0, next_send_at=at)


def test_a_little_late_keeps_the_slot():
    booked = timezone.now()
    assert pacing.next_slot(account(at=booked), booked + timedelta(milliseconds=15)) == booked + timedelta(seconds=0.2)


def test_much_later_counts_from_now():
    booked = timezone.now()
    now = booked + timedelta(milliseconds=25)  # more than 10 % of 0.2 s
    assert pacing.next_slot(account(at=booked), now) == now + timedelta(seconds=0.2)
    assert pacing.next_slot(account(at=None), now) == now + timedelta(seconds=0.2)


def test_no_drain_task_while_the_lease_is_held(sandbox_account, pacing_clock, monkeypatch):
    queued = []
    monkeypatch.setattr(pacing, "run_now_or_at", lambda func, arg, **kw: queued.append((arg, kw.get("at"))))
    Account.objects.filter(pk=sandbox_account.pk).update(drain_lease_until=pacing_clock.now() + timedelta(seconds=30))
    pacing.enqueue_account_drain(sandbox_account.pk)
    assert queued == []
    at = pacing_clock.now() + timedelta(seconds=5)
    pacing.enqueue_account_drain(sandbox_account.pk, at=at)  # a scheduled drain is always stored
    Account.objects.filter(pk=sandbox_account.pk).update(drain_lease_until=pacing_clock.now() - timedelta(seconds=1))
    pacing.enqueue_account_drain(sandbox_account.pk)  # an expired lease: a drain is queued
    assert queued == [(sandbox_account.pk, at), (sandbox_account.pk, None)]
