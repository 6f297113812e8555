"""How GHL follows what happens below it (registered in GhlConfig.ready()): each change becomes
outbox rows written inside the transaction of the change, so they commit or vanish with it;
outbox_enqueue starts a drain once the transaction commits. A location without the GHL app
gets no rows.

    message.received        -> contact upsert of the sender (when created, renamed or newly
                               tagged), then the inbound message
    message.queued          -> the outbound message (not for a reply typed in GHL)
    message.sent_from_device -> the outbound message (typed on the account's phone or Mac)
    message.status_changed  -> delivered / read / failed of an outbound message
    message.reacted, message.edited, message.deleted -> the message's note (message_notes.py)
    conversation.assigned   -> contact upsert (GHL's assignedTo follows the assignee)
    contact.updated, contact.merged, tag.renamed, tag.merging, tag.deleted -> contact upserts
    contact.merging         -> the merged-away contact's waiting rows move to the kept one, and
                               its GHL contact with them (merges.py)

message.imported (history fetched on connect) has no subscriber here on purpose: GHL would run
the location's workflows on old messages as if they had just arrived."""
from django.utils import timezone

from accounts.models import Account, Location
from contacts.models import Contact
from conversations.models import Conversation, Message
from ghl.merges import ghl_identity_follows_merge
from ghl.models import OutboxItem
from ghl.services import outbox_enqueue, outbox_enqueue_many
from whatsnap import events

CONTACT_UPSERT = OutboxItem.Operation.CONTACT_UPSERT
MESSAGE_POSTS = (OutboxItem.Operation.INBOUND_MESSAGE, OutboxItem.Operation.OUTBOUND_MESSAGE)
# what GHL shows on a message it holds; the other statuses stay ours
STATUSES_FOR_GHL = (Message.Status.DELIVERED, Message.Status.READ, Message.Status.FAILED)


def _ghl_location(location_id: int) -> Location | None:
    """The location when it has the GHL app installed, else None (then nothing is queued)."""
    location = Location.objects.only("id", "ghl_location_id").get(pk=location_id)
    return location if location.ghl_location_id else None


def _upsert_contacts(location_id: int, contact_ids) -> None:
    location = _ghl_location(location_id)
    if location:
        for contact_id in contact_ids:
            outbox_enqueue(location=location, operation=CONTACT_UPSERT, contact=Contact(pk=contact_id), payload={})


def _thread_contact(message: Message) -> Contact | None:
    contact_id = Conversation.objects.filter(pk=message.conversation_id).values_list("contact_id", flat=True).first()
    return None if contact_id is None else Contact(pk=contact_id)


# --- messages --------------------------------------------------------------------------------------
@events.on_many("message.received")
def outbox_message_received(batch) -> None:
    """Per message: the sender's contact upsert when it changed, then the message; a batch of
    filed messages is one insert."""
    location = batch[0]["account"].location
    if not location.ghl_location_id:
        return
    rows = []
    for event in batch:
        account = event["account"]
        if event["message"].is_history:
            continue
        if event["contact_changed"]:
            rows.append(dict(operation=CONTACT_UPSERT, contact=event["sender"], account=account, payload={}))
        rows.append(dict(operation=OutboxItem.Operation.INBOUND_MESSAGE, contact=event["contact"], account=account,
                         payload={"message_id": event["message"].pk}))
    outbox_enqueue_many(location=location, rows=rows)


@events.on("message.queued")
def outbox_message_queued(event) -> None:
    """A reply sent from WhatSnap is logged in the GHL conversation; one typed in GHL is there
    already."""
    if event["from_ghl"]:
        return
    message, conversation = event["message"], event["conversation"]
    location = _ghl_location(event.location_id)
    if location:
        outbox_enqueue(location=location, operation=OutboxItem.Operation.OUTBOUND_MESSAGE, contact=Contact(pk=conversation.contact_id),
                       account=message.account, payload={"message_id": message.pk})


@events.on("message.sent_from_device")
def outbox_message_from_device(event) -> None:
    """A message typed on the account's phone or Mac: logged in the contact's GHL conversation
    as outbound, like a reply sent from WhatSnap, so GHL's thread is whole and its "no reply"
    workflows see the answer. Same outbox, same retries, same altId as every other message."""
    message, conversation = event["message"], event["conversation"]
    if message.is_history:
        return
    location = _ghl_location(event.location_id)
    if location:
        outbox_enqueue(location=location, operation=OutboxItem.Operation.OUTBOUND_MESSAGE, contact=Contact(pk=conversation.contact_id),
                       account=event["account"], payload={"message_id": message.pk})


@events.on("message.status_changed")
def outbox_message_status(event) -> None:
    """Delivered / read / failed of an outbound message: GHL shows it on the message (the
    drainer skips messages GHL does not know)."""
    message = event["message"]
    if message.direction != Message.Direction.OUTBOUND or message.status not in STATUSES_FOR_GHL:
        return
    location = _ghl_location(event.location_id)
    if location:
        outbox_enqueue(location=location, operation=OutboxItem.Operation.MESSAGE_STATUS, contact=_thread_contact(message),
                       account=Account(pk=message.account_id),
                       payload={"message_id": message.pk, "status": message.status, "error": message.error})


@events.on("message.reacted", "message.edited", "message.deleted")
def outbox_message_amended(event) -> None:
    """message.reacted, message.edited, message.deleted: GHL cannot change a message it holds,
    so the message's note on the GHL contact is brought up to date (message_notes.py; the
    drainer skips messages GHL does not hold)."""
    message = event["message"]
    if message.is_history or message.is_note:
        return
    location = _ghl_location(event.location_id)
    if location is None:
        return
    thread = Conversation.objects.filter(pk=message.conversation_id).values_list("contact_id", "contact__kind").first()
    if thread is None:
        return
    holder_id = message.sender_contact_id if thread[1] == Contact.Kind.GROUP else thread[0]
    if holder_id is None:
        return  # a group message of the account itself: GHL has no copy of it
    outbox_enqueue(location=location, operation=OutboxItem.Operation.MESSAGE_NOTE, contact=Contact(pk=holder_id),
                   account=Account(pk=message.account_id), payload={"message_id": message.pk})


# --- contacts --------------------------------------------------------------------------------------
@events.on("conversation.assigned")
def outbox_conversation_assigned(event) -> None:
    """GHL's assignedTo follows the assignee of the contact's latest conversation."""
    _upsert_contacts(event.location_id, [event["conversation"].contact_id])


@events.on("contact.updated", "contact.merged")
def outbox_contact_changed(event) -> None:
    """contact.updated, contact.merged: the kept contact."""
    _upsert_contacts(event.location_id, [event["contact"].pk])


@events.on("tag.renamed", "tag.merging", "tag.deleted")
def outbox_tag_contacts(event) -> None:
    """tag.renamed, tag.merging, tag.deleted: every contact that carries (or carried) the tag."""
    _upsert_contacts(event.location_id, event["contact_ids"])


@events.on("contact.merging")
def outbox_rows_follow_merge(event) -> None:
    """GHL work still waiting for the merged-away contact carries on under the kept one; so does
    its GHL contact (merges.py). A WhatsApp-LID contact's messages GHL refused (it had no phone
    yet) are tried again under the kept contact, which has one."""
    source, into = event["source"], event["into"]
    OutboxItem.objects.filter(contact=source, status=OutboxItem.Status.PENDING).update(contact=into)
    if source.phone.endswith("@lid"):
        OutboxItem.objects.filter(contact=source, status=OutboxItem.Status.FAILED, operation__in=MESSAGE_POSTS).update(
            contact=into, status=OutboxItem.Status.PENDING, next_attempt_at=timezone.now(), last_error="")
    retire = ghl_identity_follows_merge(source=source, into=into)
    location = _ghl_location(event.location_id)
    if location is not None and retire is not None:
        outbox_enqueue(location=location, operation=OutboxItem.Operation.CONTACT_RETIRE, contact=into, payload=retire)
    # the kept contact's upsert (contact.merged, next) starts the drain for the moved rows
