"""iMessage via BlueBubbles Server, against a loopback server speaking its wire format."""
import json
from datetime import datetime, timezone

import pytest
from django.test import Client

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.bluebubbles import webhook_url
from accounts.services import account_connect, account_create
from contacts.models import Contact
from conversations.models import Conversation, InboundEvent, Message
from conversations.services import message_send
from tests.standins.bluebubbles_standin import BlueBubblesStandIn


@pytest.fixture
def mac():
    with BlueBubblesStandIn(password="mac-password") as standin:
        yield standin


@pytest.fixture
def account(location, mac):
    return account_create(
        location=location,
        kind="imessage",
        backend="bluebubbles",
        name="Mac",
        phone_number="+14155550111",
        credentials={"server_url": mac.url, "password": "mac-password"},
    )


@pytest.fixture
def connected(account):
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "connected"
    return account


def post(account, payload, *, secret=None):
    secret = account.webhook_secret if secret is None else secret
    query = f"?secret={secret}" if secret else ""
    return Client().post(f"/webhooks/imessage/{account.pk}/{query}", data=json.dumps(payload), content_type="application/json")


def rows():
    return InboundEvent.objects.count(), Contact.objects.count(), Message.objects.count()


def test_connect_pings_the_server_and_reports_connected(account, mac):
    account_connect(account=account)
    account.refresh_from_db()
    assert (account.status, account.phone_number) == ("connected", "+14155550111")
    ping = mac.received("GET", "/api/v1/ping")[0]
    assert ping.query == {"password": "mac-password"}
    assert webhook_url(account) == f"http://testserver/webhooks/imessage/{account.pk}/?secret={account.webhook_secret}"


def test_wrong_password_is_an_error_with_reason(account, mac):
    account.credentials = {**account.credentials, "password": "nope"}
    account.save()
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "error" and "password" in account.last_error


def test_inbound_message_makes_one_tagged_contact_and_message_and_redelivery_is_noop(connected, mac):
    sent_at = datetime(2025, 3, 1, 12, 30, tzinfo=timezone.utc)
    payload = mac.new_message(guid="p:0/ABC", text="Is it in stock?", address="+14155550123", date_created=int(sent_at.timestamp() * 1000))
    for _ in range(2):
        assert post(connected, payload).status_code == 200
    assert rows() == (1, 1, 1)
    contact = Contact.objects.get()
    assert contact.phone == "+14155550123"
    assert [t.name for t in contact.tags.all()] == ["whatsnap-account-mac"]
    message = Message.objects.get()
    assert (message.text, message.provider_message_id, message.sent_at) == ("Is it in stock?", "p:0/ABC", sent_at)


def test_our_own_send_echoing_back_is_not_filed_twice(connected, mac):
    post(connected, mac.new_message(address="+14155550123"))
    message = message_send(conversation=Conversation.objects.get(), text="Yes, 3 left")
    message.refresh_from_db()
    echo = {"type": "new-message", "data": mac.sent[0]}  # index.ts: the sent message, isFromMe, its guid
    assert post(connected, echo).status_code == 200
    assert Message.objects.count() == 2
    assert Message.objects.get(direction="outbound").pk == message.pk and not message.via_device


def test_a_message_typed_on_the_mac_is_an_outbound_message_from_the_device(connected, mac):
    post(connected, mac.new_message(address="+14155550123", text="Do you have it?"))
    assert post(connected, mac.new_message(text="Yes, come by", is_from_me=True, chat="iMessage;-;+14155550123")).status_code == 200
    typed = Message.objects.get(direction="outbound")
    assert (typed.text, typed.via_device, typed.conversation.contact.phone) == ("Yes, come by", True, "+14155550123")


def test_group_chat_is_a_group_thread(connected, mac):
    payload = mac.new_message(address="+14155550124", chat="iMessage;+;chat123456", chat_name="Book club", text="hi all")
    post(connected, payload)
    message = Message.objects.get()
    assert message.conversation.contact.kind == Contact.Kind.GROUP
    assert message.sender_contact.phone == "+14155550124"


def test_reply_in_a_group_chat_goes_to_the_chat(connected, mac):
    post(connected, mac.new_message(address="+14155550124", chat="iMessage;+;chat123456", chat_name="Book club"))
    message = message_send(conversation=Conversation.objects.get(), text="hello club")
    message.refresh_from_db()
    assert mac.received("POST", "/api/v1/message/text")[0].json["chatGuid"] == "iMessage;+;chat123456"
    assert message.status == "sent"


def test_reply_is_sent_once_and_receipts_apply(connected, mac):
    post(connected, mac.new_message(address="+14155550123"))
    message = message_send(conversation=Conversation.objects.get(), text="Yes, 3 left")
    message.refresh_from_db()
    body = mac.received("POST", "/api/v1/message/text")[0].json
    assert body == {"chatGuid": "iMessage;-;+14155550123", "message": "Yes, 3 left", "tempGuid": f"wsm-{message.pk}", "method": "apple-script"}
    guid = mac.sent[0]["guid"]
    assert (message.status, message.provider_message_id) == ("sent", guid)

    assert post(connected, mac.updated_message(guid, delivered=True)).status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered"
    post(connected, mac.updated_message(guid, read=True))
    message.refresh_from_db()
    assert message.status == "read"


def test_updates_of_received_messages_are_not_statuses(connected, mac):
    post(connected, {"type": "updated-message", "data": mac.message(guid="theirs", is_from_me=False) | {"dateRead": 1}})
    assert not InboundEvent.objects.exclude(kind="unfiled").exists()


def test_send_error_webhook_fails_the_message(connected, mac):
    post(connected, mac.new_message())
    message = message_send(conversation=Conversation.objects.get(), text="x")
    message.refresh_from_db()
    post(connected, mac.send_error(message.provider_message_id, error=22))
    message.refresh_from_db()
    assert message.status == "failed" and "22" in message.error


@pytest.mark.parametrize("secret", ["", "guessed"])
def test_webhook_without_our_secret_is_refused_and_nothing_stored(connected, mac, secret):
    assert post(connected, mac.new_message(), secret=secret).status_code == 403
    assert rows() == (0, 0, 0)


def test_malformed_webhook_is_400(connected):
    response = Client().post(f"/webhooks/imessage/{connected.pk}/?secret={connected.webhook_secret}", data=b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert rows() == (0, 0, 0)


def test_server_down_connect_marks_account_error_with_reason(account, mac):
    mac.down()
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "error" and "unreachable" in account.last_error
    assert not get_provider("bluebubbles").health(account).ok


def test_server_down_send_waits_for_a_retry_with_the_reason(connected, mac):
    post(connected, mac.new_message())
    mac.down()
    message = message_send(conversation=Conversation.objects.get(), text="hello?")
    message.refresh_from_db()
    assert message.status == "queued" and message.send_attempts == 1 and "unreachable" in message.error


def test_server_error_answer_is_retried_later_and_then_sent_once(connected, mac, pacing_clock):
    from conversations.pacing import account_drain

    post(connected, mac.new_message())
    mac.fail_with(500, {"status": 500, "message": "Server Error", "error": {"type": "Server Error", "message": "Messages.app is not running"}})
    message = message_send(conversation=Conversation.objects.get(), text="hello?")
    message.refresh_from_db()
    assert message.status == "queued" and "Messages.app is not running" in message.error
    mac.recover()
    pacing_clock.sleep(16)
    account_drain(account_id=connected.pk)
    message.refresh_from_db()
    assert message.status in ("sent", "delivered") and message.provider_message_id


def test_add_mac_account_page_stores_credentials_and_connects(admin_client, mac):
    response = admin_client.post(
        "/accounts/add/p2p/",
        {"name": "Front desk", "device": "imessage", "backend": "device", "phone_number": "+14155550112",
         "bluebubbles_url": mac.url, "bluebubbles_password": "mac-password", "gateway_mode": "local"},
    )
    assert response.status_code == 302, response.content
    account = Account.objects.get(name="Front desk")
    assert account.backend == "bluebubbles" and account.status == "connected"
    assert account.credentials == {"server_url": mac.url, "password": "mac-password"}


def test_add_mac_account_page_requires_the_server_fields(admin_client):
    response = admin_client.post("/accounts/add/p2p/", {"name": "Mac", "device": "imessage", "backend": "device", "phone_number": "+14155550112"})
    assert response.status_code == 200
    assert not Account.objects.exists()
    assert b"Required to connect to your device." in response.content


def test_attachment_is_fetched_from_the_mac_for_members_only(connected, mac, admin_client, outsider_client):
    picture = b"\x89PNG\r\n\x1a\n" + b"pixels" * 100
    mac.attachments["att-1"] = (picture, "image/png")
    payload = mac.new_message(text="", attachments=[{"guid": "att-1", "mimeType": "image/png", "transferName": "IMG_1.png"}])
    assert post(connected, payload).status_code == 200
    message = Message.objects.get()
    assert message.media[0]["attachment_guid"] == "att-1"
    thread = admin_client.get(f"/inbox/{message.conversation_id}/").content.decode()
    media_url = f"/inbox/messages/{message.pk}/media/0/"
    assert media_url in thread and "mac-password" not in thread  # the Mac's password never reaches the page
    response = admin_client.get(media_url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == picture
    assert response["Content-Type"] == "image/png" and 'filename="IMG_1.png"' in response["Content-Disposition"]
    [download] = mac.received("GET", "/api/v1/attachment/att-1/download")
    assert download.query["password"] == "mac-password"
    assert outsider_client.get(media_url).status_code == 404
    del mac.attachments["att-1"]
    gone = admin_client.get(media_url)
    assert gone.status_code == 502 and "404" in gone.content.decode()


def test_inline_media_is_decoded_and_twilio_media_uses_the_account_credentials(connected, admin_client, location):
    import base64

    from accounts.providers import get_provider

    message = Message.objects.create(location=location, conversation=Conversation.objects.create(
        location=location, contact=Contact.objects.create(location=location, phone="+14155550123"), account=connected),
        account=connected, direction="inbound", text="", status="delivered",
        media=[{"url": "data:image/jpeg;base64," + base64.b64encode(b"jpeg-bytes").decode(), "content_type": "image/jpeg"}],
        sent_at=datetime.now(timezone.utc))
    response = admin_client.get(f"/inbox/messages/{message.pk}/media/0/")
    assert response.status_code == 200 and response.content == b"jpeg-bytes"
    assert admin_client.get(f"/inbox/messages/{message.pk}/media/1/").status_code == 404
    twilio = Account(credentials={"account_sid": "AC1", "auth_token": "tok"})
    spec = get_provider("twilio").media_request(twilio, {"url": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"})
    assert spec["auth"] == ("AC1", "tok")
    assert get_provider("twilio").media_request(twilio, {"url": "file:///etc/passwd"}) is None


# --- issue 17 end to end: webhook -> thread (payload shapes: see test_provider_bluebubbles_events.py) --
def test_a_tapback_shows_on_its_message_and_its_removal_clears_it(connected, mac):
    from conversations.models import MessageReaction

    post(connected, mac.new_message(guid="Q-1", text="Is it in stock?", address="+14155550123"))
    post(connected, mac.new_message(guid="TB-1", text="Loved “Is it in stock?”", address="+14155550123",
                                    associated_guid="p:0/Q-1", associated_type="love"))
    [reaction] = MessageReaction.objects.all()
    assert (reaction.message.provider_message_id, reaction.emoji, reaction.contact.phone) == ("Q-1", "❤️", "+14155550123")
    assert Message.objects.count() == 1  # a tapback is not a message
    post(connected, mac.new_message(guid="TB-2", text="Removed a heart from “Is it in stock?”", address="+14155550123",
                                    associated_guid="p:0/Q-1", associated_type="-love"))
    assert not MessageReaction.objects.exists()


def test_a_member_added_to_a_group_is_a_thread_event_not_a_message(connected, mac):
    from conversations.models import ConversationEvent

    group = "iMessage;+;chat123456"
    post(connected, mac.new_message(address="+14155550124", chat=group, chat_name="Book club", text="hi all"))
    conversation = Conversation.objects.get()
    unread = conversation.unread_count
    added = mac.message(guid="SYS-1", text=None, address="+14155550124", chat=group, chat_name="Book club", item_type=1,
                        other_handle=21, participants=[{"originalROWID": 21, "address": "+16505550199", "service": "iMessage"}])
    for event_type in ("participant-added", "new-message"):  # the server sends both, same guid
        assert post(connected, {"type": event_type, "data": added}).status_code == 200
    [event] = ConversationEvent.objects.filter(kind="chat")
    assert (event.conversation_id, event.reason) == (conversation.pk, "+14155550124 added +16505550199")
    conversation.refresh_from_db()
    assert Message.objects.count() == 1 and conversation.unread_count == unread


def test_an_edit_and_an_unsend_from_the_contact_change_the_message(connected, mac):
    post(connected, mac.new_message(guid="E-1", text="Open at 9?", address="+14155550123"))
    edited = mac.message(guid="E-1", text="Open at 10?", address="+14155550123", with_chats=False, date_edited=1735733000000)
    post(connected, {"type": "updated-message", "data": edited})
    message = Message.objects.get()
    assert message.text == "Open at 10?" and message.edited_at and message.edits[0]["text"] == "Open at 9?"
    unsent = {**edited, "text": None, "partCount": 0, "dateEdited": 1735733100000}
    post(connected, {"type": "updated-message", "data": unsent})
    message.refresh_from_db()
    assert message.deleted_at is not None
