"""/settings/: my preferences, the location's details, members and REST API keys."""
import re

from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import ApiToken, Location, Membership
from accounts.services import api_token_create
from conversations.models import Conversation


def test_every_member_sets_their_own_time_zone_and_sees_no_admin_sections(agent_client, agent_user, location):
    page = agent_client.get("/settings/").content.decode()
    assert "My preferences" in page and "REST API keys" not in page and "Add a member" not in page
    bad = agent_client.post("/settings/me/", {"timezone": "Mars/Olympus"})
    assert bad.status_code == 400 and "is not a time zone name" in bad.content.decode()
    assert agent_client.post("/settings/me/", {"timezone": "Europe/Paris"}).status_code == 302
    assert Membership.objects.get(user=agent_user).timezone == "Europe/Paris"
    for url in ("/settings/location/", "/settings/members/add/", "/settings/api-keys/"):
        assert agent_client.post(url, {"name": "x", "username": "x", "timezone": "UTC"}).status_code == 403


def test_admin_renames_the_location_and_changes_its_time_zone(admin_client, location, other_location):
    clash = admin_client.post("/settings/location/", {"name": other_location.name, "timezone": "UTC"})
    assert clash.status_code == 400 and "called" in clash.content.decode()
    zone = admin_client.post("/settings/location/", {"name": "Acme West", "timezone": "Nowhere/City"})
    assert zone.status_code == 400 and "is not a time zone name" in zone.content.decode()
    assert admin_client.post("/settings/location/", {"name": "Acme West", "timezone": "America/Los_Angeles"}).status_code == 302
    location.refresh_from_db()
    assert (location.name, location.timezone) == ("Acme West", "America/Los_Angeles")


def test_admin_sets_the_country_numbers_without_a_country_code_are_read_in(admin_client, location):
    assert location.phone_region == "US"  # blank: the US, as before
    bad = admin_client.post("/settings/location/", {"name": location.name, "timezone": "UTC", "country": "XX"})
    assert bad.status_code == 400 and "is not a country code" in bad.content.decode()
    location.refresh_from_db()
    assert location.country == ""
    assert admin_client.post("/settings/location/", {"name": location.name, "timezone": "UTC", "country": "gb"}).status_code == 302
    location.refresh_from_db()
    assert (location.country, location.phone_region) == ("GB", "GB")


def test_admin_adds_changes_and_removes_members(admin_client, admin_user, agent_user, location, sandbox_account):
    weak = admin_client.post("/settings/members/add/", {"username": "newbie", "password": "123", "role": "agent"})
    assert weak.status_code == 400 and not get_user_model().objects.filter(username="newbie").exists()
    added = admin_client.post("/settings/members/add/", {"username": "newbie", "email": "n@example.com",
                                                          "password": "a-long-Passphrase-9", "role": "agent"})
    assert added.status_code == 302
    newbie = Membership.objects.get(user__username="newbie", location=location)
    fresh = Client()
    assert fresh.login(username="newbie", password="a-long-Passphrase-9")
    assert fresh.get("/inbox/").status_code == 200
    assert admin_client.post(f"/settings/members/{newbie.pk}/", {"role": "agent", "capacity": "3"}).status_code == 302
    newbie.refresh_from_db()
    assert newbie.capacity == 3
    mine = Membership.objects.get(user=admin_user)
    last_admin = admin_client.post(f"/settings/members/{mine.pk}/", {"role": "agent", "capacity": "5"})
    assert last_admin.status_code == 400 and "at least one admin" in last_admin.content.decode()
    assert Membership.objects.get(pk=mine.pk).role == "admin"
    # removing a member unassigns their open conversations
    from conversations.actions import conversation_assign
    from tests.test_inbox import write_in

    conversation = write_in(sandbox_account, "1")
    conversation_assign(conversation=conversation, assignee=agent_user)
    teammate = Membership.objects.get(user=agent_user)
    _, key = api_token_create(location=location, user=agent_user, name="theirs")
    assert Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/contacts/").status_code == 200
    assert admin_client.post(f"/settings/members/{teammate.pk}/", {"action": "remove"}).status_code == 302
    assert Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/contacts/").status_code == 401
    assert not Membership.objects.filter(pk=teammate.pk).exists()
    assert Conversation.objects.get(pk=conversation.pk).assignee is None


def test_member_of_another_location_is_404(admin_client, outsider):
    theirs = Membership.objects.get(user=outsider)
    assert admin_client.post(f"/settings/members/{theirs.pk}/", {"action": "remove"}).status_code == 404
    assert Membership.objects.filter(pk=theirs.pk).exists()


def test_api_key_is_shown_once_works_and_can_be_revoked(admin_client, agent_user, location):
    response = admin_client.post("/settings/api-keys/", {"name": "CRM sync", "user": str(agent_user.pk)}, follow=True)
    assert response.redirect_chain == [("/settings/", 302)]  # a reload shows the page, it makes no second key
    page = response.content.decode()
    key = re.search(r'id="new-key".*?<code>(wsn_[\w-]+)</code>', page, re.S).group(1)
    token = ApiToken.objects.for_key(key)
    assert response.status_code == 200 and token.name == "CRM sync" and token.user == agent_user
    listed = admin_client.get("/settings/").content.decode()
    assert key not in listed and token.masked_key in listed  # never again; told apart by its prefix
    assert ApiToken.objects.filter(name="CRM sync").count() == 1
    api = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/conversations/").status_code == 200
    assert admin_client.post(f"/settings/api-keys/{token.pk}/revoke/").status_code == 302
    assert api.get("/api/v1/conversations/").status_code == 401


def test_api_key_scoped_to_an_outsider_is_refused(admin_client, outsider, location):
    response = admin_client.post("/settings/api-keys/", {"name": "sneaky", "user": str(outsider.pk)})
    assert response.status_code == 400 and not ApiToken.objects.filter(name="sneaky").exists()
    assert Location.objects.count() == 2
