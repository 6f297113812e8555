"""Reactions, edits and deletions of a message GHL holds, as far as GHL's API allows.

GHL's API adds messages to a conversation (POST /conversations/messages/inbound) and updates
their delivery status (PUT /conversations/messages/{id}/status: delivered, failed, pending,
read); it has no call to react to a message, edit its text or delete it — reactions
(TYPE_SMS_REACTION) and internal comments exist in GHL only as message types to read
(GoHighLevel/highlevel-api-docs, apps/conversations.json). Posting a new conversation message
would run the location's workflows as if the person had written again. So each such message
gets one note on its GHL contact, kept current: what the message is, that it was edited and its
text now, that it was deleted for everyone, and who reacted with what. The note is updated as
things change and removed when nothing is left to say (reactions all taken back).
Runs inside the outbox drainer (sync.py)."""
import hashlib
from zoneinfo import ZoneInfo

from conversations.models import Message, MessageReaction
from ghl.client import GhlRejected, seg
from ghl.models import GhlMessageLink, GhlMessageNote
from ghl.notes import note_post_once, with_ref

SNIPPET = 120


def _when(location, at) -> str:
    try:
        zone = ZoneInfo(location.timezone or "UTC")
    except (ValueError, KeyError):
        zone = ZoneInfo("UTC")
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M") + f" ({zone.key})"


def _snippet(message: Message) -> str:
    text = " ".join((message.text or "").split())
    if not text:
        return "[attachment]" if message.media else "[no text]"
    return f'"{text[:SNIPPET]}…"' if len(text) > SNIPPET else f'"{text}"'


def holder_of(message: Message):
    """The contact whose GHL conversation holds the message: the person, or in a group the
    participant who wrote it (GHL has no group chats); None when GHL has no copy of it."""
    contact = message.conversation.contact
    if contact.kind == contact.Kind.GROUP:
        return message.sender_contact
    return contact


def note_text(message: Message) -> str:
    """The note's text from the message as it is now; "" when there is nothing to say."""
    reactions = list(MessageReaction.objects.filter(message=message).select_related("contact").order_by("at", "id"))
    if not (reactions or message.edited_at or message.deleted_at):
        return ""
    location, account = message.location, message.account
    contact = message.conversation.contact
    if message.direction == Message.Direction.INBOUND:
        who = f"from {(message.sender_contact or contact).display_name}"
    else:
        who = f"to {contact.display_name}" + (" (typed on the phone)" if message.via_device else "")
    where = f" in {contact.display_name}" if contact.kind == contact.Kind.GROUP else ""
    lines = [f"{account.get_kind_display()} message {who}{where}, {_when(location, message.sent_at)}"
             + ("" if message.deleted_at else f": {_snippet(message)}")]
    if message.edited_at and not message.deleted_at:
        lines.append(f"Edited on {_when(location, message.edited_at)}; the text above is the new one "
                     "(GHL's copy keeps the text it received: GHL's API cannot change it).")
    if message.deleted_at:
        lines.append(f"Deleted for everyone on {_when(location, message.deleted_at)} "
                     "(GHL's copy stays: GHL's API cannot remove a message).")
    if reactions:
        parties = [f"{r.emoji} {account.name} (this account)" if r.actor_key == "me"
                   else f"{r.emoji} {r.contact.display_name if r.contact else 'contact'}" for r in reactions]
        lines.append("Reactions: " + " · ".join(parties))
    return with_ref("\n".join(lines), f"wsm-{message.pk}")


def op_message_note(client, item, record) -> str:
    message = (Message.objects.select_related("location", "account", "conversation__contact", "sender_contact")
               .filter(pk=item.payload.get("message_id")).first())
    if message is None:
        return "message deleted: nothing to note"
    if not GhlMessageLink.objects.filter(message=message).exists():
        return "message not in GHL: nothing to note"
    holder = holder_of(message)
    if holder is None or not holder.ghl_contact_id:
        return "its contact is not in GHL: nothing to note"
    note = GhlMessageNote.objects.filter(message=message).first()
    if note is not None and note.ghl_contact_id != holder.ghl_contact_id:
        note.delete()  # the contact moved to another GHL contact (a merge): the old note stays there
        note = None
    text = note_text(message)
    if not text:
        if note is None:
            return "nothing to note"
        _call_tolerating_gone(client, "DELETE", f"/contacts/{seg(note.ghl_contact_id)}/notes/{seg(note.ghl_note_id)}", None, record)
        note.delete()
        return f"note {note.ghl_note_id} removed (nothing left to say)"
    fingerprint = hashlib.sha256(text.encode()).hexdigest()
    if note is not None and note.fingerprint == fingerprint:
        return "note unchanged: no call"
    if note is not None:
        path = f"/contacts/{seg(note.ghl_contact_id)}/notes/{seg(note.ghl_note_id)}"
        if _call_tolerating_gone(client, "PUT", path, {"body": text}, record):
            GhlMessageNote.objects.filter(pk=note.pk).update(fingerprint=fingerprint)
            return f"note {note.ghl_note_id} updated"
        note.delete()  # deleted in GHL: written again below
    note_id = note_post_once(client, item, holder.ghl_contact_id, text, f"wsm-{message.pk}", record)
    GhlMessageNote.objects.update_or_create(
        message=message, defaults={"ghl_contact_id": holder.ghl_contact_id, "ghl_note_id": note_id, "fingerprint": fingerprint})
    return f"note {note_id} written"


def _call_tolerating_gone(client, method: str, path: str, body, record: dict) -> bool:
    """True when GHL did it; False when the note is no longer there (deleted in GHL)."""
    try:
        client.request(method, path, json=body, record=record)
    except GhlRejected as exc:
        if exc.status not in (400, 404):
            raise
        return False
    return True
