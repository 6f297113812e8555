"""The inbound pipeline: webhook -> stored event -> contact, tag, conversation, message."""
import json
from datetime import datetime, timezone as dt_tz

import pytest
from django.test import Client

from accounts.providers.base import DeliveryStatus, InboundMessage
from accounts.providers.sandbox import sign
from accounts.services import account_create, account_connect
from contacts.models import Contact, ContactAccount
from conversations.models import Conversation, InboundEvent, Message
from conversations.services import inbound_event_process, message_deliver, message_send, webhook_events_record
from ghl.models import OutboxItem
from whatsnap.models import LiveEvent

# Real commits: the pipeline queues its tasks with transaction.on_commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def post_sandbox(account, payload: dict, *, secret=None, client=None):
    body = json.dumps(payload).encode()
    return (client or Client()).post(
        f"/webhooks/sandbox/{account.pk}/",
        data=body,
        content_type="application/json",
        HTTP_X_SANDBOX_SIGNATURE=sign(secret or account.webhook_secret, body),
    )


def inbound(pid="m1", phone="+14155550123", name="Ada", text="hello", **kw):
    return InboundMessage(provider_id=pid, from_phone=phone, name=name, text=text, at=datetime.now(dt_tz.utc), **kw)


def test_signed_webhook_creates_contact_with_tag_and_message(sandbox_account):
    response = post_sandbox(sandbox_account, {"id": "abc", "from": "(415) 555-0123", "name": "Ada", "text": "Hi"})
    assert response.status_code == 200
    contact = Contact.objects.get()
    assert contact.phone == "+14155550123" and contact.name == "Ada"
    assert [t.name for t in contact.tags.all()] == ["whatsnap-account-sales"]
    assert list(ContactAccount.objects.values_list("platform", flat=True)) == ["android_sms"]
    message = Message.objects.get()
    assert (message.text, message.direction, message.provider_message_id) == ("Hi", "inbound", "abc")
    conversation = Conversation.objects.get()
    assert conversation.unread_count == 1 and conversation.last_message_preview == "Hi"
    assert InboundEvent.objects.get().status == "done"


def test_redelivery_is_a_noop(sandbox_account):
    for _ in range(3):
        assert post_sandbox(sandbox_account, {"id": "same", "from": "+14155550123", "text": "Hi"}).status_code == 200
    assert (Contact.objects.count(), Message.objects.count(), InboundEvent.objects.count()) == (1, 1, 1)


def test_forged_webhook_refused_and_nothing_stored(sandbox_account):
    response = post_sandbox(sandbox_account, {"id": "x", "from": "+14155550123", "text": "Hi"}, secret="wrong")
    assert response.status_code == 403
    assert not InboundEvent.objects.exists() and not Contact.objects.exists() and not Message.objects.exists()


def test_unknown_account_404_and_wrong_kind_404(sandbox_account):
    assert Client().post("/webhooks/sandbox/999999/", data=b"{}", content_type="application/json").status_code == 404
    assert Client().post(f"/webhooks/twilio/{sandbox_account.pk}/", data={}).status_code == 404


def test_malformed_payload_400_with_reason(sandbox_account):
    response = post_sandbox(sandbox_account, {"text": "no id or sender"})
    assert response.status_code == 400
    assert "not understood" in response.json()["detail"]
    assert not InboundEvent.objects.exists()


def test_body_over_limit_413(sandbox_account, settings):
    settings.WEBHOOK_MAX_BYTES = 100
    response = post_sandbox(sandbox_account, {"id": "big", "from": "+14155550123", "text": "x" * 500})
    assert response.status_code == 413
    assert not InboundEvent.objects.exists()


def test_chunked_body_over_limit_413_without_content_length(sandbox_account, settings):
    """A body sent chunked (no Content-Length) is measured, not trusted by its header."""
    import asyncio

    from django.core.handlers.asgi import ASGIHandler

    settings.WEBHOOK_MAX_BYTES = 100
    body = json.dumps({"id": "big", "from": "+14155550123", "text": "x" * 500}).encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": f"/webhooks/sandbox/{sandbox_account.pk}/", "raw_path": b"", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), (b"transfer-encoding", b"chunked"),
                         (b"x-sandbox-signature", sign(sandbox_account.webhook_secret, body).encode())],
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    chunks = [{"type": "http.request", "body": body[i:i + 64], "more_body": i + 64 < len(body)} for i in range(0, len(body), 64)]
    sent = []

    async def receive():
        if chunks:
            return chunks.pop(0)
        await asyncio.sleep(3600)  # the client stays connected (cancelled once answered)

    async def send(message):
        sent.append(message)

    asyncio.run(ASGIHandler()(scope, receive, send))
    assert sent, "no answer"
    assert sent[0]["status"] == 413, sent
    assert not InboundEvent.objects.exists()


def test_one_person_three_accounts_is_one_contact_with_three_tags(location):
    accounts = []
    for name in ("sales", "support", "vip"):
        account = account_create(location=location, kind="android_sms", backend="sandbox", name=name, phone_number="+14155550111")
        account_connect(account=account)
        accounts.append(account)
    for i, account in enumerate(accounts):
        webhook_events_record(account=account, events=[inbound(pid=f"p{i}")])
    contact = Contact.objects.get()
    assert sorted(t.name for t in contact.tags.all()) == [
        "whatsnap-account-sales", "whatsnap-account-support", "whatsnap-account-vip",
    ]
    assert Conversation.objects.filter(contact=contact).count() == 3
    contact.refresh_from_db()
    assert contact.active_account_id == accounts[-1].pk


def test_person_set_name_never_overwritten_but_platform_name_updates(sandbox_account):
    webhook_events_record(account=sandbox_account, events=[inbound(pid="1", name="Ada")])
    webhook_events_record(account=sandbox_account, events=[inbound(pid="2", name="Ada L.")])
    contact = Contact.objects.get()
    assert contact.name == "Ada L."
    contact.name, contact.name_source = "Ada Lovelace", Contact.NameSource.PERSON
    contact.save()
    webhook_events_record(account=sandbox_account, events=[inbound(pid="3", name="ada phone")])
    contact.refresh_from_db()
    assert contact.name == "Ada Lovelace"


def test_short_code_and_alphanumeric_senders_kept_raw(sandbox_account):
    webhook_events_record(account=sandbox_account, events=[inbound(pid="1", phone="72345"), inbound(pid="2", phone="ACMEBANK")])
    phones = dict(Contact.objects.values_list("phone", "phone_is_e164"))
    assert phones == {"72345": False, "ACMEBANK": False}
    assert Message.objects.count() == 2


def test_empty_body_with_media_and_very_long_body(sandbox_account):
    media = ({"url": "https://example.invalid/a.jpg", "content_type": "image/jpeg"},)
    webhook_events_record(account=sandbox_account, events=[inbound(pid="1", text="", media=media), inbound(pid="2", text="y" * 20000)])
    by_id = {m.provider_message_id: m for m in Message.objects.all()}
    assert by_id["1"].media == list(media) and by_id["1"].text == ""
    assert len(by_id["2"].text) == 20000
    assert Conversation.objects.get().last_message_preview == "y" * 160


def test_group_message_is_a_group_conversation_with_participant(sandbox_account):
    webhook_events_record(account=sandbox_account, events=[
        inbound(pid="g1", phone="+14155550123", name="Ada", group_id="12036302@g.us", group_name="Team"),
    ])
    group = Contact.objects.get(kind=Contact.Kind.GROUP)
    person = Contact.objects.get(kind=Contact.Kind.PERSON)
    assert group.phone == "12036302@g.us" and group.name == "Team"
    message = Message.objects.get()
    assert message.conversation.contact == group and message.sender_contact == person
    assert person.tags.filter(account=sandbox_account).exists()


def test_resolved_conversation_reopens_on_new_message(sandbox_account):
    webhook_events_record(account=sandbox_account, events=[inbound(pid="1")])
    Conversation.objects.update(status=Conversation.Status.RESOLVED)
    webhook_events_record(account=sandbox_account, events=[inbound(pid="2")])
    assert Conversation.objects.get().status == Conversation.Status.OPEN


def test_live_event_published_after_commit(sandbox_account):
    LiveEvent.objects.all().delete()
    webhook_events_record(account=sandbox_account, events=[inbound(pid="1")])
    events = list(LiveEvent.objects.values_list("payload", flat=True))
    received = [e for e in events if e["event"] == "message.received"]
    assert len(received) == 1 and "inbox" in received[0]["topics"]


def test_outbox_rows_only_for_ghl_connected_locations(sandbox_account, location):
    webhook_events_record(account=sandbox_account, events=[inbound(pid="1")])
    assert not OutboxItem.objects.exists()
    location.ghl_location_id = "ghl-loc-1"
    location.save()
    webhook_events_record(account=sandbox_account, events=[inbound(pid="2", phone="+14155550124")])
    ops = sorted(OutboxItem.objects.values_list("operation", flat=True))
    assert ops == ["contact_upsert", "inbound_message"]


def test_crash_midway_leaves_no_half_state_and_retry_succeeds(sandbox_account, monkeypatch):
    import routing.services as routing_services

    def boom(**kwargs):
        raise RuntimeError("worker died")

    monkeypatch.setattr(routing_services, "conversations_route", boom)  # after contact, thread and message are written
    webhook_events_record(account=sandbox_account, events=[inbound(pid="1")])
    event = InboundEvent.objects.get()
    assert event.status == "pending" and event.attempts == 1 and "worker died" in event.error
    assert not Contact.objects.exists() and not Message.objects.exists() and not Conversation.objects.exists()
    monkeypatch.undo()
    assert inbound_event_process(event_id=event.pk) == "done"
    assert (Contact.objects.count(), Message.objects.count()) == (1, 1)
    assert inbound_event_process(event_id=event.pk) == "done"  # a second run changes nothing
    assert Message.objects.count() == 1


def test_worker_down_events_wait_then_sweeper_processes(sandbox_account, monkeypatch):
    import conversations.tasks as tasks
    import whatsnap.tasks as queue

    monkeypatch.setattr(queue, "async_task", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("broker down")))
    response = post_sandbox(sandbox_account, {"id": "w1", "from": "+14155550123", "text": "Hi"})
    assert response.status_code == 200  # the ack path does not need the broker
    assert InboundEvent.objects.get().status == "pending" and not Message.objects.exists()
    monkeypatch.undo()
    InboundEvent.objects.update(received_at=InboundEvent.objects.get().received_at.replace(year=2000))
    assert tasks.sweep_pending() == 1
    assert InboundEvent.objects.get().status == "done" and Message.objects.count() == 1


@pytest.mark.parametrize(
    "sequence,final",
    [
        (["sent", "delivered", "read"], "read"),
        (["delivered", "sent"], "delivered"),
        (["read", "delivered", "sent"], "read"),
        (["failed", "delivered"], "failed"),
        (["delivered", "failed"], "delivered"),
    ],
)
def test_delivery_status_never_moves_backwards(sandbox_account, sequence, final):
    webhook_events_record(account=sandbox_account, events=[inbound(pid="1")])
    message = message_send(conversation=Conversation.objects.get(), text="reply")
    from conversations.models import Message as M

    M.objects.filter(pk=message.pk).update(status="queued", provider_message_id="out-1")
    for status in sequence:
        webhook_events_record(account=sandbox_account, events=[DeliveryStatus(provider_id="out-1", status=status)])
    message.refresh_from_db()
    assert message.status == final


def test_status_before_message_waits_then_applies(sandbox_account):
    webhook_events_record(account=sandbox_account, events=[inbound(pid="1")])
    webhook_events_record(account=sandbox_account, events=[DeliveryStatus(provider_id="later", status="delivered")])
    event = InboundEvent.objects.get(kind="status")
    assert event.status == "pending"
    message = message_send(conversation=Conversation.objects.get(), text="x")
    Message.objects.filter(pk=message.pk).update(status="sent", provider_message_id="later")
    assert inbound_event_process(event_id=event.pk) == "done"
    message.refresh_from_db()
    assert message.status == "delivered"


def test_sandbox_reply_is_sent_once_and_delivered(sandbox_account):
    webhook_events_record(account=sandbox_account, events=[inbound(pid="1")])
    conversation = Conversation.objects.get()
    message = message_send(conversation=conversation, text="Thanks!")
    message.refresh_from_db()
    assert message.status == "delivered" and message.provider_message_id == f"sbx-out-wsm-{message.pk}"
    assert message_deliver(message_id=message.pk) == "skipped"  # a redelivered task sends nothing


def test_api_contact_by_phone_and_inbound_messages(api_client, sandbox_account):
    webhook_events_record(account=sandbox_account, events=[inbound(pid="1")])
    body = api_client.get("/api/v1/contacts/", {"phone": "+14155550123"}).json()
    assert len(body["results"]) == 1
    assert body["results"][0]["tags"] == ["whatsnap-account-sales"]
    assert body["results"][0]["platforms"] == ["android_sms"]
    assert api_client.get("/api/v1/contacts/", {"phone": "+14155550999"}).json()["results"] == []
    messages = api_client.get("/api/v1/messages/", {"direction": "inbound"}).json()["results"]
    assert [m["provider_message_id"] for m in messages] == ["1"]
