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
from django.conf import settings
from django.utils import timezone

from conversations.models import Message
from ghl.client import GhlClient, GhlError, GhlRejected
from ghl.contact_sync import ContactNotSynced, contact_forget_ghl_id, contact_push, phone_for_ghl
from ghl.models import ContactSync, GhlConnection, GhlMessageLink, OutboxItem

SEARCH_PAGES = 5  # x 100 messages per conversation, newest first
GHL_STATUS = {"delivered": "delivered", "read": "read", "failed": "failed"}


def message_type(account) -> tuple[str, str]:
    """GHL message type and conversation provider id for a message through this account.

    Default-SMS mode: SMS, iMessage and Twilio messages are "SMS" of our SMS provider; WhatsApp
    messages are "Custom" of the WhatsApp provider when one is configured (so GHL shows them
    apart), else "SMS". Custom mode: everything is "Custom" of our provider."""
    connection = account.location.ghl
    if connection.provider_mode == GhlConnection.Mode.CUSTOM:
        return "Custom", settings.GHL_CONVERSATION_PROVIDER_ID
    if account.kind == "whatsapp" and settings.GHL_WHATSAPP_PROVIDER_ID:
        return "Custom", settings.GHL_WHATSAPP_PROVIDER_ID
    return "SMS", settings.GHL_CONVERSATION_PROVIDER_ID


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
    kind, provider_id = message_type(message.account)
    if kind == "Custom" and not provider_id:
        raise GhlRejected("custom provider mode needs GHL_CONVERSATION_PROVIDER_ID (GHL drops the message without it)")
    body = {
        "type": kind,
        "contactId": contact.ghl_contact_id,
        "message": text,
        # links GHL can open; a file a gateway sent inline (data:) or keeps on the device is not
        # copied into GHL (it opens in WhatSnap's inbox)
        "attachments": [m["url"] for m in message.media if str(m.get("url") or "").startswith(("http://", "https://"))],
        "altId": f"wsm-{message.pk}",
        "date": message.sent_at.isoformat().replace("+00:00", "Z"),
        "direction": direction,
    }
    if provider_id:
        body["conversationProviderId"] = provider_id
    if item.unconfirmed_post_at is not None:
        found = find_posted_message(client, message.location, contact.ghl_contact_id, body["altId"], record)
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
        client.request("GET", f"/contacts/{contact.ghl_contact_id}", record={})
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


def find_posted_message(client, location, ghl_contact_id: str, alt_id: str, record: dict) -> dict | None:
    """The message GHL holds with this altId in the contact's conversations, or None.

    Used only after a post whose answer was never read, so the cost (a search and a page or
    two of messages) is paid rarely. The conversations we already know for the contact come
    first; GHL's conversation search finds the others."""
    known = list(dict.fromkeys(
        GhlMessageLink.objects.filter(location=location, message__conversation__contact__ghl_contact_id=ghl_contact_id)
        .exclude(ghl_conversation_id="").values_list("ghl_conversation_id", flat=True)[:20]
    ))[:5]
    for conversation_id in known:
        found = _find_in_conversation(client, conversation_id, alt_id, record)
        if found is not None:
            return found
    searched = client.request("GET", "/conversations/search", params={"locationId": location.ghl_location_id, "contactId": ghl_contact_id}, record=record)
    for conversation in searched.data.get("conversations") or []:
        if conversation.get("id") and conversation["id"] not in known:
            found = _find_in_conversation(client, conversation["id"], alt_id, record)
            if found is not None:
                return found
    return None


def _find_in_conversation(client, conversation_id: str, alt_id: str, record: dict) -> dict | None:
    params = {"limit": 100}
    for _ in range(SEARCH_PAGES):
        page = client.request("GET", f"/conversations/{conversation_id}/messages", params=params, record=record).data.get("messages") or {}
        for found in page.get("messages") or []:
            if found.get("altId") == alt_id:
                return {**found, "conversationId": found.get("conversationId") or conversation_id}
        if not page.get("nextPage") or not page.get("lastMessageId"):
            return None
        params = {"limit": 100, "lastMessageId": page["lastMessageId"]}
    return None


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
    client.request("PUT", f"/conversations/messages/{ghl_message_id}/status", json=body, record=record)
    return f"{ghl_message_id} -> {status}"
