from datetime import date, datetime, timedelta, timezone as dt_tz

import pytest
from django.contrib.auth import get_user_model
from django_q.models import Schedule

from accounts.models import AccountSettingsChange, Membership
from accounts.providers.sandbox import SandboxProvider
from accounts.services import account_settings_update
from conversations.models import Conversation, ConversationEvent, Message
from conversations.pacing import account_drain, queue_eta
from conversations.reports import _interpolate, report_build
from conversations.services import message_send
from contacts.models import Contact, ContactAccount

NY = "America/New_York"
T0 = datetime(2026, 11, 2, 14, 0, tzinfo=dt_tz.utc)  # Monday 09:00 in New York


def make_conversation(account, phone, opened_at, user=None):
    contact = Contact.objects.create(location=account.location, phone=phone, created_at=opened_at)
    ContactAccount.objects.create(contact=contact, account=account, platform=account.kind, first_seen_at=opened_at)
    return Conversation.objects.create(location=account.location, contact=contact, account=account, created_at=opened_at,
                                       assignee=user)


def msg(conversation, direction, at, author=None, note=False):
    return Message.objects.create(location=conversation.location, conversation=conversation, account=conversation.account,
                                  direction=direction, text="x", status="delivered", sent_at=at, author=author, is_note=note)


@pytest.fixture
def seeded(location, sandbox_account):
    location.timezone = NY
    location.save()
    amy = get_user_model().objects.create_user("amy")
    Membership.objects.create(user=amy, location=location)
    waits = [60, 120, 300, 600]  # first-response seconds of four conversations
    for n, wait in enumerate(waits):
        opened = T0 + timedelta(hours=n)
        conv = make_conversation(sandbox_account, f"+1415555{1000 + n}", opened, user=amy)
        msg(conv, "inbound", opened)
        msg(conv, "outbound", opened + timedelta(seconds=wait / 2), author=amy, note=True)  # a note is no response
        msg(conv, "outbound", opened + timedelta(seconds=wait), author=amy)
        if n < 2:  # two resolved, after 1 h and 3 h
            ConversationEvent.objects.create(conversation=conv, kind="status", to_value="resolved", actor=amy,
                                             at=opened + timedelta(hours=1 + 2 * n))
    # outside the period: Sunday 23:30 New York = Monday 04:30 UTC (a UTC "Monday" message)
    late = make_conversation(sandbox_account, "+14155559999", datetime(2026, 11, 2, 4, 30, tzinfo=dt_tz.utc))
    msg(late, "inbound", datetime(2026, 11, 2, 4, 30, tzinfo=dt_tz.utc))
    return amy


def test_report_figures_by_hand(seeded, location, sandbox_account):
    report = report_build(location=location, start=date(2026, 11, 2), end=date(2026, 11, 2), account=sandbox_account)
    assert (report.messages_in, report.messages_out) == (4, 4)  # notes are not messages out
    assert (report.new_contacts, report.conversations_opened, report.conversations_resolved) == (4, 4, 2)
    assert report.first_response["median"] == pytest.approx(210.0)  # (120 + 300) / 2
    assert report.first_response["p90"] == pytest.approx(510.0)  # 300 + 0.7 * 300
    assert report.resolution["median"] == pytest.approx(7200.0)  # 1 h and 3 h
    assert report.daily == [(date(2026, 11, 2), 4, 4)]
    assert report.agents == [{"agent": "amy", "conversations": 4, "messages_out": 4, "resolved": 2,
                              "first_response_median": pytest.approx(210.0), "first_response_p90": pytest.approx(510.0),
                              "resolution_median": pytest.approx(7200.0), "resolution_p90": pytest.approx(10080.0)}]  # 1 h + 0.9 * 2 h
    assert report.resolution["p90"] == pytest.approx(10080.0)


def test_each_agent_gets_the_median_of_their_own_conversations(seeded, location, sandbox_account):
    bob = get_user_model().objects.create_user("bob")
    Membership.objects.create(user=bob, location=location)
    conv = make_conversation(sandbox_account, "+14155552000", T0 + timedelta(hours=5), user=bob)
    msg(conv, "inbound", T0 + timedelta(hours=5))
    msg(conv, "outbound", T0 + timedelta(hours=5, seconds=900), author=bob)
    unassigned = make_conversation(sandbox_account, "+14155552001", T0 + timedelta(hours=6))
    msg(unassigned, "inbound", T0 + timedelta(hours=6))  # no reply yet: counted as opened, no wait
    cid = get_user_model().objects.create_user("cid")
    Membership.objects.create(user=cid, location=location)
    quiet = make_conversation(sandbox_account, "+14155552002", T0 + timedelta(hours=7), user=cid)
    msg(quiet, "inbound", T0 + timedelta(hours=7))  # assigned, not answered yet
    report = report_build(location=location, start=date(2026, 11, 2), end=date(2026, 11, 2))
    assert report.conversations_opened == 7
    assert report.first_response["median"] == pytest.approx(300.0) and report.first_response["n"] == 5
    assert [(a["agent"], a["conversations"], a["first_response_median"]) for a in report.agents] == [
        ("amy", 4, pytest.approx(210.0)), ("bob", 1, pytest.approx(900.0)), ("cid", 1, None)]  # cid is listed, though silent
    assert report.resolution["n"] == 2


def test_report_period_is_in_location_timezone(seeded, location):
    sunday = report_build(location=location, start=date(2026, 11, 1), end=date(2026, 11, 1))
    assert sunday.messages_in == 1  # the 04:30 UTC message belongs to Sunday in New York


def test_percentile_matches_postgres_definition():
    assert _interpolate([60, 120, 300, 600], 0.9) == pytest.approx(510.0)
    assert _interpolate([5.0], 0.9) == 5.0


def test_report_page_and_csv(admin_client, seeded, sandbox_account):
    html = admin_client.get(f"/accounts/{sandbox_account.pk}/report/", {"start": "2026-11-02", "end": "2026-11-02"}).content.decode()
    assert "<svg" in html and "4 min" in html  # median 210 s, rounded
    csv = admin_client.get("/reports/", {"start": "2026-11-02", "end": "2026-11-02", "format": "csv"}).content.decode()
    assert "messages_in,4" in csv and "amy,4,4,2,210.0,510.0,7200.0,10080.0" in csv


def test_settings_are_validated_and_audited(admin_client, admin_user, sandbox_account):
    response = admin_client.post(f"/accounts/{sandbox_account.pk}/settings/", {
        "name": "Sales NYC", "timezone": "Mars/Olympus", "send_per_minute": 0, "send_jitter_seconds": 1, "hours_text": "mon 17:00-09:00"})
    html = response.content.decode()
    assert "is not a time zone name" in html
    assert "Between 1 and 600" in html and "ends before it starts" in html
    response = admin_client.post(f"/accounts/{sandbox_account.pk}/settings/", {
        "name": "Sales NYC", "timezone": NY, "send_per_minute": 20, "send_jitter_seconds": 1, "hours_text": "mon 9-5"})
    assert "mon: &#x27;9&#x27; is not a time of day; write 24-hour times like 09:00-17:30" in response.content.decode()
    admin_client.post(f"/accounts/{sandbox_account.pk}/settings/", {
        "name": "Sales NYC", "timezone": NY, "send_per_minute": 20, "send_jitter_seconds": 1, "hours_text": "mon 09:00-17:00",
        "signature": "— Sales"})
    sandbox_account.refresh_from_db()
    assert sandbox_account.business_hours == {"mon": [["09:00", "17:00"]]} and sandbox_account.send_per_minute == 20
    change = AccountSettingsChange.objects.get()
    assert change.actor == admin_user and change.changes["name"] == ["Sales", "Sales NYC"]
    assert sandbox_account.tag.name == "whatsnap-account-sales"  # renaming never moves the tag


def test_burst_leaves_in_order_at_pace(sandbox_account, pacing_clock, monkeypatch):
    account_settings_update(account=sandbox_account, send_per_minute=30, send_jitter_seconds=0)
    sent = []
    original = SandboxProvider.send

    def recording(self, account, **kw):
        sent.append((pacing_clock.now(), kw["text"]))
        return original(self, account, **kw)

    monkeypatch.setattr(SandboxProvider, "send", recording)
    contact = Contact.objects.create(location=sandbox_account.location, phone="+14155550123")
    conversation = Conversation.objects.create(location=sandbox_account.location, contact=contact, account=sandbox_account)
    for i in range(100):
        message_send(conversation=conversation, text=f"reply {i}")
    assert [text for _t, text in sent] == [f"reply {i}" for i in range(100)]
    gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(sent, sent[1:])]
    # 30 a minute: slots are booked 2 s apart; the recorded times also carry how long each
    # send took to reach the backend (real time on a busy machine), hence the tolerance
    assert min(gaps) >= 2.0 - 0.25 and sum(gaps) / len(gaps) >= 2.0 - 0.01
    assert Message.objects.filter(status="delivered", direction="outbound").count() == 100


def test_slow_pace_hands_over_to_a_scheduled_drain(sandbox_account, pacing_clock):
    account_settings_update(account=sandbox_account, send_per_minute=1, send_jitter_seconds=0)
    contact = Contact.objects.create(location=sandbox_account.location, phone="+14155550123")
    conversation = Conversation.objects.create(location=sandbox_account.location, contact=contact, account=sandbox_account)
    first = message_send(conversation=conversation, text="one")
    second = message_send(conversation=conversation, text="two")
    first.refresh_from_db(), second.refresh_from_db()
    assert first.status == "delivered" and second.status == "queued"
    schedule = Schedule.objects.get(name=f"drain-account-{sandbox_account.pk}")
    assert schedule.func == "conversations.pacing.drain_account"
    sandbox_account.refresh_from_db()
    assert [m.pk for m, _eta in queue_eta(sandbox_account)] == [second.pk]
    pacing_clock.sleep(60)
    assert account_drain(account_id=sandbox_account.pk) == 1
    second.refresh_from_db()
    assert second.status == "delivered"


def test_only_one_drainer_at_a_time(sandbox_account, pacing_clock):
    from conversations.pacing import _take_lease

    assert _take_lease(sandbox_account.pk)
    assert not _take_lease(sandbox_account.pk)
    pacing_clock.sleep(60)  # a crashed drainer's lease expires
    assert _take_lease(sandbox_account.pk)


def test_auto_reply_outside_business_hours_once(sandbox_account):
    from accounts.providers.base import InboundMessage
    from conversations.services import webhook_events_record

    account_settings_update(account=sandbox_account, timezone=NY, business_hours={"mon": [["09:00", "17:00"]]},
                            auto_reply_text="We are closed; back at 9.")
    night = datetime(2026, 11, 3, 3, 0, tzinfo=dt_tz.utc)  # Monday 22:00 New York
    for pid, at in (("n1", night), ("n2", night + timedelta(minutes=5)), ("d1", T0)):
        webhook_events_record(account=sandbox_account, events=[
            InboundMessage(provider_id=pid, from_phone="+14155550123", name="", text="hi", at=at)])
    replies = list(Message.objects.filter(direction="outbound").values_list("text", flat=True))
    assert replies == ["We are closed; back at 9."]


def test_rolled_up_reports_match_the_live_figures_and_stay_exact(seeded, location, sandbox_account):
    from conversations.rollups import rollup_refresh

    def figures():
        r = report_build(location=location, start=date(2026, 11, 1), end=date(2026, 11, 3), account=sandbox_account)
        return r.messages_in, r.messages_out, r.daily, [(a["agent"], a["messages_out"]) for a in r.agents]

    live = figures()
    assert live[:2] == (5, 4) and live[3] == [("amy", 4)]
    assert rollup_refresh(location, settle_seconds=0) == 2  # Nov 1 (the late-evening one) and Nov 2, New York days
    assert figures() == live
    # a message written after the refresh is counted live, once
    conversation = Conversation.objects.filter(contact__phone="+14155551000").get()
    msg(conversation, "inbound", T0 + timedelta(hours=5))
    after = figures()
    assert after[0] == 6 and after[2][1] == (date(2026, 11, 2), 5, 4)
    assert rollup_refresh(location, settle_seconds=0) == 1 and figures() == after
    # a time zone change recuts the days
    location.timezone = "UTC"
    location.save()
    utc_live = figures()
    rollup_refresh(location, settle_seconds=0)
    assert figures() == utc_live and utc_live[2][1] == (date(2026, 11, 2), 6, 4)


def test_rollups_wait_for_recent_messages_to_settle(seeded, location):
    from conversations.models import MessageDayCount
    from conversations.rollups import rollup_refresh

    assert rollup_refresh(location) == 0  # everything was written just now: not rolled up yet
    assert not MessageDayCount.objects.exists()
