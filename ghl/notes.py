"""GHL contact notes written by WhatSnap: created once even when an answer is lost.

GHL's API can add a message to a conversation but cannot change one it holds, and has no
merge of contacts; what it does allow is a note on a contact — Create / Update / Delete Note,
`POST /contacts/{contactId}/notes`, `PUT` and `DELETE /contacts/{contactId}/notes/{id}`, scope
`contacts.write` (GoHighLevel/highlevel-api-docs, apps/contacts.json). WhatSnap writes notes for
what happened to a message after GHL got it (message_notes.py) and on a GHL contact retired by a
merge (merges.py). Each note ends with a reference line, so a retry after an unanswered
creation finds the note instead of writing it twice."""
from django.utils import timezone

from ghl.client import GhlError, GhlRejected, seg
from ghl.models import OutboxItem

REF_PREFIX = "WhatSnap ref: "


def note_post_once(client, item: OutboxItem, ghl_contact_id: str, body: str, ref: str, record: dict) -> str:
    """Create the note (its last line is the reference `ref`); returns GHL's note id. After an
    attempt whose answer was never read, the contact's notes are searched for the reference
    first (the same bookkeeping as a message post: OutboxItem.unconfirmed_post_at)."""
    if item.unconfirmed_post_at is not None:
        found = note_find(client, ghl_contact_id, ref, record)
        if found:
            OutboxItem.objects.filter(pk=item.pk).update(unconfirmed_post_at=None)
            return found
    OutboxItem.objects.filter(pk=item.pk).update(unconfirmed_post_at=timezone.now())
    try:
        response = client.request("POST", f"/contacts/{seg(ghl_contact_id)}/notes", json={"body": body}, record=record)
    except GhlError as exc:
        if not exc.unanswered:
            OutboxItem.objects.filter(pk=item.pk).update(unconfirmed_post_at=None)
        raise
    OutboxItem.objects.filter(pk=item.pk).update(unconfirmed_post_at=None)
    note_id = (response.data.get("note") or {}).get("id")
    if not note_id:
        raise GhlRejected("GHL answered the note creation without a note id", status=response.status, body=response.data)
    return note_id


def note_find(client, ghl_contact_id: str, ref: str, record: dict) -> str:
    """The id of the contact's note whose last line is `ref`, or ""."""
    notes = client.request("GET", f"/contacts/{seg(ghl_contact_id)}/notes", record=record).data.get("notes") or []
    line = REF_PREFIX + ref
    for note in notes:
        if isinstance(note, dict) and (note.get("body") or "").rstrip().endswith(line) and note.get("id"):
            return note["id"]
    return ""


def with_ref(text: str, ref: str) -> str:
    return f"{text}\n{REF_PREFIX}{ref}"
