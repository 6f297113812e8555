"""New conversation (issue 18, point 2): the service, the page (from the inbox and a contact's
page) and POST /api/v1/conversations/."""
import re

import pytest
from django.test import Client

from accounts.models import Account
from accounts.services import account_archive, account_create, account_set_status
from contacts.models import Contact
from conversations.actions import conversation_assign, conversation_set_status
from conversations.models import Conversation, ConversationEvent, Message
from conversations.starting import conversation_start
from tests.test_api_support import *  # noqa: F401,F403  (fixtures)
from tests.test_api_support import assert_error, new_key, receive, token_client
from whatsnap import events
from whatsnap.errors import ApplicationError


@pytest.fixture(autouse=True)
def no_pacing_waits(monkeypatch):
    monkeypatch.setattr("conversations.pacing.sleep", lambda seconds: None)


@pytest.fixture
def whatsapp_account(location):
    account = account_create(location=location, kind="whatsapp", backend="sandbox", name="Support WA", phone_number="+14155550122")
    account_set_status(account=account, status="connected", reason="test")
    account.refresh_from_db()
    return account


@pytest.fixture
def lid_contact(location):
    return Contact.objects.create(location=location, phone="98765@lid", phone_is_e164=False, whatsapp_lid="98765@lid",
                                  name="Lid Person")


def _start(location, account, author, **kwargs):
    kwargs.setdefault("text", "Hello from Acme")
    return conversation_start(location=location, account=account, author=author, **kwargs)


# --- the service --------------------------------------------------------------------------------
def test_new_number_creates_contact_with_the_accounts_tag_and_a_conversation_assigned_to_the_starter(
        location, sandbox_account, admin_user):
    with events.captured() as recorded:
        started = _start(location, sandbox_account, admin_user, phone="+1 (415) 555-0123", name="Ada Lovelace",
                         text="Hi {{first_name|there}}, this is {{account}}.")
    contact = Contact.objects.get()
    assert contact.phone == "+14155550123" and contact.name == "Ada Lovelace" and contact.name_source == "person"
    assert [t.name for t in contact.tags.all()] == [sandbox_account.tag_name]
    assert contact.active_account == sandbox_account
    conversation = Conversation.objects.get()
    assert (conversation.contact, conversation.account, conversation.assignee) == (contact, sandbox_account, admin_user)
    assert ConversationEvent.objects.get(kind="assigned").reason == "started the conversation"
    message = Message.objects.get()
    assert message.text == "Hi Ada, this is Sales." and message.author == admin_user and message.direction == "outbound"
    names = [e.name for e in recorded]
    assert names.index("contact.created") < names.index("conversation.assigned") < names.index("message.queued")
    assert started.contact_created and started.conversation_created
    assert started.notice == "Conversation with Ada Lovelace started; your message is on its way."


def test_a_real_send_through_the_sandbox_reaches_the_sandbox_phone(location, sandbox_account, admin_user, admin_client):
    started = _start(location, sandbox_account, admin_user, phone="+14155550123", text="Your order is ready")
    message = Message.objects.get(pk=started.message.pk)
    assert message.status == "delivered" and message.provider_message_id  # the sandbox backend took it
    phone = admin_client.get(f"/sandbox/{sandbox_account.pk}/thread/", {"phone": "+14155550123"})
    assert phone.status_code == 200 and "Your order is ready" in phone.content.decode()
    # the person answers on the phone: the answer lands in the same conversation, still the starter's
    receive(sandbox_account, phone="+14155550123", text="Thanks!")
    conversation = Conversation.objects.get()
    assert conversation.messages.count() == 2 and conversation.assignee == admin_user


def test_the_locations_country_reads_a_number_without_country_code(location, sandbox_account, admin_user):
    location.country = "GB"
    location.save()
    _start(location, sandbox_account, admin_user, phone="07400 123456")
    assert Contact.objects.get().phone == "+447400123456"


@pytest.mark.parametrize("typed", ["12", "hello", "+1 415 555", "+999 123 4567"])
def test_a_bad_number_is_refused_with_advice_and_nothing_is_kept(location, sandbox_account, admin_user, typed):
    with pytest.raises(ApplicationError) as caught:
        _start(location, sandbox_account, admin_user, phone=typed)
    error = caught.value
    assert (error.code, error.field) == ("invalid_phone", "phone")
    assert "Enter the number with its country code, e.g. +1 201-555-0123" in error.message
    assert "US number" in error.message and "NumberParseException" not in error.message and "(" + typed not in error.message
    assert not Contact.objects.exists() and not Conversation.objects.exists() and not Message.objects.exists()


def test_an_opted_out_contact_is_refused(location, sandbox_account, admin_user):
    contact = Contact.objects.create(location=location, phone="+14155550123", name="Bo", opted_out=True)
    for target in ({"contact": contact}, {"phone": "415 555 0123"}):
        with pytest.raises(ApplicationError) as caught:
            _start(location, sandbox_account, admin_user, **target)
        assert caught.value.code == "opted_out" and "replied STOP" in caught.value.message
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_a_whatsapp_contact_without_a_number_cannot_be_reached_by_sms(location, sandbox_account, whatsapp_account,
                                                                      admin_user, lid_contact):
    with pytest.raises(ApplicationError) as caught:
        _start(location, sandbox_account, admin_user, contact=lid_contact)
    assert (caught.value.code, caught.value.field) == ("unreachable", "account")
    assert "only a WhatsApp account can reach them" in caught.value.message
    assert not Conversation.objects.exists()
    started = _start(location, whatsapp_account, admin_user, contact=lid_contact)
    assert started.conversation.account == whatsapp_account and not started.contact_created


def test_a_disconnected_archived_or_foreign_account_is_refused(location, other_location, sandbox_account, admin_user):
    foreign = account_create(location=other_location, kind="android_sms", backend="sandbox", name="Theirs", phone_number="+14155550177")
    with pytest.raises(ApplicationError) as caught:
        _start(location, foreign, admin_user, phone="+14155550123")
    assert (caught.value.code, caught.value.field) == ("not_found", "account")
    account_set_status(account=sandbox_account, status="disconnected", reason="test")
    sandbox_account.refresh_from_db()
    with pytest.raises(ApplicationError) as caught:
        _start(location, sandbox_account, admin_user, phone="+14155550123")
    assert caught.value.code == "account_unavailable" and "not connected" in caught.value.message
    account_archive(account=sandbox_account)
    sandbox_account.refresh_from_db()
    with pytest.raises(ApplicationError) as caught:
        _start(location, sandbox_account, admin_user, phone="+14155550123")
    assert caught.value.code == "not_found"
    assert not Contact.objects.filter(location=location).exists() and not Message.objects.exists()


def test_an_existing_contact_and_open_conversation_are_reused(location, sandbox_account, admin_user):
    receive(sandbox_account, phone="+14155550123", name="Ada", text="hello")
    contact, conversation = Contact.objects.get(), Conversation.objects.get()
    started = _start(location, sandbox_account, admin_user, phone="(415) 555-0123", name="Someone else")
    assert started.contact == contact and not started.contact_created and not started.conversation_created
    assert started.conversation.pk == conversation.pk and Conversation.objects.count() == 1
    assert Contact.objects.get().name == "Ada"  # a typed name never renames a known contact
    assert started.notice == ("You already had a conversation with Ada through Sales; your message was added to it.")
    assert Conversation.objects.get().assignee == admin_user


def test_a_colleagues_open_conversation_stays_theirs_a_resolved_one_is_reopened_for_the_starter(
        location, sandbox_account, admin_user, agent_user):
    receive(sandbox_account, phone="+14155550123", name="Ada", text="hello")
    conversation = Conversation.objects.get()
    conversation_assign(conversation=conversation, assignee=agent_user)
    started = _start(location, sandbox_account, admin_user, phone="+14155550123")
    assert started.kept_assignee == agent_user and Conversation.objects.get().assignee == agent_user
    assert started.notice.endswith("It stays assigned to teammate.")
    conversation_set_status(conversation=conversation, status="resolved")
    started = _start(location, sandbox_account, admin_user, phone="+14155550123", text="Back again")
    conversation.refresh_from_db()
    assert started.reopened and conversation.status == "open" and conversation.assignee == admin_user
    assert "it was closed and is open again" in started.notice


def test_auto_routing_does_not_take_it_from_the_starter(location, sandbox_account, admin_user, agent_user):
    Account.objects.filter(pk=sandbox_account.pk).update(default_assignee=agent_user)
    sandbox_account.refresh_from_db()
    _start(location, sandbox_account, admin_user, phone="+14155550123")
    receive(sandbox_account, phone="+14155550123", text="who is this?")
    assert Conversation.objects.get().assignee == admin_user
    # while a conversation nobody started is routed as before
    receive(sandbox_account, phone="+14155550124", text="hi")
    assert Conversation.objects.get(contact__phone="+14155550124").assignee == agent_user


def test_merge_fields_are_checked_and_a_message_is_required(location, sandbox_account, admin_user):
    with pytest.raises(ApplicationError) as caught:
        _start(location, sandbox_account, admin_user, phone="+14155550123", text="Hi {{frist_name}}")
    assert caught.value.field == "text" and "{{frist_name}}" in caught.value.message
    with pytest.raises(ApplicationError) as caught:
        _start(location, sandbox_account, admin_user, phone="+14155550123", text="   ")
    assert caught.value.field == "text"
    with pytest.raises(ApplicationError) as caught:
        _start(location, sandbox_account, admin_user, phone="", text="hi")
    assert caught.value.code == "phone_required"
    assert not Contact.objects.exists()


def test_a_contact_of_another_location_is_refused(location, other_location, sandbox_account, admin_user):
    theirs = Contact.objects.create(location=other_location, phone="+14155550123")
    with pytest.raises(ApplicationError) as caught:
        _start(location, sandbox_account, admin_user, contact=theirs)
    assert (caught.value.code, caught.value.field) == ("not_found", "contact")
    assert not Conversation.objects.exists()


# --- the page -----------------------------------------------------------------------------------
def test_the_inbox_and_a_contacts_page_lead_to_the_form(admin_client, sandbox_account, location):
    assert 'href="/inbox/new/"' in admin_client.get("/inbox/").content.decode()
    contact = Contact.objects.create(location=location, phone="+14155550123", name="Ada")
    page = admin_client.get(f"/contacts/{contact.pk}/").content.decode()
    assert f'href="/inbox/new/?contact={contact.pk}"' in page
    form = admin_client.get(f"/inbox/new/?contact={contact.pk}").content.decode()
    assert "Ada" in form and f'name="contact" value="{contact.pk}"' in form
    assert "Sales · SMS · +1 415-555-0111" in form


def test_the_form_marks_accounts_that_cannot_reach_the_contact(admin_client, sandbox_account, whatsapp_account, lid_contact):
    form = admin_client.get(f"/inbox/new/?contact={lid_contact.pk}").content.decode()
    sms = form.split(f'<option value="{sandbox_account.pk}"', 1)[1].split("</option>", 1)[0]
    assert "disabled" in sms and "only a WhatsApp account can reach them" in sms
    whatsapp = form.split(f'<option value="{whatsapp_account.pk}"', 1)[1].split("</option>", 1)[0]
    assert "disabled" not in whatsapp and "selected" in whatsapp


def test_submitting_lands_in_the_conversation_with_a_notice(admin_client, sandbox_account, admin_user):
    response = admin_client.post("/inbox/new/", {"account": sandbox_account.pk, "phone": "+14155550123", "text": "Hello"})
    conversation = Conversation.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/inbox/{conversation.pk}/"
    page = admin_client.get(response["Location"]).content.decode()
    assert "Conversation with +14155550123 started" in page and "Hello" in page
    assert conversation.assignee == admin_user
    htmx = admin_client.post("/inbox/new/", {"account": sandbox_account.pk, "phone": "+14155550124", "text": "Hi"},
                             HTTP_HX_REQUEST="true")
    assert htmx.status_code == 200 and htmx["HX-Redirect"].startswith("/inbox/")


def test_errors_are_shown_in_place_and_the_draft_kept(admin_client, sandbox_account):
    htmx = admin_client.post("/inbox/new/", {"account": sandbox_account.pk, "phone": "555", "text": "My draft"},
                             HTTP_HX_REQUEST="true")
    body = htmx.content.decode()
    assert htmx.status_code == 200 and body.startswith('<form id="new-conversation-form"')
    assert 'id="new-to-error"' in body and "Enter the number with its country code" in body and "My draft" in body
    plain = admin_client.post("/inbox/new/", {"account": sandbox_account.pk, "phone": "555", "text": "My draft"})
    assert plain.status_code == 400 and "Enter the number with its country code" in plain.content.decode()
    assert not Contact.objects.exists()


def test_another_locations_ids_are_refused_without_telling(admin_client, other_location, sandbox_account):
    theirs = account_create(location=other_location, kind="android_sms", backend="sandbox", name="Theirs", phone_number="+14155550177")
    bodies = []
    for account_id in (theirs.pk, 999999, "junk"):
        response = admin_client.post("/inbox/new/", {"account": account_id, "phone": "+14155550123", "text": "Hi"},
                                     HTTP_HX_REQUEST="true")
        assert "Choose one of this location&#x27;s connected accounts." in response.content.decode()
        bodies.append(response.content.decode().replace(str(account_id), "ID"))
    assert not Contact.objects.exists()
    their_contact = Contact.objects.create(location=other_location, phone="+14155550123")
    assert admin_client.get(f"/inbox/new/?contact={their_contact.pk}").status_code == 404
    assert admin_client.post("/inbox/new/", {"account": sandbox_account.pk, "contact": their_contact.pk,
                                             "text": "Hi"}).status_code == 404
    assert not Message.objects.exists()


def test_the_contact_search_finds_this_locations_contacts_only(admin_client, location, other_location):
    ada = Contact.objects.create(location=location, phone="+14155550123", name="Ada Lovelace")
    Contact.objects.create(location=other_location, phone="+14155550124", name="Ada Elsewhere")
    body = admin_client.get("/inbox/new/contacts/", {"phone": "ada"}).content.decode()
    assert "Ada Lovelace" in body and f"?contact={ada.pk}" in body and "Elsewhere" not in body
    assert "Ada Lovelace" in admin_client.get("/inbox/new/contacts/", {"phone": "555012"}).content.decode()
    assert "No contact matches" in admin_client.get("/inbox/new/contacts/", {"phone": "zed"}).content.decode()


def test_logged_out_and_locationless_users_are_kept_out(sandbox_account):
    assert Client().get("/inbox/new/").status_code == 302
    assert Client().post("/inbox/new/", {"account": sandbox_account.pk, "phone": "+14155550123", "text": "x"}).status_code == 302
    assert not Message.objects.exists()


# --- the API ------------------------------------------------------------------------------------
def test_api_starts_a_conversation(admin_member_api, admin_user, sandbox_account):
    response = admin_member_api.post("/api/v1/conversations/", {"account": sandbox_account.pk, "phone": "+14155550123",
                                                                "name": "Ada", "text": "Hi {{first_name}}"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    conversation = Conversation.objects.get()
    assert body["conversation"]["id"] == conversation.pk and body["conversation"]["assignee"] == admin_user.pk
    assert body["conversation"]["contact"] == {"id": conversation.contact_id, "phone": "+14155550123", "name": "Ada"}
    # queued; here the tests' inline worker has sent it already when the answer is written
    assert body["message"]["text"] == "Hi Ada" and body["message"]["status"] in ("queued", "delivered")
    assert body["contact_created"] and body["conversation_created"]
    assert Message.objects.get().status == "delivered"  # sent through the sandbox after the commit
    again = admin_member_api.post("/api/v1/conversations/", {"account": sandbox_account.pk,
                                                             "contact": conversation.contact_id, "text": "more"}, format="json")
    assert again.status_code == 201 and not again.json()["conversation_created"]
    assert Conversation.objects.count() == 1


def test_api_token_without_a_user_leaves_it_unassigned(api_client, sandbox_account):
    response = api_client.post("/api/v1/conversations/", {"account": sandbox_account.pk, "phone": "+14155550123",
                                                          "text": "Hi"}, format="json")
    assert response.status_code == 201 and response.json()["conversation"]["assignee"] is None


def test_api_bad_input(api_client, sandbox_account, location, lid_contact):
    def post(**body):
        return api_client.post("/api/v1/conversations/", body, format="json")

    body = assert_error(post(account=sandbox_account.pk, phone="12", text="Hi"), 400, "invalid_phone", "phone")
    assert "country code" in body["detail"]
    assert_error(post(account=sandbox_account.pk, text="Hi"), 400, "invalid", "phone")
    assert_error(post(account=sandbox_account.pk, phone="+14155550123", contact=lid_contact.pk, text="Hi"), 400, "invalid", "phone")
    assert_error(post(account=sandbox_account.pk, phone="+14155550123"), 400, "invalid", "text")
    assert_error(post(account=sandbox_account.pk, phone="+14155550123", text="{{nope}}"), 400, "invalid", "text")
    assert_error(post(account=sandbox_account.pk, contact=lid_contact.pk, text="Hi"), 400, "unreachable", "account")
    Contact.objects.create(location=location, phone="+14155550199", opted_out=True)
    assert_error(post(account=sandbox_account.pk, phone="+14155550199", text="Hi"), 400, "opted_out")
    assert not Message.objects.exists() and not Conversation.objects.exists()


def test_api_other_locations_ids_read_as_unknown(api_client, other_location, sandbox_account):
    theirs = account_create(location=other_location, kind="android_sms", backend="sandbox", name="Theirs", phone_number="+14155550177")
    foreign = assert_error(api_client.post("/api/v1/conversations/", {"account": theirs.pk, "phone": "+14155550123",
                                                                       "text": "Hi"}, format="json"), 400, "invalid", "account")
    unknown = assert_error(api_client.post("/api/v1/conversations/", {"account": 999999, "phone": "+14155550123",
                                                                       "text": "Hi"}, format="json"), 400, "invalid", "account")
    assert str(foreign).replace(str(theirs.pk), "N") == str(unknown).replace("999999", "N")
    their_contact = Contact.objects.create(location=other_location, phone="+14155550123")
    assert_error(api_client.post("/api/v1/conversations/", {"account": sandbox_account.pk, "contact": their_contact.pk,
                                                            "text": "Hi"}, format="json"), 400, "invalid", "contact")
    assert not Message.objects.exists()


def test_api_agent_token_cannot_write_into_a_colleagues_conversation(location, sandbox_account, agent_api, admin_user, agent_user):
    receive(sandbox_account, phone="+14155550123", name="Ada", text="hello")
    conversation_assign(conversation=Conversation.objects.get(), assignee=admin_user)
    response = agent_api.post("/api/v1/conversations/", {"account": sandbox_account.pk, "phone": "+14155550123",
                                                         "text": "Hi"}, format="json")
    assert_error(response, 403)
    assert not Message.objects.filter(direction="outbound").exists()
    mine = agent_api.post("/api/v1/conversations/", {"account": sandbox_account.pk, "phone": "+14155550124",
                                                     "text": "Hi"}, format="json")
    assert mine.status_code == 201 and mine.json()["conversation"]["assignee"] == agent_user.pk


def test_api_is_documented_and_idempotent(api_client, sandbox_account):
    schema = api_client.get("/api/v1/schema/").content.decode()
    assert "Start a conversation" in schema and "ConversationStart" in schema
    body = {"account": sandbox_account.pk, "phone": "+14155550123", "text": "Once"}
    first = api_client.post("/api/v1/conversations/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api_client.post("/api/v1/conversations/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201 and second["Idempotent-Replayed"] == "true"
    assert first.json() == second.json() and Message.objects.count() == 1


def test_the_form_names_the_picked_contacts_conversations(admin_client, sandbox_account, agent_user):
    receive(sandbox_account, phone="+14155550123", name="Ada", text="hello")
    conversation = Conversation.objects.get()
    conversation_assign(conversation=conversation, assignee=agent_user)
    form = admin_client.get(f"/inbox/new/?contact={conversation.contact_id}").content.decode()
    hint = form.split('id="new-existing"', 1)[1].split("</span>", 1)[0]
    assert f'href="/inbox/{conversation.pk}/"' in hint and "Sales</a> (open, teammate)" in hint


def test_picking_an_opted_out_contact_disables_the_message_and_send_at_once(admin_client, sandbox_account, location):
    gone = Contact.objects.create(location=location, phone="+14155550123", name="Gone", opted_out=True)
    form = admin_client.get(f"/inbox/new/?contact={gone.pk}&text=My+draft", HTTP_HX_REQUEST="true").content.decode()
    assert form.startswith('<form id="new-conversation-form"')  # the partial the picker swaps in
    assert 'id="new-opted-out"' in form and "Gone replied STOP and has opted out" in form
    box = form.split('<textarea id="new-text"', 1)[1].split(">", 1)[0]
    send = form.split('id="new-send"', 1)[1].split(">", 1)[0]
    assert "disabled" in box and 'name="text"' not in box and "disabled" in send
    assert '<input type="hidden" name="text" value="My draft">' in form  # kept for Change
    # the refusal on submit stays as the safety net
    refused = admin_client.post("/inbox/new/", {"account": sandbox_account.pk, "contact": gone.pk, "text": "Hi"},
                                HTTP_HX_REQUEST="true").content.decode()
    assert "has opted out" in refused and not Message.objects.exists()
    # a contact who did not opt out: the box and Send stay usable
    ada = Contact.objects.create(location=location, phone="+14155550124", name="Ada")
    form = admin_client.get(f"/inbox/new/?contact={ada.pk}", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="new-opted-out"' not in form and "disabled" not in form.split('<textarea id="new-text"', 1)[1].split(">", 1)[0]
    assert "disabled" not in form.split('id="new-send"', 1)[1].split(">", 1)[0]


@pytest.mark.parametrize("typed, said", [
    ("hello", "that is not a phone number: type a number with its country code or a name"),
    ("zed x", "that is not a phone number"),
    ("+44 20 7946", "the number is used as typed"),
    ("(415) 555-0199", "the number is used as typed"),
])
def test_the_to_field_says_when_unmatched_text_is_not_a_number(admin_client, location, typed, said):
    body = admin_client.get("/inbox/new/contacts/", {"phone": typed}).content.decode()
    assert "No contact matches" in body and said in body
    other = "the number is used as typed" if "not a phone" in said else "not a phone number"
    assert other not in body


def test_the_account_a_started_conversation_runs_through_is_listed_on_the_contact(admin_client, admin_user, location,
                                                                                   sandbox_account):
    """ContactAccount keeps meaning "the contact wrote through it": a started conversation's
    account is listed beside those, told apart, until the contact writes through it."""
    started = _start(location, sandbox_account, admin_user, phone="+14155550123")
    contact = started.contact
    assert not contact.account_links.exists()
    page = admin_client.get(f"/contacts/{contact.pk}/").content.decode()
    accounts = page.split("<h3>Accounts and platforms</h3>", 1)[1].split("</ul>", 1)[0]
    assert re.search(r'class="written-first">(?:(?!</li>).)*Sales', accounts, re.S) and "we wrote first on" in accounts
    panel = admin_client.get(f"/inbox/{started.conversation.pk}/panel/").content.decode()
    listed = panel.split("<h3>Accounts</h3>", 1)[1].split("</ul>", 1)[0]
    assert re.search(r'class="written-first">(?:(?!</li>).)*Sales', listed, re.S) and "no message from them through it yet" in listed
    # the contact answers through it: an ordinary link, no longer "we wrote first"
    receive(sandbox_account, phone="+14155550123", text="Thanks!")
    assert contact.account_links.filter(account=sandbox_account).exists()
    page = admin_client.get(f"/contacts/{contact.pk}/").content.decode()
    accounts = page.split("<h3>Accounts and platforms</h3>", 1)[1].split("</ul>", 1)[0]
    assert "Sales" in accounts and "written-first" not in accounts
    listed = admin_client.get(f"/inbox/{started.conversation.pk}/panel/").content.decode().split("<h3>Accounts</h3>", 1)[1]
    assert "written-first" not in listed.split("</ul>", 1)[0]
