"""WhatsApp via a WAHA gateway, against a loopback gateway speaking its wire format."""
import hashlib
import hmac
import time
from datetime import datetime, timedelta, timezone

import pytest
from django.test import Client

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import ProviderError
from accounts.services import account_connect, account_create, account_disconnect, account_qr_renew
from contacts.models import Contact
from conversations.models import Conversation, InboundEvent, Message
from conversations.services import message_send
from tests.standins.waha_standin import EVENTS_2024_10, WahaStandIn

CUSTOMER = "14155550123@c.us"
GROUP = "120363041967849074@g.us"


@pytest.fixture
def gateway(request, settings):
    engine = getattr(request, "param", "WEBJS")
    with WahaStandIn(api_key="waha-test-key", engine=engine) as standin:
        settings.WAHA_API_BASE_URL = standin.url
        settings.WAHA_API_KEY = standin.api_key
        yield standin


@pytest.fixture
def account(location, gateway):
    return account_create(location=location, kind="whatsapp", backend="waha", name="Sales")


@pytest.fixture
def linked(account, gateway):
    account_connect(account=account)
    assert post(gateway, account, gateway.link(session(account), "+14155550100")).status_code == 200
    account.refresh_from_db()
    assert account.status == "connected"
    return account



def session(account) -> str:
    return account.gateway_resource


def post(gateway, account, envelope, *, key=None, headers=None, path=None, body=None):
    """POST an envelope to the account's webhook the way WAHA does (signed with the session's
    HMAC key unless told otherwise)."""
    raw, signed = gateway.signed(session(account), envelope, key=key)
    return Client().post(
        path or gateway.webhook_path(session(account)),
        data=raw if body is None else body,
        content_type="application/json",
        **(signed if headers is None else headers),
    )


def rows():
    return InboundEvent.objects.count(), Contact.objects.count(), Message.objects.count()


def inbound(gateway, account, **kwargs):
    response = post(gateway, account, gateway.message(session(account), **kwargs))
    assert response.status_code == 200, response.content
    return response


# --- connect ---------------------------------------------------------------------------------
def test_connect_creates_session_with_our_signed_webhook_and_shows_qr(account, gateway):
    account_connect(account=account)
    account.refresh_from_db()
    name = session(account)
    assert account.status == "qr_pending"
    assert account.qr_payload == gateway.qr_code(name) and account.pairing_code == ""
    create = gateway.received("POST", "/api/sessions")[0]
    assert create.headers["x-api-key"] == "waha-test-key"
    assert create.json["name"] == name
    [webhook] = create.json["config"]["webhooks"]
    # the webhook URL carries no secret: WAHA signs every body with the account's secret
    assert webhook["url"] == f"http://testserver/webhooks/whatsapp/{account.pk}/"
    assert webhook["hmac"] == {"key": account.webhook_secret}
    # message.any (not message): what the account's own phone sends arrives too
    assert webhook["events"] == ["message.any", "message.ack", "message.reaction", "message.edited", "message.revoked",
                                 "session.status"]
    assert gateway.received("POST", f"/api/sessions/{name}/start")
    assert gateway.received("GET", f"/api/{name}/auth/qr")[0].query == {"format": "raw"}
    assert "session" not in account.config and account.gateway_resource == name
    assert not gateway.received("POST", f"/api/{name}/auth/request-code")  # no number, no pairing code


def test_connect_with_a_phone_number_also_gets_a_pairing_code_and_renewal_keeps_it(location, gateway):
    account = account_create(location=location, kind="whatsapp", backend="waha", name="Sales", phone_number="+14155550100")
    account_connect(account=account)
    account.refresh_from_db()
    assert (account.status, account.pairing_code) == ("qr_pending", gateway.pairing_code)
    assert gateway.received("POST", f"/api/{session(account)}/auth/request-code")[0].json == {"phoneNumber": "14155550100"}
    account_qr_renew(account=account)
    account.refresh_from_db()
    assert account.pairing_code == gateway.pairing_code
    assert len(gateway.received("POST", f"/api/{session(account)}/auth/request-code")) == 1


def test_expired_qr_is_renewed_with_one_qr_call(account, gateway):
    account_connect(account=account)
    account.refresh_from_db()
    first = account.qr_payload
    calls = len(gateway.requests)
    account_qr_renew(account=account)
    account.refresh_from_db()
    assert [(r.method, r.path, r.query) for r in gateway.requests[calls:]] == [("GET", f"/api/{session(account)}/auth/qr", {"format": "raw"})]
    assert account.status == "qr_pending" and account.qr_payload == gateway.qr_code(session(account)) != first


def test_reconnect_of_existing_session_updates_its_webhook_and_shows_a_new_qr(account, gateway):
    account_connect(account=account)
    name = session(account)
    gateway.sessions[name].config = {"webhooks": [{"url": "https://old.example/hook", "events": ["message"]}]}
    account_connect(account=account)
    account.refresh_from_db()
    assert len(gateway.sessions) == 1 and len(gateway.received("POST", "/api/sessions")) == 2
    [update] = gateway.received("PUT", f"/api/sessions/{name}")
    assert update.json["config"]["webhooks"][0]["hmac"] == {"key": account.webhook_secret}
    assert gateway.webhook(name)["url"] == f"http://testserver/webhooks/whatsapp/{account.pk}/"
    assert len(gateway.received("POST", f"/api/sessions/{name}/start")) == 2
    assert account.status == "qr_pending" and account.qr_payload == gateway.qr_code(name)


def test_reconnect_of_linked_session_is_connected_without_qr_or_restart(linked, gateway):
    calls = len(gateway.requests)
    account_connect(account=linked)
    linked.refresh_from_db()
    assert (linked.status, linked.qr_payload, linked.phone_number) == ("connected", "", "+14155550100")
    later = [(r.method, r.path) for r in gateway.requests[calls:]]
    assert ("PUT", f"/api/sessions/{session(linked)}") not in later  # its webhook is ours already
    assert not [path for _m, path in later if path.endswith("/auth/qr")]


def test_session_still_starting_says_connecting_then_the_page_fetches_the_qr(account, gateway, admin_client):
    gateway.start_status = "STARTING"
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "connecting" and account.qr_payload == ""
    calls = len(gateway.requests)
    assert post(gateway, account, gateway.session_status(session(account), "SCAN_QR_CODE")).status_code == 200
    assert len(gateway.requests) == calls  # the webhook is answered without calling the gateway
    account.refresh_from_db()
    assert account.status == "qr_pending" and account.qr_payload == ""
    card = admin_client.get(f"/accounts/{account.pk}/connect/").content.decode()
    assert "Fetching the QR code" in card and "/qr/refresh/" in card  # the page asks for it
    admin_client.post(f"/accounts/{account.pk}/qr/refresh/", HTTP_HX_REQUEST="true")
    account.refresh_from_db()
    assert account.status == "qr_pending" and account.qr_payload == gateway.qr_code(session(account))


def test_session_status_webhooks_link_stop_start_fail_and_ask_for_a_scan(account, gateway):
    account_connect(account=account)
    name = session(account)
    post(gateway, account, gateway.link(name, "+14155550100"))
    account.refresh_from_db()
    assert (account.status, account.phone_number, account.qr_payload) == ("connected", "+14155550100", "")

    post(gateway, account, gateway.session_status(name, "STOPPED"))
    account.refresh_from_db()
    assert account.status == "disconnected"

    post(gateway, account, gateway.session_status(name, "STARTING"))
    account.refresh_from_db()
    assert account.status == "connecting"

    post(gateway, account, gateway.session_status(name, "FAILED"))
    account.refresh_from_db()
    assert account.status == "error" and "failed" in account.last_error

    gateway.sessions[name].me = None  # WhatsApp unlinked the device: a new scan is needed
    post(gateway, account, gateway.session_status(name, "SCAN_QR_CODE"))
    account.refresh_from_db()
    assert account.status == "qr_pending"
    account_qr_renew(account=account)  # what the account page asks for
    account.refresh_from_db()
    assert account.qr_payload == gateway.qr_code(name)


# --- inbound ---------------------------------------------------------------------------------
def test_inbound_message_makes_one_tagged_contact_and_message_and_redelivery_is_noop(linked, gateway):
    envelope = gateway.message(session(linked), chat=CUSTOMER, text="Do you ship?", push_name="Ada", message_id="ABC1")
    for _ in range(2):
        response = post(gateway, linked, envelope)
        assert response.status_code == 200
    assert rows() == (1, 1, 1)
    contact = Contact.objects.get()
    assert (contact.phone, contact.name) == ("+14155550123", "Ada")
    assert [t.name for t in contact.tags.all()] == ["whatsnap-account-sales"]
    message = Message.objects.get()
    assert (message.text, message.direction, message.provider_message_id) == ("Do you ship?", "inbound", f"false_{CUSTOMER}_ABC1")


def test_echo_of_our_own_send_is_reported_and_filed_once(linked, gateway):
    # devlikeapro/waha src/core/engines/webjs/session.webjs.core.ts: message.any is every
    # message_create, our API sends included (fromMe, the id the send answered)
    inbound(gateway, linked, chat=CUSTOMER, text="hi")
    message = message_send(conversation=Conversation.objects.get(), text="Yes, we ship!")
    message.refresh_from_db()
    raw_id = message.provider_message_id.rsplit("_", 1)[1]
    response = inbound(gateway, linked, chat=CUSTOMER, text="Yes, we ship!", message_id=raw_id, from_me=True)
    assert response.json()["accepted"] == 1  # reported: filing knows it by its provider id
    assert Message.objects.count() == 2


def test_group_message_files_group_thread_with_participant_contact(linked, gateway):
    inbound(gateway, linked, chat=GROUP, participant="4915112345678@c.us", push_name="Bea", text="hi all")
    person = Contact.objects.get(phone="+4915112345678")
    group = Contact.objects.exclude(pk=person.pk).get()
    assert group.kind == Contact.Kind.GROUP and person.name == "Bea"
    assert {t.name for t in person.tags.all()} == {"whatsnap-account-sales"}
    message = Message.objects.get()
    assert message.conversation.contact == group and message.sender_contact == person


def test_reply_in_a_group_goes_to_the_group_chat(linked, gateway):
    inbound(gateway, linked, chat=GROUP, participant=CUSTOMER)
    message = message_send(conversation=Conversation.objects.get(), text="hello group")
    message.refresh_from_db()
    assert gateway.received("POST", "/api/sendText")[0].json["chatId"] == GROUP
    assert message.status == "sent"


def test_media_message_keeps_the_file_and_the_inbox_fetches_it_with_the_api_key(linked, gateway, admin_client):
    name = session(linked)
    picture = b"\xff\xd8\xff\xe0" + b"jpeg" * 50
    gateway.files[f"{name}/false_{CUSTOMER}_IMG1.jpg"] = (picture, "image/jpeg")
    media = {"url": gateway.media_url(name, f"false_{CUSTOMER}_IMG1"), "mimetype": "image/jpeg", "filename": None}
    inbound(gateway, linked, chat=CUSTOMER, text="the label", message_id="IMG1", media=media)
    message = Message.objects.get()
    assert message.text == "the label"
    assert (message.media[0]["content_type"], message.media[0]["kind"], message.media[0]["url"]) == ("image/jpeg", "image", media["url"])
    response = admin_client.get(f"/inbox/messages/{message.pk}/media/0/")
    assert response.status_code == 200 and b"".join(response.streaming_content) == picture
    # WAHA's URL names localhost:3000 (its WHATSAPP_API_HOSTNAME): fetched from our base URL
    [download] = gateway.received("GET", f"/api/files/{name}/false_{CUSTOMER}_IMG1.jpg")
    assert download.headers["x-api-key"] == "waha-test-key"


def test_api_key_goes_only_to_the_gateway(linked, settings):
    provider = get_provider("waha")
    elsewhere = provider.media_request(linked, {"url": "https://bucket.s3.example/f.jpg"})
    assert elsewhere == {"url": "https://bucket.s3.example/f.jpg"}
    own = provider.media_request(linked, {"url": f"http://localhost:3000/api/files/{linked.gateway_resource}/false_1@c.us_A.jpg"})
    assert own["headers"] == {"X-Api-Key": "waha-test-key"} and own["url"].startswith(settings.WAHA_API_BASE_URL)
    assert provider.media_request(linked, {"url": "file:///etc/passwd"}) is None
    # The key opens every tenant's sessions: an attachment URL (a client can post one) never
    # gets it for anything but one file of this account's own session.
    for path in ("/api/sessions", "/api/sessions?all=true", "/api/files/whatsnap-0000000000000000/x.jpg",
                 f"/api/files/{linked.gateway_resource}/../../api/sessions/other",
                 f"/api/files/{linked.gateway_resource}/%2e%2e/%2e%2e/api/sessions",
                 f"/api/files/{linked.gateway_resource}/a/b.jpg", f"/api/files/{linked.gateway_resource}/"):
        for host in (settings.WAHA_API_BASE_URL, "https://attacker.example"):
            request = provider.media_request(linked, {"url": host + path})
            assert "headers" not in request and not request.get("trusted"), path


def test_kinds_without_text_are_described_and_lid_only_senders_kept_by_their_lid(linked, gateway):
    location = {"latitude": 52.52, "longitude": 13.4, "name": "Shop"}
    inbound(gateway, linked, chat=CUSTOMER, text="", extra={"location": location})
    inbound(gateway, linked, chat="123456789012345@lid", message_id="LID1", text="who am I")
    texts = set(Message.objects.values_list("text", flat=True))
    assert texts == {"Location: 52.52, 13.4 Shop", "who am I"}
    lid_event = InboundEvent.objects.get(dedupe_key=f"msg:false_123456789012345@lid_LID1")
    assert (lid_event.payload["from_phone"], lid_event.payload["sender_lid"]) == ("", "123456789012345@lid")


# --- outbound --------------------------------------------------------------------------------
@pytest.mark.parametrize("gateway", ["WEBJS", "NOWEB", "GOWS"], indirect=True)
def test_reply_is_sent_through_the_gateway_and_acks_move_it_forward(linked, gateway):
    inbound(gateway, linked, chat=CUSTOMER, text="hi")
    message = message_send(conversation=Conversation.objects.get(), text="Yes, we ship!")
    message.refresh_from_db()
    sent = gateway.received("POST", "/api/sendText")
    assert [r.json for r in sent] == [{"session": session(linked), "chatId": CUSTOMER, "text": "Yes, we ship!"}]
    assert sent[0].headers["x-api-key"] == "waha-test-key"
    # whatever the engine answers, we keep the serialized id that message.ack events carry
    serialized = gateway.sessions[session(linked)].sent[0][0]
    assert (message.status, message.provider_message_id) == ("sent", serialized)

    post(gateway, linked, gateway.message_ack(session(linked), message_id=serialized, ack=2, chat=CUSTOMER))
    message.refresh_from_db()
    assert message.status == "delivered"
    post(gateway, linked, gateway.message_ack(session(linked), message_id=serialized, ack=3, chat=CUSTOMER))
    message.refresh_from_db()
    assert message.status == "read"


def test_error_ack_fails_the_message(linked, gateway):
    inbound(gateway, linked, chat=CUSTOMER)
    message = message_send(conversation=Conversation.objects.get(), text="x")
    message.refresh_from_db()
    post(gateway, linked, gateway.message_ack(session(linked), message_id=message.provider_message_id, ack=-1, chat=CUSTOMER))
    message.refresh_from_db()
    assert message.status == "failed" and "ERROR" in message.error


def test_typing_is_shown_for_the_delay_around_the_send(linked, gateway):
    linked.typing_delay_seconds = 1
    linked.save(update_fields=["typing_delay_seconds"])
    inbound(gateway, linked, chat=CUSTOMER, text="hi")
    message = message_send(conversation=Conversation.objects.get(), text="One moment…")
    message.refresh_from_db()
    calls = [r.path for r in gateway.requests if r.path in ("/api/startTyping", "/api/sendText", "/api/stopTyping")]
    assert calls == ["/api/startTyping", "/api/sendText", "/api/stopTyping"]
    (on, chat, t_on), (off, _chat, t_off) = gateway.sessions[session(linked)].presence
    assert (on, off, chat) == ("typing", "paused", CUSTOMER) and t_off - t_on >= 1
    assert message.status == "sent"


def test_media_reply_goes_as_image_or_file_with_extra_attachments_as_links(linked, gateway, files):
    """The gateway gets the file itself (base64), never a link it would follow on its own."""
    import base64

    inbound(gateway, linked, chat=CUSTOMER)
    conversation = Conversation.objects.get()
    image = [{"url": files.url + "/cat.png", "content_type": "image/png"}]
    message = message_send(conversation=conversation, text="a cat", media=image)
    message.refresh_from_db()
    [body] = [r.json for r in gateway.received("POST", "/api/sendImage")]
    assert body == {"session": session(linked), "chatId": CUSTOMER, "caption": "a cat",
                    "file": {"data": base64.b64encode(files.png).decode(), "mimetype": "image/png", "filename": "cat.png"}}
    assert message.status == "sent" and message.provider_message_id.startswith(f"true_{CUSTOMER}_3EB0")

    attachments = [{"url": files.url + "/menu.pdf", "content_type": "application/pdf", "filename": "Menu.pdf"},
                   {"url": "https://files.example/cat.png", "content_type": "image/png"}]
    message_send(conversation=conversation, text="two files", media=attachments)
    [body] = [r.json for r in gateway.received("POST", "/api/sendFile")]
    assert body["file"] == {"data": base64.b64encode(files.pdf).decode(), "mimetype": "application/pdf", "filename": "Menu.pdf"}
    assert body["caption"] == "two files\nhttps://files.example/cat.png"


# --- refusals and failures -------------------------------------------------------------------
@pytest.mark.parametrize("tamper", ["unsigned", "wrong_key", "body_changed", "other_algorithm", "other_session"])
def test_forged_webhook_is_refused_and_nothing_stored(linked, gateway, tamper):
    name = session(linked)
    envelope = gateway.message(name, chat=CUSTOMER)
    raw, headers = gateway.signed(name, envelope)
    kwargs = {}
    if tamper == "unsigned":
        kwargs["headers"] = {}
    elif tamper == "wrong_key":
        kwargs["key"] = "guessed"
    elif tamper == "body_changed":
        kwargs["body"] = raw.replace(b"hello", b"pay me")
    elif tamper == "other_algorithm":
        kwargs["headers"] = {**headers, "HTTP_X_WEBHOOK_HMAC_ALGORITHM": "sha256"}
    else:
        envelope["session"] = "whatsnap-someone-else"  # signed with our key, but not our session
    response = post(gateway, linked, envelope, **kwargs)
    assert response.status_code == 403
    assert rows() == (0, 0, 0)


def test_signed_but_unreadable_webhook_is_a_400(linked, gateway):
    raw = b"not json"
    signature = hmac.new(linked.webhook_secret.encode(), raw, hashlib.sha512).hexdigest()
    headers = {"HTTP_X_WEBHOOK_HMAC": signature, "HTTP_X_WEBHOOK_HMAC_ALGORITHM": "sha512"}
    response = Client().post(gateway.webhook_path(session(linked)), data=raw, content_type="application/json", **headers)
    assert response.status_code == 400 and rows() == (0, 0, 0)


def test_gateway_not_configured_is_a_clear_error(account, settings):
    settings.WAHA_API_BASE_URL = ""
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "error" and "WAHA_API_BASE_URL" in account.last_error


def test_gateway_down_connect_marks_account_error_with_reason(account, gateway):
    gateway.down()
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "error"
    assert "unreachable" in account.last_error
    assert account.events.first().to_status == "error"


def test_wrong_api_key_is_an_error_with_reason(account, gateway, settings):
    settings.WAHA_API_KEY = "wrong"
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "error" and "401" in account.last_error


def test_gateway_down_send_waits_for_a_retry_and_the_account_shows_why(linked, gateway):
    inbound(gateway, linked, chat=CUSTOMER)
    gateway.down()
    message = message_send(conversation=Conversation.objects.get(), text="anyone there?")
    message.refresh_from_db()
    assert message.status == "queued" and "unreachable" in message.error and message.provider_message_id == ""
    linked.refresh_from_db()
    assert linked.status == "error" and "unreachable" in linked.last_error


def test_gateway_error_answer_is_retried_with_the_reason(linked, gateway):
    inbound(gateway, linked, chat=CUSTOMER)
    gateway.fail_with(500, {"statusCode": 500, "message": "boom", "error": "Internal Server Error"})
    message = message_send(conversation=Conversation.objects.get(), text="x")
    message.refresh_from_db()
    assert message.status == "queued" and message.send_attempts == 1 and "500" in message.error and "boom" in message.error


def test_send_to_a_session_that_is_not_working_fails_with_the_gateways_reason(linked, gateway):
    inbound(gateway, linked, chat=CUSTOMER)
    gateway.sessions[session(linked)].status = "STOPPED"
    message = message_send(conversation=Conversation.objects.get(), text="x")
    message.refresh_from_db()
    assert message.status == "failed" and "422" in message.error and "STOPPED" in message.error


def test_health_and_disconnect(linked, gateway):
    provider = get_provider("waha")
    assert provider.health(linked).ok
    account_disconnect(account=linked)
    name = session(linked)
    # stopped before the logout: WAHA restarts a running session it logs out
    assert [r.path for r in gateway.requests if r.method == "POST" and r.path.startswith(f"/api/sessions/{name}/")][-2:] == [
        f"/api/sessions/{name}/stop", f"/api/sessions/{name}/logout"]
    assert gateway.sessions[name].status == "STOPPED" and gateway.sessions[name].me is None
    linked.refresh_from_db()
    assert linked.status == Account.Status.DISCONNECTED
    health = provider.health(linked)
    assert not health.ok and "STOPPED" in health.detail
    del gateway.sessions[name]
    assert "does not exist" in provider.health(linked).detail


def test_add_whatsapp_account_page_offers_the_waha_gateway(admin_client, gateway):
    page = admin_client.get("/accounts/add/whatsapp/").content.decode()
    assert 'value="waha"' in page and 'value="evolution"' in page and 'value="sandbox"' in page
    response = admin_client.post("/accounts/add/whatsapp/", {"name": "Support", "backend": "waha"})
    assert response.status_code == 302
    account = Account.objects.get(name="Support")
    assert (account.backend, account.status) == ("waha", "qr_pending")
    assert gateway.received("POST", "/api/sessions")


def test_waha_choice_without_a_gateway_is_refused_in_the_form(admin_client, settings):
    settings.WAHA_API_BASE_URL = ""
    response = admin_client.post("/accounts/add/whatsapp/", {"name": "Support", "backend": "waha"})
    assert response.status_code == 200 and "WAHA_API_BASE_URL" in response.content.decode()
    assert not Account.objects.exists()


# --- quoting, reactions, read receipts, history, LIDs ---------------------------------------------
# Wire formats: devlikeapro/waha src/api/chatting.controller.ts (POST /api/sendText, PUT
# /api/reaction, POST /api/sendSeen), src/structures/chatting.dto.ts (reply_to on every send,
# MessageReactionRequest {session, messageId, reaction}, SendSeenRequest {session, chatId,
# messageIds}), src/api/lids.controller.ts (GET /api/{session}/lids/{lid} -> {lid, pn}),
# src/api/chats.controller.ts + src/structures/chats.dto.ts (chats/overview, chats/{chatId}/messages
# with filter.timestamp.gte, downloadMedia).
def test_a_reply_quotes_the_message_it_answers(linked, gateway):
    inbound(gateway, linked, chat=CUSTOMER, text="How much?", message_id="Q1")
    asked = Message.objects.get()
    message = message_send(conversation=Conversation.objects.get(), text="10 EUR", reply_to=asked)
    message.refresh_from_db()
    [body] = [r.json for r in gateway.received("POST", "/api/sendText")]
    assert body == {"session": session(linked), "chatId": CUSTOMER, "text": "10 EUR", "reply_to": f"false_{CUSTOMER}_Q1"}
    assert message.status == "sent"


def test_react_and_remove_the_reaction(linked, gateway):
    provider = get_provider("waha")
    target = f"false_{CUSTOMER}_THEIRS1"
    provider.react(linked, to="+14155550123", target_id=target, target_from_me=False, emoji="👍")
    provider.react(linked, to="+14155550123", target_id=target, target_from_me=False, emoji="")
    assert gateway.sessions[session(linked)].reactions == [
        {"session": session(linked), "messageId": target, "reaction": "👍"},
        {"session": session(linked), "messageId": target, "reaction": ""}]
    assert provider.supports_reactions and provider.supports_read_receipts and provider.supports_history


def test_reaction_on_a_stopped_session_fails_with_the_gateways_reason(linked, gateway):
    gateway.sessions[session(linked)].status = "STOPPED"
    with pytest.raises(ProviderError, match="422.*STOPPED"):
        get_provider("waha").react(linked, to="+14155550123", target_id=f"false_{CUSTOMER}_X", target_from_me=False, emoji="👍")


def test_mark_read_sends_seen_for_those_messages(linked, gateway):
    ids = [f"false_{CUSTOMER}_A1", "false_123456789012345@lid_A2"]
    get_provider("waha").mark_read(linked, to="+14155550123", provider_ids=ids)
    assert gateway.sessions[session(linked)].seen == [{"session": session(linked), "chatId": CUSTOMER, "messageIds": ids}]


@pytest.mark.parametrize("gateway", ["WEBJS", "NOWEB", "GOWS"], indirect=True)
def test_history_is_the_recent_messages_of_recently_active_chats_oldest_first(linked, gateway):
    name, now = session(linked), int(time.time())
    hold = gateway.hold
    hold(name, CUSTOMER, gateway.message(name, chat=CUSTOMER, text="too old", message_id="H0", timestamp=now - 5 * 86400))
    hold(name, CUSTOMER, gateway.message(name, chat=CUSTOMER, text="hi", message_id="H1", push_name="Ana", timestamp=now - 86400))
    hold(name, CUSTOMER, gateway.message(name, chat=CUSTOMER, text="from the phone", message_id="H2", from_me=True,
                                         timestamp=now - 3600))
    hold(name, GROUP, gateway.message(name, chat=GROUP, participant="4915112345678@c.us", text="group", message_id="H3",
                                      timestamp=now - 7200))
    quiet = "4917600000000@c.us"
    hold(name, quiet, gateway.message(name, chat=quiet, text="last month", message_id="H4", timestamp=now - 30 * 86400))
    hold(name, "status@broadcast", gateway.message(name, chat="status@broadcast", participant=CUSTOMER, timestamp=now))
    found = get_provider("waha").history(linked, since=datetime.now(timezone.utc) - timedelta(days=2))
    assert [(m.text, m.from_me, m.history) for m in found] == [("hi", False, True), ("group", False, True),
                                                               ("from the phone", True, True)]
    assert [m.from_phone for m in found] == ["+14155550123", "+4915112345678", "+14155550123"]
    asked = {r.path for r in gateway.requests if r.path.endswith("/messages")}
    assert asked == {f"/api/{name}/chats/{CUSTOMER}/messages", f"/api/{name}/chats/{GROUP}/messages"}  # bounded
    page = gateway.received("GET", f"/api/{name}/chats/{CUSTOMER}/messages")[0].query
    assert (page["limit"], page["downloadMedia"]) == ("100", "false") and int(page["filter.timestamp.gte"]) > now - 3 * 86400


def test_history_from_a_waha_without_the_chats_overview(location, settings):
    with WahaStandIn(api_key="waha-test-key", overview=False) as gateway:
        settings.WAHA_API_BASE_URL, settings.WAHA_API_KEY = gateway.url, gateway.api_key
        account = account_create(location=location, kind="whatsapp", backend="waha", name="Sales")
        account_connect(account=account)
        gateway.link(session(account), "+14155550100")
        gateway.hold(session(account), CUSTOMER, gateway.message(session(account), chat=CUSTOMER, text="hi"))
        found = get_provider("waha").history(account, since=datetime.now(timezone.utc) - timedelta(days=1))
        assert [m.text for m in found] == ["hi"]
        assert gateway.received("GET", f"/api/{session(account)}/chats")[0].query["sortBy"] == "conversationTimestamp"


def test_resolve_lid_asks_the_session(linked, gateway, settings):
    provider = get_provider("waha")
    gateway.lids["123456789012345@lid"] = CUSTOMER
    assert provider.resolve_lid(linked, "123456789012345@lid") == "+14155550123"
    assert provider.resolve_lid(linked, "555555555555555@lid") == ""  # WAHA knows no phone: pn null
    assert provider.resolve_lid(linked, "not a lid") == ""
    assert [r.path for r in gateway.requests if "/lids/" in r.path] == [
        f"/api/{session(linked)}/lids/123456789012345@lid", f"/api/{session(linked)}/lids/555555555555555@lid"]
    gateway.lids_endpoint = False  # a WAHA before the endpoint: 404
    assert provider.resolve_lid(linked, "123456789012345@lid") == ""


def test_a_waha_that_predates_message_edited_still_connects_with_the_events_it_knows(location, settings):
    with WahaStandIn(api_key="waha-test-key", known_events=EVENTS_2024_10) as gateway:
        settings.WAHA_API_BASE_URL, settings.WAHA_API_KEY = gateway.url, gateway.api_key
        account = account_create(location=location, kind="whatsapp", backend="waha", name="Sales")
        account_connect(account=account)
        account.refresh_from_db()
        assert account.status == "qr_pending"
        first, second = gateway.received("POST", "/api/sessions")
        assert "message.edited" in first.json["config"]["webhooks"][0]["events"]
        assert gateway.webhook(session(account))["events"] == ["message.any", "message.ack", "message.reaction",
                                                              "message.revoked", "session.status"]


def test_a_session_from_before_gets_the_new_events_on_reconnect(linked, gateway):
    name = session(linked)
    old = {**gateway.webhook(name), "events": ["message", "message.ack", "session.status"]}
    gateway.sessions[name].config = {"webhooks": [old]}
    account_connect(account=linked)
    [update] = gateway.received("PUT", f"/api/sessions/{name}")
    assert "message.any" in update.json["config"]["webhooks"][0]["events"]
    assert "message" not in gateway.webhook(name)["events"]  # not both: every message would come twice
