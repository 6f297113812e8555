"""/api/v1/conversations/ and /api/v1/messages/ (sending, idempotency, agent scope)."""
import threading
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from accounts.services import account_create, account_connect, account_disconnect
from contacts.models import Contact
from conversations.actions import conversation_assign
from conversations.models import Conversation, ConversationEvent, Message
from whatsnap.models import IdempotencyKey
from tests.test_api_support import *  # noqa: F401,F403  (fixtures)
from tests.test_api_support import assert_error, new_key, receive, token_client


@pytest.fixture(autouse=True)
def no_pacing_waits(monkeypatch):
    monkeypatch.setattr("conversations.pacing.sleep", lambda seconds: None)


@pytest.fixture
def conversation(sandbox_account):
    receive(sandbox_account, phone="+14155550123", name="Ada", text="hello")
    return Conversation.objects.get()


def _ids(response):
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_list_and_retrieve(api_client, conversation):
    (row,) = api_client.get("/api/v1/conversations/").json()["results"]
    assert row["id"] == conversation.pk and row["status"] == "open" and row["unread_count"] == 1
    assert row["contact"] == {"id": conversation.contact_id, "phone": "+14155550123", "name": "Ada"}
    assert row["last_message_preview"] == "hello" and row["assignee"] is None
    assert api_client.get(f"/api/v1/conversations/{conversation.pk}/").json() == row


def test_conversation_filters(api_client, location, sandbox_account, agent_user, conversation):
    receive(sandbox_account, phone="+14155550124", name="Bob")
    second = Conversation.objects.exclude(pk=conversation.pk).get()
    conversation_assign(conversation=second, assignee=agent_user)
    Conversation.objects.filter(pk=conversation.pk).update(status="resolved")
    assert _ids(api_client.get("/api/v1/conversations/")) == [second.pk, conversation.pk]
    assert _ids(api_client.get("/api/v1/conversations/", {"ordering": "id"})) == [conversation.pk, second.pk]
    assert _ids(api_client.get("/api/v1/conversations/", {"status": "resolved"})) == [conversation.pk]
    assert _ids(api_client.get("/api/v1/conversations/", {"assignee": agent_user.pk})) == [second.pk]
    assert _ids(api_client.get("/api/v1/conversations/", {"unassigned": "true"})) == [conversation.pk]
    assert _ids(api_client.get("/api/v1/conversations/", {"unassigned": "false"})) == [second.pk]
    assert _ids(api_client.get("/api/v1/conversations/", {"account": sandbox_account.pk, "contact": second.contact_id})) == [second.pk]
    assert_error(api_client.get("/api/v1/conversations/", {"status": "asleep"}), 400, "invalid", "status")


def test_assign_and_unassign(api_client, conversation, agent_user, outsider):
    response = api_client.post(f"/api/v1/conversations/{conversation.pk}/assign/", {"assignee": agent_user.pk}, format="json")
    assert response.status_code == 200 and response.json()["assignee"] == agent_user.pk
    event = ConversationEvent.objects.get(kind="assigned")
    assert (event.to_value, event.reason) == ("teammate", "through the API")
    assert_error(api_client.post(f"/api/v1/conversations/{conversation.pk}/assign/", {"assignee": outsider.pk}, format="json"),
                 400, "invalid", "assignee")
    assert_error(api_client.post(f"/api/v1/conversations/{conversation.pk}/assign/", {"assignee": 999999}, format="json"),
                 400, "invalid", "assignee")
    assert_error(api_client.post(f"/api/v1/conversations/{conversation.pk}/assign/", {}, format="json"), 400, "invalid", "assignee")
    response = api_client.post(f"/api/v1/conversations/{conversation.pk}/assign/", {"assignee": None}, format="json")
    assert response.status_code == 200 and response.json()["assignee"] is None


def test_status_changes(api_client, conversation):
    response = api_client.post(f"/api/v1/conversations/{conversation.pk}/status/", {"status": "resolved"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "resolved"
    assert_error(api_client.post(f"/api/v1/conversations/{conversation.pk}/status/", {"status": "snoozed"}, format="json"),
                 400, "invalid", "snooze_until")
    until = (timezone.now() + timezone.timedelta(hours=2)).isoformat()
    response = api_client.post(f"/api/v1/conversations/{conversation.pk}/status/", {"status": "snoozed", "snooze_until": until},
                               format="json")
    assert response.status_code == 200 and response.json()["status"] == "snoozed" and response.json()["snoozed_until"]
    assert_error(api_client.post(f"/api/v1/conversations/{conversation.pk}/status/", {"status": "gone"}, format="json"),
                 400, "invalid", "status")


def test_agent_token_sees_only_assigned_conversations_and_messages(agent_api, agent_user, sandbox_account, conversation):
    receive(sandbox_account, phone="+14155550124", name="Bob", text="mine")
    mine = Conversation.objects.exclude(pk=conversation.pk).get()
    conversation_assign(conversation=mine, assignee=agent_user)
    assert _ids(agent_api.get("/api/v1/conversations/")) == [mine.pk]
    assert_error(agent_api.get(f"/api/v1/conversations/{conversation.pk}/"), 404, "not_found")
    assert_error(agent_api.post(f"/api/v1/conversations/{conversation.pk}/assign/", {"assignee": agent_user.pk}, format="json"), 404)
    assert [m["text"] for m in agent_api.get("/api/v1/messages/").json()["results"]] == ["mine"]
    other_message = Message.objects.get(conversation=conversation)
    assert_error(agent_api.get(f"/api/v1/messages/{other_message.pk}/"), 404)
    # writing: only in their own conversations
    assert agent_api.post("/api/v1/messages/", {"conversation": mine.pk, "text": "hi"}, format="json").status_code == 201
    assert_error(agent_api.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "hi"}, format="json"), 403)
    assert_error(agent_api.post("/api/v1/messages/", {"contact": conversation.contact_id, "account": sandbox_account.pk,
                                                      "text": "hi"}, format="json"), 403)
    assert Message.objects.filter(direction="outbound").count() == 1


def test_admin_member_token_sees_everything(admin_member_api, conversation):
    assert _ids(admin_member_api.get("/api/v1/conversations/")) == [conversation.pk]


# --- messages ----------------------------------------------------------------------------------
def test_send_in_a_conversation(api_client, conversation):
    response = api_client.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "Hi Ada"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["direction"] == "outbound" and body["conversation"] == conversation.pk
    assert body["contact"] == conversation.contact_id and body["text"] == "Hi Ada"
    assert Message.objects.get(pk=body["id"]).status == "delivered"  # the sandbox delivered it (tasks run inline)
    assert api_client.get(f"/api/v1/messages/{body['id']}/").json()["status"] == "delivered"


def test_send_to_a_contact_through_an_account(api_client, location, sandbox_account, conversation):
    whatsapp = account_create(location=location, kind="android_sms", backend="sandbox", name="Second", phone_number="+14155550112")
    account_connect(account=whatsapp)
    response = api_client.post("/api/v1/messages/", {"contact": conversation.contact_id, "account": whatsapp.pk,
                                                     "text": "From the other line"}, format="json")
    assert response.status_code == 201, response.json()
    new = Conversation.objects.get(account=whatsapp)
    assert response.json()["conversation"] == new.pk and new.contact_id == conversation.contact_id
    # a contact created through the API, who never wrote in
    contact = api_client.post("/api/v1/contacts/", {"phone": "+14155550177"}, format="json").json()
    response = api_client.post("/api/v1/messages/", {"contact": contact["id"], "account": sandbox_account.pk, "text": "Hello"},
                               format="json")
    assert response.status_code == 201 and Conversation.objects.filter(contact_id=contact["id"]).count() == 1


def test_send_refusals(api_client, other_location, sandbox_account, conversation):
    assert_error(api_client.post("/api/v1/messages/", {"text": "x"}, format="json"), 400, "invalid", "conversation")
    assert_error(api_client.post("/api/v1/messages/", {"conversation": conversation.pk}, format="json"), 400, "invalid", "text")
    assert_error(api_client.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "x", "media": [{"url": "no"}]},
                                 format="json"), 400, "invalid", "media")
    theirs = account_create(location=other_location, kind="whatsapp", backend="sandbox", name="theirs")
    assert_error(api_client.post("/api/v1/messages/", {"contact": conversation.contact_id, "account": theirs.pk, "text": "x"},
                                 format="json"), 400, "invalid", "account")
    assert_error(api_client.post("/api/v1/messages/", {"conversation": 2**70, "text": "x"}, format="json"), 400, "invalid", "conversation")
    Contact.objects.filter(pk=conversation.contact_id).update(opted_out=True)
    assert_error(api_client.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "x"}, format="json"), 400, "opted_out")
    Contact.objects.filter(pk=conversation.contact_id).update(opted_out=False)
    account_disconnect(account=sandbox_account)
    assert_error(api_client.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "x"}, format="json"),
                 400, "account_unavailable")
    assert not Message.objects.filter(direction="outbound").exists()


def test_send_with_media(api_client, conversation):
    media = [{"url": "https://example.com/a.jpg", "content_type": "image/jpeg"}]
    response = api_client.post("/api/v1/messages/", {"conversation": conversation.pk, "media": media}, format="json")
    assert response.status_code == 201 and response.json()["media"] == media


def test_message_filters(api_client, sandbox_account, conversation):
    api_client.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "reply"}, format="json")
    receive(sandbox_account, phone="+14155550124", text="other")
    texts = lambda **q: [m["text"] for m in api_client.get("/api/v1/messages/", q).json()["results"]]  # noqa: E731
    assert texts() == ["other", "reply", "hello"]
    assert texts(conversation=conversation.pk) == ["reply", "hello"]
    assert texts(direction="inbound", ordering="id") == ["hello", "other"]
    assert texts(status="delivered") == ["reply"]
    assert texts(account=sandbox_account.pk, direction="outbound") == ["reply"]
    assert_error(api_client.get("/api/v1/messages/", {"direction": "sideways"}), 400, "invalid", "direction")


def test_retry_only_failed_messages(api_client, conversation):
    message_id = api_client.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "x"}, format="json").json()["id"]
    assert_error(api_client.post(f"/api/v1/messages/{message_id}/retry/"), 400)
    Message.objects.filter(pk=message_id).update(status="failed", provider_message_id="", error="boom")
    response = api_client.post(f"/api/v1/messages/{message_id}/retry/")
    assert response.status_code == 200 and response.json()["id"] == message_id
    assert Message.objects.get(pk=message_id).status == "delivered"  # queued again, then sent inline


# --- idempotency -------------------------------------------------------------------------------
def test_idempotency_key_makes_a_retried_send_safe(api_client, conversation):
    key = str(uuid.uuid4())
    payload = {"conversation": conversation.pk, "text": "only once"}
    first = api_client.post("/api/v1/messages/", payload, format="json", HTTP_IDEMPOTENCY_KEY=key)
    second = api_client.post("/api/v1/messages/", payload, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and first.json()["status"] == "queued"
    assert (first["Idempotent-Replayed"], second["Idempotent-Replayed"]) == ("false", "true")
    assert Message.objects.filter(direction="outbound").count() == 1
    assert IdempotencyKey.objects.get().response_status == 201
    # another request with the same key is refused, a new key sends again
    assert_error(api_client.post("/api/v1/messages/", {**payload, "text": "else"}, format="json", HTTP_IDEMPOTENCY_KEY=key),
                 400, "idempotency_key_reused")
    assert api_client.post("/api/v1/messages/", payload, format="json", HTTP_IDEMPOTENCY_KEY=key + "-2").status_code == 201
    assert Message.objects.filter(direction="outbound").count() == 2


def test_idempotency_keys_are_per_token(api_client, location, conversation):
    other = token_client(new_key(location, name="second"))
    payload = {"conversation": conversation.pk, "text": "hi"}
    assert api_client.post("/api/v1/messages/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k1").status_code == 201
    assert other.post("/api/v1/messages/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k1")["Idempotent-Replayed"] == "false"
    assert Message.objects.filter(direction="outbound").count() == 2


def test_a_refused_send_does_not_burn_its_key(api_client, sandbox_account, conversation):
    account_disconnect(account=sandbox_account)
    payload = {"conversation": conversation.pk, "text": "hi"}
    assert_error(api_client.post("/api/v1/messages/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k"), 400, "account_unavailable")
    assert not IdempotencyKey.objects.exists()
    account_connect(account=sandbox_account)
    response = api_client.post("/api/v1/messages/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 201 and response["Idempotent-Replayed"] == "false"
    assert_error(api_client.post("/api/v1/messages/", payload, format="json", HTTP_IDEMPOTENCY_KEY="x" * 300), 400, "invalid",
                 "Idempotency-Key")


def test_other_locations_conversations_and_messages_are_404(other_api, conversation):
    message = Message.objects.get()
    assert other_api.get("/api/v1/conversations/").json()["results"] == []
    assert other_api.get("/api/v1/messages/").json()["results"] == []
    assert_error(other_api.get(f"/api/v1/conversations/{conversation.pk}/"), 404)
    assert_error(other_api.post(f"/api/v1/conversations/{conversation.pk}/status/", {"status": "resolved"}, format="json"), 404)
    assert_error(other_api.get(f"/api/v1/messages/{message.pk}/"), 404)
    assert_error(other_api.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "x"}, format="json"),
                 400, "invalid", "conversation")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions need PostgreSQL")
def test_concurrent_retries_with_one_key_send_once(api_key, conversation):
    barrier = threading.Barrier(6)
    answers, errors = [], []

    def retry():
        try:
            client = token_client(api_key)
            barrier.wait()
            response = client.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "once"}, format="json",
                                   HTTP_IDEMPOTENCY_KEY="same-key")
            answers.append((response.status_code, response.json()["id"]))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(answers) == 6 and {status for status, _ in answers} == {201} and len({pk for _, pk in answers}) == 1
    assert Message.objects.filter(direction="outbound").count() == 1
