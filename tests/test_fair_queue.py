"""The fair queue (issue 19, point 10): when everyone in the chosen team is at capacity, away or
offline, a new conversation waits; as soon as capacity frees it goes, oldest first, to the
member with room, under routing's row locks."""
import logging
import random
import threading
import time
from datetime import datetime, timedelta, timezone as dt_tz

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.utils import timezone

from accounts.models import Membership
from accounts.providers.base import InboundMessage
from accounts.services import member_set_availability, member_update
from conversations.actions import conversation_assign, conversation_set_status, conversations_wake_snoozed
from conversations.models import Conversation, ConversationEvent, InboundEvent
from conversations.services import inbound_event_process, webhook_events_record
from routing.models import RoutingRule, Team, WaitingConversation
from routing.queue import queue_sweep
from routing.services import OPEN_STATES

OPEN = [str(s) for s in OPEN_STATES]


def member(location, name, **kw):
    user = get_user_model().objects.create_user(name)
    Membership.objects.create(user=user, location=location, role="agent", **kw)
    return user


def write_in(account, pid, phone):
    webhook_events_record(account=account, events=[
        InboundMessage(provider_id=pid, from_phone=phone, name="", text="hi", at=datetime.now(dt_tz.utc))
    ])
    return Conversation.objects.select_related("assignee").get(account=account, contact__phone=phone)


def waiting(team):
    return list(WaitingConversation.objects.filter(team=team).order_by("since", "id").values_list("conversation_id", flat=True))


@pytest.fixture
def team(location, sandbox_account):
    """Support: amy and ben, one open conversation each at most."""
    team = Team.objects.create(location=location, name="Support", strategy=Team.Strategy.ROUND_ROBIN, sticky=False)
    team.members.set([member(location, "amy", capacity=1), member(location, "ben", capacity=1)])
    rule = RoutingRule.objects.create(location=location, name="support", target="team", target_team=team, position=1)
    rule.tags.set([sandbox_account.tag])
    return team


def fill(team, account, n=2, start=0):
    return [write_in(account, f"f{start + i}", f"+1415555{3000 + start + i}") for i in range(n)]


def test_a_full_team_makes_new_conversations_wait_in_arrival_order(team, sandbox_account):
    amy_c, ben_c = fill(team, sandbox_account)
    assert {amy_c.assignee.username, ben_c.assignee.username} == {"amy", "ben"}
    w1 = write_in(sandbox_account, "w1", "+14155554001")
    w2 = write_in(sandbox_account, "w2", "+14155554002")
    assert w1.assignee is None and w2.assignee is None
    assert waiting(team) == [w1.pk, w2.pk]
    # a new message in a waiting conversation keeps its place
    write_in(sandbox_account, "w1-again", "+14155554001")
    assert waiting(team) == [w1.pk, w2.pk]


def test_resolving_frees_capacity_for_the_oldest_waiting(team, sandbox_account):
    amy_c, ben_c = fill(team, sandbox_account)
    w1 = write_in(sandbox_account, "w1", "+14155554001")
    w2 = write_in(sandbox_account, "w2", "+14155554002")
    conversation_set_status(conversation=amy_c, status="resolved")
    w1.refresh_from_db()
    assert w1.assignee == amy_c.assignee  # the oldest, to the member who has room
    assert waiting(team) == [w2.pk]
    event = ConversationEvent.objects.filter(conversation=w1, kind="assigned").get()
    assert "Support's queue" in event.reason and event.reason.startswith("waited")
    conversation_set_status(conversation=ben_c, status="snoozed", snooze_until=timezone.now() + timedelta(hours=1))
    w2.refresh_from_db()
    assert w2.assignee == ben_c.assignee and waiting(team) == []  # a snooze frees capacity too


def test_reassigning_frees_the_previous_assignee(team, sandbox_account, location, admin_user):
    amy_c, _ = fill(team, sandbox_account)
    w1 = write_in(sandbox_account, "w1", "+14155554001")
    amy = amy_c.assignee
    conversation_assign(conversation=amy_c, assignee=admin_user, reason="manual")  # admin is no team member
    w1.refresh_from_db()
    assert w1.assignee == amy and waiting(team) == []


def test_a_member_coming_online_takes_the_oldest(team, sandbox_account, location):
    amy, ben = team.members.order_by("username")
    Membership.objects.filter(user=ben).update(availability="offline")
    write_in(sandbox_account, "a", "+14155553000")  # amy's
    w1 = write_in(sandbox_account, "w1", "+14155554001")
    w2 = write_in(sandbox_account, "w2", "+14155554002")
    assert waiting(team) == [w1.pk, w2.pk]
    client = Client()
    client.force_login(ben)
    client.post("/me/availability/", {"availability": "online", "next": "/inbox/"})
    w1.refresh_from_db()
    assert w1.assignee == ben and waiting(team) == [w2.pk]


def test_raised_capacity_takes_waiting_conversations(team, sandbox_account, location, admin_client, api_client):
    fill(team, sandbox_account)
    waiters = [write_in(sandbox_account, f"w{i}", f"+1415555400{i}") for i in range(4)]
    amy, ben = team.members.order_by("username")
    member_ship = Membership.objects.get(user=amy)
    admin_client.post(f"/settings/members/{member_ship.pk}/", {"role": "agent", "capacity": "3"})
    assert Membership.objects.get(user=amy).capacity == 3
    assert waiting(team) == [waiters[2].pk, waiters[3].pk]  # the two oldest went to amy
    assert set(Conversation.objects.filter(pk__in=[waiters[0].pk, waiters[1].pk]).values_list("assignee", flat=True)) == {amy.pk}
    response = api_client.patch(f"/api/v1/users/{ben.pk}/", {"capacity": 2}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert waiting(team) == [waiters[3].pk]
    assert Conversation.objects.get(pk=waiters[2].pk).assignee_id == ben.pk


def test_a_member_added_to_the_team_takes_what_waits(team, sandbox_account, location, admin_client):
    fill(team, sandbox_account)
    w1 = write_in(sandbox_account, "w1", "+14155554001")
    cid = member(location, "cid")
    response = admin_client.post(f"/routing/teams/{team.pk}/", {
        "name": "Support", "strategy": "round_robin", "members": [u.pk for u in team.members.all()] + [cid.pk]})
    assert response.status_code == 302
    w1.refresh_from_db()
    assert w1.assignee == cid and waiting(team) == []


def test_assigned_by_hand_resolved_or_deleted_it_leaves_the_queue(team, sandbox_account, admin_user):
    fill(team, sandbox_account)
    w = [write_in(sandbox_account, f"w{i}", f"+1415555400{i}") for i in range(3)]
    conversation_assign(conversation=w[0], assignee=admin_user, reason="manual")
    conversation_set_status(conversation=w[1], status="resolved")
    Conversation.objects.filter(pk=w[2].pk).delete()
    assert waiting(team) == []


def test_a_newcomer_queues_behind_older_waiting_conversations(team, sandbox_account, location):
    """Room that appeared without an event (or before its drain ran) goes to the oldest, not
    to whoever writes next."""
    fill(team, sandbox_account)
    w1 = write_in(sandbox_account, "w1", "+14155554001")
    Membership.objects.filter(location=location).update(capacity=2)  # no event: nobody drained yet
    late = write_in(sandbox_account, "late", "+14155554009")
    w1.refresh_from_db()
    late.refresh_from_db()
    assert w1.assignee is not None  # the older one first
    assert late.assignee is not None  # and the newcomer too: there were two free places
    Membership.objects.filter(location=location).update(capacity=3)
    later = [write_in(sandbox_account, f"l{i}", f"+1415555410{i}") for i in range(3)]
    assert [c.pk for c in later if c.assignee is None] == waiting(team) == [later[2].pk]


def test_a_snoozed_waiting_conversation_keeps_its_place_and_is_taken_when_it_wakes(team, sandbox_account):
    amy_c, ben_c = fill(team, sandbox_account)
    w1 = write_in(sandbox_account, "w1", "+14155554001")
    w2 = write_in(sandbox_account, "w2", "+14155554002")
    conversation_set_status(conversation=w1, status="snoozed", snooze_until=timezone.now() + timedelta(minutes=5))
    conversation_set_status(conversation=amy_c, status="resolved")
    w2.refresh_from_db()
    assert w2.assignee == amy_c.assignee  # the snoozed one is skipped while it sleeps
    assert waiting(team) == [w1.pk]
    conversation_set_status(conversation=ben_c, status="resolved")  # room, but w1 still sleeps
    assert waiting(team) == [w1.pk]
    Conversation.objects.filter(pk=w1.pk).update(snoozed_until=timezone.now() - timedelta(seconds=1))
    conversations_wake_snoozed()
    assert waiting(team) == [] and Conversation.objects.get(pk=w1.pk).assignee == ben_c.assignee


def test_the_sweep_assigns_what_a_lost_drain_left(team, sandbox_account, location):
    fill(team, sandbox_account)
    w1 = write_in(sandbox_account, "w1", "+14155554001")
    Membership.objects.filter(location=location).update(capacity=2)  # as if the drain's worker died
    assert queue_sweep() == 1
    assert Conversation.objects.get(pk=w1.pk).assignee_id is not None and waiting(team) == []


def test_inbox_and_routing_page_show_the_queue_and_its_age(team, sandbox_account, admin_client, agent_client):
    fill(team, sandbox_account)
    w1 = write_in(sandbox_account, "w1", "+14155554001")
    WaitingConversation.objects.filter(conversation=w1).update(since=timezone.now() - timedelta(minutes=12))
    write_in(sandbox_account, "w2", "+14155554002")
    html = agent_client.get("/inbox/?view=unassigned").content.decode()
    assert 'id="waiting-queue"' in html and "Waiting for an agent" in html
    assert "oldest: 12 min" in html and f'data-waiting="{w1.pk}"' in html
    assert html.index(f'data-waiting="{w1.pk}"') < html.index('data-waiting="', html.index(f'data-waiting="{w1.pk}"') + 5)
    partial = admin_client.get("/routing/waiting/").content.decode()
    assert partial.strip().startswith('<div id="waiting-queue"') and "Support · 2 waiting" in partial
    page = admin_client.get("/routing/").content.decode()
    assert "Waiting for an agent" in page and "12 min" in page
    dry = admin_client.get("/routing/dry-run/", {"phone": "+14155559999", "account": sandbox_account.pk}).content.decode()
    assert "waits in the team&#x27;s queue behind 2" in dry or "waits in the team's queue behind 2" in dry
    Conversation.objects.filter(status="open").update(status="resolved")
    WaitingConversation.objects.all().delete()
    assert "Waiting for an agent" not in agent_client.get("/inbox/").content.decode()
    assert "Nobody is waiting" in admin_client.get("/routing/").content.decode()


# --- concurrency ----------------------------------------------------------------------------------
CAPACITY = 3
ARRIVALS = 40
RESOLVED_WHILE_ARRIVING = 20


def _over_capacity(location) -> dict:
    """One statement, so one consistent snapshot: members holding more open conversations than their capacity."""
    rows = (Conversation.objects.filter(location=location, status__in=OPEN, assignee__isnull=False)
            .values("assignee_id").annotate(n=Count("id")))
    return {r["assignee_id"]: r["n"] for r in rows if r["n"] > CAPACITY}


def _left_behind(team) -> list[int]:
    """Waiting conversations while some online member of their team has room, and open
    unassigned conversations that are in no queue."""
    member_ids = list(team.members.values_list("id", flat=True))
    online = set(Membership.objects.filter(user_id__in=member_ids, availability="online").values_list("user_id", flat=True))
    load = dict(Conversation.objects.filter(assignee_id__in=member_ids, status__in=OPEN).values("assignee_id")
                .annotate(n=Count("id")).values_list("assignee_id", "n"))
    room = [uid for uid in online if load.get(uid, 0) < CAPACITY]
    waiting_open = waiting(team)
    lost = list(Conversation.objects.filter(location_id=team.location_id, status__in=OPEN, assignee__isnull=True)
                .exclude(pk__in=waiting_open).values_list("pk", flat=True))
    return (waiting_open if room else []) + lost


def _run(workers):
    threads = [threading.Thread(target=w) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "a worker hung (a lock never released?)"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_many_arriving_and_resolving_at_once_never_exceed_capacity_nor_leave_anyone_waiting(team, sandbox_account, location, caplog):
    caplog.set_level(logging.ERROR)
    for name in ("cid", "dee"):
        team.members.add(member(location, name))
    Membership.objects.filter(location=location).update(capacity=CAPACITY)
    import conversations.receiving as receiving

    original = receiving.enqueue_on_commit
    receiving.enqueue_on_commit = lambda *a: None  # store only; the threads below file them
    try:
        for i in range(ARRIVALS):
            webhook_events_record(account=sandbox_account, events=[
                InboundMessage(provider_id=f"c{i}", from_phone=f"+1415556{1000 + i}", name="", text="hi", at=datetime.now(dt_tz.utc))])
    finally:
        receiving.enqueue_on_commit = original
    ids = list(InboundEvent.objects.order_by("id").values_list("id", flat=True))
    errors, violations, done = [], [], threading.Event()
    resolved = []
    lock = threading.Lock()
    barrier = threading.Barrier(4 + 3 + 1 + 1)

    def guarded(func):
        def run():
            try:
                barrier.wait()
                func()
            except Exception as exc:  # surfaced below
                errors.append(repr(exc))
            finally:
                connection.close()
        return run

    def filer(chunk):
        return guarded(lambda: [inbound_event_process(event_id=pk) for pk in chunk])

    def resolver():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with lock:
                if len(resolved) >= RESOLVED_WHILE_ARRIVING:
                    return
            pk = (Conversation.objects.filter(location=location, status="open", assignee__isnull=False)
                  .exclude(pk__in=resolved).order_by("?").values_list("pk", flat=True).first())
            if pk is None:
                time.sleep(0.01)
                continue
            with lock:
                if pk in resolved or len(resolved) >= RESOLVED_WHILE_ARRIVING:
                    continue
                resolved.append(pk)
            conversation_set_status(conversation=Conversation.objects.get(pk=pk), status="resolved")
        raise AssertionError("resolvers found too few assigned conversations")

    def toggler():
        dee = Membership.objects.get(user__username="dee")
        for _ in range(6):
            member_set_availability(membership=dee, availability="away")
            time.sleep(random.uniform(0, 0.02))
            member_set_availability(membership=dee, availability="online")

    def monitor():
        while not done.is_set():
            over = _over_capacity(location)
            if over:
                violations.append(over)
            time.sleep(0.002)

    monitor_thread = threading.Thread(target=guarded(monitor))
    monitor_thread.start()
    _run([filer(ids[i::4]) for i in range(4)] + [guarded(resolver) for _ in range(3)] + [guarded(toggler)])
    assert not errors
    assert InboundEvent.objects.filter(status="done").count() == ARRIVALS
    assert _left_behind(team) == []
    # everyone is full again and the rest wait: 40 arrived, 20 resolved, 4 × 3 places
    assert Conversation.objects.filter(location=location, status="open", assignee__isnull=False).count() == 4 * CAPACITY
    assert len(waiting(team)) == ARRIVALS - RESOLVED_WHILE_ARRIVING - 4 * CAPACITY

    # then every assigned conversation is resolved at once: the queue empties into the freed places
    assigned = list(Conversation.objects.filter(location=location, status="open", assignee__isnull=False).values_list("pk", flat=True))
    barrier = threading.Barrier(len(assigned))
    _run([guarded(lambda pk=pk: conversation_set_status(conversation=Conversation.objects.get(pk=pk), status="resolved"))
          for pk in assigned])
    done.set()
    monitor_thread.join()
    assert not errors
    assert waiting(team) == [] and _left_behind(team) == []
    left = ARRIVALS - RESOLVED_WHILE_ARRIVING - 4 * CAPACITY
    assert Conversation.objects.filter(location=location, status="open", assignee__isnull=False).count() == left
    assert ConversationEvent.objects.filter(kind="assigned", reason__contains="queue").count() >= left
    assert violations == [], f"capacity exceeded: {violations[:3]}"
    assert _over_capacity(location) == {}
    assert not [r for r in caplog.records if "fair queue" in r.getMessage()], "a drain failed"


def test_the_teams_api_says_how_many_wait_and_since_when(team, sandbox_account, api_client):
    fill(team, sandbox_account)
    w1 = write_in(sandbox_account, "w1", "+14155554001")
    write_in(sandbox_account, "w2", "+14155554002")
    body = api_client.get(f"/api/v1/teams/{team.pk}/").json()
    assert body["waiting"] == 2
    assert body["oldest_waiting_since"] == WaitingConversation.objects.get(conversation=w1).since.isoformat().replace("+00:00", "Z")


def test_the_minute_sweep_includes_the_queue():
    from whatsnap.tasks import sweeps

    assert queue_sweep in sweeps()
