"""Notifications of a new message (issue 19.6): each member's preferences on /settings/, the
unread count the tab title shows (/inbox/notifications/), and what the live event tells the
location's open pages — whom the message is for and what a notification shows."""
from datetime import datetime, timezone as dt_tz

from django.test import Client

from accounts.models import Membership
from accounts.providers.base import InboundMessage
from conversations.actions import conversation_assign, conversation_set_status
from conversations.models import Conversation
from conversations.services import webhook_events_record
from whatsnap.models import LiveEvent


def write_in(account, pid, phone="+14155550123", name="Ada", text="hello"):
    webhook_events_record(account=account, events=[
        InboundMessage(provider_id=pid, from_phone=phone, name=name, text=text, at=datetime.now(dt_tz.utc))])
    return Conversation.objects.get(account=account, contact__phone=phone)


def received_events() -> list[dict]:
    return [row.payload for row in LiveEvent.objects.order_by("id") if row.payload["event"] == "message.received"]


def test_every_member_chooses_their_notifications_on_the_settings_page(agent_client, agent_user, admin_user):
    page = agent_client.get("/settings/").content.decode()
    assert 'id="notification-prefs"' in page and 'name="notify_browser" id="notify-browser" checked' in page
    assert 'name="notify_unassigned" id="notify-unassigned" >' in page  # off until asked for

    answer = agent_client.post("/settings/me/notifications/", {"notify_sound": "on", "notify_unassigned": "on"})
    assert answer.status_code == 302 and answer["Location"] == "/settings/"
    mine = Membership.objects.get(user=agent_user)
    assert (mine.notify_browser, mine.notify_sound, mine.notify_unassigned) == (False, True, True)
    assert "a sound for a new message in your conversations and unassigned ones" in agent_client.get("/settings/").content.decode()
    theirs = Membership.objects.get(user=admin_user)  # someone else's stay as they were
    assert (theirs.notify_browser, theirs.notify_sound, theirs.notify_unassigned) == (True, True, False)

    agent_client.post("/settings/me/notifications/", {})
    mine.refresh_from_db()
    assert (mine.notify_browser, mine.notify_sound, mine.notify_unassigned) == (False, False, False)
    assert agent_client.get("/settings/me/notifications/").status_code == 405
    assert Client().post("/settings/me/notifications/", {"notify_sound": "on"}).status_code == 302  # to the login page


def test_a_new_message_tells_the_pages_whom_it_is_for_and_what_to_show(sandbox_account, agent_user):
    # routing assigns it (the account's default assignee) in the filing transaction: the event says so
    sandbox_account.default_assignee = agent_user
    sandbox_account.save(update_fields=["default_assignee"])
    conversation = write_in(sandbox_account, "n-1", name="Ada Lovelace", text="Is the order on its way? " + "x" * 200)
    event = received_events()[-1]
    assert event["data"]["conversation"] == conversation.pk and event["data"]["assignee"] == agent_user.pk
    assert event["data"]["contact"] == "Ada Lovelace"
    assert event["data"]["preview"].startswith("Is the order on its way?") and len(event["data"]["preview"]) == 100
    assert event["data"]["preview"].endswith("…")

    sandbox_account.default_assignee = None
    sandbox_account.save(update_fields=["default_assignee"])
    conversation_assign(conversation=conversation, assignee=None)
    write_in(sandbox_account, "n-2", name="Ada Lovelace", text="hello?")
    assert received_events()[-1]["data"]["assignee"] is None and received_events()[-1]["data"]["preview"] == "hello?"
    # the location's group only: another location's pages listen on another group
    assert {row.group for row in LiveEvent.objects.all()} == {f"location.{sandbox_account.location_id}"}


def test_the_tab_title_counts_my_unread_conversations_and_unassigned_ones_by_preference(
        agent_client, agent_user, admin_user, sandbox_account, outsider_client):
    mine = write_in(sandbox_account, "u-1", phone="+14155550101")
    conversation_assign(conversation=mine, assignee=agent_user)
    write_in(sandbox_account, "u-2", phone="+14155550102")  # unassigned
    theirs = write_in(sandbox_account, "u-3", phone="+14155550103")
    conversation_assign(conversation=theirs, assignee=admin_user)
    done = write_in(sandbox_account, "u-4", phone="+14155550104")
    conversation_assign(conversation=done, assignee=agent_user)
    conversation_set_status(conversation=done, status="resolved")

    state = agent_client.get("/inbox/notifications/")
    assert state["Cache-Control"] == "no-store"
    assert state.json() == {"me": agent_user.pk, "unread": 1, "browser": True, "sound": True, "unassigned": False}
    Membership.objects.filter(user=agent_user).update(notify_unassigned=True, notify_browser=False)
    assert agent_client.get("/inbox/notifications/").json() | {"me": 0} == {"me": 0, "unread": 2, "browser": False, "sound": True, "unassigned": True}

    agent_client.get(f"/inbox/{mine.pk}/")  # opening it reads it
    assert agent_client.get("/inbox/notifications/").json()["unread"] == 1
    assert outsider_client.get("/inbox/notifications/").json()["unread"] == 0  # another location's member
    assert Client().get("/inbox/notifications/").status_code == 302
