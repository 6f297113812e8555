"""A message in GHL: posted once to the contact's GHL conversation (never twice, even after a
post whose answer was lost), and its delivery status afterwards. Runs inside the outbox drainer
(sync.py).

Every message goes through "Add an inbound message" (POST /conversations/messages/inbound) with
its `direction`: the contact's messages as inbound; WhatSnap's replies and messages typed on the
account's phone or Mac as outbound — the field "Message direction, if required can be set
manually" (GoHighLevel/highlevel-api-docs, apps/conversations.json, ProcessMessageBodyDto). The
other endpoint, "Add an external outbound call" (POST /conversations/messages/outbound), takes
only type "Call". A message added this way is not one a GHL user sent, so GHL does not hand it
to the provider's Delivery URL (docs/webhook events/ProviderOutboundMessage.md: "Called whenever
a user sends a message"); should it ever come back, its messageId is ours already and nothing
is sent (services.provider_outbound)."""
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.utils import timezone

from conversations.models import Message
from conversations.upload_links import backend_media
from ghl.client import GhlClient, GhlError, GhlRejected, seg
from ghl.contact_sync import ContactNotSynced, contact_forget_ghl_id, contact_push, phone_for_ghl
from ghl.models import ContactSync, GhlConnection, GhlMessageLink, OutboxItem

SEARCH_PAGES = 5  # x 100 messages per conversation, newest first
GHL_STATUS = {"delivered": "delivered", "read": "read", "failed": "failed"}
# clock difference allowed between us and GHL when a lost post is looked for by its dateAdded
LOOKUP_MARGIN_SECONDS = 30
# GetMessageResponseDto `source` values that are never a post through the inbound API
NOT_OURS_SOURCES = ("workflow", "bulk_actions", "campaign")


def message_type(account) -> tuple[str, str]:
    """GHL message type and conversation provider id for a message through this account, as
    GoHighLevel/highlevel-api-docs, docs/marketplace modules/ConversationProviders.md documents
    "Add Inbound Message API" per provider. Provider types are SMS, Email and Call only, so every
    provider WhatSnap registers is an SMS one and every message is type "SMS"; what differs is the
    provider id:

    - default-SMS mode ("SMS Provider (default)", replaces LC Phone: "conversationProviderId is
      not required"): SMS, iMessage and Twilio messages carry GHL_CONVERSATION_PROVIDER_ID when it
      is set — the DTO lists the field, and GHL's read-back then names our provider, which the
      lost-answer lookup uses to tell our message from another provider's. WhatsApp messages
      carry GHL_WHATSAPP_PROVIDER_ID when set: an extra SMS provider ("SMS Provider (extra)":
      "Use type SMS. conversationProviderId is required"), shown apart in GHL; else they go
      through the default like the rest.
    - custom mode ("SMS Provider (extra)"): every message carries GHL_CONVERSATION_PROVIDER_ID,
      which is required (without it GHL answers 201 with an empty body and drops the message:
      _post_message refuses before posting, provider_id_missing).

    Type "Custom" is the extra *Email* provider's type, never ours."""
    connection = account.location.ghl
    if connection.provider_mode == GhlConnection.Mode.CUSTOM:
        return "SMS", settings.GHL_CONVERSATION_PROVIDER_ID
    if account.kind == "whatsapp" and settings.GHL_WHATSAPP_PROVIDER_ID:
        return "SMS", settings.GHL_WHATSAPP_PROVIDER_ID
    return "SMS", settings.GHL_CONVERSATION_PROVIDER_ID


def provider_id_missing(account) -> str:
    """Why a message through this account cannot be posted to GHL now ('' when it can)."""
    if account.location.ghl.provider_mode == GhlConnection.Mode.CUSTOM and not settings.GHL_CONVERSATION_PROVIDER_ID:
        return ("custom provider mode needs GHL_CONVERSATION_PROVIDER_ID: a custom provider's message without its "
                "conversationProviderId is dropped by GHL (201, empty body)")
    return ""


def _post_message(client: GhlClient, item: OutboxItem, record: dict, *, direction: str) -> str:
    message = Message.objects.select_related("account__location__ghl", "conversation__contact").filter(pk=item.payload.get("message_id")).first()
    if message is None:
        return "message deleted: nothing to post"
    existing = GhlMessageLink.objects.filter(message=message).first()
    if existing:
        return f"already in GHL as {existing.ghl_message_id}"
    contact = message.conversation.contact
    text = message.text
    if contact.kind == contact.Kind.GROUP:
        # GHL has no group chats: the message goes to the sender's own GHL conversation.
        sender = message.sender_contact
        if sender is None:
            return "group message without a sender: nothing to post"
        text = f"[in {contact.display_name}] {text}"
        contact = sender
    if not contact.ghl_contact_id or _ghl_copy_lacks_phone(contact):
        contact_push(client, contact, record)
        if not contact.ghl_contact_id:
            raise ContactNotSynced("the contact could not be created in GHL")
    missing = provider_id_missing(message.account)
    if missing:
        raise GhlRejected(missing)
    kind, provider_id = message_type(message.account)
    body = {
        "type": kind,
        "contactId": contact.ghl_contact_id,
        "message": text,
        # links GHL can open: a file sent from the composer gets its signed link (valid
        # UPLOAD_LINK_MAX_AGE_SECONDS); a file a gateway sent inline (data:) or keeps on the
        # device is not copied into GHL (it opens in WhatSnap's inbox)
        "attachments": [m["url"] for m in backend_media(message.media) or [] if str(m.get("url") or "").startswith(("http://", "https://"))],
        # documented for the inbound API and harmless; GHL does not give it back when messages
        # are read (GetMessageResponseDto), so a lost post is found without it (find_posted_message)
        "altId": f"wsm-{message.pk}",
        "date": message.sent_at.isoformat().replace("+00:00", "Z"),
        "direction": direction,
    }
    if provider_id:
        body["conversationProviderId"] = provider_id
    if item.unconfirmed_post_at is not None:
        found = find_posted_message(client, message.location, contact.ghl_contact_id, body, item.unconfirmed_post_at, record)
        if found is not None:
            _link(message, found["id"], found.get("conversationId", ""))
            OutboxItem.objects.filter(pk=item.pk).update(unconfirmed_post_at=None)
            return f"found in GHL as {found['id']} after an unanswered post: not posted again"
    OutboxItem.objects.filter(pk=item.pk).update(unconfirmed_post_at=timezone.now())
    try:
        try:
            response = client.request("POST", "/conversations/messages/inbound", json=body, record=record)
        except GhlRejected as exc:
            if exc.status not in (400, 404, 422) or not _contact_gone(client, contact, record):
                raise
            # the contact was deleted in GHL: make it again, then post to the new one
            contact_push(client, contact, record)
            body["contactId"] = contact.ghl_contact_id
            response = client.request("POST", "/conversations/messages/inbound", json=body, record=record)
    except GhlError as exc:
        if not exc.unanswered:  # GHL answered (it did not take the message), or the post never left
            OutboxItem.objects.filter(pk=item.pk).update(unconfirmed_post_at=None)
        raise
    ghl_message_id = response.data.get("messageId")
    if not ghl_message_id:
        OutboxItem.objects.filter(pk=item.pk).update(unconfirmed_post_at=None)
        raise GhlRejected(f"GHL accepted the message without a message id (status {response.status}): it was dropped", status=response.status, body=response.data)
    _link(message, ghl_message_id, response.data.get("conversationId", ""))
    return f"posted as {ghl_message_id}"


def _ghl_copy_lacks_phone(contact) -> bool:
    """A contact first known by a WhatsApp LID was made in GHL without a phone; once the phone
    is known here, GHL gets it before the next message (GHL may refuse messages to a contact
    without one)."""
    return bool(contact.whatsapp_lid and phone_for_ghl(contact)
                and ContactSync.objects.filter(contact=contact, fields__phone="").exists())


def _contact_gone(client, contact, record: dict) -> bool:
    """After GHL refused a post: is it because the contact no longer exists there? If so our
    link to it is forgotten (contact_push makes a new one)."""
    try:
        client.request("GET", f"/contacts/{seg(contact.ghl_contact_id)}", record={})
        return False
    except GhlRejected as exc:
        if exc.status not in (400, 404):
            raise
    contact_forget_ghl_id(contact)
    return True


def _link(message, ghl_message_id: str, ghl_conversation_id: str) -> None:
    if GhlMessageLink.objects.filter(message=message).exists():
        return  # linked while the post was on its way (GHL delivered it back to us: services._own_post_echoed)
    GhlMessageLink.objects.get_or_create(
        location_id=message.location_id, ghl_message_id=ghl_message_id,
        defaults={"message": message, "origin": GhlMessageLink.Origin.WHATSNAP, "ghl_conversation_id": ghl_conversation_id},
    )


def find_posted_message(client, location, ghl_contact_id: str, body: dict, posted_at, record: dict) -> dict | None:
    """The message GHL holds from our post `body` whose answer was lost, or None.

    GHL's read-back (GET /conversations/{id}/messages, GetMessageResponseDto in
    GoHighLevel/highlevel-api-docs apps/conversations.json) has no altId, so the message is
    recognised by what it does return. A message is ours when all of these hold:

    - same direction, same text (outer whitespace aside), as many attachments (GHL may keep
      attachments under its own URLs, so only their number is compared), same contact;
    - its conversationProviderId, when GHL gives one, is the one we posted with (a message of
      another provider is not ours); its source is not a workflow, bulk action or campaign;
    - its dateAdded is the `date` we sent, to the second (GHL kept our date), or lies between
      the post (posted_at = OutboxItem.unconfirmed_post_at) and the end of its wait
      (GHL_TIMEOUT_SECONDS), give or take LOOKUP_MARGIN_SECONDS of clock difference;
    - no message of ours is linked to it yet (GhlMessageLink is unique per location and GHL id;
      replies typed in GHL that reached our Delivery URL are linked too).

    Of several, the one whose dateAdded is our date, then the oldest: two identical texts whose
    answers were both lost link to two GHL messages, the oldest to the first to look.

    Residual risk: a message with the same text, direction and provider, not linked to ours,
    added to GHL inside that minute-wide window by someone else (a GHL user's reply whose
    Delivery URL call has not reached us, another integration posting for the contact) can be
    taken for ours, and ours is then not posted. GHL taking our post later than the window (or
    answering dateAdded in a form not readable as a time) means it is not found and posted a
    second time, as before this lookup existed. Two identical messages of ours in the same
    window may have their links swapped (same text: only their status updates cross).

    Used only after a post whose answer was never read, so its cost (a search and a page or
    two of messages) is paid rarely. The conversations we already know for the contact come
    first; GHL's conversation search finds the others."""
    date = _parse_time(body.get("date"))
    window = (posted_at - timedelta(seconds=LOOKUP_MARGIN_SECONDS),
              posted_at + timedelta(seconds=settings.GHL_TIMEOUT_SECONDS + LOOKUP_MARGIN_SECONDS))
    known = list(dict.fromkeys(
        GhlMessageLink.objects.filter(location=location, message__conversation__contact__ghl_contact_id=ghl_contact_id)
        .exclude(ghl_conversation_id="").values_list("ghl_conversation_id", flat=True)[:20]
    ))[:5]
    found = _unlinked(location, [m for conversation_id in known for m in _matches_in_conversation(client, conversation_id, body, date, window, record)])
    if not found:
        searched = client.request("GET", "/conversations/search", params={"locationId": location.ghl_location_id, "contactId": ghl_contact_id}, record=record)
        for conversation in searched.data.get("conversations") or []:
            if conversation.get("id") and conversation["id"] not in known:
                found += _unlinked(location, _matches_in_conversation(client, conversation["id"], body, date, window, record))
    if not found:
        return None
    # our date first, then the oldest; equal times: the one listed later (GHL lists newest first)
    return min(found, key=lambda m: (not _same_second(m["_added"], date), m["_added"], -m["_listed"]))


def _unlinked(location, matches: list[dict]) -> list[dict]:
    linked = set(GhlMessageLink.objects.filter(location=location, ghl_message_id__in=[m["id"] for m in matches]).values_list("ghl_message_id", flat=True))
    return [m for m in matches if m["id"] not in linked]


def _matches_in_conversation(client, conversation_id: str, body: dict, date, window, record: dict) -> list[dict]:
    """The messages of one conversation that may be our post (find_posted_message's rule),
    newest pages first; paging stops at a page wholly older than our date and the window."""
    oldest_possible = min(window[0], date - timedelta(seconds=1)) if date else window[0]
    matches, params, listed = [], {"limit": 100}, 0
    for _ in range(SEARCH_PAGES):
        page = client.request("GET", f"/conversations/{seg(conversation_id)}/messages", params=params, record=record).data.get("messages") or {}
        messages = page.get("messages") or []
        for found in messages:
            added = _parse_time(found.get("dateAdded"))
            if found.get("id") and added and _looks_like_our_post(found, body) and (_same_second(added, date) or window[0] <= added <= window[1]):
                matches.append({**found, "conversationId": found.get("conversationId") or conversation_id, "_added": added, "_listed": listed})
            listed += 1
        times = [t for t in (_parse_time(m.get("dateAdded")) for m in messages) if t]
        if not page.get("nextPage") or not page.get("lastMessageId") or (times and max(times) < oldest_possible):
            break
        params = {"limit": 100, "lastMessageId": page["lastMessageId"]}
    return matches


def _looks_like_our_post(found: dict, body: dict) -> bool:
    provider = found.get("conversationProviderId") or ""
    return (found.get("direction") == body["direction"]
            and (found.get("body") or "").strip() == (body.get("message") or "").strip()
            and len(found.get("attachments") or []) == len(body.get("attachments") or [])
            and (found.get("contactId") or body["contactId"]) == body["contactId"]
            and (not provider or provider == body.get("conversationProviderId", ""))
            and found.get("source") not in NOT_OURS_SOURCES)


def _parse_time(value) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    return parsed


def _same_second(added: datetime, date: datetime | None) -> bool:
    return date is not None and abs((added - date).total_seconds()) < 1


def op_inbound_message(client, item, record) -> str:
    return _post_message(client, item, record, direction="inbound")


def op_outbound_message(client, item, record) -> str:
    return _post_message(client, item, record, direction="outbound")


def op_message_status(client, item, record) -> str:
    ghl_message_id = item.payload.get("ghl_message_id")
    if not ghl_message_id:
        link = GhlMessageLink.objects.filter(message_id=item.payload.get("message_id")).first()
        if link is None:
            return "message not in GHL: nothing to update"
        ghl_message_id = link.ghl_message_id
    status = GHL_STATUS.get(item.payload.get("status"))
    if status is None:
        return f"status {item.payload.get('status')} has no GHL equivalent"
    body = {"status": status}
    if status == "failed":
        body["error"] = {"code": "1", "type": "saas", "message": item.payload.get("error") or "failed"}
    client.request("PUT", f"/conversations/messages/{seg(ghl_message_id)}/status", json=body, record=record)
    return f"{ghl_message_id} -> {status}"
