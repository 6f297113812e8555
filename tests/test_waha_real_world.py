"""WAHA webhooks as its three engines really send them (issue 17): LID senders, messages typed
on the phone, reactions, edits, deletions, quoted replies, and everything else kept Unfiled with
its reason. Payloads: tests/standins/waha_payloads.py, built from the upstream code cited there
and at each test."""
import pytest
from django.test import Client, RequestFactory

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import (
    Ignored,
    DeliveryStatus,
    InboundMessage,
    MessageDeleted,
    MessageEdited,
    PhoneIdentified,
    Reaction,
    Unfiled,
    WebhookForbidden,
)
from accounts.services import account_connect, account_create
from conversations.models import InboundEvent
from tests.standins.waha_standin import WahaStandIn

ENGINES = ["WEBJS", "NOWEB", "GOWS"]
PHONE_JID, PHONE = "14155550123@c.us", "+14155550123"
LID = "123456789012345@lid"
GROUP = "120363041967849074@g.us"
MEMBER_LID, MEMBER_JID, MEMBER = "987654321098765@lid", "4915112345678@c.us", "+4915112345678"
ME_JID, ME_LID = "14155550100@c.us", "111111111111111@lid"


@pytest.fixture
def gateway(request, settings):
    with WahaStandIn(api_key="waha-test-key", engine=getattr(request, "param", "WEBJS")) as standin:
        standin.me_lid = ME_LID
        settings.WAHA_API_BASE_URL, settings.WAHA_API_KEY = standin.url, standin.api_key
        yield standin


@pytest.fixture
def linked(location, gateway):
    account = account_create(location=location, kind="whatsapp", backend="waha", name="Sales")
    account_connect(account=account)
    gateway.link(account.gateway_resource, "+14155550100")
    Account.objects.filter(pk=account.pk).update(status="connected", phone_number="+14155550100")
    account.refresh_from_db()
    return account


def parse(gateway, account, envelope) -> list:
    raw, headers = gateway.signed(account.gateway_resource, envelope)
    request = RequestFactory().post("/webhooks/whatsapp/1/", data=raw, content_type="application/json", **headers)
    return get_provider("waha").parse_webhook(account, request)


def one(events, kind):
    found = [e for e in events if isinstance(e, kind)]
    assert len(found) == 1, events
    return found[0]


# --- LID senders -------------------------------------------------------------------------------
@pytest.mark.parametrize("gateway", ["NOWEB", "GOWS"], indirect=True)
def test_lid_direct_message_with_the_phone_alongside_files_phone_and_lid(linked, gateway):
    # NOWEB: Baileys key {remoteJid: …@lid, remoteJidAlt: …@s.whatsapp.net} (WhiskeySockets/Baileys
    # src/Utils/decode-wa-message.ts); GOWS: whatsmeow Info {Chat, Sender: …@lid, SenderAlt}
    # (tulir/whatsmeow types/message.go); WAMessage.from = the chat (devlikeapro/waha
    # src/core/engines/{noweb,gows}/session.*.core.ts toWAMessage)
    envelope = gateway.message(linked.gateway_resource, chat=LID, alt=PHONE_JID, push_name="Ana", message_id="L1", text="hola")
    events = parse(gateway, linked, envelope)
    message = one(events, InboundMessage)
    assert (message.from_phone, message.sender_lid, message.name, message.text) == (PHONE, LID, "Ana", "hola")
    assert (message.provider_id, message.from_me, message.group_id) == (f"false_{LID}_L1", False, "")
    assert one(events, PhoneIdentified) == PhoneIdentified(lid=LID, phone=PHONE, name="Ana")


@pytest.mark.parametrize("gateway", ENGINES, indirect=True)
def test_lid_direct_message_without_a_phone_is_kept_under_the_lid(linked, gateway):
    # WEBJS gives WhatsApp Web's `from` only (devlikeapro/waha src/core/engines/webjs/
    # session.webjs.core.ts toWAMessage; pedroslopez/whatsapp-web.js src/structures/Message.js);
    # NOWEB/GOWS without remoteJidAlt / SenderAlt (evolution-api #1764-like real payloads)
    events = parse(gateway, linked, gateway.message(linked.gateway_resource, chat=LID, message_id="L2"))
    assert [type(e) for e in events] == [InboundMessage]
    assert (events[0].from_phone, events[0].sender_lid) == ("", LID)


@pytest.mark.parametrize("gateway", ENGINES, indirect=True)
def test_lid_group_participant_with_and_without_phone(linked, gateway):
    # group sender: NOWEB key.participant/participantAlt, GOWS Info.Sender/SenderAlt, WEBJS
    # `author` / id.participant (sources as above); the serialized id ends with the participant
    name = linked.gateway_resource
    with_phone = parse(gateway, linked, gateway.message(name, chat=GROUP, participant=MEMBER_LID, alt=MEMBER_JID, message_id="G1"))
    message = one(with_phone, InboundMessage)
    assert message.group_id == GROUP and message.provider_id == f"false_{GROUP}_G1_{MEMBER_LID}"
    assert message.sender_lid == MEMBER_LID
    assert message.from_phone == ("" if gateway.engine == "WEBJS" else MEMBER)  # WEBJS carries no phone
    lid_only = one(parse(gateway, linked, gateway.message(name, chat=GROUP, participant=MEMBER_LID, message_id="G2")), InboundMessage)
    assert (lid_only.from_phone, lid_only.sender_lid, lid_only.group_id) == ("", MEMBER_LID, GROUP)
    by_phone = one(parse(gateway, linked, gateway.message(name, chat=GROUP, participant=MEMBER_JID, message_id="G3")), InboundMessage)
    assert (by_phone.from_phone, by_phone.sender_lid) == (MEMBER, "")


@pytest.mark.parametrize("gateway", ["NOWEB"], indirect=True)
def test_older_baileys_sender_pn_and_participant_pn_are_read(linked, gateway):
    # Baileys 6.7 named the phone senderPn / participantPn (WhiskeySockets/Baileys before v7;
    # devlikeapro/waha src/core/utils/jids.ts jidsFromKey reads the v7 *Alt names)
    name = linked.gateway_resource
    direct = gateway.message(name, chat=LID, message_id="O1")
    direct["payload"]["_data"]["key"]["senderPn"] = "14155550123@s.whatsapp.net"
    group = gateway.message(name, chat=GROUP, participant=MEMBER_LID, message_id="O2")
    group["payload"]["_data"]["key"]["participantPn"] = "4915112345678@s.whatsapp.net"
    assert one(parse(gateway, linked, direct), InboundMessage).from_phone == PHONE
    assert one(parse(gateway, linked, group), InboundMessage).from_phone == MEMBER


# --- messages typed on the phone (message.any, fromMe) -----------------------------------------
@pytest.mark.parametrize("gateway", ENGINES, indirect=True)
def test_message_typed_on_the_phone_names_the_contact_not_the_account(linked, gateway):
    # message.any = every message (devlikeapro/waha src/structures/webhooks.dto.ts
    # WAHAWebhookMessageAny); WEBJS fromMe: from = the account, to = the chat; NOWEB/GOWS: from =
    # the chat (session.*.core.ts toWAMessage / getFromToParticipant)
    name = linked.gateway_resource
    message = one(parse(gateway, linked, gateway.message(name, chat=PHONE_JID, from_me=True, push_name="Shop",
                                                          message_id="M1", text="typed on the phone")), InboundMessage)
    assert (message.from_me, message.from_phone, message.name, message.text) == (True, PHONE, "", "typed on the phone")
    assert message.provider_id == f"true_{PHONE_JID}_M1"
    in_group = one(parse(gateway, linked, gateway.message(name, chat=GROUP, from_me=True, message_id="M2")), InboundMessage)
    assert (in_group.from_me, in_group.group_id, in_group.from_phone, in_group.sender_lid) == (True, GROUP, "", "")


@pytest.mark.parametrize("gateway", ["NOWEB", "GOWS"], indirect=True)
def test_phone_typed_message_to_a_lid_chat_takes_the_recipients_phone_never_the_accounts(linked, gateway):
    # GOWS: Info.RecipientAlt is the recipient's other id (tulir/whatsmeow types/message.go);
    # NOWEB: remoteJidAlt is the stanza's sender_pn, for our own message the account's phone
    # (WhiskeySockets/Baileys src/Utils/decode-wa-message.ts extractAddressingContext)
    name = linked.gateway_resource
    recipient = one(parse(gateway, linked, gateway.message(name, chat=LID, from_me=True, alt=PHONE_JID)), InboundMessage)
    assert (recipient.from_me, recipient.sender_lid) == (True, LID)
    assert recipient.from_phone == PHONE
    own_alt = one(parse(gateway, linked, gateway.message(name, chat=LID, from_me=True, alt=ME_JID)), InboundMessage)
    assert (own_alt.from_phone, own_alt.sender_lid) == ("", LID)


def test_sessions_still_on_the_message_event_are_read_the_same(linked, gateway):
    # sessions created before issue 17 post `message` until they reconnect (same WAMessage payload)
    envelope = gateway.message(linked.gateway_resource, chat=PHONE_JID, message_id="OLD1", event="message")
    assert one(parse(gateway, linked, envelope), InboundMessage).provider_id == f"false_{PHONE_JID}_OLD1"


# --- quoted replies ----------------------------------------------------------------------------
@pytest.mark.parametrize("gateway", ENGINES, indirect=True)
def test_quoted_reply_names_the_quoted_message_as_waha_ids_it(linked, gateway):
    # WAMessage.replyTo {id: raw id, participant, body}: WEBJS quotedMsg (id.id, author||from),
    # NOWEB/GOWS contextInfo {stanzaId, participant, quotedMessage} (session.*.core.ts
    # extractReplyTo; devlikeapro/waha src/structures/message.dto.ts ReplyToMessage)
    name = linked.gateway_resource
    quoting_us = gateway.message(name, chat=PHONE_JID, reply_to={"id": "OURS1", "participant": ME_JID, "body": "Price is 10"})
    message = one(parse(gateway, linked, quoting_us), InboundMessage)
    assert (message.reply_to, message.quoted_text) == (f"true_{PHONE_JID}_OURS1", "Price is 10")
    quoting_them = gateway.message(name, chat=GROUP, participant=MEMBER_JID,
                                   reply_to={"id": "THEIRS1", "participant": MEMBER_JID, "body": "hi"})
    assert one(parse(gateway, linked, quoting_them), InboundMessage).reply_to == f"false_{GROUP}_THEIRS1_{MEMBER_JID}"


# --- reactions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("gateway", ENGINES, indirect=True)
def test_contact_reacts_to_our_message_and_removes_it(linked, gateway):
    # WAMessageReaction {id, fromMe, from, participant, reaction{text, messageId}}; NOWEB key
    # already the account's view (WhiskeySockets/Baileys src/Utils/process-message.ts
    # cleanMessage), WEBJS msgId._serialized, GOWS the reactor's raw key (tulir/whatsmeow send.go
    # BuildMessageKey; devlikeapro/waha src/core/engines/gows/session.gows.core.ts
    # buildMessageIdFromKey) turned to the account's view
    name = linked.gateway_resource
    added = one(parse(gateway, linked, gateway.reaction(name, chat=PHONE_JID, target_id="OURS2", target_from_me=True,
                                                         emoji="👍", message_id="R1")), Reaction)
    assert (added.target_id, added.emoji, added.from_me, added.from_phone) == (f"true_{PHONE_JID}_OURS2", "👍", False, PHONE)
    assert added.provider_id == f"false_{PHONE_JID}_R1"
    removed = one(parse(gateway, linked, gateway.reaction(name, chat=PHONE_JID, target_id="OURS2", target_from_me=True,
                                                           emoji="")), Reaction)
    assert (removed.target_id, removed.emoji) == (f"true_{PHONE_JID}_OURS2", "")
    on_theirs = one(parse(gateway, linked, gateway.reaction(name, chat=PHONE_JID, target_id="THEIRS2", target_from_me=False,
                                                             emoji="❤️")), Reaction)
    assert on_theirs.target_id == f"false_{PHONE_JID}_THEIRS2"


@pytest.mark.parametrize("gateway", ENGINES, indirect=True)
def test_group_reactions_and_our_own_from_the_phone(linked, gateway):
    # sources as test_contact_reacts_to_our_message_and_removes_it; in groups the target id ends
    # with its author (buildMessageId)
    name = linked.gateway_resource
    ours = one(parse(gateway, linked, gateway.reaction(name, chat=GROUP, participant=MEMBER_JID, target_id="G-OURS",
                                                        target_from_me=True, emoji="🎉")), Reaction)
    assert (ours.target_id, ours.from_phone) == (f"true_{GROUP}_G-OURS_{ME_JID}", MEMBER)
    own = one(parse(gateway, linked, gateway.reaction(name, chat=GROUP, participant=MEMBER_JID, target_id="G-OWN",
                                                       target_from_me=False, author=MEMBER_JID, emoji="😂")), Reaction)
    assert own.target_id == f"false_{GROUP}_G-OWN_{MEMBER_JID}"
    mine = one(parse(gateway, linked, gateway.reaction(name, chat=PHONE_JID, target_id="THEIRS3", target_from_me=False,
                                                        emoji="🙏", from_me=True)), Reaction)
    assert (mine.from_me, mine.from_phone, mine.target_id) == (True, "", f"false_{PHONE_JID}_THEIRS3")


# --- edits and deletions -----------------------------------------------------------------------
@pytest.mark.parametrize("gateway", ENGINES, indirect=True)
def test_edit_names_the_original_and_has_its_own_id(linked, gateway):
    # WAMessageEditedBody {…WAMessage, body, editedMessageId} (devlikeapro/waha
    # src/structures/webhooks.dto.ts); NOWEB/GOWS: the edit's own WAMessage, WEBJS: the edited
    # message (editedMessageId = _data.id.id) (session.*.core.ts MESSAGE_EDITED)
    name = linked.gateway_resource
    first = one(parse(gateway, linked, gateway.edited(name, chat=PHONE_JID, original_id="ORIG1", text="10:30 then")), MessageEdited)
    second = one(parse(gateway, linked, gateway.edited(name, chat=PHONE_JID, original_id="ORIG1", text="11:00 then")), MessageEdited)
    assert first.target_id == second.target_id == f"false_{PHONE_JID}_ORIG1"
    assert (first.text, second.text) == ("10:30 then", "11:00 then")
    assert first.provider_id != second.provider_id and first.target_id not in (first.provider_id, second.provider_id)
    in_group = one(parse(gateway, linked, gateway.edited(name, chat=GROUP, participant=MEMBER_JID, original_id="ORIG2",
                                                          text="fixed")), MessageEdited)
    assert in_group.target_id == f"false_{GROUP}_ORIG2_{MEMBER_JID}"


@pytest.mark.parametrize("gateway", ENGINES, indirect=True)
def test_message_deleted_for_everyone(linked, gateway):
    # WAMessageRevokedBody {after, before, revokedMessageId}: NOWEB/GOWS `after` is the revoke
    # (protocolMessage REVOKE), WEBJS the message as it is now (message_revoke_everyone)
    name = linked.gateway_resource
    theirs = one(parse(gateway, linked, gateway.revoked(name, chat=PHONE_JID, original_id="GONE1")), MessageDeleted)
    assert theirs.target_id == f"false_{PHONE_JID}_GONE1"
    ours = one(parse(gateway, linked, gateway.revoked(name, chat=PHONE_JID, original_id="GONE2", from_me=True,
                                                       before_text="oops")), MessageDeleted)
    assert ours.target_id == f"true_{PHONE_JID}_GONE2"


@pytest.mark.parametrize("gateway", ["NOWEB", "GOWS"], indirect=True)
def test_group_admin_deleting_someone_elses_message_names_the_author(linked, gateway):
    # the revoke is the admin's; its protocolMessage.key.participant is the author (NOWEB
    # `_data.message`, GOWS `_data.Message`: session.*.core.ts MESSAGE_REVOKED `_data`)
    envelope = gateway.revoked(linked.gateway_resource, chat=GROUP, participant="4917600000000@c.us", author=MEMBER_JID,
                               original_id="GONE3")
    assert one(parse(gateway, linked, envelope), MessageDeleted).target_id == f"false_{GROUP}_GONE3_{MEMBER_JID}"


@pytest.mark.parametrize("gateway", ["WEBJS"], indirect=True)
def test_webjs_revoked_item_arriving_as_a_message_is_a_deletion(linked, gateway):
    # WhatsApp Web changes a deleted message's type to 'revoked' (whatsapp-web.js Client.js
    # change:type -> message_revoke_everyone); message.any may carry it
    envelope = gateway.message(linked.gateway_resource, chat=PHONE_JID, message_id="GONE4", text="", kind="revoked")
    events = parse(gateway, linked, envelope)
    assert [(type(e), e.target_id) for e in events] == [(MessageDeleted, f"false_{PHONE_JID}_GONE4")]


# --- accepted, not filed: Unfiled with the reason, never a silent [] ----------------------------
def unfiled_reason(events) -> str:
    assert [type(e) for e in events] == [Unfiled], events
    return events[0].reason


@pytest.mark.parametrize("gateway", ENGINES, indirect=True)
def test_what_whatsnap_does_not_file_is_kept_with_its_reason(linked, gateway):
    # status@broadcast / @newsletter / @broadcast chats (devlikeapro/waha src/core/utils/jids.ts
    # JidFilter); WEBJS system types (WhatsApp Web Msg.type 'gp2', 'e2e_notification', …)
    name = linked.gateway_resource
    assert "status update" in unfiled_reason(parse(gateway, linked, gateway.message(name, chat="status@broadcast",
                                                                                      participant=PHONE_JID)))
    assert "channel" in unfiled_reason(parse(gateway, linked, gateway.message(name, chat="120363025246125244@newsletter")))
    status_reaction = gateway.reaction(name, chat="status@broadcast", participant=PHONE_JID, target_id="ST1",
                                       target_from_me=True, emoji="🔥")
    assert unfiled_reason(parse(gateway, linked, status_reaction)).startswith("reaction in a WhatsApp status update")
    status_gone = gateway.revoked(name, chat="status@broadcast", participant=PHONE_JID, original_id="ST2")
    assert unfiled_reason(parse(gateway, linked, status_gone)).startswith("deletion in a WhatsApp status update")
    if gateway.engine == "WEBJS":
        gp2 = gateway.message(name, chat=GROUP, participant=PHONE_JID, text="", kind="gp2")
        assert "system item of type gp2" in unfiled_reason(parse(gateway, linked, gp2))


@pytest.mark.parametrize("gateway", ENGINES, indirect=True)
def test_receipts_for_messages_we_received_are_unfiled_and_ours_are_statuses(linked, gateway):
    # WAMessageAckBody {id, fromMe, ack, ackName}: GOWS reverses the receipt's IsFromMe
    # (session.gows.core.ts receiptToMessageAck), so our phone reading the contact's message is
    # fromMe false; NOWEB/WEBJS post acks of our messages (session.*.core.ts MESSAGE_ACK)
    name = linked.gateway_resource
    read_by_us = gateway.message_ack(name, message_id=f"false_{PHONE_JID}_IN1", ack=3, chat=PHONE_JID, from_me=False)
    assert unfiled_reason(parse(gateway, linked, read_by_us)).startswith("read receipt for a received message")
    delivered = parse(gateway, linked, gateway.message_ack(name, message_id=f"true_{PHONE_JID}_OUT1", ack=2, chat=PHONE_JID))
    assert delivered == [DeliveryStatus(provider_id=f"true_{PHONE_JID}_OUT1", status="delivered")]
    # PENDING (0) says nothing the send did not record: no event, deliberately
    assert parse(gateway, linked, gateway.message_ack(name, message_id=f"true_{PHONE_JID}_OUT1", ack=0, chat=PHONE_JID)) == [Ignored("ack PENDING: queued on the phone")]


def test_unknown_events_and_unreadable_payloads_are_unfiled_and_rerun_from_the_envelope(linked, gateway):
    # WAHAEvents has ~30 event types (devlikeapro/waha src/structures/enums.dto.ts); one we do
    # not subscribe to still gets an answer and a reason
    name = linked.gateway_resource
    presence = gateway.envelope(name, "presence.update", {"id": PHONE_JID, "presences": []})
    events = parse(gateway, linked, presence)
    assert unfiled_reason(events) == "unsupported WAHA event type presence.update"
    assert events[0].envelope == presence and events[0].key == f"waha:{presence['id']}"
    broken = gateway.reaction(name, chat=PHONE_JID, target_id="X", target_from_me=True, emoji="👍")
    broken["payload"]["reaction"]["messageId"] = None
    assert unfiled_reason(parse(gateway, linked, broken)) == "reaction to a message without id"
    odd = gateway.message_ack(name, message_id=f"true_{PHONE_JID}_OUT2", ack=2, chat=PHONE_JID)
    odd["payload"].update(ack="two", ackName=None)
    assert unfiled_reason(parse(gateway, linked, odd)) == "message.ack payload not understood: ValueError"
    quote_unreadable = gateway.message(name, chat=PHONE_JID, text="still filed")
    quote_unreadable["payload"]["replyTo"] = {"id": ["not", "an", "id"]}
    kept = one(parse(gateway, linked, quote_unreadable), InboundMessage)
    assert (kept.text, kept.reply_to) == ("still filed", "")
    # an admin's re-run reads the stored envelope the same way
    envelope = gateway.message(name, chat=LID, alt=PHONE_JID, message_id="RE1")
    assert get_provider("waha").parse_envelope(linked, envelope) == parse(gateway, linked, envelope)


# --- WAHA that signs nothing (issue 17 point 6) -------------------------------------------------
def test_unsigned_waha_webhook_is_refused_and_the_account_says_why_and_what_to_change(linked, gateway):
    # WAHA Core signed nothing before 2024.11.5: its 2024.10.8 sender posts content-type and
    # User-Agent only (devlikeapro/waha@2024.10.8 src/core/webhooks.core.ts WebhookSenderCore);
    # from then on X-Webhook-Hmac + X-Webhook-Hmac-Algorithm: sha512 when the webhook has hmac.key
    # (src/core/integrations/webhooks/WebhookSender.ts getHMACHeaders)
    envelope = gateway.message(linked.gateway_resource, chat=PHONE_JID)
    raw, _headers = gateway.signed(linked.gateway_resource, envelope)
    response = Client().post(gateway.webhook_path(linked.gateway_resource), data=raw, content_type="application/json")
    assert response.status_code == 403
    assert not InboundEvent.objects.exists()
    linked.refresh_from_db()
    reason = linked.webhook_refused_reason
    assert reason.startswith("no X-Webhook-Hmac header: this WAHA signs no webhooks")
    assert "WAHA before 2024.11.5" in reason and "upgrade WAHA to 2024.11.5 or later and reconnect the account" in reason
    assert linked.webhook_refused_at is not None


def test_a_webhook_signed_with_another_key_says_the_key_differs(linked, gateway):
    # X-Webhook-Hmac = hex HMAC-SHA512(hmac.key, body) (WebhookSender.ts calculateHmac)
    envelope = gateway.message(linked.gateway_resource, chat=PHONE_JID)
    with pytest.raises(WebhookForbidden, match="another HMAC key than this account"):
        raw, headers = gateway.signed(linked.gateway_resource, envelope, key="an old key")
        get_provider("waha").parse_webhook(linked, RequestFactory().post("/", data=raw, content_type="application/json", **headers))
