"""Outgoing webhooks: subscriptions, deliveries written with the event's transaction, signed
POSTs to a loopback receiver, retries with backoff, the attempt log, replay (API and admin)."""
import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta, timezone as dt_tz

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from accounts.providers.base import InboundMessage
from conversations.models import Conversation
from conversations.services import webhook_events_record
from hooks import services
from hooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from hooks.services import hook_event_emit, hook_subscription_create
from hooks.tasks import sweep
from whatsnap import tasks
from whatsnap.idempotency import idempotency_keys_prune
from whatsnap.models import IdempotencyKey
from tests.test_api_support import *  # noqa: F401,F403  (fixtures)
from tests.test_api_support import LoopbackServer, assert_error, receive

ALL_EVENTS = ["message.received", "message.status", "contact.created", "conversation.assigned"]


@pytest.fixture(autouse=True)
def no_pacing_waits(monkeypatch):
    monkeypatch.setattr("conversations.pacing.sleep", lambda seconds: None)


@pytest.fixture
def subscribed(api_client, receiver):
    """Subscribe the receiver through the API; returns (subscription id, secret)."""
    response = api_client.post("/api/v1/webhooks/", {"url": receiver.url + "/hook", "events": ALL_EVENTS}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"], response.json()["secret"]


def _valid_signature(secret: str, request: dict) -> bool:
    timestamp = request["headers"]["x-whatsnap-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(request["headers"]["x-whatsnap-signature"], expected)


def _events(receiver) -> list[str]:
    return [r["headers"]["x-whatsnap-event"] for r in receiver.requests]


def _make_due():
    WebhookDelivery.objects.filter(status="pending").update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_subscribe_secret_shown_once_and_encrypted_at_rest(api_client, subscribed):
    sub_id, secret = subscribed
    assert secret.startswith("whsec_")
    listed = api_client.get("/api/v1/webhooks/").json()["results"]
    assert listed[0]["id"] == sub_id and "secret" not in listed[0] and listed[0]["events"] == ALL_EVENTS
    assert "secret" not in api_client.get(f"/api/v1/webhooks/{sub_id}/").json()
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_encrypted FROM hooks_webhooksubscription WHERE id = %s", [sub_id])
        assert secret not in cursor.fetchone()[0]
    assert WebhookSubscription.objects.get().secret == secret


def test_inbound_message_is_posted_signed_to_the_subscriber(subscribed, receiver, sandbox_account):
    _sub_id, secret = subscribed
    receive(sandbox_account, phone="+14155550123", name="Ada", text="hello")
    assert sorted(_events(receiver)) == ["contact.created", "message.received"]
    request = next(r for r in receiver.requests if r["headers"]["x-whatsnap-event"] == "message.received")
    assert request["method"] == "POST" and request["path"] == "/hook"
    assert request["headers"]["content-type"] == "application/json"
    assert _valid_signature(secret, request)
    body = json.loads(request["body"])
    assert body["event"] == "message.received" and body["location"] == sandbox_account.location_id
    assert request["headers"]["x-whatsnap-delivery"] == body["id"]
    data = body["data"]
    conversation = Conversation.objects.get()
    assert (data["text"], data["from"], data["name"], data["conversation"], data["account"]) == (
        "hello", "+14155550123", "Ada", conversation.pk, sandbox_account.pk)
    contact = json.loads(next(r for r in receiver.requests if r["headers"]["x-whatsnap-event"] == "contact.created")["body"])
    assert contact["data"]["phone"] == "+14155550123" and contact["data"]["contact"] == conversation.contact_id
    assert set(WebhookDelivery.objects.values_list("status", "attempts", "last_status_code")) == {("succeeded", 1, 200)}
    assert WebhookAttempt.objects.filter(status_code=200).count() == 2


def test_send_status_and_assignment_events(api_client, subscribed, receiver, sandbox_account, agent_user):
    receive(sandbox_account)
    conversation = Conversation.objects.get()
    receiver.requests.clear()
    api_client.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "hi"}, format="json")
    statuses = [json.loads(r["body"])["data"]["status"] for r in receiver.requests]
    assert _events(receiver) == ["message.status"] and statuses == ["delivered"]
    receiver.requests.clear()
    api_client.post(f"/api/v1/conversations/{conversation.pk}/assign/", {"assignee": agent_user.pk}, format="json")
    assert _events(receiver) == ["conversation.assigned"]
    data = json.loads(receiver.requests[0]["body"])["data"]
    assert (data["conversation"], data["assignee"], data["previous_assignee"]) == (conversation.pk, agent_user.pk, None)


def test_only_subscribed_events_of_active_subscriptions_of_the_location(location, other_location, receiver, sandbox_account):
    hook_subscription_create(location=location, url=receiver.url, events=["contact.created"])
    hook_subscription_create(location=location, url=receiver.url + "/off", events=ALL_EVENTS, is_active=False)
    hook_subscription_create(location=other_location, url=receiver.url + "/other", events=ALL_EVENTS)
    receive(sandbox_account)
    receive(sandbox_account)  # same contact again: no second contact.created
    assert [(r["path"], r["headers"]["x-whatsnap-event"]) for r in receiver.requests] == [("/", "contact.created")]


def test_deliveries_are_written_in_the_events_transaction(location, receiver):
    hook_subscription_create(location=location, url=receiver.url, events=["contact.created"])
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            assert hook_event_emit(location_id=location.pk, event="contact.created", data={"contact": 1}) == 1
            raise RuntimeError("the change failed")
    assert not WebhookDelivery.objects.exists() and receiver.requests == []
    with transaction.atomic():
        hook_event_emit(location_id=location.pk, event="contact.created", data={"contact": 2})
        assert receiver.requests == []  # posted only after commit
    assert len(receiver.requests) == 1


def test_failed_delivery_is_retried_with_backoff_and_logged(location, receiver):
    hook_subscription_create(location=location, url=receiver.url, events=["contact.created"])
    receiver.statuses = [500, 503]
    before = timezone.now()
    with transaction.atomic():
        hook_event_emit(location_id=location.pk, event="contact.created", data={"contact": 7})
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == ("pending", 1, 500, "HTTP 500")
    assert before + timedelta(seconds=29) < delivery.next_attempt_at < timezone.now() + timedelta(seconds=31)
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code == 500 and "try later" in attempt.response_excerpt
    assert sweep() == 0  # not due yet: nothing is sent early
    _make_due()
    sweep()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 2)
    assert timezone.now() + timedelta(seconds=59) < delivery.next_attempt_at < timezone.now() + timedelta(seconds=61)
    _make_due()
    sweep()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.next_attempt_at) == ("succeeded", 3, 200, None)
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 503, 200]
    assert len({r["body"] for r in receiver.requests}) == 1  # the same signed body every time


def test_gives_up_after_max_attempts(location, receiver, monkeypatch):
    monkeypatch.setattr(services, "MAX_ATTEMPTS", 3)
    hook_subscription_create(location=location, url=receiver.url, events=["contact.created"])
    receiver.statuses = [500] * 10
    with transaction.atomic():
        hook_event_emit(location_id=location.pk, event="contact.created", data={})
    for _ in range(4):
        _make_due()
        sweep()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 3, None)
    assert len(receiver.requests) == 3


def test_unreachable_receiver_is_logged_and_retried(location):
    closed = LoopbackServer()
    url = closed.url
    closed.stop()
    hook_subscription_create(location=location, url=url, events=["contact.created"])
    with transaction.atomic():
        hook_event_emit(location_id=location.pk, event="contact.created", data={})
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.last_status_code is None
    assert "ConnectError" in delivery.last_error and "ConnectError" in WebhookAttempt.objects.get().error


def test_stuck_claims_are_released_by_the_sweep(location, receiver):
    hook_subscription_create(location=location, url=receiver.url, events=["contact.created"])
    receiver.statuses = [500]
    with transaction.atomic():
        hook_event_emit(location_id=location.pk, event="contact.created", data={})
    WebhookDelivery.objects.update(status="sending", claimed_at=timezone.now() - timedelta(minutes=10))
    sweep()
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_the_minute_schedule_runs_the_hooks_sweep_and_forgets_old_idempotency_keys(location, receiver, api_token):
    assert {sweep, idempotency_keys_prune} <= set(tasks.sweeps())
    hook_subscription_create(location=location, url=receiver.url, events=["contact.created"])
    receiver.statuses = [500]
    with transaction.atomic():
        hook_event_emit(location_id=location.pk, event="contact.created", data={})
    _make_due()
    old = IdempotencyKey.objects.create(token=api_token, key="old", fingerprint="0" * 64)
    IdempotencyKey.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    IdempotencyKey.objects.create(token=api_token, key="new", fingerprint="0" * 64)
    tasks.run_sweeps()
    assert WebhookDelivery.objects.get().status == "succeeded"
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


def test_backoff_grows_exponentially_and_is_capped():
    assert [services.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert services.backoff(20).total_seconds() == services.BACKOFF_MAX_SECONDS


def test_replay_through_the_api(api_client, subscribed, receiver, sandbox_account):
    receive(sandbox_account)
    original = WebhookDelivery.objects.get(event="message.received")
    response = api_client.post(f"/api/v1/webhook-deliveries/{original.pk}/replay/")
    assert response.status_code == 202
    body = response.json()
    assert body["replay_of"] == original.pk and body["event_id"] == str(original.event_id) and body["id"] != original.pk
    assert _events(receiver).count("message.received") == 2
    assert receiver.requests[-1]["body"] == next(r["body"] for r in receiver.requests
                                                 if r["headers"]["x-whatsnap-event"] == "message.received")
    listed = api_client.get("/api/v1/webhook-deliveries/", {"event": "message.received", "ordering": "id"}).json()["results"]
    assert [d["id"] for d in listed] == [original.pk, body["id"]]
    assert listed[0]["attempt_log"][0]["status_code"] == 200 and listed[1]["status"] == "succeeded"
    assert_error(api_client.get("/api/v1/webhook-deliveries/", {"status": "lost"}), 400, "invalid", "status")


def test_replay_refused_for_a_disabled_subscription(api_client, subscribed, sandbox_account):
    receive(sandbox_account)
    sub_id, _ = subscribed
    api_client.patch(f"/api/v1/webhooks/{sub_id}/", {"is_active": False}, format="json")
    delivery = WebhookDelivery.objects.first()
    assert_error(api_client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/replay/"), 400, "subscription_disabled")


def test_replay_from_the_admin(location, receiver, django_user_model):
    hook_subscription_create(location=location, url=receiver.url, events=["contact.created"])
    with transaction.atomic():
        hook_event_emit(location_id=location.pk, event="contact.created", data={})
    delivery = WebhookDelivery.objects.get()
    staff = django_user_model.objects.create_superuser("root", password="x")
    client = Client()
    client.force_login(staff)
    response = client.post("/admin/hooks/webhookdelivery/", {"action": "replay", "_selected_action": [delivery.pk]})
    assert response.status_code == 302
    assert WebhookDelivery.objects.filter(replay_of=delivery, status="succeeded").exists()
    assert len(receiver.requests) == 2
    assert client.get(f"/admin/hooks/webhookdelivery/{delivery.pk}/change/").status_code == 200
    page = client.get(f"/admin/hooks/webhooksubscription/{delivery.subscription_id}/change/").content.decode()
    assert delivery.subscription.secret not in page


def test_subscription_management(api_client, receiver, location):
    post = lambda payload: api_client.post("/api/v1/webhooks/", payload, format="json")  # noqa: E731
    assert_error(post({"url": "ftp://example.com/x", "events": ["message.status"]}), 400, "invalid", "url")
    assert_error(post({"url": receiver.url, "events": ["message.deleted"]}), 400, "invalid", "events")
    assert_error(post({"url": receiver.url, "events": []}), 400, "invalid", "events")
    created = post({"url": receiver.url, "events": ["message.status"], "description": "CRM"}).json()
    response = api_client.patch(f"/api/v1/webhooks/{created['id']}/", {"events": ["contact.created"]}, format="json")
    assert response.status_code == 200 and response.json()["events"] == ["contact.created"]
    rotated = api_client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret/").json()
    assert rotated["secret"] != created["secret"] and WebhookSubscription.objects.get().secret == rotated["secret"]
    with transaction.atomic():
        hook_event_emit(location_id=location.pk, event="contact.created", data={})
    assert _valid_signature(rotated["secret"], receiver.requests[0])
    assert not _valid_signature(created["secret"], receiver.requests[0])
    assert api_client.delete(f"/api/v1/webhooks/{created['id']}/").status_code == 204
    assert not WebhookSubscription.objects.exists() and not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]/hook", "https://192.168.0.10/"])
def test_webhook_urls_on_private_addresses_are_refused(api_client, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = api_client.post("/api/v1/webhooks/", {"url": url, "events": ALL_EVENTS}, format="json")
    assert response.status_code == 400 and "public addresses only" in json.dumps(response.json())
    assert not WebhookSubscription.objects.exists()


def test_a_private_url_is_not_called_even_if_it_was_stored(location, receiver, sandbox_account, settings):
    subscription = hook_subscription_create(location=location, url=receiver.url, events=["contact.created"])
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False  # e.g. its DNS now points inside
    webhook_events_record(account=sandbox_account, events=[
        InboundMessage(provider_id="p1", from_phone="+14155550123", name="", text="hi", at=datetime.now(dt_tz.utc))])
    assert receiver.requests == []
    delivery = WebhookDelivery.objects.get(subscription=subscription)
    assert delivery.status == "pending" and "public addresses only" in delivery.last_error
