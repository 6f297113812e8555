"""SMS Gateway for Android: picture messages (MMS), the events not filed, and sends through
POST /messages (issue 17, point 4), against the loopback phone.

Sources:
- capcom6/android-sms-gateway: app/src/main/java/me/capcom/smsgateway/modules/webhooks/domain/
  WebHookEvent.kt (event names), .../webhooks/payload/MmsDownloadedPayload.kt and
  MmsReceivedPayload.kt (payload fields), .../receiver/ReceiverService.kt (messageId: the MMS's
  row id for mms:downloaded, Message-ID or transaction id for mms:received) and
  .../receiver/MmsContentReader.kt (attachments' data = the part's bytes in base64, null when
  unreadable; sender "unknown" without a From), .../localserver/WebService.kt (the phone's
  own server routes both /message and /messages; /messages since v1.28.0);
- android-sms-gateway/server: internal/sms-gateway/handlers/3rdparty.go (cloud: upstream marks
  /message for removal after 2025-12-31; /messages stays), handlers/messages/3rdparty.go (409 for a
  reused id)."""
import base64

import pytest
from django.test import Client

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import InboundMessage, Unfiled
from accounts.services import account_connect, account_create
from conversations.models import InboundEvent, Message
from tests.standins.android_sms_standin import AndroidSmsStandIn

ANDROID = get_provider("android_sms")
PHOTO = b"\xff\xd8\xff\xe0" + b"jpeg" * 50


@pytest.fixture
def phone():
    with AndroidSmsStandIn(username="sms", password="phone-pass", signing_key="signing-key-123") as standin:
        yield standin


def make_account(location, phone, *, config=None, name="Phone"):
    return account_create(location=location, kind="android_sms", backend="android_sms", name=name, phone_number="+14155550111",
                          credentials={"username": "sms", "password": "phone-pass", "signing_key": "signing-key-123"},
                          config=config or {"mode": "local", "device_url": phone.url})


@pytest.fixture
def connected(location, phone):
    account = make_account(location, phone)
    account_connect(account=account)
    account.refresh_from_db()
    return account


def post(account, phone, envelope):
    body, headers = phone.signed(envelope)
    return Client().post(f"/webhooks/android_sms/{account.pk}/", data=body, content_type="application/json", **headers)


def parse(envelope: dict) -> list:
    return ANDROID.parse_envelope(Account(), envelope)


def part(part_id, content_type, name, data: bytes | None):
    return {"partId": part_id, "contentType": content_type, "name": name, "size": len(data or b""),
            "data": base64.b64encode(data).decode() if data is not None else None}


def test_a_picture_message_is_filed_with_its_text_and_attachments(connected, phone, admin_client):
    envelope = phone.mms_downloaded(sender="+14155550123", body="Is this the one?", message_id="1042",
                                    attachments=[part(7, "image/jpeg", "IMG_0001.jpg", PHOTO)])
    for _ in range(2):  # the phone retries until it gets a 2xx
        assert post(connected, phone, envelope).status_code == 200
    message = Message.objects.get()
    assert (message.text, message.direction, message.conversation.contact.phone) == ("Is this the one?", "inbound", "+14155550123")
    assert message.provider_message_id == f"mms:1042@{envelope['payload']['receivedAt']}"
    [item] = message.media
    assert (item["content_type"], item["kind"], item["filename"]) == ("image/jpeg", "image", "IMG_0001.jpg")
    response = admin_client.get(f"/inbox/messages/{message.pk}/media/0/")
    assert response.status_code == 200 and response.content == PHOTO


def test_a_group_or_long_text_turned_mms_keeps_its_text_and_subject():
    stand = AndroidSmsStandIn()
    [message] = parse(stand.mms_downloaded(body="a long text " * 40, subject="Order 1234", attachments=[]))
    assert isinstance(message, InboundMessage) and message.text == "Order 1234\n" + "a long text " * 40
    [plain] = parse(stand.mms_downloaded(body="hi", subject="NoSubject", attachments=[]))
    assert plain.text == "hi" and plain.media == ()


def test_attachments_the_phone_could_not_read_are_named_not_dropped():
    stand = AndroidSmsStandIn()
    [message] = parse(stand.mms_downloaded(body=None, attachments=[
        part(3, "video/mp4", "clip.mp4", None), part(4, "text/x-vCard; charset=utf-8", None, b"BEGIN:VCARD")]))
    assert message.text == "[attachment clip.mp4 (video/mp4) not passed on by the phone; see the phone]"
    [card] = message.media
    assert (card["content_type"], card["kind"], card["filename"]) == ("text/x-vCard", "document", "part-4")
    assert card["url"] == "data:text/x-vCard;base64," + base64.b64encode(b"BEGIN:VCARD").decode()


def test_an_mms_without_a_sender_and_the_bare_notification_are_kept_unfiled():
    stand = AndroidSmsStandIn()
    nobody = stand.mms_downloaded(sender="unknown")
    assert parse(nobody) == [Unfiled("picture message (MMS) without a sender number", nobody, key=f"asg:{nobody['id']}")]
    [notice] = parse(stand.mms_received(sender="+14155550123", size=48213))
    assert isinstance(notice, Unfiled) and notice.reason.startswith("MMS notification of 47 KB from +14155550123")
    assert "mms:downloaded" in notice.reason and notice.key.startswith("mms-notice:T1a2b3c@")


def test_the_mms_notification_is_kept_with_its_reason_on_the_account(connected, phone):
    assert post(connected, phone, phone.mms_received()).status_code == 200
    kept = InboundEvent.objects.get()
    assert kept.kind == "unfiled" and "the message is filed when the phone has downloaded it" in kept.error
    assert Message.objects.count() == 0


def test_a_picture_message_larger_than_the_default_webhook_limit_is_accepted(connected, phone, settings):
    big = b"\x00" * (400 * 1024)  # > WEBHOOK_MAX_BYTES (256 KB) once base64
    assert post(connected, phone, phone.mms_downloaded(attachments=[part(1, "image/png", "big.png", big)])).status_code == 200
    assert Message.objects.get().media[0]["content_type"] == "image/png"
    settings.SMS_GATEWAY_WEBHOOK_MAX_BYTES = 64 * 1024
    assert post(connected, phone, phone.mms_downloaded(message_id="2", attachments=[part(1, "image/png", "b.png", big)])).status_code == 413


def test_an_app_too_old_for_mms_events_still_connects_and_its_diagnostics_say_so(location):
    with AndroidSmsStandIn(legacy_app=True) as old_phone:
        account = make_account(location, old_phone)
        account_connect(account=account)
        account.refresh_from_db()
        assert account.status == "connected"
        assert {h["event"] for h in old_phone.webhooks.values()} == {"sms:received", "sms:sent", "sms:delivered", "sms:failed"}
        health = ANDROID.health(account)
    assert health.ok and "1.56" in health.detail
    assert ("picture messages (MMS) webhooks registered", False) in [(name, ok) for name, ok, _ in health.checks]


def test_local_sends_use_messages_and_an_app_without_it_gets_message(location):
    with AndroidSmsStandIn() as current, AndroidSmsStandIn(legacy_app=True) as old_phone:
        for name, phone in (("Current", current), ("Old", old_phone)):
            sent = ANDROID.send(make_account(location, phone, name=name), to="+14155550123", text="hi", idempotency_key="wsm-5")
            assert sent.provider_id == "wsm-5" and len(phone.messages) == 1
        assert [r.path for r in current.requests] == ["/messages"]
        assert [r.path for r in old_phone.requests] == ["/messages", "/message"]  # 404, then the older path


def test_cloud_sends_use_messages_only(location, phone, settings):
    phone.prefix = "/3rdparty/v1"
    settings.SMS_GATEWAY_CLOUD_BASE_URL = phone.url + "/3rdparty/v1"
    account = make_account(location, phone, config={"mode": "cloud"})
    ANDROID.send(account, to="+14155550123", text="hi", idempotency_key="wsm-6")
    again = ANDROID.send(account, to="+14155550123", text="hi", idempotency_key="wsm-6")  # 409: already there
    assert again.provider_id == "wsm-6" and len(phone.messages) == 1
    assert [r.path for r in phone.requests] == ["/3rdparty/v1/messages"] * 2
