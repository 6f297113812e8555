"""The recent history a WAHA session holds, for Provider.history(): the chats active since a
time (GET /api/{session}/chats/overview, most recent first), and one page of each one's
messages since then (GET /api/{session}/chats/{chatId}/messages), read by the same mapping as
webhooks (messages.read_message). Bounded: HISTORY_CHATS chats, HISTORY_PAGE messages each."""
from datetime import datetime

from accounts.providers.base import InboundMessage
from accounts.providers.waha.client import chat_messages, chats_overview, session_info, session_name
from accounts.providers.waha.jids import Me, jid_text, not_a_chat
from accounts.providers.waha.messages import read_message

HISTORY_CHATS = 50
HISTORY_PAGE = 100


def recent_messages(account, *, since: datetime) -> list[InboundMessage]:
    """InboundMessage(history=True) of every chat message from `since` on, oldest first; the
    account's own (typed on the phone or sent by WhatSnap) with from_me."""
    name = session_name(account)
    me = Me(me=(session_info(name) or {}).get("me"), phone=account.phone_number or "")
    since_ts = int(since.timestamp())
    found: dict[str, InboundMessage] = {}
    for chat in chats_overview(name, HISTORY_CHATS):
        chat_id = jid_text(chat.get("id"))
        if not chat_id or not_a_chat(chat_id) or last_activity(chat) < since_ts:
            continue
        for item in chat_messages(name, chat_id, since=since_ts, limit=HISTORY_PAGE):
            message = read_message(item, me, history=True).message
            if message is not None and message.at >= since:
                found.setdefault(message.provider_id, message)
    return sorted(found.values(), key=lambda m: (m.at, m.provider_id))


def last_activity(chat: dict) -> float:
    """When the chat last had a message (Unix seconds); unknown: taken as now (looked into)."""
    last = chat.get("lastMessage") if isinstance(chat.get("lastMessage"), dict) else {}
    raw = chat.get("_chat") if isinstance(chat.get("_chat"), dict) else {}
    for value in (last.get("timestamp"), chat.get("conversationTimestamp"), chat.get("timestamp"),
                  raw.get("conversationTimestamp"), raw.get("timestamp"), raw.get("t")):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        return seconds / 1000 if seconds > 10**11 else seconds
    return float("inf")
