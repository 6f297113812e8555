"""WhatsApp via Evolution API v2, against a loopback gateway speaking its wire format."""
import json

import pytest
from django.test import Client

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import ProviderError
from accounts.services import account_connect, account_create, account_disconnect
from contacts.models import Contact
from conversations.models import Conversation, InboundEvent, Message
from conversations.reactions import message_react
from conversations.services import conversation_mark_read, message_send
from tests.standins.evolution_standin import Drop, EvolutionStandIn

CUSTOMER = "14155550123@s.whatsapp.net"


@pytest.fixture
def gateway(settings):
    with EvolutionStandIn(api_key="global-test-key") as standin:
        settings.EVOLUTION_API_BASE_URL = standin.url
        settings.EVOLUTION_API_KEY = standin.api_key
        yield standin


@pytest.fixture
def account(location, gateway):
    return account_create(location=location, kind="whatsapp", backend="evolution", name="Sales")


@pytest.fixture
def linked(account, gateway):
    account_connect(account=account)
    assert post(gateway, account, gateway.link(instance(account), "+14155550100")).status_code == 200
    account.refresh_from_db()
    assert account.status == "connected"
    return account



def instance(account) -> str:
    return account.gateway_resource


def post(gateway, account, envelope, *, path=None):
    return Client().post(path or gateway.webhook_path(instance(account)), data=json.dumps(envelope), content_type="application/json")


def rows():
    return InboundEvent.objects.count(), Contact.objects.count(), Message.objects.count()


# --- connect ---------------------------------------------------------------------------------
def test_expired_qr_is_renewed_with_one_connect_call(account, gateway):
    from accounts.services import account_qr_renew

    account_connect(account=account)
    account.refresh_from_db()
    first = account.qr_payload
    calls = len(gateway.requests)
    account_qr_renew(account=account)
    account.refresh_from_db()
    assert [(r.method, r.path) for r in gateway.requests[calls:]] == [("GET", f"/instance/connect/{instance(account)}")]
    assert account.status == "qr_pending" and account.qr_payload == gateway.qr_code(instance(account)) != first


def test_connect_creates_instance_with_our_webhook_and_shows_qr(account, gateway):
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "qr_pending"
    assert account.qr_payload == gateway.qr_code(instance(account))
    create = gateway.received("POST", "/instance/create")[0]
    assert create.headers["apikey"] == "global-test-key"
    body = create.json
    assert body["instanceName"] == instance(account)
    assert (body["integration"], body["qrcode"]) == ("WHATSAPP-BAILEYS", True)
    webhook = body["webhook"]
    assert webhook["url"] == f"http://testserver/webhooks/whatsapp/{account.pk}/?secret={account.webhook_secret}"
    assert (webhook["byEvents"], webhook["base64"]) == (False, True)
    assert set(webhook["events"]) == {"QRCODE_UPDATED", "CONNECTION_UPDATE", "MESSAGES_UPSERT", "MESSAGES_UPDATE",
                                      "MESSAGES_EDITED", "MESSAGES_DELETE", "LOGOUT_INSTANCE"}
    assert "instance" not in account.config and account.gateway_resource == instance(account)
    assert account.credentials["instance_token"] == gateway.instances[instance(account)].token


def test_reconnect_of_existing_instance_resets_webhook_and_fetches_a_new_qr(account, gateway):
    account_connect(account=account)
    account_connect(account=account)
    account.refresh_from_db()
    assert len(gateway.instances) == 1
    assert gateway.received("POST", f"/webhook/set/{instance(account)}")[0].json["webhook"]["url"].endswith(account.webhook_secret)
    assert gateway.received("GET", f"/instance/connect/{instance(account)}")
    assert account.status == "qr_pending" and account.qr_payload == gateway.qr_code(instance(account))


def test_reconnect_of_linked_instance_is_connected_without_qr(linked, gateway):
    account_connect(account=linked)
    linked.refresh_from_db()
    assert linked.status == "connected" and linked.qr_payload == ""


def test_session_webhooks_qr_refresh_link_close_and_logout(account, gateway):
    account_connect(account=account)
    name = instance(account)
    assert post(gateway, account, gateway.qrcode_updated(name)).status_code == 200
    account.refresh_from_db()
    assert account.qr_payload == gateway.qr_code(name) and account.status == "qr_pending"

    post(gateway, account, gateway.link(name, "+14155550100"))
    account.refresh_from_db()
    assert (account.status, account.phone_number, account.qr_payload) == ("connected", "+14155550100", "")

    post(gateway, account, gateway.connection_update(name, "close", status_reason=428))
    account.refresh_from_db()
    assert account.status == "disconnected"

    post(gateway, account, gateway.connection_update(name, "connecting"))
    account.refresh_from_db()
    assert account.status == "connecting"

    post(gateway, account, gateway.connection_update(name, "close", status_reason=401))
    account.refresh_from_db()
    assert account.status == "logged_out"

    post(gateway, account, gateway.link(name, "+14155550100"))
    post(gateway, account, gateway.logout_instance(name))
    account.refresh_from_db()
    assert account.status == "logged_out"


# --- inbound ---------------------------------------------------------------------------------
def test_inbound_message_makes_one_tagged_contact_and_message_and_redelivery_is_noop(linked, gateway):
    envelope = gateway.messages_upsert(instance(linked), remote_jid=CUSTOMER, text="Do you ship?", push_name="Ada", message_id="ABC1")
    for _ in range(2):
        response = post(gateway, linked, envelope)
        assert response.status_code == 200
    assert rows() == (1, 1, 1)
    contact = Contact.objects.get()
    assert (contact.phone, contact.name) == ("+14155550123", "Ada")
    assert [t.name for t in contact.tags.all()] == ["whatsnap-account-sales"]
    message = Message.objects.get()
    assert (message.text, message.direction, message.provider_message_id) == ("Do you ship?", "inbound", "ABC1")


def test_extended_text_and_media_caption_are_the_text(linked, gateway):
    name = instance(linked)
    post(gateway, linked, gateway.messages_upsert(name, remote_jid=CUSTOMER, message={"extendedTextMessage": {"text": "see https://x.y"}}))
    image = {"imageMessage": {"caption": "the label", "mimetype": "image/jpeg"}, "base64": "AAAA"}
    post(gateway, linked, gateway.messages_upsert(name, remote_jid=CUSTOMER, message=image))
    texts = list(Message.objects.order_by("id").values_list("text", flat=True))
    assert texts == ["see https://x.y", "the label"]
    media = Message.objects.order_by("id").last().media
    assert media[0]["content_type"] == "image/jpeg" and media[0]["url"] == "data:image/jpeg;base64,AAAA"


def test_our_own_send_echoing_back_is_not_filed_twice(linked, gateway):
    post(gateway, linked, gateway.messages_upsert(instance(linked), remote_jid=CUSTOMER, text="hi"))
    sent = message_send(conversation=Conversation.objects.get(), text="Yes, we ship!")
    sent.refresh_from_db()
    echo = gateway.messages_upsert(instance(linked), remote_jid=CUSTOMER, from_me=True, text="Yes, we ship!",
                                   message_id=sent.provider_message_id)
    assert post(gateway, linked, echo).status_code == 200
    stored = InboundEvent.objects.get(dedupe_key=f"msg:{sent.provider_message_id}")
    assert (stored.payload["from_me"], stored.payload["from_phone"], stored.payload["name"]) == (True, "+14155550123", "")
    assert Message.objects.filter(provider_message_id=sent.provider_message_id).count() == 1


def test_a_message_typed_on_the_phone_is_reported_from_me_with_the_contact(linked, gateway):
    envelope = gateway.messages_upsert(instance(linked), remote_jid=CUSTOMER, from_me=True, text="typed on the phone",
                                       message_id="PHONE1")
    [event] = get_provider("evolution").parse_envelope(linked, envelope)
    assert (event.from_me, event.from_phone, event.name, event.text) == (True, "+14155550123", "", "typed on the phone")
    assert post(gateway, linked, envelope).json()["accepted"] == 1
    message = Message.objects.get(provider_message_id="PHONE1")
    assert (message.direction, message.via_device, message.conversation.contact.phone) == ("outbound", True, "+14155550123")


def test_group_message_files_group_thread_with_participant_contact(linked, gateway):
    envelope = gateway.messages_upsert(
        instance(linked), remote_jid="120363041967849074@g.us", participant="4915112345678@s.whatsapp.net", push_name="Bea", text="hi all"
    )
    assert post(gateway, linked, envelope).status_code == 200
    person = Contact.objects.get(phone="+4915112345678")
    group = Contact.objects.exclude(pk=person.pk).get()
    assert group.kind == Contact.Kind.GROUP and person.name == "Bea"
    assert {t.name for t in person.tags.all()} == {"whatsnap-account-sales"}
    message = Message.objects.get()
    assert message.conversation.contact == group and message.sender_contact == person


def test_reply_in_a_group_goes_to_the_group_jid(linked, gateway):
    group = "120363041967849074@g.us"
    post(gateway, linked, gateway.messages_upsert(instance(linked), remote_jid=group, participant=CUSTOMER))
    message = message_send(conversation=Conversation.objects.get(), text="hello group")
    message.refresh_from_db()
    assert gateway.received("POST", f"/message/sendText/{instance(linked)}")[0].json["number"] == group
    assert message.status == "sent"


def test_reactions_edits_and_deletions_land_on_their_message_other_kinds_are_described(linked, gateway):
    name = instance(linked)
    post(gateway, linked, gateway.messages_upsert(name, remote_jid=CUSTOMER, text="first", message_id="M1", push_name="Ada"))
    post(gateway, linked, gateway.reaction(name, remote_jid=CUSTOMER, target_id="M1", emoji="👍", target_from_me=False))
    message = Message.objects.get(provider_message_id="M1")
    assert [r.emoji for r in message.reactions.all()] == ["👍"]
    # messages.edited alone names no author (its key is the sender's writing): kept, not applied;
    # the 2.3.7 messages.update of the same edit carries Baileys' key and is applied
    post(gateway, linked, gateway.messages_edited(name, target_id="M1", remote_jid=CUSTOMER, text="first, edited"))
    message.refresh_from_db()
    assert message.text == "first"
    post(gateway, linked, gateway.messages_update(name, key_id="M1", status="SERVER_ACK", remote_jid=CUSTOMER, from_me=False,
                                                  message={"editedMessage": {"message": {"conversation": "first, edited"}}}))
    message.refresh_from_db()
    assert (message.text, message.edits[0]["text"]) == ("first, edited", "first") and message.edited_at
    post(gateway, linked, gateway.messages_edited(name, target_id="M1", remote_jid=CUSTOMER))  # REVOKE: told again below
    post(gateway, linked, gateway.messages_delete(name, target_id="M1", remote_jid=CUSTOMER))
    message.refresh_from_db()
    assert message.deleted_at and Message.objects.count() == 1
    location = {"locationMessage": {"degreesLatitude": 52.52, "degreesLongitude": 13.40, "name": "Shop"}}
    post(gateway, linked, gateway.messages_upsert(name, remote_jid=CUSTOMER, message=location))
    post(gateway, linked, gateway.messages_upsert(name, remote_jid=CUSTOMER, message={"pollCreationMessage": {"name": "?"}}))
    texts = list(Message.objects.order_by("id").values_list("text", flat=True))[1:]
    assert texts[0] == "Location: 52.52, 13.4 Shop" and "pollCreationMessage" in texts[1]


def test_a_lid_sender_without_any_phone_is_filed_under_the_lid(linked, gateway):
    """evolution-api issues #1764, #1872, #2466: `remoteJid` '…@lid' and no phone anywhere."""
    envelope = gateway.messages_upsert(instance(linked), remote_jid="123456789012345@lid", message_id="LID1", push_name="Helô")
    [event] = get_provider("evolution").parse_envelope(linked, envelope)
    assert (event.from_phone, event.sender_lid, event.name) == ("", "123456789012345@lid", "Helô")
    assert post(gateway, linked, envelope).json()["accepted"] == 1
    message = Message.objects.get(provider_message_id="LID1")
    assert message.conversation.contact.whatsapp_lid == "123456789012345@lid"


def test_a_lid_only_sender_the_gateway_can_name_gets_the_number(linked, gateway):
    gateway.instances[instance(linked)].lid_phones["123456789012345@lid"] = CUSTOMER  # learnt from an earlier message
    post(gateway, linked, gateway.messages_upsert(instance(linked), remote_jid="123456789012345@lid", message_id="LID2"))
    contact = Message.objects.get(provider_message_id="LID2").conversation.contact
    assert (contact.phone, contact.whatsapp_lid) == ("+14155550123", "123456789012345@lid")
    assert gateway.received("POST", f"/chat/whatsappNumbers/{instance(linked)}")[0].json == {"numbers": ["123456789012345@lid"]}


def test_lid_with_phone_alternative_uses_the_phone_and_keeps_the_lid(linked, gateway):
    name = instance(linked)
    post(gateway, linked, gateway.messages_upsert(name, remote_jid="123456789012345@lid", remote_jid_alt=CUSTOMER))
    post(gateway, linked, gateway.messages_upsert(name, remote_jid="99999@lid", sender_pn="14155550124@s.whatsapp.net"))
    assert sorted(Contact.objects.values_list("phone", flat=True)) == ["+14155550123", "+14155550124"]
    payloads = [e.payload for e in InboundEvent.objects.order_by("id")]
    assert [(p["from_phone"], p["sender_lid"]) for p in payloads] == [("+14155550123", "123456789012345@lid"),
                                                                     ("+14155550124", "99999@lid")]


# --- outbound --------------------------------------------------------------------------------
def test_typing_delay_is_shown_by_the_gateway_before_the_send(linked, gateway):
    linked.typing_delay_seconds = 1
    linked.save(update_fields=["typing_delay_seconds"])
    post(gateway, linked, gateway.messages_upsert(instance(linked), remote_jid=CUSTOMER, text="hi"))
    message = message_send(conversation=Conversation.objects.get(), text="One moment…")
    message.refresh_from_db()
    [sent] = gateway.received("POST", f"/message/sendText/{instance(linked)}")
    assert sent.json == {"number": "14155550123", "text": "One moment…", "delay": 1000}
    assert gateway.instances[instance(linked)].presence == [("composing", 1000)]
    assert message.status == "sent"


def test_reply_is_sent_through_the_gateway_and_receipts_apply(linked, gateway):
    post(gateway, linked, gateway.messages_upsert(instance(linked), remote_jid=CUSTOMER, text="hi"))
    message = message_send(conversation=Conversation.objects.get(), text="Yes, we ship!")
    message.refresh_from_db()
    sent = gateway.received("POST", f"/message/sendText/{instance(linked)}")
    assert [r.json for r in sent] == [{"number": "14155550123", "text": "Yes, we ship!"}]
    assert sent[0].headers["apikey"] == "global-test-key"
    key_id = gateway.instances[instance(linked)].sent[0]["key"]["id"]
    assert (message.status, message.provider_message_id) == ("sent", key_id)

    post(gateway, linked, gateway.messages_update(instance(linked), key_id=key_id, status="DELIVERY_ACK", remote_jid=CUSTOMER))
    message.refresh_from_db()
    assert message.status == "delivered"
    post(gateway, linked, gateway.messages_update(instance(linked), key_id=key_id, status="READ", remote_jid=CUSTOMER))
    message.refresh_from_db()
    assert message.status == "read"


def test_media_reply_uses_send_media_with_the_file_itself(linked, gateway, files):
    """The gateway gets the file (base64), not its link: given a link it would follow it by
    itself, redirects included, from inside the operator's network (issue 15.2)."""
    import base64

    post(gateway, linked, gateway.messages_upsert(instance(linked), remote_jid=CUSTOMER))
    media = [{"url": files.url + "/cat.png", "content_type": "image/png"}]
    message = message_send(conversation=Conversation.objects.get(), text="a cat", media=media)
    message.refresh_from_db()
    body = gateway.received("POST", f"/message/sendMedia/{instance(linked)}")[0].json
    assert (body["mediatype"], body["caption"], body["number"]) == ("image", "a cat", "14155550123")
    assert base64.b64decode(body["media"]) == files.png and body["fileName"] == "cat.png"
    assert message.status == "sent" and message.provider_message_id.startswith("3EB0")


def test_extra_attachments_travel_as_links_in_the_one_send(linked, gateway, files):
    import base64

    post(gateway, linked, gateway.messages_upsert(instance(linked), remote_jid=CUSTOMER))
    media = [{"url": files.url + "/cat.png", "content_type": "image/png"},
             {"url": "https://files.example/menu.pdf", "content_type": "application/pdf"}]
    message_send(conversation=Conversation.objects.get(), text="two files", media=media)
    [body] = [r.json for r in gateway.received("POST", f"/message/sendMedia/{instance(linked)}")]
    assert base64.b64decode(body["media"]) == files.png and body["caption"] == "two files\nhttps://files.example/menu.pdf"


def test_an_attachment_that_cannot_be_downloaded_fails_the_send_with_the_reason(linked, gateway, files, settings):
    post(gateway, linked, gateway.messages_upsert(instance(linked), remote_jid=CUSTOMER))
    conversation = Conversation.objects.get()
    missing = message_send(conversation=conversation, text="gone", media=[{"url": files.url + "/gone.png"}])
    missing.refresh_from_db()
    assert missing.status == "failed" and "answered 404" in missing.error
    assert not gateway.received("POST", f"/message/sendMedia/{instance(linked)}")


# --- refusals and failures -------------------------------------------------------------------
@pytest.mark.parametrize("tamper", ["no_secret", "wrong_secret", "wrong_apikey", "other_instance"])
def test_forged_webhook_is_refused_and_nothing_stored(linked, gateway, tamper):
    envelope = gateway.messages_upsert(instance(linked), remote_jid=CUSTOMER)
    path = gateway.webhook_path(instance(linked))
    if tamper == "no_secret":
        path = path.split("?")[0]
    elif tamper == "wrong_secret":
        path = path.split("?")[0] + "?secret=guessed"
    elif tamper == "wrong_apikey":
        envelope["apikey"] = "not-the-key"
    else:
        envelope["instance"] = "whatsnap-someone-else"
    response = post(gateway, linked, envelope, path=path)
    assert response.status_code == 403
    assert rows() == (0, 0, 0)


def test_envelope_with_global_key_or_without_key_is_accepted(linked, gateway):
    name = instance(linked)
    assert post(gateway, linked, gateway.messages_upsert(name, remote_jid=CUSTOMER, message_id="G1") | {"apikey": "global-test-key"}).status_code == 200
    envelope = gateway.messages_upsert(name, remote_jid=CUSTOMER, message_id="G2")
    del envelope["apikey"]
    assert post(gateway, linked, envelope).status_code == 200
    assert Message.objects.count() == 2


def test_gateway_down_connect_marks_account_error_with_reason(account, gateway):
    gateway.down()
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "error"
    assert "unreachable" in account.last_error
    assert account.events.first().to_status == "error"


def test_wrong_api_key_is_an_error_with_reason(account, gateway, settings):
    settings.EVOLUTION_API_KEY = "wrong"
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "error" and "401" in account.last_error


def test_gateway_down_send_waits_for_a_retry_and_the_account_shows_why(linked, gateway):
    post(gateway, linked, gateway.messages_upsert(instance(linked), remote_jid=CUSTOMER))
    gateway.down()
    message = message_send(conversation=Conversation.objects.get(), text="anyone there?")
    message.refresh_from_db()
    assert message.status == "queued" and "unreachable" in message.error and message.provider_message_id == ""
    linked.refresh_from_db()
    assert linked.status == "error" and "unreachable" in linked.last_error


def test_gateway_error_answer_is_retried_with_the_reason(linked, gateway):
    post(gateway, linked, gateway.messages_upsert(instance(linked), remote_jid=CUSTOMER))
    gateway.fail_with(500, {"status": 500, "error": "Internal Server Error", "response": {"message": ["boom"]}})
    message = message_send(conversation=Conversation.objects.get(), text="x")
    message.refresh_from_db()
    assert message.status == "queued" and message.send_attempts == 1 and "500" in message.error and "boom" in message.error


def test_health_and_disconnect(linked, gateway):
    provider = get_provider("evolution")
    assert provider.health(linked).ok
    account_disconnect(account=linked)
    assert gateway.received("DELETE", f"/instance/logout/{instance(linked)}")
    linked.refresh_from_db()
    assert linked.status == Account.Status.DISCONNECTED
    health = provider.health(linked)
    assert not health.ok and "close" in health.detail


def test_add_whatsapp_account_page_with_gateway(admin_client, gateway):
    response = admin_client.post("/accounts/add/whatsapp/", {"name": "Support", "backend": "evolution"})
    assert response.status_code == 302
    account = Account.objects.get(name="Support")
    assert (account.backend, account.status) == ("evolution", "qr_pending")
    assert gateway.received("POST", "/instance/create")


# --- the instance token (issue 17 point 3) ------------------------------------------------------
# EvolutionAPI/evolution-api: src/api/controllers/instance.controller.ts (fetchInstances) and
# src/api/services/monitor.service.ts (instanceInfo: v2 lists the instances' rows, `token`).
def _forget_token(account):
    Account.objects.filter(pk=account.pk).update(credentials={})
    account.refresh_from_db()


def test_an_instance_that_already_existed_gets_its_token_from_the_gateway(account, gateway):
    account_connect(account=account)
    _forget_token(account)  # e.g. connected by a WhatSnap that did not keep it
    account_connect(account=account)  # the create answers 403 "in use": ours, resumed
    account.refresh_from_db()
    token = gateway.instances[instance(account)].token
    assert account.credentials["instance_token"] == token and account.status == "qr_pending"
    [fetch] = gateway.received("GET", "/instance/fetchInstances")
    assert fetch.query == {"instanceName": instance(account)} and fetch.headers["apikey"] == "global-test-key"
    name = instance(account)
    gateway.link(name, "+14155550100")
    assert post(gateway, account, gateway.messages_upsert(name, remote_jid=CUSTOMER)).status_code == 200
    assert post(gateway, account, gateway.messages_upsert(name, remote_jid=CUSTOMER) | {"apikey": "forged"}).status_code == 403


@pytest.mark.parametrize("lost", ["dropped", "timed_out"])
def test_a_create_whose_answer_was_lost_is_resumed_with_the_token_it_made(account, gateway, monkeypatch, lost):
    if lost == "dropped":
        gateway.create_answer = "drop"
    else:
        from accounts.providers import transport
        from whatsnap import guarded_fetch

        monkeypatch.setattr(transport, "OPERATOR_LIMITS", guarded_fetch.Limits(connect=2.0, total=0.6, max_bytes=1024 * 1024))
        gateway.create_answer = ("late", 1.5)
    account_connect(account=account)
    account.refresh_from_db()
    name = instance(account)
    assert len(gateway.received("POST", "/instance/create")) == 1 and len(gateway.instances) == 1
    assert account.credentials["instance_token"] == gateway.instances[name].token
    assert account.status == "qr_pending" and account.qr_payload == gateway.qr_code(name)
    assert gateway.received("POST", f"/webhook/set/{name}")[0].json["webhook"]["url"].endswith(account.webhook_secret)


def test_a_create_lost_before_the_gateway_made_anything_stays_an_error(account, gateway, monkeypatch):
    monkeypatch.setattr(gateway, "_create", lambda body: Drop())  # no answer, and nothing made
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "error" and "instance_token" not in account.credentials
    assert gateway.received("GET", "/instance/fetchInstances") and not gateway.received("POST", f"/webhook/set/{instance(account)}")


def test_a_token_lookup_that_fails_does_not_stop_the_reconnect(account, gateway, monkeypatch):
    account_connect(account=account)
    _forget_token(account)
    monkeypatch.setattr(gateway, "_fetch", lambda name: (500, {"status": 500, "error": "Internal Server Error"}))
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "qr_pending" and "instance_token" not in account.credentials
    assert gateway.received("POST", f"/webhook/set/{instance(account)}")


@pytest.mark.parametrize("shape", ["v1", "v1-hidden"])
def test_older_gateways_fetch_answer_and_a_hidden_token(account, gateway, shape):
    """v1 answers `{instance: {instanceName, apikey}}`, the apikey only when it exposes it
    (AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES): without it, webhooks still come in (our URL
    secret authenticates them)."""
    gateway.fetch_shape = shape
    account_connect(account=account)
    _forget_token(account)
    account_connect(account=account)
    account.refresh_from_db()
    name = instance(account)
    assert account.credentials.get("instance_token", "") == (gateway.instances[name].token if shape == "v1" else "")
    gateway.link(name, "+14155550100")
    assert post(gateway, account, gateway.messages_upsert(name, remote_jid=CUSTOMER)).status_code == 200


def test_without_a_stored_token_the_url_secret_alone_authenticates(linked, gateway):
    _forget_token(linked)
    name = instance(linked)
    assert post(gateway, linked, gateway.messages_upsert(name, remote_jid=CUSTOMER, message_id="T1")).status_code == 200
    path = gateway.webhook_path(name).split("?")[0] + "?secret=guessed"
    assert post(gateway, linked, gateway.messages_upsert(name, remote_jid=CUSTOMER), path=path).status_code == 403
    assert Message.objects.filter(provider_message_id="T1").exists()


# --- in a chat: quoting, reactions, read receipts, history, LIDs ------------------------------
def test_send_with_reply_to_quotes_the_message(linked, gateway):
    """src/validate/message.schema.ts textMessageSchema: `quoted: {key: {id}}`; the gateway
    finds the quoted message in its own store (whatsapp.baileys.service.ts sendMessageWithTyping)."""
    post(gateway, linked, gateway.messages_upsert(instance(linked), remote_jid=CUSTOMER, text="Do you ship?", message_id="Q1"))
    original = Message.objects.get(provider_message_id="Q1")
    message = message_send(conversation=original.conversation, text="Yes, we do", reply_to=original)
    message.refresh_from_db()
    [body] = [r.json for r in gateway.received("POST", f"/message/sendText/{instance(linked)}")]
    assert body == {"number": "14155550123", "text": "Yes, we do", "quoted": {"key": {"id": "Q1"}}}
    sent = gateway.instances[instance(linked)].sent[0]
    assert (sent["contextInfo"]["stanzaId"], sent["contextInfo"]["quotedMessage"]) == ("Q1", {"conversation": "Do you ship?"})
    assert message.status == "sent" and message.reply_to_id == original.pk


def test_react_and_remove_a_reaction(linked, gateway):
    """message.schema.ts reactionMessageSchema: `{key: {id, remoteJid, fromMe}, reaction}`."""
    provider = get_provider("evolution")
    assert provider.supports_reactions
    provider.react(linked, to="+14155550123", target_id="M9", target_from_me=False, emoji="❤️")
    provider.react(linked, to="120363041967849074@g.us", target_id="M8", target_from_me=True, emoji="")
    assert gateway.instances[instance(linked)].reactions == [
        {"key": {"remoteJid": CUSTOMER, "fromMe": False, "id": "M9"}, "reaction": "❤️"},
        {"key": {"remoteJid": "120363041967849074@g.us", "fromMe": True, "id": "M8"}, "reaction": ""},
    ]


def test_an_agents_reaction_and_opening_the_conversation_reach_whatsapp(linked, gateway):
    name = instance(linked)
    for pid in ("R1", "R2"):
        post(gateway, linked, gateway.messages_upsert(name, remote_jid=CUSTOMER, message_id=pid))
    message_react(message=Message.objects.get(provider_message_id="R2"), emoji="🙏")
    assert gateway.instances[name].reactions == [{"key": {"remoteJid": CUSTOMER, "fromMe": False, "id": "R2"}, "reaction": "🙏"}]
    conversation_mark_read(conversation=Conversation.objects.get())
    assert [(r["remoteJid"], r["id"], r["fromMe"]) for r in gateway.instances[name].reads] == [
        (CUSTOMER, "R1", False), (CUSTOMER, "R2", False)]


def test_mark_read_sends_the_contacts_message_keys(linked, gateway):
    """chat.schema.ts readMessageSchema: `{readMessages: [{id, fromMe, remoteJid}]}`."""
    provider = get_provider("evolution")
    assert provider.supports_read_receipts
    provider.mark_read(linked, to="+14155550123", provider_ids=["A1", "A2"])
    [call] = gateway.received("POST", f"/chat/markMessageAsRead/{instance(linked)}")
    assert call.json == {"readMessages": [{"remoteJid": CUSTOMER, "fromMe": False, "id": "A1"},
                                          {"remoteJid": CUSTOMER, "fromMe": False, "id": "A2"}]}
    assert [r["id"] for r in gateway.instances[instance(linked)].reads] == ["A1", "A2"]
    gateway.fail_with(400, {"status": 400, "error": "Bad Request", "response": {"message": ["Read messages fail"]}})
    with pytest.raises(ProviderError, match="Read messages fail"):
        provider.mark_read(linked, to="+14155550123", provider_ids=["A3"])


def test_history_is_what_the_gateway_keeps_since_then_oldest_first(linked, gateway, monkeypatch):
    """chat.router.ts findMessages -> fetchMessages: newest first, paged by `offset`/`page`."""
    from datetime import datetime, timedelta, timezone as dt_tz

    from accounts.providers.evolution import chat

    monkeypatch.setattr(chat, "HISTORY_PAGE", 2)  # several pages
    name, now = instance(linked), gateway.now()
    gateway.messages_upsert(name, remote_jid=CUSTOMER, text="too old", message_id="H0", timestamp=now - 10 * 86400)
    gateway.messages_upsert(name, remote_jid=CUSTOMER, text="hello", message_id="H1", timestamp=now - 3600, push_name="Ada")
    gateway.messages_upsert(name, remote_jid=CUSTOMER, text="answered on the phone", message_id="H2", from_me=True, timestamp=now - 3000)
    gateway.messages_upsert(name, remote_jid="777@lid", text="from a LID", message_id="H3", timestamp=now - 2000)
    gateway.reaction(name, remote_jid=CUSTOMER, target_id="H1", emoji="👍")  # not a message
    gateway.messages_upsert(name, remote_jid="120363041967849074@g.us", participant="4915112345678@s.whatsapp.net",
                            text="group hi", message_id="H4", timestamp=now - 1000)
    found = get_provider("evolution").history(linked, since=datetime.now(dt_tz.utc) - timedelta(days=7))
    assert [(m.provider_id, m.from_me, m.from_phone, m.sender_lid, m.history) for m in found] == [
        ("H1", False, "+14155550123", "", True), ("H2", True, "+14155550123", "", True),
        ("H3", False, "", "777@lid", True), ("H4", False, "+4915112345678", "", True)]
    assert found[3].group_id == "120363041967849074@g.us" and found[0].name == "Ada" and found[1].name == ""
    calls = [c for c in gateway.received("POST", f"/chat/findMessages/{name}") if c.json["offset"] == 2]  # (not the import on connect)
    assert [c.json["page"] for c in calls] == [1, 2, 3]
    assert set(calls[0].json["where"]["messageTimestamp"]) == {"gte", "lte"}


def test_what_the_gateway_kept_is_imported_as_history_when_the_account_links(account, gateway):
    account_connect(account=account)
    name, now = instance(account), gateway.now()
    gateway.messages_upsert(name, remote_jid=CUSTOMER, text="before we linked", message_id="OLD1", timestamp=now - 3600, push_name="Ada")
    gateway.messages_upsert(name, remote_jid=CUSTOMER, text="answered on the phone", message_id="OLD2", from_me=True, timestamp=now - 3000)
    post(gateway, account, gateway.link(name, "+14155550100"))
    assert [(m.provider_message_id, m.direction, m.is_history) for m in Message.objects.order_by("sent_at")] == [
        ("OLD1", "inbound", True), ("OLD2", "outbound", True)]
    assert Conversation.objects.get().unread_count == 0


def test_resolve_lid_asks_the_gateways_number_lookup(linked, gateway):
    """chat.router.ts whatsappNumbers -> whatsappNumber: a LID it saw with its phone answers the
    phone's JID; any other LID is answered as itself."""
    provider = get_provider("evolution")
    post(gateway, linked, gateway.messages_upsert(instance(linked), remote_jid="555@lid", remote_jid_alt=CUSTOMER))
    assert provider.resolve_lid(linked, "555@lid") == "+14155550123"
    assert provider.resolve_lid(linked, "556@lid") == ""
    assert gateway.received("POST", f"/chat/whatsappNumbers/{instance(linked)}")[0].json == {"numbers": ["555@lid"]}


def test_a_reply_to_a_lid_only_contact_goes_to_the_lid(linked, gateway):
    post(gateway, linked, gateway.messages_upsert(instance(linked), remote_jid="123456789012345@lid", message_id="L1"))
    message = message_send(conversation=Conversation.objects.get(), text="Hello!")
    message.refresh_from_db()
    assert gateway.received("POST", f"/message/sendText/{instance(linked)}")[0].json["number"] == "123456789012345@lid"
    assert message.status == "sent"
