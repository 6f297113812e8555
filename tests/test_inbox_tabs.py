"""Issue 19 (points 4 and 5): agents start on Mine, each tab says how many conversations hold
unread messages, whether agents may open All is the location's setting (kept by the server,
not only by the tabs shown), the snooze menu's choices, avatars and channel icons."""
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.utils import timezone

from accounts.models import Account, Location
from conversations.actions import conversation_assign
from conversations.models import Conversation
from conversations.snooze import preset_time
from conversations.templatetags.look import initials
from tests.test_inbox import write_in

NEW_YORK = ZoneInfo("America/New_York")  # the location fixture's zone (the members have none of their own)


def _tab(html: str, key: str) -> str:
    match = re.search(rf'<a [^>]*id="tab-{key}"[^>]*>(.*?)</a>', html, re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).split() if match else None


@pytest.fixture
def three(sandbox_account, admin_user, agent_user):
    """Ada (the agent's), Bob (unassigned), Cy (the admin's): all with a message unread."""
    ada = write_in(sandbox_account, "a", phone="+14155550123", name="Ada")
    write_in(sandbox_account, "b", phone="+14155550124", name="Bob")
    cy = write_in(sandbox_account, "c", phone="+14155550125", name="Cy")
    conversation_assign(conversation=ada, assignee=agent_user)
    conversation_assign(conversation=cy, assignee=admin_user)
    return ada


def test_agents_start_on_mine_admins_on_all(agent_client, admin_client, three):
    agent = agent_client.get("/inbox/").content.decode()
    assert re.search(r'class="tab active" id="tab-mine"', agent)
    assert "Ada" in agent and "Bob" not in agent and "Cy" not in agent
    admin = admin_client.get("/inbox/").content.decode()
    assert re.search(r'class="tab active" id="tab-all"', admin)
    assert all(name in admin for name in ("Ada", "Bob", "Cy"))


def test_each_tab_counts_its_unread_conversations_and_follows_reading(agent_client, three):
    html = agent_client.get("/inbox/").content.decode()
    assert _tab(html, "mine") == ["Mine", "1"] and _tab(html, "unassigned") == ["Unassigned", "1"] and _tab(html, "all") == ["All", "3"]
    agent_client.get(f"/inbox/{three.pk}/")  # opened: read
    listing = agent_client.get("/inbox/list/?view=mine").content.decode()  # the live refresh carries the tabs too
    assert _tab(listing, "mine") == ["Mine"] and _tab(listing, "all") == ["All", "2"]


def test_tabs_keep_the_other_filters(agent_client, three, sandbox_account):
    html = agent_client.get(f"/inbox/?view=mine&account={sandbox_account.pk}&q=Ada&page=2").content.decode()
    href = re.search(r'href="([^"]*)"[^>]*id="tab-unassigned"', html).group(1)
    assert f"account={sandbox_account.pk}" in href and "q=Ada" in href and "view=unassigned" in href and "page=" not in href


def test_agents_see_all_off_keeps_agents_to_mine_and_unassigned(agent_client, admin_client, three, location):
    Location.objects.filter(pk=location.pk).update(agents_see_all=False)
    html = agent_client.get("/inbox/?view=all").content.decode()
    assert 'id="view-note"' in html and "here is Mine" in html
    assert "Ada" in html and "Cy" not in html  # Mine, whatever was asked
    assert 'id="tab-all"' not in html and 'id="tab-mine"' in html and 'id="tab-unassigned"' in html
    assert 'name="view" value="mine"' in html  # the filters go on with what is shown
    listing = agent_client.get("/inbox/list/?view=all").content.decode()  # the partial obeys too
    assert "Cy" not in listing and 'id="view-note"' in listing
    assert "Bob" in agent_client.get("/inbox/?view=unassigned").content.decode()
    admin = admin_client.get("/inbox/?view=all").content.decode()  # admins always see All
    assert "Cy" in admin and 'id="view-note"' not in admin


def test_admin_turns_agents_see_all_off_and_on_in_location_settings(admin_client, agent_client, location):
    page = admin_client.get("/settings/").content.decode()
    assert re.search(r'name="agents_see_all" id="loc-agents-see-all"\s+checked', page)
    form = {"name": location.name, "timezone": location.timezone, "country": "US", "agents_see_all_shown": "1"}
    assert admin_client.post("/settings/location/", form).status_code == 302
    assert Location.objects.get(pk=location.pk).agents_see_all is False
    assert not re.search(r'name="agents_see_all" id="loc-agents-see-all"\s+checked', admin_client.get("/settings/").content.decode())
    assert admin_client.post("/settings/location/", {**form, "agents_see_all": "on"}).status_code == 302
    assert Location.objects.get(pk=location.pk).agents_see_all is True
    # another form to the same address that does not show the box leaves it as it is
    assert admin_client.post("/settings/location/", {"name": location.name, "timezone": "UTC"}).status_code == 302
    assert Location.objects.get(pk=location.pk).agents_see_all is True
    # agents cannot change it
    assert agent_client.post("/settings/location/", form).status_code in (302, 403, 404)
    assert Location.objects.get(pk=location.pk).agents_see_all is True
    assert 'id="loc-agents-see-all"' not in agent_client.get("/settings/").content.decode()


def test_snooze_presets_are_read_in_the_agents_zone():
    monday_noon = datetime(2026, 3, 2, 12, 30, tzinfo=NEW_YORK)  # a Monday
    with timezone.override(NEW_YORK):
        assert preset_time("1h", monday_noon) == monday_noon + timedelta(hours=1)
        assert preset_time("tomorrow", monday_noon) == datetime(2026, 3, 3, 9, 0, tzinfo=NEW_YORK)
        assert preset_time("next_week", monday_noon) == datetime(2026, 3, 9, 9, 0, tzinfo=NEW_YORK)  # the Monday after
        saturday = datetime(2026, 3, 7, 23, 0, tzinfo=NEW_YORK)
        assert preset_time("next_week", saturday) == datetime(2026, 3, 9, 9, 0, tzinfo=NEW_YORK)
        assert preset_time("tomorrow", saturday) == datetime(2026, 3, 8, 9, 0, tzinfo=NEW_YORK)  # across the DST change
        assert preset_time("tomorrow", saturday).utcoffset() == timedelta(hours=-4)
        assert preset_time("someday", monday_noon) is None


def test_snooze_menu_from_the_header(agent_client, three):
    url = f"/inbox/{three.pk}/action/"
    page = agent_client.get(f"/inbox/{three.pk}/").content.decode()
    for key in ("1h", "tomorrow", "next_week", "custom"):
        assert f'name="snooze" value="{key}"' in page
    before = timezone.now()
    assert agent_client.post(url, {"snooze": "1h"}).status_code == 302
    three.refresh_from_db()
    assert three.status == "snoozed" and timedelta(minutes=59) < three.snoozed_until - before < timedelta(minutes=61)
    agent_client.post(url, {"snooze": "tomorrow"})
    three.refresh_from_db()
    local = three.snoozed_until.astimezone(NEW_YORK)
    assert (local.hour, local.minute) == (9, 0) and local.date() == (timezone.now().astimezone(NEW_YORK) + timedelta(days=1)).date()
    custom = (timezone.now().astimezone(NEW_YORK) + timedelta(days=3)).replace(second=0, microsecond=0)
    agent_client.post(url, {"snooze": "custom", "snooze_until": custom.strftime("%Y-%m-%dT%H:%M")})
    three.refresh_from_db()
    assert three.snoozed_until == custom
    # an empty or past custom time is refused in words, the snooze left as it was
    refused = agent_client.post(url, {"snooze": "custom", "snooze_until": ""}, follow=True).content.decode()
    assert "Pick a snooze time in the future." in refused
    three.refresh_from_db()
    assert three.snoozed_until == custom
    header = agent_client.get(f"/inbox/{three.pk}/header/").content.decode()
    assert "Snoozed" in header and custom.strftime("%-d") in header


def test_rows_have_avatars_channel_icons_and_full_names_on_hover(agent_client, sandbox_account, agent_user):
    long_name = "Maximiliana Bartholomew-Featherstonehaugh of the Very Long Surname Society <b>"
    conversation = write_in(sandbox_account, "long", phone="+14155550177", name=long_name)
    conversation_assign(conversation=conversation, assignee=agent_user)
    html = agent_client.get("/inbox/").content.decode()
    escaped = "Maximiliana Bartholomew-Featherstonehaugh of the Very Long Surname Society &lt;b&gt;"
    assert f'class="conv-name trunc" title="{escaped}"' in html and "<b>" not in html.split('id="conversation-list"')[1]
    assert 'class="avatar" style="--avatar-hue:' in html and ">MB</span>" in html  # first and last word (the last is "<b>")
    assert 'aria-label="SMS (Android phone)"' in html  # the sandbox account is an Android SMS one
    assert f'title="{sandbox_account.name} (SMS (Android phone))"' in html


def test_initials():
    assert initials("Ada Lovelace") == "AL" and initials("cher") == "C" and initials("+1 415 555 0100") == "#"
    assert initials("Dr. Martin Luther King Jr.") == "DJ" and initials("") == "#" and initials("élodie durand") == "ÉD"


def test_channel_icons_one_per_kind():
    rendered = {kind: Template("{% load look %}{% channel_icon a %}").render(Context({"a": Account(kind=kind)}))
                for kind in Account.Kind.values}
    assert all(html.startswith("<svg") and f"ch-{kind}" in html for kind, html in rendered.items())
    assert len(set(rendered.values())) == len(rendered)  # a drawing of its own each
    assert 'aria-label="WhatsApp"' in rendered["whatsapp"] and "Twilio" in rendered["twilio"]


def test_favicon_is_linked_and_served(agent_client):
    html = agent_client.get("/inbox/").content.decode()
    assert re.search(r'<link rel="icon" href="[^"]*whatsnap/favicon\.svg"', html)


@pytest.mark.parametrize("url", ["/inbox/", "/inbox/list/"])
def test_tab_counts_are_one_query_whatever_the_inbox_size(agent_client, sandbox_account, django_assert_max_num_queries, url):
    write_in(sandbox_account, "x0", phone="+14155559000")
    with django_assert_max_num_queries(40) as small:
        agent_client.get(url)
    for i in range(20):
        write_in(sandbox_account, f"x{i + 1}", phone=f"+1415555{9001 + i}")
    with django_assert_max_num_queries(len(small.captured_queries)):
        agent_client.get(url)
    assert Conversation.objects.count() == 21
