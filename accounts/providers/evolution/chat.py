"""What Evolution API can do in a chat besides sending: react, mark read, read the history it
keeps, and tell the phone behind a LID.

Sources (EvolutionAPI/evolution-api): src/api/routes/sendMessage.router.ts and
src/validate/message.schema.ts (POST /message/sendReaction/{instance}: `{key: {id, remoteJid,
fromMe}, reaction}`, '' removes it); src/api/routes/chat.router.ts with src/validate/chat.schema.ts
(POST /chat/markMessageAsRead/{instance}: `{readMessages: [{id, fromMe, remoteJid}]}`;
POST /chat/findMessages/{instance}: `{where: {messageTimestamp: {gte, lte}}, page, offset}`,
answered `{messages: {total, pages, currentPage, records}}` newest first, both bounds needed for
the time filter; POST /chat/whatsappNumbers/{instance}: `{numbers: [...]}` answered
`[{jid, exists, number, name, lid}]`); fetchMessages, whatsappNumber and markMessageAsRead in
src/api/integrations/channel/whatsapp/whatsapp.baileys.service.ts. The gateway keeps history
only when its database saves messages (DATABASE_SAVE_DATA_NEW_MESSAGE / _HISTORIC)."""
from dataclasses import replace
from datetime import datetime

from django.utils import timezone

from accounts.providers.base import InboundMessage
from accounts.providers.evolution import content
from accounts.providers.evolution.gateway import GATEWAY, call, chat_jid, instance_name
from accounts.providers.whatsapp_ids import phone_from_jid

HISTORY_PAGE = 100
HISTORY_MAX_PAGES = 50  # at most 5,000 messages per import


def react(account, *, to: str, target_id: str, target_from_me: bool, emoji: str) -> None:
    body = {"key": {"remoteJid": chat_jid(to), "fromMe": bool(target_from_me), "id": target_id}, "reaction": emoji}
    call("POST", f"/message/sendReaction/{instance_name(account)}", json_body=body)


def mark_read(account, *, to: str, provider_ids: list[str]) -> None:
    if not provider_ids:
        return
    jid = chat_jid(to)
    body = {"readMessages": [{"remoteJid": jid, "fromMe": False, "id": pid} for pid in provider_ids]}
    call("POST", f"/chat/markMessageAsRead/{instance_name(account)}", json_body=body)


def history(account, *, since: datetime) -> list[InboundMessage]:
    """The messages the gateway keeps from `since` on, ours and theirs, oldest first, read with
    the same mapping as webhooks; what is not a message (reactions, deletions) is left out."""
    name, until = instance_name(account), timezone.now() + timezone.timedelta(minutes=5)
    where = {"messageTimestamp": {"gte": since.isoformat(), "lte": until.isoformat()}}
    found: dict[str, InboundMessage] = {}
    for page in range(1, HISTORY_MAX_PAGES + 1):
        body = {"where": where, "page": page, "offset": HISTORY_PAGE}
        answer = GATEWAY.json(call("POST", f"/chat/findMessages/{name}", json_body=body))
        records, pages = _records(answer)
        for record in records:
            if not isinstance(record, dict) or not isinstance(record.get("key"), dict):
                continue
            for event in content.message_events(record, {}, own_phone=account.phone_number):
                if isinstance(event, InboundMessage) and event.at >= since:
                    found.setdefault(event.provider_id, replace(event, history=True))
        if page >= pages or not records:
            break
    return sorted(found.values(), key=lambda m: m.at)


def _records(answer) -> tuple[list, int]:
    """(records, number of pages) of a findMessages answer; older gateways answer a list."""
    if isinstance(answer, list):
        return answer, 1
    messages = (answer or {}).get("messages") if isinstance(answer, dict) else None
    if isinstance(messages, list):
        return messages, 1
    if isinstance(messages, dict):
        return list(messages.get("records") or []), int(messages.get("pages") or 1)
    return [], 1


def resolve_lid(account, lid: str) -> str:
    """The phone the gateway knows for a LID (its on-WhatsApp cache, filled from messages that
    carried both), '' when it does not: it then answers the LID itself."""
    answer = GATEWAY.json(call("POST", f"/chat/whatsappNumbers/{instance_name(account)}", json_body={"numbers": [lid]}))
    for row in answer if isinstance(answer, list) else []:
        if isinstance(row, dict) and row.get("exists") is not False:
            phone = phone_from_jid(row.get("jid") or "")
            if phone:
                return phone
    return ""
