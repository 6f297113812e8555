"""Twilio callbacks WhatSnap accepts but does not file are kept, with their reason (issue 17,
point 1), and a stored callback is read again by parse_envelope as the webhook was.

Sources: Twilio's Message status values (twilio.com/docs/messaging/api/message-resource,
"Message Status values": queued, sending, sent, failed, delivered, undelivered, receiving,
received, accepted, scheduled, read, partially_delivered, canceled — the same enum as its
OpenAPI spec's message_enum_status); status callback requests (twilio.com/docs/messaging/
guides/outbound-message-status-in-status-callbacks: a subset of the request properties plus
MessageStatus and ErrorCode; none for the initial status)."""
import pytest
from django.test import Client, RequestFactory
from twilio.request_validator import RequestValidator

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import DeliveryStatus, InboundMessage, Unfiled, WebhookForbidden
from accounts.services import account_connect, account_create
from conversations.models import Conversation, InboundEvent, Message
from conversations.services import message_send
from tests.standins.twilio_standin import TwilioStandIn

NUMBER = "+14155550199"
TWILIO = get_provider("twilio")
TRACKED = {"accepted": "queued", "scheduled": "queued", "queued": "queued", "sending": "sending", "sent": "sent",
           "delivered": "delivered", "read": "read", "failed": "failed", "undelivered": "failed", "canceled": "failed"}


@pytest.fixture
def twilio(settings):
    with TwilioStandIn() as standin:
        standin.add_number(NUMBER)
        settings.TWILIO_API_BASE_URL, settings.TWILIO_MESSAGING_BASE_URL = standin.url, standin.messaging_url
        yield standin


@pytest.fixture
def account(location, twilio):
    account = account_create(location=location, kind="twilio", backend="twilio", name="Support", phone_number=NUMBER,
                             credentials={"account_sid": twilio.account_sid, "auth_token": twilio.auth_token})
    account_connect(account=account)
    account.refresh_from_db()
    return account


def signed_post(account, params, *, status=False, token=None):
    path = f"/webhooks/twilio/{account.pk}/" + ("status/" if status else "")
    signature = RequestValidator(token or account.credentials["auth_token"]).compute_signature("http://testserver" + path, params)
    return Client().post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)


def parse(params: dict) -> list:
    return TWILIO.parse_envelope(Account(credentials={}), params)


@pytest.mark.parametrize("status, ours", TRACKED.items())
def test_every_status_of_a_send_maps_to_ours(twilio, status, ours):
    error = "30007" if ours == "failed" else ""
    [event] = parse(twilio.status_callback("SM" + "1" * 32, status, error_code=error))
    assert event == DeliveryStatus(provider_id="SM" + "1" * 32, status=ours, error=f"Twilio error {error}" if error else "")


@pytest.mark.parametrize("status", ["partially_delivered", "receiving", "received", "some_future_status"])
def test_statuses_not_tracked_are_kept_with_their_reason_not_dropped(twilio, status):
    callback = twilio.status_callback("SM" + "2" * 32, status)
    assert parse(callback) == [Unfiled(f"Twilio status {status} is not tracked", callback, key=f"twilio:{'SM' + '2' * 32}:{status}")]


def test_an_untracked_status_reaches_the_account_as_an_unfiled_event_and_changes_nothing(account, twilio):
    assert signed_post(account, twilio.incoming_message()).status_code == 200
    message = message_send(conversation=Conversation.objects.get(), text="one")
    message.refresh_from_db()
    callback = twilio.status_callback(message.provider_message_id, "partially_delivered")
    for _ in range(2):  # Twilio's retry of the same callback is one kept event
        assert signed_post(account, callback, status=True).status_code == 200
    kept = InboundEvent.objects.get(kind="unfiled")
    assert (kept.status, kept.error, kept.payload["envelope"]) == ("unfiled", "Twilio status partially_delivered is not tracked", callback)
    message.refresh_from_db()
    assert message.status == "sent"


def test_a_signed_callback_without_a_message_sid_is_kept(account, twilio):
    other = {"AccountSid": twilio.account_sid, "CallSid": "CA" + "3" * 32, "CallStatus": "ringing", "From": "+14155550123"}
    assert signed_post(account, other).status_code == 200
    kept = InboundEvent.objects.get()
    assert kept.kind == "unfiled" and kept.error == "Twilio callback without a MessageSid (neither a message nor its status)"
    assert Message.objects.count() == 0


def test_a_forged_callback_is_still_refused_before_anything_is_kept(account, twilio):
    callback = twilio.status_callback("SM" + "4" * 32, "receiving")
    assert signed_post(account, callback, status=True, token="not-the-token").status_code == 403
    assert InboundEvent.objects.count() == 0


def test_a_stored_callback_reads_again_as_the_webhook_read_it(twilio):
    account = Account(pk=5, credentials={"account_sid": twilio.account_sid, "auth_token": twilio.auth_token})
    fields = twilio.incoming_message(body="Photo attached", media=[("https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM1/Media/ME1",
                                                                     "image/jpeg")])
    path = "/webhooks/twilio/5/"
    factory = RequestFactory()
    with pytest.raises(WebhookForbidden):
        TWILIO.parse_webhook(account, factory.post(path, fields, HTTP_X_TWILIO_SIGNATURE="forged"))
    signature = RequestValidator(twilio.auth_token).compute_signature("http://testserver" + path, fields)
    [message] = TWILIO.parse_webhook(account, factory.post(path, fields, HTTP_X_TWILIO_SIGNATURE=signature))
    assert isinstance(message, InboundMessage) and message.text == "Photo attached"
    assert message.media == ({"url": fields["MediaUrl0"], "content_type": "image/jpeg"},)
    [again] = TWILIO.parse_envelope(account, fields)
    assert (again.provider_id, again.from_phone, again.media) == (message.provider_id, message.from_phone, message.media)
    nobody = {**fields, "From": ""}
    assert TWILIO.parse_envelope(account, nobody) == [Unfiled("Twilio message without a From number", nobody,
                                                              key=f"twilio:{fields['MessageSid']}")]
