"""A message sent from GHL (ProviderOutboundMessage), the part that runs in the outbox drainer
(sync.py), after the webhook stored the delivery (services.provider_outbound) and answered.

It reads the GHL contact (GET /contacts/{contactId}, Version 2021-07-28; its answer
`{contact: {id, name, firstName, lastName, phone, tags, dnd, ...}}` — GoHighLevel/
highlevel-api-docs, apps/contacts.json, GetContectByIdSchema) for the phone, the name and the
tags as they are now; finds or creates our contact (one per phone per location); chooses the
account (send_choice.py) and queues the message through it. Every GHL-originated send reads
the contact once: a workflow that tags and then sends is faster than GHL's tag webhook.

GHL rate-limiting us or down while we read: the drainer's usual wait and retry (the row stays
pending, nothing is lost). GHL refusing the read (the contact was deleted there): our copy
decides. When no account can send it, the message is failed in GHL with the reason.

Runs once per delivery: the row is claimed under a lock inside the transaction that queues the
message, and the GHL message link (unique per GHL message id) holds the message sent."""
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.reach import WHATSAPP, channel_of
from contacts.models import Contact
from contacts.services import contact_upsert_from_inbound
from conversations.models import Conversation
from conversations.services import message_send
from ghl.client import GhlRejected, seg
from ghl.contact_sync import contact_fields, desired_contact, fingerprint_of
from ghl.models import ContactSync, GhlConnection, GhlMessageLink, GhlRetiredContact, GhlUser, OutboxItem
from ghl.send_choice import account_choose, account_tags_follow_ghl, delivery_channels
from whatsnap.errors import ApplicationError
from whatsnap.phones import NormalisedSender, normalise_e164

logger = logging.getLogger(__name__)


class NotSendable(Exception):
    """The message cannot be sent: the reason goes to GHL as the failed status's error."""


def contact_of_ghl_id(location, ghl_contact_id: str):
    """Our contact for a GHL contact id: the one linked to it, or the one a retired GHL contact
    (a contact merged away, ghl/merges.py) now stands for."""
    if not ghl_contact_id:
        return None
    contact = Contact.objects.filter(location=location, ghl_contact_id=ghl_contact_id).first()
    if contact is None:
        retired = GhlRetiredContact.objects.filter(location=location, ghl_contact_id=ghl_contact_id).select_related("contact").first()
        contact = retired.contact if retired else None
    return contact


def read_ghl_contact(client, ghl_contact_id: str, record: dict) -> dict | None:
    """GHL's contact now, or None when GHL will not show it (deleted there, not ours). Waiting
    errors (429, 5xx, timeouts) go up to the drainer, which retries the row later."""
    if not ghl_contact_id:
        return None
    try:
        # the id comes from the delivery's body: one path segment, whatever it holds
        return client.request("GET", f"/contacts/{seg(ghl_contact_id)}", record=record).data.get("contact") or None
    except GhlRejected as exc:
        logger.info("GHL contact %s not readable (%s): our copy decides", ghl_contact_id, exc.status)
        return None


def another_providers_message(client, ghl_message_id: str, record: dict) -> str:
    """The provider id GHL names for this message when it is not one of ours, else "".

    GHL signs every app's webhooks with one key and a ProviderOutboundMessage names no app or
    provider, so another app's developer could forward their own signed delivery for a
    sub-account both apps serve. GHL's message (GET /conversations/messages/{id},
    GetMessageResponseDto in apps/conversations.json) says which provider it went through: a
    message of another provider is not sent. When GHL names none, or cannot show the message,
    or we know no provider id of ours, the delivery is taken as ours (nothing to tell apart)."""
    ours = {p for p in (settings.GHL_CONVERSATION_PROVIDER_ID, settings.GHL_WHATSAPP_PROVIDER_ID) if p}
    if not ours or not ghl_message_id:
        return ""
    try:
        data = client.request("GET", f"/conversations/messages/{seg(ghl_message_id)}", record=record).data
    except GhlRejected as exc:
        logger.info("GHL message %s not readable (%s): taken as ours", ghl_message_id, exc.status)
        return ""
    named = str((data.get("message") or data).get("conversationProviderId") or "")
    return named if named and named not in ours else ""


def op_provider_outbound(client, item: OutboxItem, record: dict) -> str:
    payload = item.payload
    other = another_providers_message(client, str(payload.get("messageId") or ""), record)
    if other:
        logger.warning("GHL delivery %s is a message of provider %s, not ours: not sent", payload.get("messageId"), other)
        return f"a message of another conversation provider ({other}): not sent"
    ghl_contact = read_ghl_contact(client, str(payload.get("contactId") or ""), record)
    with transaction.atomic():
        claimed = OutboxItem.objects.select_for_update().filter(pk=item.pk, status=OutboxItem.Status.PENDING).first()
        link = GhlMessageLink.objects.select_for_update().filter(location_id=item.location_id, ghl_message_id=payload.get("messageId")).first()
        if claimed is None or (link is not None and link.message_id):
            return "handled already: nothing sent twice"
        if link is None:  # forgotten by a reinstall into another GHL location: not ours to send
            return "the GHL message is no longer linked to this location: not sent"
        location = item.location
        contact = None
        try:
            contact, created = _contact_for(location, payload, ghl_contact)
            result = _send(location, contact, payload, ghl_contact, link, linked_now=created)
        except NotSendable as exc:
            _fail_in_ghl(item, contact, str(exc))
            result = f"not sent, failed in GHL: {exc}"
        OutboxItem.objects.filter(pk=item.pk).update(status=OutboxItem.Status.DONE, done_at=timezone.now())
    return result


def _contact_for(location, payload: dict, ghl_contact: dict | None) -> tuple[Contact, bool]:
    """Our contact for the delivery: the one linked to the GHL contact, else the one with its
    phone, else a new one. True when it was linked to the GHL contact just now."""
    ghl_contact_id = str(payload.get("contactId") or "")
    known = contact_of_ghl_id(location, ghl_contact_id)
    if known is not None:
        return known, False
    raw = (ghl_contact or {}).get("phone") or payload.get("phone") or ""
    if not raw:
        raise NotSendable("The GHL contact has no phone number, so WhatSnap cannot text it.")
    try:
        phone = normalise_e164(str(raw), default_region=location.phone_region)
    except ValueError:
        raise NotSendable(f"The contact's phone {raw} is not a valid phone number.") from None
    contact, _created, _renamed = contact_upsert_from_inbound(
        location=location, sender=NormalisedSender(phone, True), platform_name=_name_of(ghl_contact))
    if contact.ghl_contact_id or not ghl_contact_id or ghl_contact is None:
        return contact, False  # linked to another GHL contact already (GHL allows duplicates): kept
    Contact.objects.filter(pk=contact.pk).update(ghl_contact_id=ghl_contact_id)
    contact.ghl_contact_id = ghl_contact_id
    return contact, True


def _name_of(ghl_contact: dict | None) -> str:
    if not ghl_contact:
        return ""
    return (ghl_contact.get("name") or " ".join(filter(None, [ghl_contact.get("firstName"), ghl_contact.get("lastName")]))).strip()


def _send(location, contact, payload: dict, ghl_contact: dict | None, link: GhlMessageLink, *, linked_now: bool) -> str:
    if str(payload.get("type") or "").lower() == "email":
        raise NotSendable("WhatSnap sends SMS and WhatsApp messages, not e-mail.")
    if contact.opted_out:
        raise NotSendable(f"{contact.display_name} replied STOP and has opted out; WhatSnap will not send until they send START.")
    same = ghl_contact is not None and contact.ghl_contact_id == str(ghl_contact.get("id") or payload.get("contactId"))
    tagged = account_tags_follow_ghl(contact, (ghl_contact or {}).get("tags") if ghl_contact else None, same_ghl_contact=same)
    if linked_now:
        _record_in_sync(contact, ghl_contact)
    connection = GhlConnection.objects.filter(location=location).first()
    channels = delivery_channels(str(payload.get("type") or ""), connection.provider_mode if connection else GhlConnection.Mode.SMS,
                                 str(payload.get("provider") or ""))
    account, how = account_choose(location=location, contact=contact, tagged=tagged,
                                  ghl_user_id=str(payload.get("userId") or ""), channels=channels)
    if account is None:
        raise NotSendable(how)
    dnd = _do_not_disturb(ghl_contact, account)
    if dnd:
        raise NotSendable(dnd)
    conversation, _ = Conversation.objects.get_or_create(contact=contact, account=account, defaults={"location": location})
    try:
        with transaction.atomic():
            message = message_send(
                conversation=conversation, text=payload.get("message") or "",
                media=[{"url": u} for u in payload.get("attachments") or [] if isinstance(u, str)],
                author=_author(location, str(payload.get("userId") or "")), from_ghl=True,
            )
    except ApplicationError as exc:
        raise NotSendable(exc.message) from None
    link.message = message
    link.save(update_fields=["message"])
    return f"queued as message {message.pk} through {account.name} ({how})"


DND_ON = ("active", "permanent")


def _do_not_disturb(ghl_contact: dict | None, account) -> str:
    """GHL's Do Not Disturb, as the contact holds it now: `dnd` true stops every channel;
    `dndSettings.SMS` / `.WhatsApp` (status active or permanent) the one the account speaks
    (GoHighLevel/highlevel-api-docs, apps/contacts.json: GetContectByIdSchema, DndSettingsSchema).
    GHL's own sends check it before they reach us; a message typed to such a contact, or a bulk
    action, may still come: it is failed with the reason instead of texting the person."""
    if not ghl_contact:
        return ""
    if ghl_contact.get("dnd") is True:
        return "The contact is set to Do Not Disturb in GHL: WhatSnap does not send to them."
    channel = "WhatsApp" if channel_of(account) == WHATSAPP else "SMS"
    setting = (ghl_contact.get("dndSettings") or {}).get(channel)
    if isinstance(setting, dict) and setting.get("status") in DND_ON:
        return f"The contact is set to Do Not Disturb for {channel} in GHL: WhatSnap does not send to them."
    return ""


def _record_in_sync(contact, ghl_contact: dict) -> None:
    """A contact linked just now to GHL's: what GHL holds is recorded, so the next contact sync
    sends only what differs (and never wipes an assignee GHL set)."""
    desired = desired_contact(contact)
    in_ghl = set(ghl_contact.get("tags") or [])
    ContactSync.objects.update_or_create(contact=contact, defaults={
        "tags": sorted(set(desired["tags"]) & in_ghl),
        "fields": contact_fields(desired),
        "fingerprint": fingerprint_of(desired) if set(desired["tags"]) <= in_ghl else "",
        "synced_at": timezone.now(),
    })


def _author(location, ghl_user_id: str):
    user_id = GhlUser.objects.filter(location=location, ghl_user_id=ghl_user_id or "-").values_list("user", flat=True).first()
    return get_user_model().objects.filter(pk=user_id).first() if user_id else None


def _fail_in_ghl(item: OutboxItem, contact, reason: str) -> None:
    """GHL shows the message failed, with the reason (the running drain sends the status)."""
    OutboxItem.objects.create(location_id=item.location_id, contact=contact if contact and contact.pk else None,
                              operation=OutboxItem.Operation.MESSAGE_STATUS,
                              payload={"ghl_message_id": item.payload.get("messageId"), "status": "failed", "error": reason})
    logger.info("message %s from GHL not sent: %s", item.payload.get("messageId"), reason)
