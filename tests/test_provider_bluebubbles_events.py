"""BlueBubbles webhooks as the server emits them, normalised (issue 17: tapbacks, group system
items, messages typed on the Mac, edits, unsends, quoted replies, unhandled events kept).

Payload sources (BlueBubblesApp/bluebubbles-server):
- packages/server/src/server/api/serializers/MessageSerializer.ts — the message shape (the
  stand-in's `message()` builds it "for notification", as webhooks carry it);
- packages/server/src/server/databases/transformers/MessageTypeTransformer.ts — tapback names
  (love ... question, "-love" ... removals) and their numbers 2000-2005 / 3000-3005;
- packages/server/src/server/databases/imessage/pollers/MessagePoller.ts — itemType /
  groupActionType of group changes (1/0 added, 1/1 removed, 2 renamed, 3/0 left, 3/1 and 3/2
  group photo);
- packages/server/src/server/index.ts — which event carries which serialisation (new-message
  with chats, updated-message without; participant-* / group-name-change with chats);
- packages/server/src/server/events.ts — the event names; typing-indicator's data `{display,
  guid}` (privateApi/eventHandlers/PrivateApiTypingEventHandler.ts), chat-read-status-changed's
  `{chatGuid, read}` (index.ts)."""
import json

import pytest
from django.test import RequestFactory

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import (
    Ignored,
    ChatEvent,
    DeliveryStatus,
    InboundMessage,
    MessageDeleted,
    MessageEdited,
    Reaction,
    Unfiled,
    WebhookForbidden,
)
from tests.standins.bluebubbles_standin import BlueBubblesStandIn

BB = get_provider("bluebubbles")
GROUP = "iMessage;+;chat493787288"
TARGET = "2D2C1B1A-6A2E-4B8C-9C1B-0A7F3E2D1C11"
EMOJI = {"love": "❤️", "like": "👍", "dislike": "👎", "laugh": "😂", "emphasize": "‼️", "question": "❓"}


def parse(envelope: dict) -> list:
    return BB.parse_envelope(Account(), envelope)


def new(**kwargs) -> dict:
    return {"type": "new-message", "data": BlueBubblesStandIn.message(**kwargs)}


# --- tapbacks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [*EMOJI, 2000, 2001, 2002, 2003, 2004, 2005, "2003"])
def test_a_tapback_is_a_reaction_on_the_message_it_points_at_not_a_message(kind):
    # MessageTypeTransformer.ts names them; older servers (and the raw column) give the number
    name = kind if kind in EMOJI else list(EMOJI)[int(kind) - 2000]
    envelope = new(guid="TAPBACK-1", text=f"{name.capitalize()}d “Is it in stock?”", address="+14155550123",
                   associated_guid=f"p:0/{TARGET}", associated_type=kind, date_created=1735732800000)
    [reaction] = parse(envelope)
    assert reaction == Reaction(provider_id="TAPBACK-1", target_id=TARGET, emoji=EMOJI[name], at=reaction.at,
                                from_me=False, from_phone="+14155550123", chat=reaction.chat)
    assert reaction.chat == "+14155550123"  # the 1:1 chat it is in (its guid ends with the person)
    assert reaction.at.timestamp() == 1735732800


@pytest.mark.parametrize("kind", ["-love", "-like", "-dislike", "-laugh", "-emphasize", "-question", 3000, 3005])
def test_removing_a_tapback_clears_the_reaction(kind):
    [reaction] = parse(new(guid="UNDO-1", associated_guid=f"p:0/{TARGET}", associated_type=kind))
    assert (reaction.target_id, reaction.emoji) == (TARGET, "")


def test_a_tapback_typed_on_the_mac_is_ours_and_on_a_link_preview_points_at_the_message():
    [reaction] = parse(new(guid="TB-2", is_from_me=True, associated_guid=f"bp:{TARGET}", associated_type="like"))
    assert (reaction.target_id, reaction.emoji, reaction.from_me, reaction.from_phone) == (TARGET, "👍", True, "")


def test_an_updated_tapback_is_the_same_reaction_again():
    envelope = BlueBubblesStandIn().updated_message("TB-3")
    envelope["data"].update(associatedMessageGuid=f"p:0/{TARGET}", associatedMessageType="laugh")
    [reaction] = parse(envelope)
    assert (reaction.provider_id, reaction.emoji, reaction.from_me) == ("TB-3", "😂", True)


def test_an_emoji_tapback_reads_its_emoji_and_a_sticker_is_kept_unfiled():
    [emoji] = parse(new(text="Reacted 🤩 to “nice”", associated_guid=f"p:0/{TARGET}", associated_type="2006"))
    assert emoji.emoji == "🤩"
    [sticker] = parse(new(text="", associated_guid=f"p:0/{TARGET}", associated_type="sticker"))
    assert isinstance(sticker, Unfiled) and sticker.reason == "sticker placed on a message"
    [odd] = parse(new(associated_guid=f"p:0/{TARGET}", associated_type="2042"))
    assert isinstance(odd, Unfiled) and "2042" in odd.reason and odd.envelope["data"]["guid"]


# --- group system items -----------------------------------------------------------------------
def members(*addresses):
    return [{"originalROWID": 20 + i, "address": a, "service": "iMessage"} for i, a in enumerate(addresses)]


@pytest.mark.parametrize("event_type, item, action, other, title, sentence", [
    ("participant-added", 1, 0, 21, None, "+14155550123 added +16505550199"),
    ("participant-removed", 1, 1, 99, None, "+14155550123 removed someone"),  # no longer a participant
    ("group-name-change", 2, 0, 0, "Sales team", "+14155550123 renamed the group to Sales team"),
    ("participant-left", 3, 0, 0, None, "+14155550123 left"),
    ("group-icon-changed", 3, 1, 0, None, "+14155550123 changed the group photo"),
    ("group-icon-removed", 3, 2, 0, None, "+14155550123 removed the group photo"),
])
def test_group_system_items_are_chat_events_not_messages(event_type, item, action, other, title, sentence):
    kwargs = dict(guid="SYS-1", text=None, address="+14155550123", chat=GROUP, chat_name="Book club", item_type=item,
                  group_action_type=action, other_handle=other, group_title=title, date_created=1735732800000)
    # the server sends the item twice: as its own event (with the chat's participants) and as a new-message
    own = {"type": event_type, "data": BlueBubblesStandIn.message(**kwargs, participants=members("+14155550123", "+16505550199"))}
    [from_event] = parse(own)
    [from_message] = parse(new(**kwargs))
    assert from_event == ChatEvent(provider_id="SYS-1", group_id=GROUP, text=sentence, at=from_event.at,
                                   group_name=title or "Book club")
    assert (from_message.provider_id, from_message.group_id) == ("SYS-1", GROUP)  # filed once: same id


def test_a_group_item_of_the_account_itself_and_one_outside_a_group():
    [ours] = parse(new(is_from_me=True, chat=GROUP, item_type=3, group_action_type=0, text=None))
    assert ours.text == "This account left"
    [odd] = parse(new(chat="iMessage;-;+14155550123", item_type=1, text=None))
    assert isinstance(odd, Unfiled) and "outside a group chat" in odd.reason
    [unknown] = parse(new(chat=GROUP, item_type=6, text=None))
    assert isinstance(unknown, Unfiled) and "itemType 6" in unknown.reason


# --- messages typed on the Mac, edits, unsends, quoted replies --------------------------------
def test_a_message_typed_on_the_mac_is_from_me_with_the_chat_as_its_other_party():
    [direct] = parse(new(guid="MINE-1", text="On my way", is_from_me=True, address="+14155550123",
                         chat="iMessage;-;+14155550123"))
    assert (direct.from_me, direct.from_phone, direct.group_id) == (True, "+14155550123", "")
    [group] = parse(new(guid="MINE-2", text="hi all", is_from_me=True, chat=GROUP, chat_name="Book club"))
    assert (group.from_me, group.from_phone, group.group_id, group.group_name) == (True, GROUP, GROUP, "Book club")
    [contact] = parse(new(guid="THEIRS", chat=GROUP, address="+16505550199"))
    assert (contact.from_me, contact.from_phone, contact.group_id) == (False, "+16505550199", GROUP)


def test_the_echo_of_our_send_carries_the_id_send_returned():
    """index.ts emits the sent message as new-message with its real guid; send() returns the
    same guid from /message/text's answer, so filing recognises the echo."""
    with BlueBubblesStandIn() as mac:
        account = Account(credentials={"server_url": mac.url, "password": "mac-password"}, config={})
        sent = BB.send(account, to="+14155550123", text="Yes, 3 left", idempotency_key="wsm-9")
        [echo] = parse({"type": "new-message", "data": mac.sent[0]})
    assert echo.provider_id == sent.provider_id == mac.sent[0]["guid"] != "wsm-9"
    assert (echo.from_me, echo.from_phone, echo.text) == (True, "+14155550123", "Yes, 3 left")


def test_an_edit_is_message_edited_and_a_later_receipt_repeats_the_same_edit():
    stand = BlueBubblesStandIn()
    envelope = stand.updated_message("EDITED-1", delivered=True)
    envelope["data"].update(text="Open at 10 today", dateEdited=1735733000000)
    edited, status = parse(envelope)
    assert isinstance(edited, MessageEdited) and (edited.target_id, edited.text) == ("EDITED-1", "Open at 10 today")
    assert status == DeliveryStatus(provider_id="EDITED-1", status="delivered")
    envelope["data"]["dateRead"] = 1735733100000
    again, read = parse(envelope)
    assert again.provider_id == edited.provider_id and read.status == "read"
    theirs = {"type": "updated-message", "data": {**envelope["data"], "isFromMe": False, "text": "Open at 11"}}
    [their_edit] = parse(theirs)
    assert their_edit.text == "Open at 11" and their_edit.provider_id != edited.provider_id


@pytest.mark.parametrize("fields", [
    {"dateRetracted": 1735733000000},
    {"dateEdited": 1735733000000, "text": None, "partCount": 0},  # Ventura: all parts retracted
])
def test_an_unsent_message_is_deleted_for_everyone(fields):
    envelope = {"type": "updated-message", "data": {**BlueBubblesStandIn.message(guid="GONE-1", with_chats=False), **fields}}
    [deleted] = parse(envelope)
    assert isinstance(deleted, MessageDeleted) and deleted.target_id == "GONE-1"


def test_a_quoted_reply_names_the_thread_originator_not_the_previous_message():
    data = BlueBubblesStandIn.message(guid="REPLY-1", text="yes that one", thread_originator=TARGET)
    data["replyToGuid"] = "PREVIOUS-MESSAGE"  # the Messages database's chain to the message before
    [reply] = parse({"type": "new-message", "data": data})
    assert reply.reply_to == TARGET


def test_a_contacts_message_updated_with_nothing_new_files_nothing():
    envelope = {"type": "updated-message", "data": BlueBubblesStandIn.message(guid="T1", with_chats=False) | {"dateRead": 1}}
    assert parse(envelope) == [Ignored("an update of a message that changes nothing WhatSnap shows")]


# --- what is not filed is kept ----------------------------------------------------------------
@pytest.mark.parametrize("envelope, reason", [
    ({"type": "typing-indicator", "data": {"display": True, "guid": "iMessage;-;+14155550123"}}, "unsupported event type typing-indicator"),
    ({"type": "chat-read-status-changed", "data": {"chatGuid": GROUP, "read": True}}, "unsupported event type chat-read-status-changed"),
    ({"type": "new-server", "data": "https://mac.example.com"}, "unsupported event type new-server"),
    ({"data": {}}, "unsupported event type (none)"),
    ({"type": "message-send-error", "data": {"error": 4}}, "send error without the message's guid"),
    ({"type": "new-message", "data": BlueBubblesStandIn.message(address="") | {"handle": None}}, "message without a sender handle"),
])
def test_events_not_filed_are_kept_with_their_reason_and_whole_envelope(envelope, reason):
    [kept] = parse(envelope)
    assert kept == Unfiled(reason=reason, envelope=envelope)


def test_parse_webhook_checks_the_secret_then_reads_the_envelope_as_parse_envelope_does():
    account = Account(pk=7, webhook_secret="s3cret", credentials={})
    body = json.dumps(new(guid="G1", text="hi"))
    factory = RequestFactory()
    with pytest.raises(WebhookForbidden):
        BB.parse_webhook(account, factory.post("/webhooks/imessage/7/?secret=nope", data=body, content_type="application/json"))
    request = factory.post("/webhooks/imessage/7/?secret=s3cret", data=body, content_type="application/json")
    [message] = BB.parse_webhook(account, request)
    assert isinstance(message, InboundMessage) and message == parse(json.loads(body))[0]
