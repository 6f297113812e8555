"""Issue 18 as a hostile tenant would try it (GHL sends to anyone, templates, scheduled replies,
new conversation): what a tenant must not be able to do, and the defences that hold."""
import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Membership
from accounts.services import member_remove
from contacts.models import Contact
from conversations.actions import conversation_assign, conversation_set_status
from conversations.message_templates import template_create
from conversations.models import Conversation, Message, MessageTemplate, ScheduledMessage
from conversations.scheduling import scheduled_message_create, scheduled_message_send, scheduled_messages_sweep
from tests.test_api_support import *  # noqa: F401,F403  (fixtures)
from tests.test_api_support import assert_error, receive

XSS = '<img src=x onerror=alert(1)>'


@pytest.fixture(autouse=True)
def no_pacing_waits(monkeypatch):
    monkeypatch.setattr("conversations.pacing.sleep", lambda seconds: None)


@pytest.fixture
def conversation(sandbox_account):
    receive(sandbox_account, phone="+14155550123", name="Ada Lovelace", text="my secret order details")
    return Conversation.objects.select_related("contact", "account").get()


def _later(**kw):
    return timezone.now() + timedelta(**(kw or {"hours": 2}))


def _due(scheduled):
    ScheduledMessage.objects.filter(pk=scheduled.pk).update(send_at=timezone.now() - timedelta(seconds=1))


def _hx(client, url, data=None):
    return client.post(url, data or {}, HTTP_HX_REQUEST="true")


# =============================================================================================
# FINDINGS (fail while the problem is there)
# =============================================================================================
def test_an_agent_token_cannot_take_an_unassigned_conversation_by_starting_it(agent_api, agent_user, sandbox_account, conversation):
    """Agent-scoped tokens act only on conversations assigned to their user (conversations/api.py:
    list, messages, send, assign are all cut to assignee=user; POST /messages/ into an unassigned
    conversation is 403). POST /api/v1/conversations/ with the contact takes the unassigned
    conversation for the token's user, after which its whole history is readable."""
    assert conversation.assignee_id is None
    # the existing rules: the agent token can neither read nor write this conversation
    assert_error(agent_api.get(f"/api/v1/conversations/{conversation.pk}/"), 404)
    assert_error(agent_api.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "hi"}, format="json"), 403)
    response = agent_api.post("/api/v1/conversations/", {"account": sandbox_account.pk, "contact": conversation.contact_id,
                                                         "text": "Hi"}, format="json")
    history = agent_api.get(f"/api/v1/messages/?conversation={conversation.pk}").json().get("results", [])
    assert response.status_code == 403, ("agent token took the unassigned conversation", response.status_code,
                                         Conversation.objects.get(pk=conversation.pk).assignee_id)
    assert not any(m["text"] == "my secret order details" for m in history)


def test_an_agent_token_cannot_take_a_colleagues_resolved_conversation(agent_api, agent_user, admin_user, sandbox_account, conversation):
    """Same door, a colleague's conversation: resolved (or snoozed) it is 'reopened for the
    starter' (starting._take), so an agent token reassigns a colleague's conversation to itself
    and reads it — while the endpoint documents 'Agent-scoped tokens cannot write into a
    conversation a colleague has (403)'."""
    conversation_assign(conversation=conversation, assignee=admin_user)
    conversation_set_status(conversation=Conversation.objects.get(pk=conversation.pk), status=Conversation.Status.RESOLVED)
    response = agent_api.post("/api/v1/conversations/", {"account": sandbox_account.pk, "phone": "+14155550123",
                                                         "text": "Hi"}, format="json")
    taken = Conversation.objects.get(pk=conversation.pk).assignee_id == agent_user.pk
    history = agent_api.get(f"/api/v1/messages/?conversation={conversation.pk}").json().get("results", [])
    assert response.status_code == 403 and not taken, (response.status_code, "assignee now agent" if taken else "")
    assert not any(m["text"] == "my secret order details" for m in history)


def test_a_removed_members_scheduled_replies_do_not_leave(location, agent_user, conversation):
    """member_remove unassigns the person's conversations and deletes their API keys, but their
    scheduled replies (up to a year ahead) stay pending and leave later under their name."""
    scheduled = scheduled_message_create(conversation=conversation, text="Sent after I was let go", send_at=_later(days=7),
                                         created_by=agent_user)
    member_remove(membership=Membership.objects.get(user=agent_user, location=location))
    _due(scheduled)
    scheduled_messages_sweep()
    scheduled_message_send(scheduled.pk)
    scheduled.refresh_from_db()
    sent = Message.objects.filter(direction="outbound", text="Sent after I was let go").exists()
    assert not sent and scheduled.status != "sent", (scheduled.status, "message left" if sent else "")


def test_scheduling_through_the_api_honours_the_idempotency_key(api_client, conversation):
    """POST /messages/, /conversations/ and /broadcasts/ honour Idempotency-Key (api_base.idempotent);
    POST /conversations/{id}/scheduled/ ignores it: a client's retry after a lost answer stores a
    second row, and both leave (a double send)."""
    url = f"/api/v1/conversations/{conversation.pk}/scheduled/"
    body = {"text": "Your appointment is tomorrow", "send_at": (timezone.now() + timedelta(days=1)).isoformat()}
    first = api_client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    second = api_client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    assert first.status_code == 201
    assert ScheduledMessage.objects.filter(conversation=conversation).count() == 1, (
        "two scheduled rows for one Idempotency-Key", second.status_code, second.get("Idempotent-Replayed"))


# =============================================================================================
# DEFENCES THAT HELD
# =============================================================================================
def test_holds_agent_token_cannot_write_into_a_colleagues_open_conversation(agent_api, admin_user, sandbox_account, conversation):
    conversation_assign(conversation=conversation, assignee=admin_user)
    response = agent_api.post("/api/v1/conversations/", {"account": sandbox_account.pk, "contact": conversation.contact_id,
                                                         "text": "Hi"}, format="json")
    assert_error(response, 403)
    assert Conversation.objects.get(pk=conversation.pk).assignee_id == admin_user.pk
    assert not Message.objects.filter(direction="outbound").exists()


def test_holds_cross_location_ids_on_schedule_start_and_templates(admin_client, outsider_client, other_location, location,
                                                                 sandbox_account, conversation, other_api, api_client):
    from accounts.services import account_connect, account_create
    theirs = account_create(location=other_location, kind="android_sms", backend="sandbox", name="Theirs", phone_number="+14155550999")
    account_connect(account=theirs)
    their_contact = Contact.objects.create(location=other_location, phone="+14155550998", name="Their customer")
    # schedule in our conversation through their account: 404, nothing stored
    r = _hx(admin_client, f"/inbox/{conversation.pk}/schedule/", {"text": "x", "when": "at", "account": theirs.pk,
                                                                   "send_at": (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")})
    assert r.status_code == 404 and not ScheduledMessage.objects.exists()
    # API: their account as the scheduled reply's account
    assert_error(api_client.post(f"/api/v1/conversations/{conversation.pk}/scheduled/",
                                 {"text": "x", "at_business_hours": False, "send_at": _later().isoformat(), "account": theirs.pk},
                                 format="json"), 400, field="account")
    # new conversation: their account / their contact
    r = admin_client.post("/inbox/new/", {"account": theirs.pk, "phone": "+14155550124", "text": "hi"})
    assert r.status_code == 400 and not Message.objects.filter(direction="outbound").exists()
    r = admin_client.get(f"/inbox/new/?contact={their_contact.pk}")
    assert r.status_code == 404
    r = admin_client.post("/inbox/new/", {"account": sandbox_account.pk, "contact": their_contact.pk, "text": "hi"})
    assert r.status_code == 404 and not Message.objects.filter(direction="outbound").exists()
    assert "Their customer" not in admin_client.get("/inbox/new/contacts/?q=Their").content.decode()
    # their token and our template/conversation
    template = template_create(location=location, name="Ours", body="Hi {{name}} {{phone}}")
    assert_error(other_api.get(f"/api/v1/templates/{template.pk}/"), 404)
    assert_error(other_api.post(f"/api/v1/templates/{template.pk}/render/", {"conversation": conversation.pk}, format="json"), 404)
    their_template = template_create(location=other_location, name="Theirs", body="Hi")
    assert_error(api_client.post(f"/api/v1/templates/{their_template.pk}/render/", {"conversation": conversation.pk},
                                 format="json"), 404)
    assert outsider_client.get(f"/templates/{template.pk}/").status_code in (403, 404)
    assert outsider_client.post(f"/templates/{template.pk}/delete/").status_code in (403, 404)
    assert MessageTemplate.objects.filter(pk=template.pk).exists()
    # their token cannot start a conversation through our account or to our contact
    assert_error(other_api.post("/api/v1/conversations/", {"account": sandbox_account.pk, "phone": "+14155550124", "text": "x"},
                                format="json"), 400, field="account")


def test_holds_agents_cannot_manage_templates_on_the_page(agent_client, location):
    template = template_create(location=location, name="Greeting", body="Hi")
    assert agent_client.post("/templates/", {"name": "Mine", "body": "x"}).status_code == 403
    assert agent_client.post(f"/templates/{template.pk}/", {"name": "Changed", "body": "x"}).status_code == 403
    assert agent_client.post(f"/templates/{template.pk}/delete/").status_code == 403
    assert list(MessageTemplate.objects.values_list("name", flat=True)) == ["Greeting"]


def test_holds_xss_in_template_names_bodies_and_contact_names_is_escaped(admin_client, location, conversation, admin_user):
    Contact.objects.filter(pk=conversation.contact_id).update(name=XSS)
    template_create(location=location, name=XSS[:90], body="Hi {{name}} " + "</script><script>alert(2)</script>")
    page = admin_client.get("/templates/").content.decode()
    assert XSS[:90] not in page and "<script>alert(2)" not in page
    scheduled_message_create(conversation=conversation, text="Dear {{name}}", send_at=_later(), created_by=admin_user)
    page = admin_client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert XSS not in page and "<script>alert(2)" not in page
    data = json.loads(re.search(r'<script id="composer-templates" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert data[0]["text"].startswith("Hi <img")  # the text itself arrives intact, as JSON, for textContent
    listing = admin_client.get(f"/inbox/{conversation.pk}/scheduled/").content.decode()
    assert XSS not in listing


def test_holds_junk_ids_and_times_answer_without_a_500(admin_client, conversation, sandbox_account):
    from ghl.models import GhlConnection
    GhlConnection.objects.create(location=conversation.location, status=GhlConnection.Status.CONNECTED)
    huge = "9" * 30
    for data in ({"what": "defaults", "default_sms_account": huge}, {"what": "user", "ghl_user": huge, "account": huge},
                 {"what": "defaults", "default_whatsapp_account": "-1"}, {"what": "nonsense"}):
        assert _hx(admin_client, "/ghl/sending/", data).status_code == 200
    for send_at in ("0001-01-01T00:00", "9999-12-31T23:59", "2026-02-30T10:00", "x", "2026-01-01T10:00+99:00"):
        r = _hx(admin_client, f"/inbox/{conversation.pk}/schedule/", {"text": "x", "when": "at", "send_at": send_at})
        assert r.status_code == 200
    assert not ScheduledMessage.objects.exists()
    r = admin_client.post("/inbox/new/", {"account": huge, "phone": "+14155550124", "text": "hi"})
    assert r.status_code == 400
    r = admin_client.post("/inbox/new/", {"account": sandbox_account.pk, "contact": huge, "text": "hi"})
    assert r.status_code == 404


def test_holds_opted_out_contact_by_number_cannot_be_started_or_scheduled(admin_client, api_client, sandbox_account, conversation):
    Contact.objects.filter(pk=conversation.contact_id).update(opted_out=True)
    r = admin_client.post("/inbox/new/", {"account": sandbox_account.pk, "phone": "(415) 555-0123", "text": "hi"})
    assert r.status_code == 400
    assert_error(api_client.post("/api/v1/conversations/", {"account": sandbox_account.pk, "phone": "4155550123", "text": "x"},
                                 format="json"), 400, "opted_out")
    assert_error(api_client.post(f"/api/v1/conversations/{conversation.pk}/scheduled/", {"text": "x", "send_at": _later().isoformat()},
                                 format="json"), 400, "opted_out")
    assert not Message.objects.filter(direction="outbound").exists() and not ScheduledMessage.objects.exists()
