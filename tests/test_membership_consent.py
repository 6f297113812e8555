"""Issue 15, point 4: nobody is put into a location without accepting, a login lands in the
location last used, and no error names (or confirms) a user of another location."""
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from accounts.invitations import invitation_create, invitation_for_token
from accounts.models import Invitation, Membership
from conversations.actions import conversation_assign
from conversations.models import Conversation
from tests.test_inbox import write_in
from whatsnap.errors import ApplicationError

NOT_A_MEMBER = "not a member of this location"


def _invite(admin_client, **fields) -> str:
    """Create an invitation on the settings page; the link it shows once."""
    page = admin_client.post("/settings/invitations/", {"role": "agent", **fields}, follow=True)
    assert page.status_code == 200 and page.redirect_chain == [("/settings/", 302)], page.content
    return re.search(r'id="invitation-link">http://testserver(/invitations/[^<]+/)<', page.content.decode()).group(1)


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- adding a person ---------------------------------------------------------------------------
def test_admin_cannot_attach_an_existing_user_of_another_location(admin_client, location, outsider):
    response = admin_client.post("/settings/members/add/", {"username": "outsider", "password": "a-long-Passphrase-9", "role": "admin"})
    assert response.status_code == 400
    assert "That username is not available" in response.content.decode()
    assert not Membership.objects.filter(user=outsider, location=location).exists()
    assert outsider.check_password("pw-outsider")  # their login is untouched
    # the same answer for a name that differs only in case (no look-alike logins either)
    again = admin_client.post("/settings/members/add/", {"username": "OUTSIDER", "password": "a-long-Passphrase-9", "role": "agent"})
    assert again.status_code == 400 and "That username is not available" in again.content.decode()


def test_admin_still_creates_new_logins(admin_client, location):
    assert admin_client.post("/settings/members/add/", {"username": "fresh", "password": "a-long-Passphrase-9", "role": "agent"}).status_code == 302
    assert Membership.objects.filter(user__username="fresh", location=location).exists()


# --- invitations -------------------------------------------------------------------------------
def test_invitation_accept_flow_end_to_end(admin_client, admin_user, location, outsider, other_location):
    link = _invite(admin_client, username="outsider", role="admin")
    token = link.split("/")[2]
    invitation = Invitation.objects.get()
    assert invitation.token_hash != token and token not in invitation.token_hash  # only a hash is kept
    assert invitation.invited_by == admin_user and invitation.expires_at > timezone.now()
    settings_page = admin_client.get("/settings/").content.decode()
    assert 'id="pending-invitations"' in settings_page and token not in settings_page  # listed, link not shown again
    assert not Membership.objects.filter(user=outsider, location=location).exists()  # nothing before consent

    anonymous = Client().get(link)
    assert anonymous.status_code == 200 and "Log in to accept" in anonymous.content.decode()
    theirs = _login(outsider)
    page = theirs.get(link)
    assert page.status_code == 200 and "Join Acme" in page.content.decode() and "Accept as outsider" in page.content.decode()
    accepted = theirs.post(link)
    assert accepted.status_code == 302
    membership = Membership.objects.get(user=outsider, location=location)
    assert membership.role == "admin" and membership.last_used_at is not None
    assert Membership.objects.filter(user=outsider, location=other_location).exists()  # kept their own location
    invitation.refresh_from_db()
    assert invitation.accepted_by == outsider and invitation.accepted_at is not None
    assert theirs.get("/settings/").context["location"] == location  # now working in the new location
    assert theirs.post(link).status_code == 410  # a link works once
    assert 'id="pending-invitations"' not in admin_client.get("/settings/").content.decode()


def test_invitation_for_someone_new_signs_them_up(admin_client, location, settings, mailoutbox):
    settings.INVITATION_EMAILS = True  # an SMTP server is configured
    link = _invite(admin_client, email="new.person@example.com")
    assert len(mailoutbox) == 1 and link in mailoutbox[0].body and mailoutbox[0].to == ["new.person@example.com"]
    browser = Client()
    taken = browser.post(link, {"username": "owner", "password": "a-long-Passphrase-9"})
    assert taken.status_code == 400 and "That username is taken. If it is yours, log in first" in taken.content.decode()
    weak = browser.post(link, {"username": "newcomer", "password": "123"})
    assert weak.status_code == 400 and not get_user_model().objects.filter(username="newcomer").exists()
    assert browser.post(link, {"username": "newcomer", "password": "a-long-Passphrase-9"}).status_code == 302
    user = get_user_model().objects.get(username="newcomer")
    assert user.email == "new.person@example.com" and Membership.objects.get(user=user).location == location
    assert browser.get("/inbox/").status_code == 200  # logged in, in the location


def test_no_email_is_sent_without_a_mail_server(admin_client, mailoutbox):
    _invite(admin_client, email="someone@example.com")
    assert mailoutbox == []  # the link would otherwise end up in the server log (console backend)


def test_revoked_and_expired_invitations_are_refused(admin_client, admin_user, location, outsider):
    theirs = _login(outsider)
    link = _invite(admin_client, username="outsider")
    invitation = Invitation.objects.get()
    assert admin_client.post(f"/settings/invitations/{invitation.pk}/revoke/").status_code == 302
    assert theirs.get(link).status_code == 410
    assert theirs.post(link).status_code == 410
    _, token = invitation_create(location=location, invited_by=admin_user, username="outsider", role="agent")
    Invitation.objects.filter(token_hash=invitation_for_token(token).token_hash).update(expires_at=timezone.now() - timezone.timedelta(minutes=1))
    refused = theirs.post(f"/invitations/{token}/")
    assert refused.status_code == 410 and "not valid any more" in refused.content.decode()
    assert Client().get("/invitations/no-such-token/").status_code == 404
    assert not Membership.objects.filter(user=outsider, location=location).exists()


def test_an_invitation_to_a_username_is_for_that_login_only(admin_client, agent_user, location, outsider):
    link = _invite(admin_client, username="outsider")
    someone_else = get_user_model().objects.create_user("bystander", password="x")
    refused = _login(someone_else).post(link)
    assert refused.status_code == 400 and not Membership.objects.filter(user=someone_else).exists()
    assert Invitation.objects.get().accepted_at is None  # still usable by the right person


def test_other_locations_invitations_cannot_be_revoked(admin_client, outsider, other_location):
    _, token = invitation_create(location=other_location, invited_by=outsider, email="x@example.com", role="agent")
    theirs = invitation_for_token(token)
    assert admin_client.post(f"/settings/invitations/{theirs.pk}/revoke/").status_code == 404
    assert invitation_for_token(token).is_pending


# --- which location a login lands in ------------------------------------------------------------
def test_login_lands_in_the_location_used_last(location, other_location, outsider):
    Membership.objects.create(user=outsider, location=location, role="agent")  # Acme sorts before Globex
    first = _login(outsider)
    assert first.post("/location/switch/", {"location": location.pk}).status_code == 302
    later = Client()
    later.login(username="outsider", password="pw-outsider")
    assert later.get("/settings/").context["location"] == location
    first.post("/location/switch/", {"location": other_location.pk})
    again = Client()
    again.login(username="outsider", password="pw-outsider")
    assert again.get("/settings/").context["location"] == other_location


def test_switcher_shows_only_with_several_locations_and_refuses_others(admin_client, admin_user, location, other_location):
    assert 'id="location-switcher"' not in admin_client.get("/settings/").content.decode()
    refused = admin_client.post("/location/switch/", {"location": other_location.pk})
    assert refused.status_code == 404
    assert admin_client.post("/location/switch/", {"location": "abc"}).status_code == 404
    assert admin_client.get("/settings/").context["location"] == location
    assert Membership.objects.get(user=admin_user).last_used_at is None
    Membership.objects.create(user=admin_user, location=other_location, role="agent")
    page = admin_client.get("/settings/").content.decode()
    assert 'id="location-switcher"' in page and "Globex" in page


# --- no error names a user of another location -------------------------------------------------
@pytest.fixture
def conversation(sandbox_account, agent_user):
    conversation = write_in(sandbox_account, "1")
    conversation_assign(conversation=conversation, assignee=agent_user)
    return conversation


def test_api_assign_to_an_outsider_names_nobody(api_client, conversation, outsider, agent_user):
    outsider_answer = api_client.post(f"/api/v1/conversations/{conversation.pk}/assign/", {"assignee": outsider.pk}, format="json")
    nobody_answer = api_client.post(f"/api/v1/conversations/{conversation.pk}/assign/", {"assignee": 987654}, format="json")
    assert outsider_answer.status_code == nobody_answer.status_code == 400
    assert NOT_A_MEMBER in outsider_answer.content.decode() and "outsider" not in outsider_answer.content.decode()
    assert outsider_answer.json() == nobody_answer.json()  # an id elsewhere looks like no id at all
    assert Conversation.objects.get(pk=conversation.pk).assignee == agent_user


def test_inbox_assign_to_an_outsider_is_refused_without_their_name(admin_client, conversation, outsider, agent_user):
    response = admin_client.post(f"/inbox/{conversation.pk}/action/", {"action": "assign", "assignee": outsider.pk}, follow=True)
    page = response.content.decode()
    assert NOT_A_MEMBER in page and "outsider" not in page
    assert Conversation.objects.get(pk=conversation.pk).assignee == agent_user  # not silently unassigned
    admin_client.post(f"/inbox/{conversation.pk}/action/", {"action": "assign", "assignee": ""})
    assert Conversation.objects.get(pk=conversation.pk).assignee is None  # blank still unassigns


def test_assign_service_names_nobody(conversation, outsider):
    with pytest.raises(ApplicationError) as caught:
        conversation_assign(conversation=conversation, assignee=outsider)
    assert NOT_A_MEMBER in caught.value.message and "outsider" not in caught.value.message


def test_inviting_a_name_says_nothing_about_who_exists(admin_client, outsider):
    existing = admin_client.post("/settings/invitations/", {"username": "outsider", "role": "agent"})
    unknown = admin_client.post("/settings/invitations/", {"username": "nobody-at-all", "role": "agent"})
    assert existing.status_code == unknown.status_code == 302  # both just get a link
