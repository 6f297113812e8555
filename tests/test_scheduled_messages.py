"""Scheduled replies (issue 18, point 4): stored rows that leave at their time (or when the
account's business hours next begin) exactly once, through the paced queue with merge fields
filled in then; editable and cancellable until they leave; failed with the reason when they
cannot leave. Business hours' next opening (accounts.hours.next_open)."""
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule

from accounts.hours import next_open
from accounts.models import Membership
from accounts.services import account_disconnect
from contacts.models import Contact
from contacts.services import contact_merge
from conversations.models import Conversation, Message, ScheduledMessage
from conversations.scheduling import (
    scheduled_message_cancel, scheduled_message_create, scheduled_message_send, scheduled_message_update, scheduled_messages_sweep)
from tests.test_api_support import *  # noqa: F401,F403  (fixtures)
from tests.test_api_support import assert_error, receive
from whatsnap import events
from whatsnap.errors import ApplicationError
from whatsnap.tasks import run_sweeps

NY = ZoneInfo("America/New_York")
WEEK_9_TO_5 = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


@pytest.fixture(autouse=True)
def no_pacing_waits(monkeypatch):
    monkeypatch.setattr("conversations.pacing.sleep", lambda seconds: None)


@pytest.fixture
def conversation(sandbox_account):
    receive(sandbox_account, phone="+14155550123", name="Ada Lovelace", text="hello")
    return Conversation.objects.select_related("contact", "account").get()


def _later(**kw):
    return timezone.now() + timedelta(**(kw or {"hours": 2}))


def _due(scheduled):
    """Time passes: the row's moment has come."""
    ScheduledMessage.objects.filter(pk=scheduled.pk).update(send_at=timezone.now() - timedelta(seconds=1))


def _schedule_of(scheduled):
    return Schedule.objects.filter(name=f"scheduled-message-{scheduled.pk}").first()


# --- business hours: the next opening ----------------------------------------------------------
def _at(y, m, d, hh, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=NY)


@pytest.mark.parametrize("now, expected", [
    (_at(2026, 12, 1, 10), _at(2026, 12, 1, 10)),    # Tuesday, open: now
    (_at(2026, 12, 1, 7, 30), _at(2026, 12, 1, 9)),  # before opening: today at 9
    (_at(2026, 12, 1, 17), _at(2026, 12, 2, 9)),     # closing time: tomorrow at 9
    (_at(2026, 12, 4, 18), _at(2026, 12, 7, 9)),     # Friday evening: Monday at 9
    (_at(2026, 12, 5, 12), _at(2026, 12, 7, 9)),     # Saturday: Monday
])
def test_next_open(sandbox_account, now, expected):
    sandbox_account.business_hours, sandbox_account.timezone = WEEK_9_TO_5, "America/New_York"
    assert next_open(sandbox_account, now) == expected


def test_next_open_split_days_zones_and_no_hours(sandbox_account):
    sandbox_account.timezone = "Europe/Berlin"
    sandbox_account.business_hours = {"sat": [["14:00", "18:00"], ["09:00", "12:00"]]}
    berlin = ZoneInfo("Europe/Berlin")
    assert next_open(sandbox_account, datetime(2026, 12, 5, 12, 30, tzinfo=berlin)) == datetime(2026, 12, 5, 14, tzinfo=berlin)
    # asked in another zone: the same moment
    assert next_open(sandbox_account, datetime(2026, 12, 5, 2, tzinfo=NY)) == datetime(2026, 12, 5, 9, tzinfo=berlin)
    # across the spring change (29 March 2026 in Berlin): 09:00 local, after the clocks moved
    sandbox_account.business_hours = {"mon": [["09:00", "17:00"]]}
    assert next_open(sandbox_account, datetime(2026, 3, 28, 12, tzinfo=berlin)).utcoffset() == timedelta(hours=2)
    sandbox_account.business_hours = {}
    now = timezone.now()
    assert next_open(sandbox_account, now) == now  # no hours: always open
    sandbox_account.business_hours = {"mon": []}
    assert next_open(sandbox_account, now) is None  # hours set, never open


# --- scheduling --------------------------------------------------------------------------------
def test_scheduling_stores_a_row_and_its_one_off_schedule(conversation, admin_user):
    when = _later(hours=3)
    with events.captured() as recorded:
        scheduled = scheduled_message_create(conversation=conversation, text="Hi {{first_name}}", send_at=when, created_by=admin_user)
    assert scheduled.status == "pending" and scheduled.send_at == when and scheduled.account == conversation.account
    schedule = _schedule_of(scheduled)
    assert schedule.func == "conversations.scheduling.scheduled_message_send" and schedule.args == f"({scheduled.pk},)"
    assert schedule.next_run == when and schedule.schedule_type == Schedule.ONCE
    assert [e.name for e in recorded] == ["scheduled_message.created"]
    assert not Message.objects.filter(direction="outbound").exists()


@pytest.mark.parametrize("kwargs, field", [
    ({"text": "Hi", "send_at": None}, "send_at"),
    ({"text": "Hi", "send_at": "past"}, "send_at"),
    ({"text": "Hi", "send_at": "far"}, "send_at"),
    ({"text": "   ", "send_at": "soon"}, "text"),
    ({"text": "Hi {{frist_name}}", "send_at": "soon"}, "text"),
    ({"text": "Hi", "at_business_hours": True}, "send_at"),  # the account has no business hours
])
def test_scheduling_refusals(conversation, kwargs, field):
    times = {None: None, "past": timezone.now() - timedelta(minutes=1), "far": timezone.now() + timedelta(days=400),
             "soon": _later()}
    if "send_at" in kwargs:
        kwargs = {**kwargs, "send_at": times[kwargs["send_at"]]}
    with pytest.raises(ApplicationError) as caught:
        scheduled_message_create(conversation=conversation, **kwargs)
    assert caught.value.field == field
    assert not ScheduledMessage.objects.exists() and not Schedule.objects.filter(name__startswith="scheduled-message-").exists()


def test_at_the_next_business_hours(conversation):
    account = conversation.account
    account.business_hours = {d: [["00:00", "00:01"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    account.timezone = "UTC"
    account.save()
    now = timezone.now()
    scheduled = scheduled_message_create(conversation=conversation, text="Morning!", at_business_hours=True)
    expected = next_open(account, now)
    assert scheduled.at_business_hours and abs((scheduled.send_at - expected).total_seconds()) < 2


def test_at_business_hours_while_open_leaves_at_once(conversation):
    now = timezone.now().astimezone(ZoneInfo("UTC"))
    if now.strftime("%H:%M") >= "23:58":
        pytest.skip("the day's hours end at 23:59")
    account = conversation.account
    account.business_hours = {d: [["00:00", "23:59"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    account.timezone = "UTC"
    account.save()
    scheduled = scheduled_message_create(conversation=conversation, text="Right away, {{first_name}}", at_business_hours=True)
    scheduled.refresh_from_db()  # queued on commit (tasks run inline here), not at the scheduler's next look
    assert scheduled.status == "sent" and scheduled.message.text == "Right away, Ada"


def test_an_opted_out_contact_cannot_be_scheduled(conversation):
    conversation.contact.opted_out = True
    conversation.contact.save()
    with pytest.raises(ApplicationError) as caught:
        scheduled_message_create(conversation=conversation, text="Hi", send_at=_later())
    assert caught.value.code == "opted_out"


# --- leaving: once, with merge fields, or failed with the reason --------------------------------
def test_a_due_message_leaves_once_with_merge_fields_filled_in(conversation, admin_user):
    scheduled = scheduled_message_create(conversation=conversation, text="Hi {{first_name|there}}, {{agent}} here",
                                         send_at=_later(), created_by=admin_user)
    assert scheduled_message_send(scheduled.pk) is False  # not due yet: nothing
    assert not Message.objects.filter(direction="outbound").exists()
    _due(scheduled)
    with events.captured() as recorded:
        assert scheduled_message_send(scheduled.pk) is True
    message = Message.objects.get(direction="outbound")
    assert message.text == "Hi Ada, owner here" and message.author == admin_user and message.status == "delivered"
    scheduled.refresh_from_db()
    assert scheduled.status == "sent" and scheduled.message == message
    assert _schedule_of(scheduled) is None  # its one-off schedule is done with
    assert "scheduled_message.sent" in [e.name for e in recorded] and "message.queued" in [e.name for e in recorded]
    # the sweep, the schedule firing late, anyone: never twice
    assert scheduled_message_send(scheduled.pk) is False
    assert scheduled_messages_sweep() == 0
    assert Message.objects.filter(direction="outbound").count() == 1
    with pytest.raises(ApplicationError) as caught:
        scheduled_message_cancel(scheduled=scheduled)
    assert caught.value.code == "already_sent"
    with pytest.raises(ApplicationError):
        scheduled_message_update(scheduled=scheduled, text="changed")


def test_the_minute_sweep_sends_what_its_schedule_missed(conversation):
    scheduled = scheduled_message_create(conversation=conversation, text="Reminder", send_at=_later())
    Schedule.objects.filter(name=f"scheduled-message-{scheduled.pk}").delete()  # lost (restart, broker down)
    _due(scheduled)
    run_sweeps()  # tasks run inline in the tests
    scheduled.refresh_from_db()
    assert scheduled.status == "sent" and scheduled.message.text == "Reminder"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent claims need a server database")
def test_two_claimers_at_once_send_it_once(conversation):
    scheduled = scheduled_message_create(conversation=conversation, text="Once", send_at=_later())
    _due(scheduled)
    barrier, results = threading.Barrier(4), []

    def claim():
        try:
            barrier.wait()
            results.append(scheduled_message_send(scheduled.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert Message.objects.filter(direction="outbound", text="Once").count() == 1


def test_what_cannot_leave_fails_with_the_reason(conversation, sandbox_account):
    opted = scheduled_message_create(conversation=conversation, text="One", send_at=_later())
    disconnected = scheduled_message_create(conversation=conversation, text="Two", send_at=_later(hours=3))
    conversation.contact.opted_out = True
    conversation.contact.save()
    _due(opted)
    with events.captured() as recorded:
        assert scheduled_message_send(opted.pk) is False
    opted.refresh_from_db()
    assert opted.status == "failed" and "opted out" in opted.error and opted.message is None
    assert [e.name for e in recorded] == ["scheduled_message.failed"]
    conversation.contact.opted_out = False
    conversation.contact.save()
    account_disconnect(account=sandbox_account)
    _due(disconnected)
    scheduled_messages_sweep()
    disconnected.refresh_from_db()
    assert disconnected.status == "failed" and "not connected" in disconnected.error
    assert not Message.objects.filter(direction="outbound").exists()
    # a failed one may be scheduled again (and cancelled, i.e. dismissed)
    again = scheduled_message_update(scheduled=opted, send_at=_later())
    assert again.status == "pending" and again.error == "" and _schedule_of(again) is not None


def test_edit_moves_its_schedule_and_cancel_removes_it(conversation):
    scheduled = scheduled_message_create(conversation=conversation, text="Hi", send_at=_later())
    later = _later(days=2)
    with events.captured() as recorded:
        scheduled_message_update(scheduled=scheduled, text="Hi {{first_name}}", send_at=later)
    scheduled.refresh_from_db()
    assert scheduled.text == "Hi {{first_name}}" and scheduled.send_at == later and _schedule_of(scheduled).next_run == later
    assert Schedule.objects.filter(name=f"scheduled-message-{scheduled.pk}").count() == 1
    scheduled_message_update(scheduled=scheduled, text="Only the text")  # the time stays
    scheduled.refresh_from_db()
    assert scheduled.send_at == later and scheduled.text == "Only the text"
    scheduled_message_cancel(scheduled=scheduled)
    scheduled.refresh_from_db()
    assert scheduled.status == "cancelled" and _schedule_of(scheduled) is None
    assert [e.name for e in recorded] == ["scheduled_message.changed"]
    _due(scheduled)
    assert scheduled_message_send(scheduled.pk) is False and not Message.objects.filter(direction="outbound").exists()


# --- the inbox ---------------------------------------------------------------------------------
def _hx(client, url, data=None):
    return client.post(url, data or {}, HTTP_HX_REQUEST="true")


def test_schedule_from_the_composer_in_the_members_zone(admin_client, admin_user, location, conversation):
    Membership.objects.filter(user=admin_user).update(timezone="Europe/Paris")
    local = (timezone.now() + timedelta(days=1)).astimezone(ZoneInfo("Europe/Paris")).replace(hour=9, minute=30, second=0, microsecond=0)
    page = admin_client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert "Europe/Paris time (your time zone)" in page and "has no business hours set" in page
    response = _hx(admin_client, f"/inbox/{conversation.pk}/schedule/",
                   {"text": "See you {{first_name}}", "mode": "reply", "when": "at", "send_at": local.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 200
    scheduled = ScheduledMessage.objects.get()
    assert scheduled.send_at == local and scheduled.created_by == admin_user and scheduled.text == "See you {{first_name}}"
    body = response.content.decode()
    assert "Scheduled for " + local.strftime("%a %-d %b, %H:%M") in body and 'id="composer-error"' not in body
    assert "See you Ada</div>" in body  # shown as the contact will read it
    # the location's zone for a member without their own
    Membership.objects.filter(user=admin_user).update(timezone="")
    assert "America/New_York time (the location&#x27;s time zone)" in admin_client.get(f"/inbox/{conversation.pk}/").content.decode()


def test_composer_errors_are_shown_in_place_with_the_text_kept(admin_client, conversation):
    past = (timezone.now() - timedelta(hours=1)).astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%dT%H:%M")
    response = _hx(admin_client, f"/inbox/{conversation.pk}/schedule/", {"text": "Keep me", "mode": "reply", "when": "at", "send_at": past})
    body = response.content.decode()
    assert "That time has passed" in body and "Keep me</textarea>" in body and 'id="schedule-menu" open' in body
    # inside the popover, right after the time it is about (not behind it, above the composer)
    pop = body.split('<div class="schedule-pop">', 1)[1].split("</div>", 1)[0]
    after_time = pop.split('id="schedule-at"', 1)[1]
    assert 'aria-invalid="true"' in after_time.split(">", 1)[0]
    assert after_time.split("</p>", 1)[1].lstrip().startswith('<p class="errorlist" id="schedule-error" role="alert">That time has passed')
    assert 'id="composer-error"' not in body and body.count("That time has passed") == 1
    response = _hx(admin_client, f"/inbox/{conversation.pk}/schedule/", {"text": "A note", "mode": "note", "when": "at", "send_at": past})
    pop = response.content.decode().split('<div class="schedule-pop">', 1)[1].split("</div>", 1)[0]
    assert pop.lstrip().startswith('<p class="errorlist" id="schedule-error" role="alert">Private notes are saved at once; only replies')
    response = _hx(admin_client, f"/inbox/{conversation.pk}/schedule/", {"text": "x", "mode": "reply", "when": "at", "send_at": "soon"})
    assert "Give a date and time" in response.content.decode()
    assert not ScheduledMessage.objects.exists()


def test_edit_and_cancel_in_the_inbox_own_or_admin(admin_client, agent_client, agent_user, admin_user, conversation):
    mine = scheduled_message_create(conversation=conversation, text="Agent's", send_at=_later(), created_by=agent_user)
    theirs = scheduled_message_create(conversation=conversation, text="Owner's", send_at=_later(hours=5), created_by=admin_user)
    listing = agent_client.get(f"/inbox/{conversation.pk}/scheduled/").content.decode()
    assert listing.count("scheduled-edit-link") == 1 and "Owner&#x27;s" in listing
    form = agent_client.get(f"/inbox/scheduled/{mine.pk}/edit/", HTTP_HX_REQUEST="true").content.decode()
    assert 'class="scheduled-edit"' in form and "Agent&#x27;s</textarea>" in form
    new_time = (timezone.now() + timedelta(days=3)).astimezone(ZoneInfo("America/New_York")).replace(second=0, microsecond=0)
    response = _hx(agent_client, f"/inbox/scheduled/{mine.pk}/edit/", {"text": "Agent's, edited", "when": "at",
                                                                       "send_at": new_time.strftime("%Y-%m-%dT%H:%M")})
    mine.refresh_from_db()
    assert mine.text == "Agent's, edited" and mine.send_at == new_time
    assert "Agent&#x27;s, edited" in response.content.decode()
    # an edit error stays in the form
    response = _hx(agent_client, f"/inbox/scheduled/{mine.pk}/edit/", {"text": "", "when": "at", "send_at": ""})
    assert "Type the message to schedule" in response.content.decode() and 'class="scheduled-edit"' in response.content.decode()
    # an agent cannot change an admin's; the admin can change anyone's
    assert _hx(agent_client, f"/inbox/scheduled/{theirs.pk}/cancel/").status_code == 403
    assert _hx(agent_client, f"/inbox/scheduled/{theirs.pk}/edit/", {"text": "x"}).status_code == 403
    assert _hx(admin_client, f"/inbox/scheduled/{mine.pk}/cancel/").status_code == 200
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.status == "cancelled" and theirs.status == "pending"
    response = _hx(admin_client, f"/inbox/scheduled/{mine.pk}/cancel/")
    assert "It was cancelled." in response.content.decode()


def test_another_locations_scheduled_messages_are_not_found(outsider_client, conversation):
    scheduled = scheduled_message_create(conversation=conversation, text="Hi", send_at=_later())
    assert outsider_client.get(f"/inbox/{conversation.pk}/scheduled/").status_code == 404
    assert _hx(outsider_client, f"/inbox/scheduled/{scheduled.pk}/cancel/").status_code == 404
    assert _hx(outsider_client, f"/inbox/scheduled/{scheduled.pk}/edit/", {"text": "x"}).status_code == 404
    assert _hx(outsider_client, f"/inbox/{conversation.pk}/schedule/", {"text": "x", "when": "at", "send_at": "2030-01-01T09:00"}).status_code == 404
    scheduled.refresh_from_db()
    assert scheduled.status == "pending" and scheduled.text == "Hi" and ScheduledMessage.objects.count() == 1


# --- the API -----------------------------------------------------------------------------------
def _day(days=30):
    return (timezone.now() + timedelta(days=days)).date()


def test_api_schedule_list_change_cancel(api_client, other_api, conversation):
    url = f"/api/v1/conversations/{conversation.pk}/scheduled/"
    day = _day()
    response = api_client.post(url, {"text": "Hi {{first_name}}", "send_at": f"{day}T09:00:00"}, format="json")
    assert response.status_code == 201, response.json()
    row = response.json()
    # without an offset: the location's zone (America/New_York), answered in it
    nine_in_ny = datetime.combine(day, datetime.min.time().replace(hour=9), tzinfo=NY)
    assert row["send_at"] == nine_in_ny.isoformat() and row["status"] == "pending" and row["conversation"] == conversation.pk
    assert ScheduledMessage.objects.get().send_at == nine_in_ny
    assert [r["id"] for r in api_client.get(url).json()["results"]] == [row["id"]]
    assert_error(api_client.post(url, {"text": "Hi"}, format="json"), 400, field="send_at")
    assert_error(api_client.post(url, {"text": "Hi", "at_business_hours": True}, format="json"), 400, "no_business_hours", "send_at")
    assert_error(api_client.post(url, {"text": "Hi", "send_at": "2001-01-01T09:00:00Z"}, format="json"), 400, field="send_at")
    moved = f"{_day(31)}T10:00:00+01:00"
    response = api_client.patch(f"/api/v1/scheduled-messages/{row['id']}/", {"send_at": moved}, format="json")
    assert response.status_code == 200 and response.json()["send_at"] == datetime.fromisoformat(moved).astimezone(NY).isoformat()
    assert response.json()["text"] == "Hi {{first_name}}"
    assert api_client.get("/api/v1/scheduled-messages/?status=pending").json()["results"][0]["id"] == row["id"]
    # another location: nothing
    assert_error(other_api.get(url), 404)
    assert_error(other_api.post(url, {"text": "x", "send_at": f"{day}T09:00:00Z"}, format="json"), 404)
    assert_error(other_api.post(f"/api/v1/scheduled-messages/{row['id']}/cancel/"), 404)
    assert_error(api_client.get("/api/v1/conversations/99999999/scheduled/"), 404)
    response = api_client.post(f"/api/v1/scheduled-messages/{row['id']}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert_error(api_client.post(f"/api/v1/scheduled-messages/{row['id']}/cancel/"), 400, "cancelled")


def test_api_agent_tokens_schedule_in_their_conversations_and_change_their_own(agent_api, api_client, agent_user, conversation):
    url = f"/api/v1/conversations/{conversation.pk}/scheduled/"
    at = f"{_day()}T09:00:00Z"
    assert_error(agent_api.post(url, {"text": "Hi", "send_at": at}, format="json"), 403)
    assert_error(agent_api.get(url), 403)
    Conversation.objects.filter(pk=conversation.pk).update(assignee=agent_user)
    response = agent_api.post(url, {"text": "Hi", "send_at": at}, format="json")
    assert response.status_code == 201 and response.json()["created_by"] == agent_user.pk
    admins = api_client.post(url, {"text": "From the location", "send_at": at}, format="json").json()
    assert_error(agent_api.patch(f"/api/v1/scheduled-messages/{admins['id']}/", {"text": "mine now"}, format="json"), 403)
    assert_error(agent_api.post(f"/api/v1/scheduled-messages/{admins['id']}/cancel/"), 403)
    assert agent_api.post(f"/api/v1/scheduled-messages/{response.json()['id']}/cancel/").status_code == 200
    assert api_client.post(f"/api/v1/scheduled-messages/{admins['id']}/cancel/").status_code == 200  # admin tokens: any


# --- elsewhere: a contact merge, the Django admin ---------------------------------------------
def test_a_merge_that_folds_two_threads_keeps_their_scheduled_replies(sandbox_account, location):
    receive(sandbox_account, phone="+14155550123", name="Ada", text="one")
    receive(sandbox_account, phone="+14155550124", name="Ada again", text="two")
    keep, fold = (Conversation.objects.get(contact__phone=p) for p in ("+14155550123", "+14155550124"))
    scheduled = scheduled_message_create(conversation=fold, text="Still coming", send_at=_later())
    contact_merge(source=fold.contact, into=Contact.objects.get(phone="+14155550123"))
    scheduled.refresh_from_db()
    assert scheduled.conversation_id == keep.pk and scheduled.status == "pending"


def test_the_admin_lists_and_cancels_scheduled_messages(location, conversation):
    staff = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__endswith="scheduledmessage"))
    Membership.objects.create(user=staff, location=location, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(staff)
    scheduled = scheduled_message_create(conversation=conversation, text="From the admin's view", send_at=_later())
    page = client.get("/admin/conversations/scheduledmessage/")
    assert page.status_code == 200 and page.context["cl"].result_count == 1
    response = client.post("/admin/conversations/scheduledmessage/", {"action": "cancel", "_selected_action": [scheduled.pk]})
    assert response.status_code == 302
    scheduled.refresh_from_db()
    assert scheduled.status == "cancelled" and _schedule_of(scheduled) is None


def _radio(form, value):
    return form.split(f'name="when" value="{value}"', 1)[1].split(">", 1)[0]


def test_editing_a_reply_for_the_next_business_hours_keeps_that_choice(admin_client, admin_user, conversation):
    account = conversation.account
    account.business_hours = {d: [["00:00", "00:01"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    account.timezone = "UTC"
    account.save()
    by_hours = scheduled_message_create(conversation=conversation, text="Morning!", at_business_hours=True, created_by=admin_user)
    at_time = scheduled_message_create(conversation=conversation, text="Later", send_at=_later(days=2), created_by=admin_user)
    form = admin_client.get(f"/inbox/scheduled/{by_hours.pk}/edit/", HTTP_HX_REQUEST="true").content.decode()
    assert "checked" in _radio(form, "hours") and "checked" not in _radio(form, "at")
    form = admin_client.get(f"/inbox/scheduled/{at_time.pk}/edit/", HTTP_HX_REQUEST="true").content.decode()
    assert "checked" in _radio(form, "at") and "checked" not in _radio(form, "hours")
    # saving the form as it opened keeps "at the next business hours" (the browser sends the time field too)
    _hx(admin_client, f"/inbox/scheduled/{by_hours.pk}/edit/",
        {"text": "Good morning!", "when": "hours", "send_at": by_hours.send_at.strftime("%Y-%m-%dT%H:%M")})
    by_hours.refresh_from_db()
    assert by_hours.text == "Good morning!" and by_hours.at_business_hours
    # a refused edit opens again with what was chosen
    form = _hx(admin_client, f"/inbox/scheduled/{by_hours.pk}/edit/", {"text": "", "when": "hours"}).content.decode()
    assert "Type the message to schedule" in form and "checked" in _radio(form, "hours")


def test_a_cancelled_reply_gives_its_text_back(admin_client, admin_user, conversation):
    scheduled = scheduled_message_create(conversation=conversation, text="See you {{first_name}}", send_at=_later(),
                                         created_by=admin_user)
    body = _hx(admin_client, f"/inbox/scheduled/{scheduled.pk}/cancel/").content.decode()
    scheduled.refresh_from_db()
    assert scheduled.status == "cancelled"
    # as the contact would have read it: the composer sends replies as typed
    assert 'data-cancelled-text="See you Ada"' in body and "Cancelled. Its text: “See you Ada”" in body
    # a second cancel has nothing to give back
    again = _hx(admin_client, f"/inbox/scheduled/{scheduled.pk}/cancel/").content.decode()
    assert "It was cancelled." in again and "data-cancelled-text" not in again
    # without htmx the text is in the page's message
    other = scheduled_message_create(conversation=conversation, text="Bye", send_at=_later(), created_by=admin_user)
    page = admin_client.post(f"/inbox/scheduled/{other.pk}/cancel/", follow=True).content.decode()
    assert "Scheduled reply cancelled. Its text: Bye" in page
