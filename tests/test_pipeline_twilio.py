"""Issue 5's check: a Twilio webhook signed with the real algorithm (the SDK's
RequestValidator) delivered three times gives one contact carrying the account's tag and
one message; a forged one gets 403 and stores nothing."""
from twilio.request_validator import RequestValidator

from contacts.models import Contact
from conversations.models import InboundEvent, Message

PARAMS = {
    "MessageSid": "SM" + "a" * 32, "AccountSid": "AC" + "1" * 32, "From": "+14155550123", "To": "+14155550199",
    "Body": "Is the store open?", "NumMedia": "1", "MediaUrl0": "https://api.twilio.com/media/ME1",
    "MediaContentType0": "image/jpeg", "ProfileName": "Ada",
}


def signed_post(client, account, params, token="secret-auth-token"):
    path = f"/webhooks/twilio/{account.pk}/"
    signature = RequestValidator(token).compute_signature("http://testserver" + path, params)
    return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)


def test_signed_webhook_three_times_is_one_contact_one_message(client, twilio_account):
    for _ in range(3):
        response = signed_post(client, twilio_account, PARAMS)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/xml") and b"<Response>" in response.content
    contact = Contact.objects.get()
    assert (contact.phone, contact.name) == ("+14155550123", "Ada")
    assert [t.name for t in contact.tags.all()] == ["whatsnap-account-support"]
    message = Message.objects.get()
    assert message.media == [{"url": "https://api.twilio.com/media/ME1", "content_type": "image/jpeg"}]


def test_forged_signature_is_refused_and_nothing_stored(client, twilio_account):
    assert signed_post(client, twilio_account, PARAMS, token="not-the-token").status_code == 403
    tampered = dict(PARAMS)
    path = f"/webhooks/twilio/{twilio_account.pk}/"
    signature = RequestValidator("secret-auth-token").compute_signature("http://testserver" + path, PARAMS)
    tampered["Body"] = "changed"
    assert client.post(path, tampered, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 403
    assert client.post(path, PARAMS).status_code == 403  # unsigned
    assert not InboundEvent.objects.exists() and not Contact.objects.exists() and not Message.objects.exists()


def test_status_callback_moves_status_forward(client, twilio_account):
    from conversations.services import message_status_advance

    signed_post(client, twilio_account, PARAMS)
    message = Message.objects.get()
    out = Message.objects.create(location=message.location, conversation=message.conversation, account=twilio_account,
                                 direction="outbound", text="yes", status="sent", provider_message_id="SM" + "b" * 32)
    for status in ("delivered", "sent"):
        response = signed_post(client, twilio_account, {"MessageSid": out.provider_message_id, "AccountSid": "AC" + "1" * 32,
                                                        "MessageStatus": status})
        assert response.status_code == 200
    out.refresh_from_db()
    assert out.status == "delivered"
    assert message_status_advance(message=out, status="sent") is False


def test_stop_help_start_keywords_over_twilio(client, twilio_account):
    import pytest

    from conversations.models import Conversation
    from conversations.services import message_send
    from whatsnap.errors import ApplicationError

    def say(sid, body):
        params = {**PARAMS, "MessageSid": "SM" + sid * 32, "Body": body, "NumMedia": "0"}
        params.pop("MediaUrl0"), params.pop("MediaContentType0")
        assert signed_post(client, twilio_account, params).status_code == 200

    say("b", "stop")
    contact = Contact.objects.get()
    assert contact.opted_out and contact.opted_out_at
    with pytest.raises(ApplicationError, match="opted out"):
        message_send(conversation=Conversation.objects.get(), text="are you sure?")
    say("c", " HELP ")
    contact.refresh_from_db()
    assert contact.help_requested_at and contact.opted_out  # HELP does not opt back in
    say("d", "Start")
    contact.refresh_from_db()
    assert not contact.opted_out
    assert not Message.objects.filter(direction="outbound").exists()
