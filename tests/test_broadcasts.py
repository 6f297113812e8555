"""Broadcasts (issue 18 point 3): segment and skipping, the feeder through the paced queue
(window, exactly once), daily cap and warm-up, auto-pause and resume, cancel, schedule."""
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Account, AccountEvent
from accounts.services import account_create, account_connect, account_set_status
from broadcasts import caps, feeder
from broadcasts.audience import NO_OWN_ACCOUNT, OPTED_OUT, preview
from broadcasts.models import Broadcast, BroadcastRecipient
from broadcasts.selectors import recipient_counts
from broadcasts.services import (CANCELLED_REASON, broadcast_cancel, broadcast_create, broadcast_pause_by_hand,
                                 broadcast_resume, broadcast_start, broadcast_start_due, broadcast_update)
from broadcasts.tasks import broadcasts_sweep
from contacts.models import Contact, ContactTag, Tag
from conversations.models import Conversation, Message
from conversations.sending import WITHDRAWN, message_retry
from whatsnap import events
from whatsnap.errors import ApplicationError

R = BroadcastRecipient.Status


@pytest.fixture
def vip(location):
    return Tag.objects.create(location=location, name="vip")


def people(location, tag, n, *, start=0, **extra):
    made = []
    for i in range(start, start + n):
        contact = Contact.objects.create(location=location, phone=f"+1415555{i:04d}", name=f"Ann{i} Smith", **extra)
        ContactTag.objects.create(contact=contact, tag=tag)
        made.append(contact)
    return made


def make(location, tag, account, **kw):
    return broadcast_create(location=location, name="Spring sale", text="Hi {{first_name|there}}, 20% off at {{account}}.",
                            tag_ids=[tag.pk], account=account, **kw)


def test_compose_is_validated(location, other_location, vip, sandbox_account):
    with pytest.raises(ApplicationError) as err:
        broadcast_create(location=location, name="x", text="Hi {{frist_name}}", tag_ids=[vip.pk])
    assert err.value.field == "text" and "frist_name" in err.value.message
    foreign = Tag.objects.create(location=other_location, name="vip")
    with pytest.raises(ApplicationError) as err:
        broadcast_create(location=location, name="x", text="Hi", tag_ids=[foreign.pk])
    assert err.value.field == "tag_ids"
    with pytest.raises(ApplicationError):
        broadcast_create(location=location, name="x", text="Hi", tag_ids=[])
    with pytest.raises(ApplicationError) as err:
        broadcast_create(location=location, name="x", text="Hi", tag_ids=[vip.pk], scheduled_at=timezone.now() - timedelta(minutes=1))
    assert err.value.field == "scheduled_at"
    other_account = account_create(location=other_location, kind="android_sms", backend="sandbox", name="Other")
    with pytest.raises(ApplicationError) as err:
        broadcast_create(location=location, name="x", text="Hi", tag_ids=[vip.pk], account=other_account)
    assert err.value.field == "account"
    assert not Broadcast.objects.exists()


def test_preview_counts_and_skips(location, vip, sandbox_account):
    people(location, vip, 3)
    people(location, vip, 1, start=10, opted_out=True)
    group = Contact.objects.create(location=location, phone="120363@g.us", phone_is_e164=False, kind="group")
    ContactTag.objects.create(contact=group, tag=vip)
    Contact.objects.create(location=location, phone="+14155559999")  # not in the segment
    counts = preview(location=location, tag_ids=[vip.pk], match="any", account=sandbox_account)
    assert counts["total"] == 5 and counts["to_send"] == 3 and counts["skipped"] == 2
    reasons = dict(counts["skipped_by_reason"])
    assert reasons[OPTED_OUT] == 1 and any("group" in r for r in reasons)
    assert [(a.name, n) for a, n in counts["per_account"]] == [("Sales", 3)]


def test_match_all_tags(location, vip, sandbox_account):
    buyers = Tag.objects.create(location=location, name="buyers")
    both = people(location, vip, 2)
    ContactTag.objects.create(contact=both[0], tag=buyers)
    assert preview(location=location, tag_ids=[vip.pk, buyers.pk], match="all", account=sandbox_account)["total"] == 1
    assert preview(location=location, tag_ids=[vip.pk, buyers.pk], match="any", account=sandbox_account)["total"] == 2


def test_own_account_follows_the_account_tag(location, vip, sandbox_account):
    second = account_create(location=location, kind="android_sms", backend="sandbox", name="Marketing", phone_number="+14155550122")
    account_connect(account=second)
    a, b, c = people(location, vip, 3)
    ContactTag.objects.create(contact=a, tag=second.tag)
    b.active_account = sandbox_account
    b.save()
    broadcast = make(location, vip, None)
    broadcast_start(broadcast=broadcast)
    rows = {r.contact_id: r for r in broadcast.recipients.all()}
    assert rows[a.pk].account_id == second.pk and rows[b.pk].account_id == sandbox_account.pk
    assert rows[c.pk].status == R.SKIPPED and rows[c.pk].reason == NO_OWN_ACCOUNT
    assert Message.objects.get(conversation__contact=a).account_id == second.pk


def test_runs_to_completion_through_the_paced_queue(location, vip, sandbox_account, admin_user):
    contacts = people(location, vip, 4)
    people(location, vip, 1, start=50, opted_out=True)
    broadcast = make(location, vip, sandbox_account, created_by=admin_user)
    with events.captured() as told:
        broadcast_start(broadcast=broadcast)
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.COMPLETED and broadcast.finished_at
    counts = recipient_counts(broadcast)
    assert counts[R.DELIVERED] == 4 and counts[R.SKIPPED] == 1 and counts["total"] == 5
    message = Message.objects.get(conversation__contact=contacts[0])
    assert message.text == f"Hi Ann0, 20% off at {sandbox_account.name}." and message.author == admin_user
    assert BroadcastRecipient.objects.get(contact=contacts[0]).message == message
    statuses = [e["status"] for e in told if e.name == "broadcast.status_changed"]
    assert statuses == ["running", "completed"]
    # replies land in the normal conversation of that contact and account
    assert Conversation.objects.filter(contact=contacts[0], account=sandbox_account).count() == 1


def test_window_keeps_few_in_the_queue(location, vip, sandbox_account, settings, monkeypatch):
    """With the drainer stopped, only the window's worth is queued; an agent's reply waits
    behind at most that many."""
    settings.BROADCAST_QUEUE_WINDOW = 2
    monkeypatch.setattr("conversations.sending.enqueue_account_drain", lambda *a, **k: None)
    people(location, vip, 10)
    broadcast = make(location, vip, sandbox_account)
    broadcast_start(broadcast=broadcast)
    assert Message.objects.filter(status="queued").count() == 2
    assert recipient_counts(broadcast)[R.PENDING] == 8
    # feeding again (another worker, the sweep) adds nobody while the window is full
    assert feeder.broadcast_feed(broadcast_id=broadcast.pk) == 0
    assert broadcasts_sweep() == 0
    assert Message.objects.filter(status="queued").count() == 2


def test_exactly_once_when_feeders_race(location, vip, sandbox_account, settings, monkeypatch):
    settings.BROADCAST_QUEUE_WINDOW = 50
    monkeypatch.setattr("conversations.sending.enqueue_account_drain", lambda *a, **k: None)
    people(location, vip, 6)
    broadcast = make(location, vip, sandbox_account)
    monkeypatch.setattr("broadcasts.services.feed_on_commit", lambda pk: None)
    broadcast_start(broadcast=broadcast)
    stale = list(broadcast.recipients.filter(status=R.PENDING).select_related("contact"))
    broadcast.refresh_from_db()
    assert feeder.broadcast_feed(broadcast_id=broadcast.pk) == 6
    # a second feeder holding the same (now stale) rows claims none of them
    assert sum(feeder._hand_over(broadcast, r, sandbox_account) for r in stale) == 0
    assert Message.objects.count() == 6


def test_daily_cap_waits_for_the_next_local_day(location, vip, sandbox_account, settings, monkeypatch):
    settings.BROADCAST_QUEUE_WINDOW = 50
    Account.objects.filter(pk=sandbox_account.pk).update(broadcast_daily_cap=3, broadcast_warmup=False)
    people(location, vip, 5)
    broadcast = make(location, vip, Account.objects.get(pk=sandbox_account.pk))
    broadcast_start(broadcast=broadcast)
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.RUNNING and recipient_counts(broadcast)["done"] == 3
    assert broadcast.waiting_until == caps.next_day_start(sandbox_account)
    # the next local day (account zone = the location's New York): two more leave
    monkeypatch.setattr(caps, "clock", lambda: broadcast.waiting_until + timedelta(minutes=1))
    monkeypatch.setattr(feeder, "clock", caps.clock)
    broadcasts_sweep()
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.COMPLETED and recipient_counts(broadcast)["done"] == 5


def test_warm_up_grows_day_by_day(location, sandbox_account, settings):
    settings.BROADCAST_WARMUP_FIRST_DAY = 50
    account = Account.objects.get(pk=sandbox_account.pk)
    account.broadcast_daily_cap = 1000
    assert caps.cap_today(account) == 50  # connected today
    AccountEvent.objects.filter(account=account).update(at=timezone.now() - timedelta(days=2))
    assert caps.cap_today(account) == 200
    AccountEvent.objects.filter(account=account).update(at=timezone.now() - timedelta(days=40))
    assert caps.cap_today(account) == 1000
    account.broadcast_warmup = False
    AccountEvent.objects.filter(account=account).update(at=timezone.now())
    assert caps.cap_today(account) == 1000
    summary = caps.cap_summary(sandbox_account)
    assert summary["warming"] and summary["today"] == 50 and summary["left"] == 50


def test_pauses_when_the_account_disconnects_and_resumes_on_reconnect(location, vip, sandbox_account, monkeypatch):
    monkeypatch.setattr("conversations.sending.enqueue_account_drain", lambda *a, **k: None)
    people(location, vip, 5)
    broadcast = make(location, vip, sandbox_account)
    broadcast_start(broadcast=broadcast)
    account_set_status(account=sandbox_account, status="disconnected", reason="phone offline")
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.PAUSED and broadcast.pause_kind == "account"
    assert "Sales" in broadcast.pause_reason and broadcast.paused_for_account_id == sandbox_account.pk
    account_set_status(account=sandbox_account, status="connected", reason="back")
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.RUNNING and not broadcast.pause_reason


def test_pauses_on_failure_rate_until_resumed_by_hand(location, vip, sandbox_account, settings, monkeypatch):
    from accounts.providers.base import ProviderError
    from accounts.providers.sandbox import SandboxProvider

    settings.BROADCAST_FAILURE_SAMPLE, settings.BROADCAST_FAILURE_RATE = 4, 0.5

    def refuse(self, account, **kwargs):
        raise ProviderError("number is not on WhatsApp", transient=False)

    works = SandboxProvider.send
    monkeypatch.setattr(SandboxProvider, "send", refuse)
    people(location, vip, 10)
    broadcast = make(location, vip, sandbox_account)
    broadcast_start(broadcast=broadcast)
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.PAUSED and broadcast.pause_kind == "failures"
    assert "4 of its last 4" in broadcast.pause_reason
    counts = recipient_counts(broadcast)
    assert counts[R.FAILED] >= 4 and counts[R.PENDING] > 0
    failed = broadcast.recipients.filter(status=R.FAILED).first()
    assert "not on WhatsApp" in failed.reason
    # a reconnect does not resume it; a person does
    account_set_status(account=sandbox_account, status="connected", reason="again")
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.PAUSED
    monkeypatch.setattr(SandboxProvider, "send", works)
    broadcast_resume(broadcast=broadcast)  # a fresh window: the failures before do not pause it again
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.COMPLETED


def test_pause_by_hand_then_cancel_withdraws_queued(location, vip, sandbox_account, monkeypatch, admin_user):
    monkeypatch.setattr("conversations.sending.enqueue_account_drain", lambda *a, **k: None)
    people(location, vip, 6)
    broadcast = make(location, vip, sandbox_account)
    broadcast_start(broadcast=broadcast)
    broadcast_pause_by_hand(broadcast=broadcast, actor=admin_user)
    assert broadcast.status == Broadcast.Status.PAUSED and "owner" in broadcast.pause_reason
    with pytest.raises(ApplicationError):
        broadcast_pause_by_hand(broadcast=broadcast)
    broadcast_cancel(broadcast=broadcast)
    counts = recipient_counts(broadcast)
    assert counts[R.SKIPPED] == 6 and counts[R.QUEUED] == 0
    assert set(Message.objects.values_list("status", flat=True)) == {"failed"}
    # withdrawn (conversations.sending), so never retried, and the thread says which broadcast
    assert Message.objects.count() == 3 and set(Message.objects.values_list("error", flat=True)) == {
        f"{WITHDRAWN}The broadcast “Spring sale” was cancelled before this was sent."}
    with pytest.raises(ApplicationError):
        message_retry(message=Message.objects.first())
    assert set(broadcast.recipients.values_list("reason", flat=True)) == {CANCELLED_REASON}
    assert not broadcast.recipients.filter(queued_at__isnull=False).exists()  # not counted in the day's cap
    with pytest.raises(ApplicationError):
        broadcast_resume(broadcast=broadcast)


def test_scheduled_broadcast_is_editable_until_it_starts(location, vip, sandbox_account):
    from django_q.models import Schedule

    people(location, vip, 2)
    at = timezone.now() + timedelta(hours=2)
    broadcast = make(location, vip, sandbox_account, scheduled_at=at)
    assert broadcast.status == Broadcast.Status.SCHEDULED
    schedule = Schedule.objects.get(name=f"broadcast-start-{broadcast.pk}")
    assert schedule.next_run == at and schedule.func == "broadcasts.services.broadcast_start_due"
    broadcast_update(broadcast=broadcast, text="Hello {{name}}")
    assert not broadcast_start_due(broadcast.pk)  # not due yet
    Broadcast.objects.filter(pk=broadcast.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))
    assert broadcasts_sweep() >= 1
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.COMPLETED
    assert Message.objects.first().text == "Hello Ann0 Smith"
    with pytest.raises(ApplicationError):
        broadcast_update(broadcast=broadcast, text="too late")


def test_at_business_hours_needs_an_account_and_picks_the_next_opening(location, vip, sandbox_account):
    with pytest.raises(ApplicationError):
        make(location, vip, None, at_business_hours=True)
    Account.objects.filter(pk=sandbox_account.pk).update(business_hours={d: [["09:00", "09:30"]] for d in
                                                                         ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    account = Account.objects.get(pk=sandbox_account.pk)
    broadcast = make(location, vip, account, at_business_hours=True)
    local = broadcast.scheduled_at.astimezone(timezone.get_fixed_timezone(0)).astimezone(
        __import__("zoneinfo").ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) in ((9, 0), (9, 15)) or broadcast.scheduled_at <= timezone.now() + timedelta(minutes=1)


def test_cancel_of_a_scheduled_broadcast_removes_its_schedule(location, vip, sandbox_account):
    from django_q.models import Schedule

    broadcast = make(location, vip, sandbox_account, scheduled_at=timezone.now() + timedelta(hours=1))
    broadcast_cancel(broadcast=broadcast)
    assert not Schedule.objects.filter(name=f"broadcast-start-{broadcast.pk}").exists()
    assert not broadcast_start_due(broadcast.pk)


def test_a_reply_lands_in_the_contacts_normal_conversation(location, vip, sandbox_account):
    from tests.test_api_support import receive

    (ann,) = people(location, vip, 1)
    broadcast = make(location, vip, sandbox_account)
    broadcast_start(broadcast=broadcast)
    sent = Message.objects.get(conversation__contact=ann)
    receive(sandbox_account, phone=ann.phone, text="Is it for shoes too?", name="Ann0 Smith")
    reply = Message.objects.get(direction="inbound")
    assert reply.conversation_id == sent.conversation_id
    assert list(reply.conversation.messages.values_list("text", flat=True)) == [sent.text, "Is it for shoes too?"]
