"""Evolution API webhooks as the gateway really sends them, read by the Evolution backend.

Every payload here is written out as the upstream code builds it (sources cited per test;
"evolution-api" is github.com/EvolutionAPI/evolution-api at v2.3.6 unless a test says 2.3.7,
github.com/evolution-foundation/evolution-api; "service.ts" is its
src/api/integrations/channel/whatsapp/whatsapp.baileys.service.ts), or copied from a real
payload an upstream issue shows. What matters in each: Baileys' message key
(WhiskeySockets/Baileys src/Utils/decode-wa-message.ts), Evolution's prepareMessage (service.ts:
`extendedTextMessage` renamed `conversation`, contextInfo moved to the top, pushName 'Você' or
the participant's number when WhatsApp gave no name), protobufjs JSON (enums by name, 64-bit
numbers as strings; WAProto/WAProto.proto)."""
import json

import pytest
from django.test import Client

from accounts.providers import get_provider
from accounts.providers.base import (
    Ignored,
    DeliveryStatus,
    InboundMessage,
    MessageDeleted,
    MessageEdited,
    Reaction,
    Unfiled,
)
from accounts.services import account_create
from conversations.models import InboundEvent

OWN = "5511988887777"  # the account's own number
NAME = "whatsnap-0123456789abcdef"


@pytest.fixture
def account(location, settings):
    settings.EVOLUTION_API_BASE_URL = "http://127.0.0.1:9"
    settings.EVOLUTION_API_KEY = "global-test-key"
    account = account_create(location=location, kind="whatsapp", backend="evolution", name="Sales", phone_number=f"+{OWN}")
    type(account).objects.filter(pk=account.pk).update(
        gateway_resource=NAME, credentials={"instance_token": "B6D711FCDE4D4FD5936544120E713976"})
    account.refresh_from_db()
    return account


def envelope(event: str, data) -> dict:
    """webhook.controller.ts emit(): the envelope around every event."""
    return {"event": event, "instance": NAME, "data": data, "destination": "https://whatsnap.example/webhooks/whatsapp/1/",
            "date_time": "2025-10-21T11:40:39.000Z", "sender": f"{OWN}@s.whatsapp.net",
            "server_url": "https://evo.example", "apikey": "B6D711FCDE4D4FD5936544120E713976"}


def upsert(key: dict, message: dict, *, push_name=None, context_info=None, message_type="conversation") -> dict:
    """service.ts prepareMessage: the MESSAGES_UPSERT data."""
    return envelope("messages.upsert", {
        "key": key, "pushName": push_name, "status": "SERVER_ACK" if key.get("fromMe") else "DELIVERY_ACK",
        "message": message, "contextInfo": context_info, "messageType": message_type,
        "messageTimestamp": 1761057639, "instanceId": "9d3c54a2-5d35-4a0e-8a6b-0a5a2cbe6f10", "source": "android"})


def parse(account, body: dict) -> list:
    return get_provider("evolution").parse_envelope(account, body)


def one(account, body: dict):
    events = parse(account, body)
    assert len(events) == 1, events
    return events[0]


# --- LID senders (issue 17 point 2) ------------------------------------------------------------
def test_issue_1764_a_lid_with_no_phone_anywhere_is_kept_under_the_lid(account):
    """evolution-api issue #1764 (v2.x): the body shown there, key with `remoteJid` '…@lid' only."""
    body = upsert({"remoteJid": "103899771998284@lid", "fromMe": False, "id": "3A5D8C2E1F0B4A7C9D11"},
                  {"conversation": "Vou pensar e retorno. Muito obrigada por enquanto!",
                   "messageContextInfo": {"deviceListMetadata": {"senderTimestamp": "1753614857",
                                                                 "recipientKeyHash": "R7CbehSmMzBxHQ==",
                                                                 "recipientTimestamp": "1753614840"},
                                          "deviceListMetadataVersion": 2}},
                  push_name="Helô Lucarello")
    message = one(account, body)
    assert isinstance(message, InboundMessage)
    assert (message.from_phone, message.sender_lid, message.name) == ("", "103899771998284@lid", "Helô Lucarello")
    assert message.text == "Vou pensar e retorno. Muito obrigada por enquanto!" and not message.from_me


def test_issue_2466_lid_only_on_2_2_3(account):
    """evolution-api issue #2466 (v2.2.3): `{"remoteJid": "13718@lid", "fromMe": false, "id": ...}`."""
    message = one(account, upsert({"remoteJid": "13718@lid", "fromMe": False, "id": "3AF1"}, {"conversation": "Oi"},
                                  push_name="Rodrigo"))
    assert (message.from_phone, message.sender_lid, message.text) == ("", "13718@lid", "Oi")


def test_baileys_7_lid_addressed_message_carries_the_phone_in_remote_jid_alt(account):
    """Baileys decode-wa-message.ts: addressing_mode 'lid' -> remoteJidAlt = sender_pn; the key
    as Evolution 2.3.6 sends it ('Save key exactly as it comes from Baileys')."""
    key = {"remoteJid": "185746521893420@lid", "remoteJidAlt": "5511912345678@s.whatsapp.net", "fromMe": False,
           "id": "3EB0A1", "addressingMode": "lid"}
    message = one(account, upsert(key, {"conversation": "olá"}, push_name="Ana"))
    assert (message.from_phone, message.sender_lid) == ("+5511912345678", "185746521893420@lid")


def test_baileys_7_phone_addressed_message_carries_the_lid_in_remote_jid_alt(account):
    """decode-wa-message.ts: addressing_mode 'pn' -> remoteJidAlt = sender_lid."""
    key = {"remoteJid": "5511912345678@s.whatsapp.net", "remoteJidAlt": "185746521893420@lid", "fromMe": False,
           "id": "3EB0A2", "addressingMode": "pn"}
    message = one(account, upsert(key, {"conversation": "olá"}))
    assert (message.from_phone, message.sender_lid) == ("+5511912345678", "185746521893420@lid")


def test_evolution_2_3_7_swaps_the_lid_for_the_phone(account):
    """evolution-foundation/evolution-api 2.3.7 service.ts: `if remoteJid includes '@lid' and
    remoteJidAlt: remoteJid = remoteJidAlt` before the webhook."""
    key = {"remoteJid": "5511912345678@s.whatsapp.net", "remoteJidAlt": "5511912345678@s.whatsapp.net", "fromMe": False,
           "id": "3EB0A3", "addressingMode": "lid"}
    message = one(account, upsert(key, {"conversation": "olá"}))
    assert (message.from_phone, message.sender_lid) == ("+5511912345678", "")


@pytest.mark.parametrize("extra, phone, lid", [
    ({"senderPn": "5511912345678@s.whatsapp.net"}, "+5511912345678", "185746521893420@lid"),  # evolution-api #1778 (2.3.0)
    ({"senderLid": "185746521893420@lid"}, "", "185746521893420@lid"),
])
def test_baileys_6_7_keys_sender_pn_and_sender_lid(account, extra, phone, lid):
    """Baileys 6.7 (commits 6b4dce8, 42112ac: src/Utils/decode-wa-message.ts): the key carries
    `senderLid`, `senderPn`, `participantPn`, `participantLid` (Evolution 2.3.0-2.3.3)."""
    key = {"remoteJid": "185746521893420@lid", "fromMe": False, "id": "3EB0A4", **extra}
    message = one(account, upsert(key, {"conversation": "oi"}))
    assert (message.from_phone, message.sender_lid) == (phone, lid)


@pytest.mark.parametrize("extra, phone", [
    ({"participantAlt": "4915112345678@s.whatsapp.net", "addressingMode": "lid"}, "+4915112345678"),  # Baileys 7
    ({"participantPn": "4915112345678@s.whatsapp.net"}, "+4915112345678"),  # Baileys 6.7
    ({}, ""),  # no phone at all
])
def test_group_participant_named_by_lid(account, extra, phone):
    """decode-wa-message.ts: in a group the writer is `participant`, its other form
    `participantAlt`; prepareMessage puts the participant's number as pushName when WhatsApp gave
    none (not a name)."""
    key = {"remoteJid": "120363041967849074@g.us", "fromMe": False, "id": "3EB0G1", "participant": "99887766554433@lid", **extra}
    message = one(account, upsert(key, {"conversation": "hi all"}, push_name="99887766554433"))
    assert (message.group_id, message.from_phone, message.sender_lid, message.name) == (
        "120363041967849074@g.us", phone, "99887766554433@lid", "")


def test_a_business_meta_hosts_is_read_like_any_number(account):
    """Baileys src/WABinary/jid-utils.ts: '…@hosted' and '…@hosted.lid' (isHostedPnUser,
    isHostedLidUser), the same number and LID on Meta's hosted servers."""
    key = {"remoteJid": "5511933334444@hosted", "remoteJidAlt": "77001122334455@hosted.lid", "fromMe": False, "id": "3AH"}
    message = one(account, upsert(key, {"conversation": "Seu pedido saiu"}, push_name="Loja X"))
    assert (message.from_phone, message.sender_lid) == ("+5511933334444", "77001122334455@lid")


# --- typed on the phone (point 7) --------------------------------------------------------------
@pytest.mark.parametrize("push_name", ["Você", "Loja Centro", None])
def test_a_message_typed_on_the_phone_names_the_contact_not_us(account, push_name):
    """service.ts messages.upsert accepts type 'notify' and 'append' (our own devices' messages);
    prepareMessage: pushName 'Você' when ours has none."""
    key = {"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": True, "id": "3A0D9F7E"}
    message = one(account, upsert(key, {"conversation": "Chegou sim!"}, push_name=push_name))
    assert (message.from_me, message.from_phone, message.name, message.text) == (True, "+5511912345678", "", "Chegou sim!")


def test_from_me_to_a_lid_chat_ignores_our_own_number_in_the_alternative(account):
    """decode-wa-message.ts: for our own message the alternative id is taken from the stanza's
    sender attributes, which may name the account itself: never the contact."""
    key = {"remoteJid": "185746521893420@lid", "remoteJidAlt": f"{OWN}@s.whatsapp.net", "fromMe": True, "id": "3A0DA",
           "addressingMode": "lid"}
    message = one(account, upsert(key, {"conversation": "ok"}, push_name="Você"))
    assert (message.from_me, message.from_phone, message.sender_lid) == (True, "", "185746521893420@lid")


def test_from_me_in_a_group_is_the_groups(account):
    key = {"remoteJid": "120363041967849074@g.us", "fromMe": True, "id": "3A0DB", "participant": f"{OWN}@s.whatsapp.net"}
    message = one(account, upsert(key, {"conversation": "bom dia"}))
    assert (message.from_me, message.group_id, message.from_phone, message.sender_lid) == (True, "120363041967849074@g.us", "", "")


# --- quoted replies (point 8) --------------------------------------------------------------------
def test_a_quoted_reply_names_the_message_and_its_text(account):
    """prepareMessage: the extendedTextMessage becomes `conversation`, its contextInfo (stanzaId,
    participant, quotedMessage with its own extendedTextMessage renamed) the top `contextInfo`."""
    context = {"stanzaId": "3EB0C0FFEE", "participant": f"{OWN}@s.whatsapp.net",
               "quotedMessage": {"conversation": "Your order ships Monday"}}
    key = {"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": False, "id": "3AQ1"}
    message = one(account, upsert(key, {"conversation": "Great, thanks!"}, context_info=context, push_name="Ana"))
    assert (message.reply_to, message.quoted_text, message.text) == ("3EB0C0FFEE", "Your order ships Monday", "Great, thanks!")


def test_a_quoted_reply_on_a_picture_with_the_context_inside_the_picture(account):
    """ContextInfo sits on any message kind (WAProto.proto: ImageMessage.contextInfo); a quoted
    photo without caption is shown as what it is."""
    context = {"stanzaId": "3EB0PHOTO", "participant": "5511912345678@s.whatsapp.net",
               "quotedMessage": {"imageMessage": {"mimetype": "image/jpeg"}}}
    key = {"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": False, "id": "3AQ2"}
    body = upsert(key, {"imageMessage": {"mimetype": "image/jpeg", "caption": "this one?", "contextInfo": context},
                        "base64": "AAAA"}, message_type="imageMessage")
    message = one(account, body)
    assert (message.reply_to, message.quoted_text, message.text) == ("3EB0PHOTO", "[image]", "this one?")
    assert message.media[0]["url"] == "data:image/jpeg;base64,AAAA"


# --- reactions -------------------------------------------------------------------------------------
def test_a_contacts_reaction_and_its_removal(account):
    """WAProto.proto ReactionMessage {key, text, senderTimestampMs}; Baileys process-message.ts
    maps the reacted key's fromMe to our side; the upsert arrives with messageType
    'reactionMessage'. An empty text removes the reaction."""
    key = {"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": False, "id": "3AR1"}
    target = {"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": True, "id": "3EB0TARGET"}
    added = one(account, upsert(key, {"reactionMessage": {"key": target, "text": "👍", "senderTimestampMs": "1761057639123"},
                                      "messageContextInfo": {"messageSecret": "c2VjcmV0"}}, message_type="reactionMessage"))
    assert isinstance(added, Reaction)
    assert (added.target_id, added.emoji, added.from_me, added.from_phone, added.provider_id) == (
        "3EB0TARGET", "👍", False, "+5511912345678", "3AR1")
    assert added.at.timestamp() == pytest.approx(1761057639.123)
    removed = one(account, upsert({**key, "id": "3AR2"}, {"reactionMessage": {"key": target, "text": ""}}, message_type="reactionMessage"))
    assert (removed.target_id, removed.emoji) == ("3EB0TARGET", "")


def test_a_reaction_made_on_the_phone_and_one_by_a_lid_in_a_group(account):
    mine = one(account, upsert({"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": True, "id": "3AR3"},
                               {"reactionMessage": {"key": {"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": False,
                                                            "id": "3AIN"}, "text": "❤️"}}, message_type="reactionMessage"))
    assert (mine.from_me, mine.from_phone, mine.target_id) == (True, "", "3AIN")
    theirs = one(account, upsert({"remoteJid": "120363041967849074@g.us", "fromMe": False, "id": "3AR4",
                                  "participant": "99887766554433@lid"},
                                 {"reactionMessage": {"key": {"remoteJid": "120363041967849074@g.us", "fromMe": True,
                                                              "id": "3EB0G"}, "text": "😂"}}, message_type="reactionMessage"))
    assert (theirs.from_phone, theirs.sender_lid, theirs.emoji) == ("", "99887766554433@lid", "😂")


def test_a_reaction_without_the_reacted_id_is_kept_unfiled(account):
    body = upsert({"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": False, "id": "3AR5"},
                  {"reactionMessage": {"text": "👍"}}, message_type="reactionMessage")
    unfiled = one(account, body)
    assert isinstance(unfiled, Unfiled) and unfiled.reason == "reaction to a message without id" and unfiled.envelope == body


# --- edits and deletions -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["MESSAGE_EDIT", 14])
def test_messages_edited_alone_cannot_say_who_edited_so_it_is_kept_not_applied(account, kind):
    """service.ts messages.upsert: `editedMessage = message.protocolMessage || message.editedMessage
    .message.protocolMessage` is sent as MESSAGES_EDITED itself (WAProto.proto ProtocolMessage:
    key, type, editedMessage, timestampMs). That key is the edited message's as its *sender*
    wrote it (Baileys process-message.ts reads only its id and takes the chat from the key the
    protocolMessage arrived under): anyone can write any chat and fromMe there, so it names no
    one, and an edit WhatSnap cannot tie to its author is never applied."""
    data = {"key": {"remoteJid": f"{OWN}@s.whatsapp.net", "fromMe": True, "id": "3AEDITED"}, "type": kind,
            "editedMessage": {"extendedTextMessage": {"text": "Amanhã às 10h"}}, "timestampMs": "1761057700456"}
    kept = one(account, envelope("messages.edited", data))
    assert isinstance(kept, Unfiled) and kept.reason.startswith("edit that does not say who made it")


def test_an_edit_under_the_key_it_arrived_with_names_its_author_and_chat(account):
    """The same protocolMessage inside an upsert: the outer key is Baileys' (the chat as the
    account sees it, set by WhatsApp's servers) — the edit is the contact's, in their chat."""
    protocol = {"key": {"remoteJid": f"{OWN}@s.whatsapp.net", "fromMe": True, "id": "3AEDITED"}, "type": "MESSAGE_EDIT",
                "editedMessage": {"conversation": "Amanhã às 10h"}, "timestampMs": "1761057700456"}
    edit = one(account, upsert({"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": False, "id": "3AOUTER"},
                               {"protocolMessage": protocol}, message_type="protocolMessage"))
    assert isinstance(edit, MessageEdited)
    assert (edit.target_id, edit.text, edit.from_me, edit.chat) == ("3AEDITED", "Amanhã às 10h", False, "+5511912345678")
    assert edit.at.timestamp() == pytest.approx(1761057700.456)


@pytest.mark.parametrize("kind", ["REVOKE", 0, None])
def test_messages_edited_of_a_revoke_is_ignored_as_messages_delete_tells_it_with_its_chat(account, kind):
    """Every protocolMessage goes to MESSAGES_EDITED, a deletion for everyone (REVOKE, 0, the
    enum's default: left out of the JSON) too; service.ts messages.update sends the same
    deletion as MESSAGES_DELETE with Baileys' key (see test_messages_delete_is_a_deletion)."""
    data = {"key": {"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": False, "id": "3AGONE"}}
    if kind is not None:
        data["type"] = kind
    assert isinstance(one(account, envelope("messages.edited", data)), Ignored)


def test_device_housekeeping_protocol_messages_carry_nothing_and_others_are_unfiled(account):
    assert parse(account, envelope("messages.edited", {"type": "HISTORY_SYNC_NOTIFICATION",
                                                       "historySyncNotification": {"syncType": "RECENT"}}))[0].__class__ is Ignored
    assert parse(account, envelope("messages.edited", {"type": "APP_STATE_SYNC_KEY_SHARE", "appStateSyncKeyShare": {}}))[0].__class__ is Ignored
    body = envelope("messages.edited", {"type": "SHARE_PHONE_NUMBER"})
    assert one(account, body) == Unfiled("WhatsApp protocol message SHARE_PHONE_NUMBER not filed", body)


def test_an_upsert_wrapped_in_edited_message(account):
    """The `editedMessage` wrapper: {editedMessage: {message: {protocolMessage}}} (service.ts)."""
    protocol = {"key": {"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": False, "id": "3AW"}, "type": "MESSAGE_EDIT",
                "editedMessage": {"conversation": "corrigido"}}
    edit = one(account, upsert({"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": False, "id": "3AWRAP"},
                               {"editedMessage": {"message": {"protocolMessage": protocol}}}, message_type="editedMessage"))
    assert (edit.target_id, edit.text) == ("3AW", "corrigido")


def test_2_3_7_messages_update_with_the_new_content_is_an_edit(account):
    """evolution-foundation/evolution-api 2.3.7 service.ts messages.update: `status ?? 'SERVER_ACK'`
    and `message.message = update.message`; Baileys process-message.ts MESSAGE_EDIT: update
    `{message: {editedMessage: {message: <the new content>}}}` under the edited message's id."""
    data = {"keyId": "3AORIG", "remoteJid": "5511912345678@s.whatsapp.net", "fromMe": False, "participant": None,
            "status": "SERVER_ACK", "instanceId": "9d3c", "message": {"editedMessage": {"message": {"conversation": "novo"}}}}
    edit = one(account, envelope("messages.update", data))
    assert isinstance(edit, MessageEdited) and (edit.target_id, edit.text) == ("3AORIG", "novo")


@pytest.mark.parametrize("data", [
    {"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": False, "id": "3ADEL", "participant": None},  # 2.3.6: the key
    {"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": False, "id": "3ADEL", "status": "DELETED"},  # 2.3.7
])
def test_messages_delete_is_a_deletion(account, data):
    """service.ts messages.update: `update.message === null` (Baileys REVOKE) -> MESSAGES_DELETE
    with the key (2.3.7 adds status 'DELETED')."""
    deleted = one(account, envelope("messages.delete", data))
    assert isinstance(deleted, MessageDeleted) and deleted.target_id == "3ADEL"


# --- statuses -------------------------------------------------------------------------------------------
def test_message_statuses(account):
    """service.ts messages.update: `{keyId, remoteJid, fromMe, participant, status}`, status names
    from src/utils/renderStatus.ts."""
    def update(status, from_me=True, **extra):
        return envelope("messages.update", {"keyId": "3EB0S", "remoteJid": "5511912345678@s.whatsapp.net", "fromMe": from_me,
                                            "participant": "5511912345678@s.whatsapp.net", "status": status, **extra})

    assert parse(account, update("DELIVERY_ACK")) == [DeliveryStatus(provider_id="3EB0S", status="delivered")]
    assert parse(account, update("PLAYED")) == [DeliveryStatus(provider_id="3EB0S", status="read")]
    assert parse(account, update("PENDING")) == [Ignored("status PENDING: still on the phone")]
    read_here = one(account, update("READ", from_me=False))
    assert isinstance(read_here, Unfiled) and "read on the account's phone" in read_here.reason
    assert "FLAGGED" in one(account, update("FLAGGED")).reason
    assert "poll vote" in one(account, update("SERVER_ACK", pollUpdates=[{"vote": {}}])).reason


# --- nothing vanishes (point 1) -------------------------------------------------------------------------
@pytest.mark.parametrize("body, reason", [
    (envelope("presence.update", {"id": "5511912345678@s.whatsapp.net", "presences": {}}), "unsupported event type presence.update"),
    (envelope("contacts.upsert", [{"remoteJid": "185746521893420@lid", "pushName": "Ana"}]), "unsupported event type contacts.upsert"),
    (upsert({"remoteJid": "status@broadcast", "fromMe": False, "id": "3AST", "participant": "5511912345678@s.whatsapp.net"},
            {"conversation": "my status"}), "WhatsApp status or broadcast-list post, not a chat"),
    (upsert({"remoteJid": "120363025246125486@newsletter", "fromMe": False, "id": "3ANL"}, {"conversation": "news"}),
     "WhatsApp channel (newsletter) post, not a chat"),
    (upsert({"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": False, "id": "3APV"},
            {"pollUpdateMessage": {"pollCreationMessageKey": {"id": "3APOLL"}, "vote": {}}}, message_type="pollUpdateMessage"),
     "poll vote (WhatSnap does not show polls yet)"),
    (envelope("connection.update", {"instance": NAME, "state": "syncing"}), "connection state 'syncing' not understood"),
    (envelope("qrcode.updated", {"qrcode": {"instance": NAME}}), "QR code update without a code"),
])
def test_what_is_not_filed_comes_back_unfiled_with_its_reason_and_the_whole_envelope(account, body, reason):
    [unfiled] = parse(account, body)
    assert unfiled == Unfiled(reason, body, unfiled.key)
    assert parse(account, json.loads(json.dumps(body))) == [unfiled]  # a stored envelope reads the same


def test_key_distribution_and_an_album_header_alone_carry_nothing(account):
    """WAProto.proto: SenderKeyDistributionMessage (group encryption keys), AlbumMessage
    {expectedImageCount, expectedVideoCount} (the pictures follow as messages of their own)."""
    body = upsert({"remoteJid": "120363041967849074@g.us", "fromMe": False, "id": "3ASKD", "participant": "99887766554433@lid"},
                  {"senderKeyDistributionMessage": {"groupId": "120363041967849074@g.us"}, "messageContextInfo": {}})
    assert parse(account, body) == [Ignored("encryption-key distribution alone")]
    album = upsert({"remoteJid": "5511912345678@s.whatsapp.net", "fromMe": False, "id": "3AALB"},
                   {"albumMessage": {"expectedImageCount": 3}, "messageContextInfo": {}}, message_type="albumMessage")
    assert parse(account, album) == [Ignored("an album's header")]


def test_an_unfiled_webhook_is_answered_and_kept_with_its_reason(account):
    body = envelope("presence.update", {"id": "5511912345678@s.whatsapp.net"})
    response = Client().post(f"/webhooks/whatsapp/{account.pk}/?secret={account.webhook_secret}", data=json.dumps(body),
                             content_type="application/json")
    assert response.status_code == 200
    kept = InboundEvent.objects.get()
    assert (kept.kind, kept.status, kept.error) == ("unfiled", "unfiled", "unsupported event type presence.update")
    assert kept.payload["envelope"] == {**body, "apikey": "[redacted]"}  # the instance token is never kept


def test_a_message_key_that_is_not_an_object_is_refused_as_malformed(account):
    response = Client().post(f"/webhooks/whatsapp/{account.pk}/?secret={account.webhook_secret}",
                             data=json.dumps(envelope("messages.upsert", {"key": "3A", "message": {}})), content_type="application/json")
    assert response.status_code == 400 and not InboundEvent.objects.exists()
