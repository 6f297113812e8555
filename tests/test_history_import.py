"""Issue 17, point 10: when an account whose backend keeps history connects (first time, or
again after an outage), the recent history its gateway holds is imported — deduped, marked as
history (no routing, no auto-reply, nothing for GHL), bounded, and a failing gateway is asked
again later without the person who connected ever seeing an error.

The backend is a probe registered for the test (as tests/test_provider_contract.py does): it
records what it was asked and answers with what the test put on its "phone"."""
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from accounts import providers as registry
from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import ConnectionChanged, Health, InboundMessage, Provider, ProviderError, SendResult
from accounts.services import account_connect, account_create, account_set_status
from conversations.history import HISTORY_RETRY_AFTER, import_history
from conversations.models import Conversation, InboundEvent, Message
from whatsnap import events


class HistoryProbeProvider(Provider):
    key = "history_probe"
    label = "History probe"
    kinds = ("whatsapp",)
    supports_history = True

    def __init__(self):
        self.phone: list[InboundMessage] = []  # what the gateway holds
        self.asked: list = []  # the `since` of every history() call
        self.failure: ProviderError | None = None

    def connect(self, account):
        return [ConnectionChanged(status="connected", phone="+14155550100", reason="linked")]

    def disconnect(self, account):
        return None

    def health(self, account):
        return Health(ok=True, detail="probe")

    def send(self, account, *, to, text, media=None, idempotency_key, reply_to=""):
        return SendResult(provider_id=idempotency_key)

    def parse_webhook(self, account, request):
        return []

    def history(self, account, *, since):
        self.asked.append(since)
        if self.failure is not None:
            raise self.failure
        return [m for m in self.phone if m.at >= since]


@pytest.fixture
def probe(monkeypatch):
    monkeypatch.setitem(registry._BACKENDS, "history_probe", f"{__name__}.HistoryProbeProvider")
    monkeypatch.setattr(registry, "_cache", {})
    return get_provider("history_probe")


def _msg(pid: str, *, hours_ago: float, text: str = "", from_me: bool = False, history: bool = True) -> InboundMessage:
    return InboundMessage(provider_id=pid, from_phone="+14155550123", name="Ada", text=text or pid,
                          at=timezone.now() - timedelta(hours=hours_ago), from_me=from_me, history=history)


@pytest.fixture
def account(location, probe):
    return account_create(location=location, kind="whatsapp", backend="history_probe", name="Shop")


def _close(a, b, seconds=5) -> bool:
    return abs((a - b).total_seconds()) < seconds


def test_connecting_imports_the_recent_history_as_history(account, probe):
    probe.phone = [
        _msg("old", hours_ago=24 * 8),  # beyond the account's 7 days: the gateway is asked from then on
        _msg("h-1", hours_ago=30, text="Is the shop open on Sunday?"),
        _msg("h-2", hours_ago=29, text="Yes, 10 to 4.", from_me=True),
        _msg("h-3", hours_ago=2, text="Thanks!", history=False),  # a backend that forgot the flag
    ]
    with events.captured() as seen:
        account_connect(account=account)
    account.refresh_from_db()
    assert account.status == Account.Status.CONNECTED
    (since,) = probe.asked
    assert _close(since, timezone.now() - timedelta(days=7))
    assert _close(account.history_imported_at, timezone.now())

    messages = {m.provider_message_id: m for m in Message.objects.filter(account=account)}
    assert set(messages) == {"h-1", "h-2", "h-3"}
    assert all(m.is_history for m in messages.values())
    assert messages["h-2"].direction == Message.Direction.OUTBOUND and messages["h-2"].via_device
    assert all(e.payload["history"] for e in InboundEvent.objects.filter(account=account))
    names = [e.name for e in seen]
    assert names.count("message.imported") == 3 and "message.received" not in names and "message.sent_from_device" not in names
    conversation = Conversation.objects.get(account=account)
    assert conversation.unread_count == 0 and conversation.assignee_id is None
    assert conversation.last_message_preview == "Thanks!"


def test_a_reconnect_after_an_outage_asks_from_an_hour_before_the_last_import_and_files_nothing_twice(account, probe):
    probe.phone = [_msg("h-1", hours_ago=5), _msg("h-2", hours_ago=3)]
    account_connect(account=account)
    account.refresh_from_db()
    first_import = account.history_imported_at

    account_set_status(account=account, status=Account.Status.DISCONNECTED, reason="phone offline")
    probe.phone += [_msg("h-3", hours_ago=0.5), _msg("h-4", hours_ago=0.1)]
    probe.phone[1] = _msg("h-2", hours_ago=0.9)  # the gateway still holds one that was imported
    account_connect(account=account)
    assert len(probe.asked) == 2 and probe.asked[1] == first_import - timedelta(hours=1)
    assert sorted(Message.objects.filter(account=account).values_list("provider_message_id", flat=True)) == ["h-1", "h-2", "h-3", "h-4"]


def test_no_import_without_history_days_for_a_backend_without_history_or_for_a_new_number(account, probe, sandbox_account):
    Account.objects.filter(pk=account.pk).update(history_days=0)
    account.refresh_from_db()
    probe.phone = [_msg("h-1", hours_ago=1)]
    account_connect(account=account)
    assert probe.asked == [] and not Message.objects.exists()

    Account.objects.filter(pk=account.pk).update(history_days=7)
    account.refresh_from_db()
    account_set_status(account=account, status=Account.Status.CONNECTED, phone="+14155550199")  # connected already: a new number only
    assert probe.asked == []

    # the sandbox keeps no history: connecting it asks nobody
    assert not get_provider(sandbox_account.backend).supports_history
    account_set_status(account=sandbox_account, status=Account.Status.DISCONNECTED)
    account_connect(account=sandbox_account)
    sandbox_account.refresh_from_db()
    assert sandbox_account.history_imported_at is None


def test_an_import_is_bounded_to_the_newest_messages(account, probe, settings):
    settings.HISTORY_IMPORT_MAX_MESSAGES = 2
    probe.phone = [_msg(f"h-{n}", hours_ago=10 - n) for n in range(5)]
    account_connect(account=account)
    assert sorted(Message.objects.values_list("provider_message_id", flat=True)) == ["h-3", "h-4"]


def test_a_failing_gateway_is_asked_again_later_and_never_fails_the_connect(account, probe):
    probe.failure = ProviderError("gateway busy", transient=True)
    probe.phone = [_msg("h-1", hours_ago=1)]
    account_connect(account=account)  # no exception for the person who connected
    account.refresh_from_db()
    assert account.status == Account.Status.CONNECTED and account.history_imported_at is None
    retry = Schedule.objects.get(name=f"history-import-{account.pk}")
    assert retry.func == "conversations.history.import_history" and retry.args == repr((account.pk,))
    assert _close(retry.next_run, timezone.now() + HISTORY_RETRY_AFTER)

    probe.failure = None
    assert import_history(account.pk) == "1 new"  # what the schedule runs
    assert Message.objects.get().is_history

    # a permanent refusal is logged and left for the next connect (no retry piling up)
    Schedule.objects.all().delete()
    account_set_status(account=account, status=Account.Status.LOGGED_OUT)
    probe.failure = ProviderError("this gateway keeps no history", transient=False)
    account_connect(account=account)
    assert not Schedule.objects.exists()
    assert Account.objects.get(pk=account.pk).status == Account.Status.CONNECTED


def test_an_account_gone_before_the_task_runs_is_not_imported(account, probe):
    probe.phone = [_msg("h-1", hours_ago=1)]
    Account.objects.filter(pk=account.pk).update(status=Account.Status.CONNECTED, archived_at=timezone.now())
    assert import_history(account.pk) == "not wanted" and probe.asked == []
    assert import_history(987654) == "not wanted"


def test_an_import_the_broker_loses_is_run_by_its_stored_fallback(account, probe, monkeypatch):
    """The import is queued now and kept as a one-off schedule row; a broker that drops the task
    leaves the row (the scheduler runs it), a task that ran removes it."""
    from whatsnap import tasks

    probe.phone = [_msg("h1", hours_ago=1)]
    monkeypatch.setattr(tasks, "enqueue", lambda *a: None)  # the broker lost it
    account_connect(account=account)
    fallback = Schedule.objects.get(name=f"history-import-{account.pk}")
    assert fallback.func == "conversations.history.import_history" and fallback.next_run > timezone.now()
    assert not Message.objects.exists()
    assert import_history(account.pk) == "1 new"  # what the scheduler runs
    assert not Schedule.objects.filter(name=f"history-import-{account.pk}").exists()
