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


# --- issue 17: what a message carries, quoted replies, reactions ---------------------------------
def _post_sandbox(account, payload):
    import json

    from django.test import Client

    from accounts.providers.sandbox import sign

    body = json.dumps(payload).encode()
    response = Client().post(f"/webhooks/sandbox/{account.pk}/", data=body, content_type="application/json",
                             HTTP_X_SANDBOX_SIGNATURE=sign(account.webhook_secret, body))
    assert response.status_code == 200, response.content


def test_messages_carry_device_history_quote_edit_deletion_and_reactions(api_client, sandbox_account, conversation):
    first = Message.objects.get()
    receive(sandbox_account, text="…and this?", pid="in-q")
    Message.objects.filter(provider_message_id="in-q").update(reply_to=first, quoted_text="hello")
    _post_sandbox(sandbox_account, {"type": "from_me", "id": "me-1", "to": "+14155550123", "text": "typed on the phone"})
    _post_sandbox(sandbox_account, {"type": "reaction", "target": first.provider_message_id, "emoji": "👍", "from": "+14155550123"})
    _post_sandbox(sandbox_account, {"type": "edit", "target": first.provider_message_id, "text": "hello there", "from": "+14155550123"})
    rows = {m["text"]: m for m in api_client.get("/api/v1/messages/").json()["results"]}
    edited = rows["hello there"]
    assert edited["reactions"] == [{"emoji": "👍", "by": "Ada", "from_me": False, "contact": conversation.contact_id,
                                    "author": None, "at": edited["reactions"][0]["at"]}]
    assert edited["edited_at"] and edited["edits"][0]["text"] == "hello" and edited["deleted_at"] is None
    assert rows["…and this?"]["reply_to"] == first.pk and rows["…and this?"]["quoted_text"] == "hello"
    device = rows["typed on the phone"]
    assert device["via_device"] is True and device["direction"] == "outbound" and device["is_history"] is False


def test_edits_and_deleted_texts_only_for_admin_tokens(api_client, agent_api, agent_user, sandbox_account, conversation):
    message = Message.objects.get()
    conversation_assign(conversation=conversation, assignee=agent_user)
    _post_sandbox(sandbox_account, {"type": "edit", "target": message.provider_message_id, "text": "my pin is 1234", "from": "+14155550123"})
    _post_sandbox(sandbox_account, {"type": "delete", "target": message.provider_message_id, "from": "+14155550123"})
    admin_view = api_client.get(f"/api/v1/messages/{message.pk}/").json()
    agent_view = agent_api.get(f"/api/v1/messages/{message.pk}/").json()
    assert admin_view["text"] == "my pin is 1234" and admin_view["edits"] == [{"text": "hello", "until": admin_view["edits"][0]["until"]}]
    assert admin_view["deleted_at"] and agent_view["deleted_at"] == admin_view["deleted_at"]
    assert agent_view["text"] == "" and agent_view["edits"] is None


def test_send_a_quoted_reply(api_client, sandbox_account, conversation, other_location):
    original = Message.objects.get()
    response = api_client.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "Yes", "reply_to": original.pk},
                               format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["reply_to"] == original.pk and response.json()["quoted_text"] == "hello"
    sent = Message.objects.get(pk=response.json()["id"])
    assert sent.reply_to_provider_id == original.provider_message_id
    receive(sandbox_account, phone="+14155550124", name="Bob", pid="bob-1")
    bobs = Message.objects.get(provider_message_id="bob-1")
    assert_error(api_client.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "x", "reply_to": bobs.pk},
                                 format="json"), 400, "invalid", "reply_to")
    theirs = account_create(location=other_location, kind="android_sms", backend="sandbox", name="t", phone_number="+14155550119")
    account_connect(account=theirs)
    receive(theirs, pid="their-1")
    foreign = Message.objects.get(provider_message_id="their-1")
    assert_error(api_client.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "x", "reply_to": foreign.pk},
                                 format="json"), 400, "invalid", "reply_to")
    assert_error(api_client.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "x", "reply_to": 2**70},
                                 format="json"), 400, "invalid", "reply_to")
    assert Message.objects.filter(direction="outbound").count() == 1


def test_react_to_a_message(api_client, sandbox_account, conversation, monkeypatch):
    from accounts.providers.sandbox import SandboxProvider

    calls = []
    monkeypatch.setattr(SandboxProvider, "react", lambda self, account, **kw: calls.append(kw))
    message = Message.objects.get()
    response = api_client.post(f"/api/v1/messages/{message.pk}/reactions/", {"emoji": "🙏"}, format="json")
    assert response.status_code == 200, response.json()
    (reaction,) = response.json()["reactions"]
    assert (reaction["emoji"], reaction["from_me"], reaction["by"]) == ("🙏", True, "Sales")
    assert calls == [{"to": "+14155550123", "target_id": message.provider_message_id, "target_from_me": False, "emoji": "🙏"}]
    assert api_client.post(f"/api/v1/messages/{message.pk}/reactions/", {"emoji": ""}, format="json").json()["reactions"] == []
    assert calls[-1]["emoji"] == ""
    assert_error(api_client.post(f"/api/v1/messages/{message.pk}/reactions/", {"emoji": "yes"}, format="json"), 400, "invalid", "emoji")
    assert_error(api_client.post(f"/api/v1/messages/{message.pk}/reactions/", {}, format="json"), 400, "invalid", "emoji")


def test_react_is_refused_where_the_backend_cannot(api_client, twilio_account, other_api, conversation):
    from accounts.providers.base import InboundMessage
    from conversations.models import MessageReaction
    from conversations.services import webhook_events_record

    webhook_events_record(account=twilio_account, events=[InboundMessage(
        provider_id="SM1", from_phone="+14155550199", name="Tw", text="hi", at=timezone.now())])
    sms = Message.objects.get(provider_message_id="SM1")
    body = assert_error(api_client.post(f"/api/v1/messages/{sms.pk}/reactions/", {"emoji": "👍"}, format="json"),
                        400, "reaction_refused")
    assert "cannot send reactions" in body["detail"]
    mine = Message.objects.get(conversation=conversation)
    assert_error(other_api.post(f"/api/v1/messages/{mine.pk}/reactions/", {"emoji": "👍"}, format="json"), 404)
    assert not MessageReaction.objects.exists()
