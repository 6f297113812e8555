"""SMS via SMS Gateway for Android (local and cloud mode), against a loopback gateway that
speaks its wire format and signs webhooks as the phone does."""
import time

import pytest
from django.test import Client

from accounts.models import Account
from accounts.providers import get_provider
from accounts.services import account_connect, account_create, account_disconnect
from contacts.models import Contact
from conversations.models import Conversation, InboundEvent, Message
from conversations.services import message_send
from tests.standins.android_sms_standin import AndroidSmsStandIn

EVENTS = {"sms:received", "sms:sent", "sms:delivered", "sms:failed", "mms:received", "mms:downloaded"}


@pytest.fixture
def phone():
    with AndroidSmsStandIn(username="sms", password="phone-pass", signing_key="signing-key-123") as standin:
        yield standin


def make_account(location, *, config, name="Phone"):
    return account_create(
        location=location,
        kind="android_sms",
        backend="android_sms",
        name=name,
        phone_number="+14155550111",
        credentials={"username": "sms", "password": "phone-pass", "signing_key": "signing-key-123"},
        config=config,
    )


@pytest.fixture
def account(location, phone):
    return make_account(location, config={"mode": "local", "device_url": phone.url})


@pytest.fixture
def connected(account):
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "connected"
    return account


def post(account, phone, envelope, **sign_kwargs):
    body, headers = phone.signed(envelope, **sign_kwargs)
    return Client().post(f"/webhooks/android_sms/{account.pk}/", data=body, content_type="application/json", **headers)


def rows():
    return InboundEvent.objects.count(), Contact.objects.count(), Message.objects.count()


def test_connect_registers_the_sms_and_mms_webhooks_and_reports_connected(account, phone):
    account_connect(account=account)
    account.refresh_from_db()
    assert (account.status, account.phone_number) == ("connected", "+14155550111")
    assert {h["event"] for h in phone.webhooks.values()} == EVENTS
    assert {h["url"] for h in phone.webhooks.values()} == {f"http://testserver/webhooks/android_sms/{account.pk}/"}
    assert all(r.headers["authorization"].startswith("Basic ") for r in phone.requests)
    account_connect(account=account)  # reconnecting replaces (fixed ids), never duplicates
    assert len(phone.webhooks) == 6
    assert get_provider("android_sms").health(account).ok


def test_cloud_mode_uses_the_cloud_base_url(location, phone, settings):
    phone.prefix = "/3rdparty/v1"
    settings.SMS_GATEWAY_CLOUD_BASE_URL = phone.url + "/3rdparty/v1"
    account = make_account(location, config={"mode": "cloud"})
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "connected"
    assert {r.path for r in phone.requests} == {"/3rdparty/v1/webhooks"}


def test_inbound_sms_makes_one_tagged_contact_and_message_and_redelivery_is_noop(connected, phone):
    envelope = phone.sms_received(sender="+14155550123", text="What time do you open?", message_id="a1b2c3d4")
    for _ in range(2):  # the phone retries until it gets a 2xx
        assert post(connected, phone, envelope).status_code == 200
    retried = phone.sms_received(sender="+14155550123", text="What time do you open?", message_id="a1b2c3d4",
                                 received_at=envelope["payload"]["receivedAt"])
    assert post(connected, phone, retried).status_code == 200  # same SMS, new envelope id
    assert rows() == (1, 1, 1)
    contact = Contact.objects.get()
    assert contact.phone == "+14155550123"
    assert [t.name for t in contact.tags.all()] == ["whatsnap-account-phone"]
    message = Message.objects.get()
    assert message.text == "What time do you open?" and message.provider_message_id.startswith("a1b2c3d4")


def test_same_hash_different_time_is_a_different_message(connected, phone):
    post(connected, phone, phone.sms_received(message_id="deadbeef", text="ok", received_at="2025-01-01T10:00:00.000+02:00"))
    post(connected, phone, phone.sms_received(message_id="deadbeef", text="ok", received_at="2025-01-02T10:00:00.000+02:00"))
    assert Message.objects.count() == 2


def test_national_sender_is_normalised_with_the_account_region(connected, phone):
    envelope = phone.sms_received(sender="4155550123", text="hi")
    envelope["payload"]["phoneNumber"] = envelope["payload"].pop("sender")  # older app versions
    post(connected, phone, envelope)
    assert Contact.objects.get().phone == "+14155550123"


def test_reply_is_sent_with_our_id_and_statuses_apply(connected, phone):
    post(connected, phone, phone.sms_received(sender="+14155550123"))
    message = message_send(conversation=Conversation.objects.get(), text="We open at 9")
    message.refresh_from_db()
    body = phone.received("POST", "/messages")[0].json
    assert body == {"textMessage": {"text": "We open at 9"}, "phoneNumbers": ["+14155550123"], "id": f"wsm-{message.pk}"}
    assert (message.status, message.provider_message_id) == ("sent", f"wsm-{message.pk}")

    post(connected, phone, phone.sms_status("sms:delivered", f"wsm-{message.pk}"))
    message.refresh_from_db()
    assert message.status == "delivered"


def test_failed_status_carries_the_reason(connected, phone):
    post(connected, phone, phone.sms_received())
    message = message_send(conversation=Conversation.objects.get(), text="x")
    post(connected, phone, phone.sms_status("sms:failed", f"wsm-{message.pk}", reason="RESULT_ERROR_NO_SERVICE"))
    message.refresh_from_db()
    assert message.status == "failed" and message.error == "RESULT_ERROR_NO_SERVICE"


def test_resend_with_the_same_id_is_success_and_never_a_second_sms(connected, phone):
    provider = get_provider("android_sms")
    first = provider.send(connected, to="+14155550123", text="once", idempotency_key="wsm-77")
    again = provider.send(connected, to="+14155550123", text="once", idempotency_key="wsm-77")
    assert first.provider_id == again.provider_id == "wsm-77"
    assert len(phone.messages) == 1
    assert len(phone.received("POST", "/messages")) == 2  # the second was answered 409


@pytest.mark.parametrize("forgery", ["unsigned", "wrong_key", "tampered", "stale"])
def test_forged_or_replayed_webhook_is_refused_and_nothing_stored(connected, phone, forgery):
    envelope = phone.sms_received()
    if forgery == "unsigned":
        response = Client().post(f"/webhooks/android_sms/{connected.pk}/", data=b"{}", content_type="application/json")
    elif forgery == "wrong_key":
        response = post(connected, phone, envelope, key="guessed")
    elif forgery == "stale":
        response = post(connected, phone, envelope, timestamp=int(time.time()) - 6 * 60)
    else:
        body, headers = phone.signed(envelope)
        response = Client().post(f"/webhooks/android_sms/{connected.pk}/", data=body.replace(b"hello", b"HELLO"),
                                 content_type="application/json", **headers)
    assert response.status_code == 403
    assert rows() == (0, 0, 0)


def test_ping_files_nothing_and_unknown_events_are_kept_unfiled(connected, phone):
    response = post(connected, phone, phone.envelope("system:ping", {"health": {"status": "pass"}}))
    assert response.status_code == 200 and response.json()["new"] == 0
    assert not InboundEvent.objects.exists()  # a keep-alive is answered, never stored
    # SmsEventPayload.SmsDataReceived (capcom6/android-sms-gateway: modules/webhooks/payload/SmsEventPayload.kt)
    data_sms = phone.envelope("sms:data-received", {"messageId": "9f0e", "sender": "+14155550123", "recipient": None,
                                                     "simNumber": 1, "phoneNumber": "+14155550123", "data": "AAEC",
                                                     "receivedAt": "2025-01-01T10:00:00.000+02:00"})
    assert post(connected, phone, data_sms).status_code == 200
    kept = InboundEvent.objects.get(kind="unfiled", error="unsupported event type sms:data-received")
    assert kept.payload["envelope"] == data_sms and Message.objects.count() == 0


def test_phone_down_connect_marks_account_error_with_reason(account, phone):
    phone.down()
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "error" and "Cannot reach the phone" in account.last_error


def test_wrong_password_is_an_error_with_reason(location, phone):
    account = make_account(location, config={"mode": "local", "device_url": phone.url})
    account.credentials = {**account.credentials, "password": "wrong"}
    account.save()
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "error" and "401" in account.last_error


def test_phone_down_send_waits_for_a_retry_with_the_reason(connected, phone):
    post(connected, phone, phone.sms_received())
    phone.down()
    message = message_send(conversation=Conversation.objects.get(), text="hello?")
    message.refresh_from_db()
    connected.refresh_from_db()
    assert message.status == "queued" and message.send_attempts == 1 and "Cannot reach the phone" in message.error
    assert "Cannot reach the phone" in connected.last_error


def test_disconnect_removes_our_webhooks(connected, phone):
    account_disconnect(account=connected)
    assert phone.webhooks == {}
    assert not get_provider("android_sms").health(connected).ok


def test_add_android_account_page_stores_credentials_and_connects(admin_client, phone):
    response = admin_client.post(
        "/accounts/add/p2p/",
        {"name": "Shop phone", "device": "android_sms", "backend": "device", "phone_number": "+14155550113",
         "gateway_mode": "local", "gateway_address": phone.url, "gateway_username": "sms",
         "gateway_password": "phone-pass", "gateway_signing_key": "signing-key-123"},
    )
    assert response.status_code == 302, response.content
    account = Account.objects.get(name="Shop phone")
    assert (account.backend, account.status, account.config) == ("android_sms", "connected", {"mode": "local", "device_url": phone.url})
    assert account.credentials == {"username": "sms", "password": "phone-pass", "signing_key": "signing-key-123"}
    assert len(phone.webhooks) == 6


def test_lost_answer_is_retried_safely_because_the_gateway_dedupes_by_id(connected, phone, monkeypatch, pacing_clock):
    import time

    import accounts.providers.android_sms.client as android
    from conversations.pacing import account_drain
    from whatsnap.guarded_fetch import Limits

    post(connected, phone, phone.sms_received())
    monkeypatch.setattr(android, "DEVICE_LIMITS", Limits(connect=2.0, total=0.3))
    phone.answer_delay = 0.8  # the phone takes the SMS, the answer comes too late
    message = message_send(conversation=Conversation.objects.get(), text="did you get this?")
    message.refresh_from_db()
    assert message.status == "queued" and message.send_attempts == 1  # retried later, not failed
    phone.answer_delay = 0.0
    monkeypatch.setattr(android, "DEVICE_LIMITS", Limits(connect=5.0, total=15.0))  # the phone answers again
    time.sleep(0.7)
    pacing_clock.sleep(16)
    account_drain(account_id=connected.pk)
    message.refresh_from_db()
    assert message.status == "sent" and message.provider_message_id == f"wsm-{message.pk}"
    assert len(phone.messages) == 1 and len(phone.received("POST", "/messages")) == 2  # the retry met a 409


def test_health_never_shows_what_answers_at_a_typed_address(location, agent_client, settings):
    """A device address is typed by a person: whatever answers there (an internal page, when
    GATEWAY_ALLOW_PRIVATE_URLS lets phones on the shop's network be used) is not shown on the
    diagnostics page, only that it was not a gateway's answer."""
    from tests.test_guarded_fetch import Site

    settings.GATEWAY_ALLOW_PRIVATE_URLS = True
    internal = Site({"/internal/config": (200, {"Content-Type": "text/plain"}, b"DB_PASSWORD=hunter2 internal-only page")})
    try:
        account = account_create(
            location=location, kind="android_sms", backend="android_sms", name="probe", phone_number="+14155550111",
            credentials={"username": "u", "password": "p", "signing_key": "k"},
            config={"mode": "local", "device_url": internal.url + "/internal/config?x="})
        health = get_provider("android_sms").health(account)
        assert not health.ok and "non-JSON" in health.detail and "hunter2" not in health.detail
        page = agent_client.get(f"/accounts/{account.pk}/diagnostics/")
        assert page.status_code == 200 and b"hunter2" not in page.content
    finally:
        internal.stop()
