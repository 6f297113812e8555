"""Issue 17 end to end, the way a customer meets it: the gateway's own webhook bodies posted to
WhatSnap's webhook URL -> the inbox thread an agent opens -> what the GHL stand-in holds.

The bodies are built as EvolutionAPI/evolution-api builds them
(src/api/integrations/channel/whatsapp/whatsapp.baileys.service.ts: prepareMessage and the
messages.upsert / MESSAGES_EDITED / MESSAGES_DELETE emits; the envelope from
src/api/integrations/event/webhook/webhook.controller.ts), with Baileys' message keys
(WhiskeySockets/Baileys src/Utils/decode-wa-message.ts: remoteJid '…@lid' with remoteJidAlt),
through tests/standins/evolution_payloads.py. The LID-only body with no phone anywhere is the
one evolution-api issue #1764 shows."""
import json

import pytest
from django.test import Client

from accounts.services import account_create, account_set_status
from contacts.models import Contact
from conversations.models import Conversation, InboundEvent, Message
from tests.standins import evolution_payloads as evo
from tests.test_ghl import drain, ghl, installed  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)

OWN = "5511988887777"
PHONE = "5511912345678"
LID = "205712346573071@lid"
INSTANCE = "whatsnap-00e2e00e2e00e2e0"


@pytest.fixture
def evolution(location, settings):
    settings.EVOLUTION_API_BASE_URL = "http://127.0.0.1:9"  # nothing is called: webhooks only
    settings.EVOLUTION_API_KEY = "global-test-key"
    account = account_create(location=location, kind="whatsapp", backend="evolution", name="Sales", phone_number=f"+{OWN}")
    type(account).objects.filter(pk=account.pk).update(gateway_resource=INSTANCE)
    account_set_status(account=account, status="connected", reason="test")
    account.refresh_from_db()
    return account


def post(account, event: str, data) -> int:
    body = evo.envelope(INSTANCE, event, data, sender=f"{OWN}@s.whatsapp.net")
    response = Client().post(f"/webhooks/whatsapp/{account.pk}/?secret={account.webhook_secret}",
                             data=json.dumps(body), content_type="application/json")
    return response.status_code


def upsert(account, key: dict, message: dict, *, push_name: str = "") -> dict:
    record = evo.prepared(key, message, push_name=push_name)
    assert post(account, "messages.upsert", record) == 200
    return record


def thread_html(client, contact: Contact) -> str:
    conversation = Conversation.objects.get(contact=contact)
    response = client.get(f"/inbox/{conversation.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def ghl_posts(standin, direction: str) -> list[dict]:
    return [c.json for c in standin.api_calls("POST", "/conversations/messages/inbound")
            if c.status == 200 and c.json.get("direction") == direction]


def test_a_lid_sender_is_kept_then_merged_and_ghl_ends_with_one_contact_with_the_phone(installed, ghl, evolution, admin_client):
    """Point 2: no phone anywhere (issue #1764) -> filed under the LID, in GHL without a phone;
    a later message carrying the phone (remoteJidAlt) -> one contact with the number, in GHL too."""
    upsert(evolution, evo.message_key(LID), {"conversation": "Hi, is the shop open?"}, push_name="Marta")
    contact = Contact.objects.get()
    assert (contact.phone, contact.whatsapp_lid, contact.name) == (LID, LID, "Marta")
    assert "Hi, is the shop open?" in thread_html(admin_client, contact)
    drain(installed)
    assert [p["message"] for p in ghl_posts(ghl, "inbound")] == ["Hi, is the shop open?"]
    ghl_id = Contact.objects.get().ghl_contact_id
    assert ghl_id and not ghl.contacts[ghl_id].get("phone")

    upsert(evolution, evo.message_key(LID, remoteJidAlt=f"{PHONE}@s.whatsapp.net", addressingMode="lid"),
           {"conversation": "It's Marta again"}, push_name="Marta")
    drain(installed)
    contact = Contact.objects.get()  # still one person, now with the number
    assert (contact.phone, contact.whatsapp_lid, contact.ghl_contact_id) == (f"+{PHONE}", LID, ghl_id)
    assert ghl.contacts[ghl_id]["phone"] == f"+{PHONE}" and len(ghl.contacts) == 1
    html = thread_html(admin_client, contact)
    assert "Hi, is the shop open?" in html and "It&#x27;s Marta again" in html


def test_a_message_typed_on_the_phone_shows_in_the_thread_and_reaches_ghl_as_outbound(installed, ghl, evolution, admin_client):
    """Point 7: fromMe, not sent by WhatSnap -> outbound "from the phone", unread cleared, GHL outbound."""
    upsert(evolution, evo.message_key(f"{PHONE}@s.whatsapp.net"), {"conversation": "Do you deliver?"}, push_name="Rui")
    upsert(evolution, evo.message_key(f"{PHONE}@s.whatsapp.net", from_me=True), {"conversation": "Yes, tomorrow at 10"})
    typed = Message.objects.get(direction="outbound")
    assert typed.via_device and typed.author is None
    conversation = typed.conversation
    conversation.refresh_from_db()
    assert conversation.unread_count == 0 and conversation.first_response_at == typed.sent_at
    html = thread_html(admin_client, conversation.contact)
    assert "Yes, tomorrow at 10" in html and "from the phone" in html
    drain(installed)
    assert [p["message"] for p in ghl_posts(ghl, "outbound")] == ["Yes, tomorrow at 10"]
    assert Contact.objects.get().name == "Rui"  # the owner's "Você" never renames the contact


def test_reaction_quote_edit_and_deletion_show_in_the_thread_and_only_real_messages_reach_ghl(installed, ghl, evolution, admin_client):
    """Point 8: a reaction lands on its message, a quoted reply shows what it quotes, an edit shows
    the new text, a deletion for everyone is marked; none of them is a new GHL message."""
    chat = f"{PHONE}@s.whatsapp.net"
    first = upsert(evolution, evo.message_key(chat), {"conversation": "Table for 4 at 8?"}, push_name="Rui")
    upsert(evolution, evo.message_key(chat), evo.reply_content("and one high chair", first), push_name="Rui")
    upsert(evolution, evo.message_key(chat), evo.reaction_content(first["key"], "👍"), push_name="Rui")
    typo = upsert(evolution, evo.message_key(chat), {"conversation": "for 5 actualy"}, push_name="Rui")
    # the edit as evolution-foundation/evolution-api 2.3.7 reports it (messages.update: Baileys'
    # key of the edited message, the chat as the account sees it, and its new content)
    assert post(evolution, "messages.update", {
        "keyId": typo["key"]["id"], "remoteJid": chat, "fromMe": False, "participant": None, "status": "SERVER_ACK",
        "message": {"editedMessage": {"message": {"conversation": "for 5 actually"}}}}) == 200
    oops = upsert(evolution, evo.message_key(chat), {"conversation": "wrong chat, sorry"}, push_name="Rui")
    assert post(evolution, "messages.delete", oops["key"]) == 200

    messages = {m.provider_message_id: m for m in Message.objects.all()}
    assert messages[first["key"]["id"]].reactions.get().emoji == "👍"
    quote = Message.objects.get(text="and one high chair")
    assert quote.reply_to_id == messages[first["key"]["id"]].pk
    assert messages[typo["key"]["id"]].text == "for 5 actually" and messages[typo["key"]["id"]].edited_at
    assert messages[oops["key"]["id"]].deleted_at
    assert not InboundEvent.objects.exclude(status="done").exists()
    html = thread_html(admin_client, Contact.objects.get())
    assert "👍" in html and "for 5 actually" in html and "This message was deleted" in html
    drain(installed)
    assert sorted(p["message"] for p in ghl_posts(ghl, "inbound")) == sorted(
        ["Table for 4 at 8?", "and one high chair", "for 5 actualy", "wrong chat, sorry"])


def test_a_webhook_kind_whatsnap_does_not_file_is_kept_with_its_reason_on_the_account_page(evolution, admin_client):
    """Point 1: answered 2xx and kept, with the reason, where an admin sees it."""
    assert post(evolution, "presence.update", {"id": f"{PHONE}@s.whatsapp.net", "presences": {}}) == 200
    kept = InboundEvent.objects.get()
    assert kept.status == "unfiled" and "PRESENCE" in kept.error.upper()
    page = admin_client.get(f"/accounts/{evolution.pk}/").content.decode()
    assert kept.error in page


def test_a_picture_sent_inline_shows_in_the_thread_and_is_not_copied_into_ghl(installed, ghl, evolution, admin_client):
    """Webhook base64 mode (the account's webhook is set with base64: true): the file arrives in
    the message as `base64` (service.ts prepareMessage). GHL's attachments are links it can open
    (apps/conversations.json ProcessMessageBodyDto.attachments: URLs): an inline file is not one."""
    picture = {"imageMessage": {"mimetype": "image/jpeg", "caption": "the broken part"}, "base64": "/9j/4AAQSkZJRg=="}
    upsert(evolution, evo.message_key(f"{PHONE}@s.whatsapp.net"), picture, push_name="Rui")
    message = Message.objects.get()
    assert message.text == "the broken part" and message.media[0]["url"].startswith("data:image/jpeg;base64,")
    drain(installed)
    [posted] = ghl_posts(ghl, "inbound")
    assert posted["message"] == "the broken part" and posted["attachments"] == []
