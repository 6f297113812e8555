"""BlueBubbles' serialised iMessage (its MessageSerializer: guid, text, handle, chats,
attachments, isFromMe, dates in epoch ms, itemType/groupActionType, associatedMessage*,
threadOriginatorGuid, dateEdited/dateRetracted) as WhatSnap's normalised events.

- a tapback (associatedMessageType set) is a Reaction on the message it points at;
- a group system item (itemType other than 0) is a ChatEvent;
- anything else is a message, the contact's or, isFromMe, one sent from the Mac / iPhone
  (WhatSnap's own sends echo back with the guid send() returned: filing tells them apart)."""
import re
from datetime import datetime, timezone as dt_timezone

from django.utils import timezone

from accounts.providers.base import ChatEvent, InboundMessage, Reaction, Unfiled

# The server names tapbacks (MessageTypeTransformer.ts); older servers and the raw database
# give the numbers. "-name" / 3000-3005 remove the tapback.
TAPBACKS = {"love": "❤️", "like": "👍", "dislike": "👎", "laugh": "😂", "emphasize": "‼️", "question": "❓"}
TAPBACK_CODES = {2000: "love", 2001: "like", 2002: "dislike", 2003: "laugh", 2004: "emphasize", 2005: "question"}
EMOJI_TAPBACK, EMOJI_TAPBACK_REMOVED = 2006, 3006  # iOS 18's any-emoji tapback (not named by the server)
# Apple's text for an emoji tapback: 'Reacted 🤩 to “the message”'
EMOJI_TAPBACK_TEXT = re.compile(r"^Reacted (\S+) to ")
# "p:0/GUID" (a part of the message) or "bp:GUID" (a balloon / link preview)
PART_PREFIX = re.compile(r"^(?:p:\d+/|bp:)")
THE_ACCOUNT = "This account"


def epoch_ms(value) -> datetime:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=dt_timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return timezone.now()


def first_chat(data: dict) -> dict:
    chats = data.get("chats") or []
    return chats[0] if chats and isinstance(chats[0], dict) else {}


def is_group(guid: str) -> bool:
    return ";+;" in guid


def sender_address(data: dict) -> str:
    handle = data.get("handle")
    return str(handle.get("address") or "") if isinstance(handle, dict) else ""


def chat_party(data: dict) -> str:
    """The chat a message is in, as WhatSnap keys its thread: the group's chat guid, or the
    other person of a 1:1 chat (the end of its guid; else the message's handle)."""
    chat = str(first_chat(data).get("guid") or "")
    if is_group(chat):
        return chat
    return chat.split(";-;", 1)[1] if ";-;" in chat else sender_address(data)


def message_events(data: dict, envelope: dict, *, history: bool = False) -> list:
    """A message-shaped payload (new-message, updated-message's tapbacks, participant-*, a page
    of history) as events."""
    if data.get("associatedMessageType") not in (None, "", 0, "0"):
        return tapback(data, envelope)
    if int(data.get("itemType") or 0) != 0:
        return [group_item(data, envelope)]
    return [message(data, envelope, history=history)]


# --- messages ---------------------------------------------------------------------------------
def message(data: dict, envelope: dict, *, history: bool = False):
    guid = str(data["guid"])
    chat = str(first_chat(data).get("guid") or "")
    group = chat if is_group(chat) else ""
    from_me = bool(data.get("isFromMe"))
    if from_me:
        # the chat's other party: the group, or the person of a 1:1 chat (its guid ends with
        # them; the handle of a message sent in a 1:1 chat is that person too)
        party = group or (chat.split(";-;", 1)[1] if ";-;" in chat else sender_address(data))
        if not party:
            return Unfiled("message sent from the Mac without the chat it went to", envelope)
    else:
        party = sender_address(data)
        if not party:
            return Unfiled("message without a sender handle", envelope)
    media = tuple(_media_item(a) for a in data.get("attachments") or () if isinstance(a, dict))
    return InboundMessage(
        provider_id=guid,
        from_phone=party,
        name="",
        text=str(data.get("text") or "") or _fallback_text(data, media),
        media=media,
        at=epoch_ms(data.get("dateCreated")),
        group_id=group,
        group_name=str(first_chat(data).get("displayName") or "") if group else "",
        from_me=from_me,
        # threadOriginatorGuid is an inline reply's quoted message. replyToGuid is not: the
        # Messages database chains most messages to the one before them with it.
        reply_to=str(data.get("threadOriginatorGuid") or ""),
        history=history,
    )


def _media_item(attachment: dict) -> dict:
    mime = str(attachment.get("mimeType") or "")
    return {"url": "", "content_type": mime, "kind": media_kind(mime), "filename": str(attachment.get("transferName") or ""),
            "attachment_guid": str(attachment.get("guid") or "")}


def media_kind(mime: str) -> str:
    major = mime.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "document"


def _fallback_text(data: dict, media: tuple) -> str:
    """An iMessage app's bubble (Apple Pay, Digital Touch, a game) still reaches the inbox."""
    bundle = str(data.get("balloonBundleId") or "")
    if media or not bundle:
        return ""
    return f"[iMessage app message ({bundle.rsplit('.', 1)[-1]}) not shown here; see the Mac]"


# --- tapbacks ---------------------------------------------------------------------------------
def tapback(data: dict, envelope: dict) -> list:
    guid = str(data["guid"])
    target = PART_PREFIX.sub("", str(data.get("associatedMessageGuid") or ""))
    kind = str(data.get("associatedMessageType"))
    if not target:
        return [Unfiled(f"tapback {kind} without the message it is on", envelope)]
    emoji = tapback_emoji(kind, str(data.get("text") or ""))
    if emoji is None:
        what = "sticker placed on a message" if kind in ("sticker", "1000") else f"unsupported tapback type {kind}"
        return [Unfiled(what, envelope)]
    from_me = bool(data.get("isFromMe"))
    return [Reaction(provider_id=guid, target_id=target, emoji=emoji, at=epoch_ms(data.get("dateCreated")),
                     from_me=from_me, from_phone="" if from_me else sender_address(data), chat=chat_party(data))]


def tapback_emoji(kind: str, text: str) -> str | None:
    """The emoji of a tapback type ('' when it removes one); None for what is no tapback (a
    sticker placed on a message, an unknown type)."""
    code = int(kind) if kind.isdigit() else 0
    if code in TAPBACK_CODES:
        kind = TAPBACK_CODES[code]
    elif code - 1000 in TAPBACK_CODES:
        kind = "-" + TAPBACK_CODES[code - 1000]
    if kind in TAPBACKS:
        return TAPBACKS[kind]
    if kind.startswith("-") and kind[1:] in TAPBACKS or code == EMOJI_TAPBACK_REMOVED:
        return ""
    if code == EMOJI_TAPBACK and (match := EMOJI_TAPBACK_TEXT.match(text)):
        return match.group(1)
    return None


# --- group system items -----------------------------------------------------------------------
def group_item(data: dict, envelope: dict):
    """itemType 1 (member added / removed: groupActionType 0 / 1), 2 (renamed), 3 (left, group
    photo changed / removed: groupActionType 0 / 1 / 2), as the server's MessagePoller reads them."""
    chat = first_chat(data)
    group = str(chat.get("guid") or "")
    item, action = int(data.get("itemType") or 0), int(data.get("groupActionType") or 0)
    if not is_group(group):
        return Unfiled(f"iMessage system item (itemType {item}) outside a group chat", envelope)
    actor = THE_ACCOUNT if data.get("isFromMe") else (sender_address(data) or "Someone")
    title = str(data.get("groupTitle") or "")
    sentence = {
        (1, 0): f"{actor} added {_other(data, chat)}",
        (1, 1): f"{actor} removed {_other(data, chat)}",
        (3, 0): f"{actor} left",
        (3, 1): f"{actor} changed the group photo",
        (3, 2): f"{actor} removed the group photo",
    }.get((item, action))
    if item == 2:
        sentence = f"{actor} renamed the group to {title}" if title else f"{actor} removed the group name"
    if sentence is None:
        return Unfiled(f"unsupported iMessage system item (itemType {item}, groupActionType {action})", envelope)
    return ChatEvent(provider_id=str(data["guid"]), group_id=group, text=sentence, at=epoch_ms(data.get("dateCreated")),
                     group_name=title if item == 2 else str(chat.get("displayName") or ""))


def _other(data: dict, chat: dict) -> str:
    """otherHandle is the handle's row id: its address is known when the server sent the chat's
    participants (participant-* events do; a member removed is no longer one)."""
    row = data.get("otherHandle")
    for person in chat.get("participants") or ():
        if isinstance(person, dict) and row and person.get("originalROWID") == row and person.get("address"):
            return str(person["address"])
    return "someone"


