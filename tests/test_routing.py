import threading
from datetime import datetime, timezone as dt_tz

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from accounts.models import Membership
from accounts.providers.base import InboundMessage
from accounts.services import account_connect, account_create
from contacts.models import Tag
from conversations.models import Conversation, InboundEvent
from conversations.services import inbound_event_process, webhook_events_record
from accounts.hours import is_within_hours
from routing.models import RoutingRule, Team
from routing.services import route_decide


def member(location, name, **kw):
    user = get_user_model().objects.create_user(name)
    Membership.objects.create(user=user, location=location, role="agent", **kw)
    return user


def write_in(account, pid, phone):
    webhook_events_record(account=account, events=[
        InboundMessage(provider_id=pid, from_phone=phone, name="", text="hi", at=datetime.now(dt_tz.utc))
    ])
    return Conversation.objects.get(account=account, contact__phone=phone)


@pytest.fixture
def sales_team(location, sandbox_account):
    team = Team.objects.create(location=location, name="Sales", strategy=Team.Strategy.ROUND_ROBIN)
    users = [member(location, n) for n in ("amy", "ben", "cid")]
    team.members.set(users)
    rule = RoutingRule.objects.create(location=location, name="sales tag", target="team", target_team=team, position=1)
    rule.tags.set([sandbox_account.tag])
    return team, users


def test_round_robin_rotates(sales_team, sandbox_account):
    team, (amy, ben, cid) = sales_team
    owners = [write_in(sandbox_account, str(i), f"+1415555{1000 + i}").assignee for i in range(4)]
    assert owners == [amy, ben, cid, amy]


def test_least_open_respects_capacity(sales_team, sandbox_account, location):
    team, (amy, ben, cid) = sales_team
    team.strategy = Team.Strategy.LEAST_OPEN
    team.save()
    Membership.objects.filter(location=location).update(capacity=1)
    owners = [write_in(sandbox_account, str(i), f"+1415555{1000 + i}").assignee for i in range(4)]
    assert sorted(u.username for u in owners[:3]) == ["amy", "ben", "cid"]
    assert owners[3] is None  # everyone at capacity


def test_offline_and_away_members_are_skipped(sales_team, sandbox_account, location):
    team, (amy, ben, cid) = sales_team
    Membership.objects.filter(user__in=[amy, ben]).update(availability="away")
    assert write_in(sandbox_account, "1", "+14155551001").assignee == cid


def test_sticky_returning_contact_goes_back_to_owner(sales_team, sandbox_account, location):
    team, (amy, ben, cid) = sales_team
    first = write_in(sandbox_account, "1", "+14155551001")
    assert first.assignee == amy
    other = account_create(location=location, kind="imessage", backend="sandbox", name="mac", phone_number="+14155550112")
    account_connect(account=other)
    rule = RoutingRule.objects.get()
    rule.tags.add(other.tag)
    write_in(sandbox_account, "2", "+14155551002")  # ben's turn is consumed
    again = write_in(other, "3", "+14155551001")
    assert again.assignee == amy


def test_sticky_follows_a_manual_reassignment(sales_team, sandbox_account, location):
    from conversations.actions import conversation_assign

    team, (amy, ben, cid) = sales_team
    first = write_in(sandbox_account, "1", "+14155551001")
    assert first.assignee == amy
    conversation_assign(conversation=first, assignee=cid, reason="manual")
    first.contact.refresh_from_db()
    assert first.contact.assignee == cid
    Conversation.objects.filter(pk=first.pk).update(assignee=None)
    decision = route_decide(account=sandbox_account, contact=first.contact)
    assert decision.assignee_id == cid.pk and any("sticky" in t for t in decision.trace)


def test_sticky_owner_away_falls_back_to_the_rotation(sales_team, sandbox_account, location):
    team, (amy, ben, cid) = sales_team
    first = write_in(sandbox_account, "1", "+14155551001")
    assert first.assignee == amy
    Membership.objects.filter(user=amy).update(availability="away")
    decision = route_decide(account=sandbox_account, contact=first.contact)
    assert decision.assignee_id == ben.pk and not any("sticky" in t for t in decision.trace)


def test_rule_on_one_account_only(location, sandbox_account):
    amy = member(location, "amy")
    other = account_create(location=location, kind="imessage", backend="sandbox", name="mac", phone_number="+14155550112")
    account_connect(account=other)
    RoutingRule.objects.create(location=location, name="mac only", account=other, target="user", target_user=amy)
    assert write_in(sandbox_account, "1", "+14155551001").assignee is None
    assert write_in(other, "2", "+14155551002").assignee == amy


def test_within_hours_rule_through_routing(location, sandbox_account):
    amy = member(location, "amy")
    sandbox_account.timezone = "America/New_York"
    sandbox_account.business_hours = {"mon": [["09:00", "17:00"]]}
    sandbox_account.save()
    RoutingRule.objects.create(location=location, name="office", hours="within", target="user", target_user=amy)
    contact = sandbox_account.tag.contacts.model(location=location)
    assert route_decide(account=sandbox_account, contact=contact, at=datetime(2026, 11, 23, 14, 30, tzinfo=dt_tz.utc)).assignee_id == amy.pk
    closed = route_decide(account=sandbox_account, contact=contact, at=datetime(2026, 11, 23, 22, 30, tzinfo=dt_tz.utc))
    assert closed.rule is None and closed.assignee_id is None


def test_account_default_team_when_no_rule_matches(location, sandbox_account):
    amy, ben = member(location, "amy"), member(location, "ben")
    team = Team.objects.create(location=location, name="Support", strategy=Team.Strategy.ROUND_ROBIN)
    team.members.set([amy, ben])
    sandbox_account.default_team = team
    sandbox_account.save()
    owners = [write_in(sandbox_account, str(i), f"+1415555{1000 + i}").assignee for i in range(3)]
    assert owners == [amy, ben, amy]
    sandbox_account.default_assignee = ben
    sandbox_account.save()
    Membership.objects.filter(user=ben).update(availability="offline")  # the default assignee is off: the team takes it
    assert write_in(sandbox_account, "9", "+14155551009").assignee == amy


def test_rule_on_platform_and_account_and_all_tags(location, sandbox_account):
    amy = member(location, "amy")
    vip = Tag.objects.create(location=location, name="vip")
    rule = RoutingRule.objects.create(location=location, name="vip sms", tag_mode="all", platform="android_sms",
                                      target="user", target_user=amy)
    rule.tags.set([vip, sandbox_account.tag])
    assert write_in(sandbox_account, "1", "+14155551001").assignee is None
    Conversation.objects.all().delete()
    contact = sandbox_account.tag.contacts.get()
    contact.tags.add(vip)
    contact.assignee = None
    contact.save()
    assert write_in(sandbox_account, "2", "+14155551001").assignee == amy
    rule.platform = "whatsapp"
    rule.save()
    decision = route_decide(account=sandbox_account, contact=contact)
    assert decision.rule is None and any("platform is android_sms" in t for t in decision.trace)


def test_unassigned_rule_wins_over_default_assignee(location, sandbox_account):
    amy = member(location, "amy")
    sandbox_account.default_assignee = amy
    sandbox_account.save()
    assert write_in(sandbox_account, "1", "+14155551001").assignee == amy
    RoutingRule.objects.create(location=location, name="nobody", target="unassigned", position=1)
    assert write_in(sandbox_account, "2", "+14155551002").assignee is None


def test_business_hours_in_account_timezone(location, sandbox_account):
    sandbox_account.timezone = "America/New_York"
    sandbox_account.business_hours = {"mon": [["09:00", "17:00"]]}
    # Monday 2026-11-23 08:30 in New York is 13:30 UTC; 09:30 NY is 14:30 UTC
    assert not is_within_hours(sandbox_account, datetime(2026, 11, 23, 13, 30, tzinfo=dt_tz.utc))
    assert is_within_hours(sandbox_account, datetime(2026, 11, 23, 14, 30, tzinfo=dt_tz.utc))
    # 21:59 UTC Monday = 16:59 NY (open), 22:00 UTC = 17:00 NY (closed)
    assert is_within_hours(sandbox_account, datetime(2026, 11, 23, 21, 59, tzinfo=dt_tz.utc))
    assert not is_within_hours(sandbox_account, datetime(2026, 11, 23, 22, 0, tzinfo=dt_tz.utc))
    # Tuesday 02:00 UTC is still Monday 21:00 in New York: closed, not "Tuesday"
    assert not is_within_hours(sandbox_account, datetime(2026, 11, 24, 2, 0, tzinfo=dt_tz.utc))


def test_outside_hours_rule(location, sandbox_account):
    amy = member(location, "amy")
    sandbox_account.business_hours = {"sun": [["00:00", "00:01"]]}
    sandbox_account.save()
    RoutingRule.objects.create(location=location, name="after hours", hours="outside", target="user", target_user=amy)
    decision = route_decide(account=sandbox_account, contact=sandbox_account.tag.contacts.model(location=location),
                            at=datetime(2026, 11, 23, 12, 0, tzinfo=dt_tz.utc))
    assert decision.assignee_id == amy.pk


def test_dry_run_page_explains(admin_client, sales_team, sandbox_account):
    html = admin_client.get("/routing/dry-run/", {"phone": "+14155559999", "account": sandbox_account.pk}).content.decode()
    assert "sales tag" in html and "amy" in html and "next in rotation" in html
    assert not Conversation.objects.exists()  # a dry run assigns nothing


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_capacity_holds_under_concurrent_assignment(sales_team, sandbox_account, location):
    team, users = sales_team
    team.strategy = Team.Strategy.LEAST_OPEN
    team.save()
    Membership.objects.filter(location=location).update(capacity=2)
    import conversations.receiving as receiving

    original = receiving.enqueue_on_commit
    receiving.enqueue_on_commit = lambda *a: None  # store only; the threads below process
    try:
        for i in range(12):
            webhook_events_record(account=sandbox_account, events=[
                InboundMessage(provider_id=f"c{i}", from_phone=f"+1415555{2000 + i}", name="", text="hi", at=datetime.now(dt_tz.utc))
            ])
    finally:
        receiving.enqueue_on_commit = original
    ids = list(InboundEvent.objects.values_list("id", flat=True))
    barrier = threading.Barrier(4)
    errors = []

    def worker(chunk):
        try:
            barrier.wait()
            for pk in chunk:
                inbound_event_process(event_id=pk)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(ids[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert InboundEvent.objects.filter(status="done").count() == 12
    per_agent = {u.username: Conversation.objects.filter(assignee=u).count() for u in users}
    assert per_agent == {"amy": 2, "ben": 2, "cid": 2}
    assert Conversation.objects.filter(assignee__isnull=True).count() == 6
