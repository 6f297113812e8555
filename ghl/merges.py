"""One person, one GHL contact, after contacts merge in WhatSnap.

A WhatsApp person first known only by a LID, then by phone (or anyone two contacts turned out
to be) becomes one contact in WhatSnap (contacts.services.contact_merge). GHL follows:

- only the merged-away contact was in GHL: the kept contact takes over that GHL contact (its id
  and what GHL was last told), and the next push adds the kept contact's phone, name and tags
  to it — unless GHL already holds a contact with that phone, which is then kept instead
  (contact_sync._contact_update);
- both were in GHL: the kept contact's GHL contact stays. GHL's public API has no merge, so the
  other one is *retired*: tagged `whatsnap-merged` and given a note naming the kept contact
  (POST /contacts/{id}/tags, POST /contacts/{id}/notes — GoHighLevel/highlevel-api-docs,
  apps/contacts.json). Its conversation stays in GHL as it was (GHL cannot move messages); a
  reply typed on it still reaches the person through the kept contact (GhlRetiredContact).

Called by ghl.subscribers (inside the merge's transaction) and by the contact push (drainer)."""
from django.db import transaction

from ghl.client import GhlRejected, seg
from ghl.models import ContactSync, GhlRetiredContact, OutboxItem
from ghl.notes import note_post_once, with_ref

MERGED_TAG = "whatsnap-merged"
RETIRE = OutboxItem.Operation.CONTACT_RETIRE


def ghl_identity_follows_merge(*, source, into) -> dict | None:
    """At contact.merging (before `source` is deleted). Returns the payload of the retirement
    row to queue when both contacts were in GHL, else None."""
    GhlRetiredContact.objects.filter(contact=source).update(contact=into)
    ContactModel = type(source)
    old = ContactModel.objects.filter(pk=source.pk).values_list("ghl_contact_id", flat=True).first() or ""
    kept = ContactModel.objects.filter(pk=into.pk).values_list("ghl_contact_id", flat=True).first() or ""
    if not old or old == kept:
        return None
    if not kept:
        # the kept contact takes over source's GHL contact, with what GHL was last told of it
        ContactSync.objects.filter(contact=into).delete()
        sync = ContactSync.objects.filter(contact=source).first()
        if sync is not None:
            # the phone GHL holds is source's ('' for a LID): the next push sends into's if it differs
            held = "" if source.phone.endswith("@lid") else source.phone
            ContactSync.objects.filter(pk=sync.pk).update(contact=into, fields={"phone": held, **sync.fields})
        ContactModel.objects.filter(pk=source.pk).update(ghl_contact_id="")
        ContactModel.objects.filter(pk=into.pk).update(ghl_contact_id=old)
        source.ghl_contact_id, into.ghl_contact_id = "", old  # contact_merge saves `into` after us
        return None
    return retirement(into, old, kept_ghl_contact_id=kept)


def retirement(contact, old_ghl_id: str, *, kept_ghl_contact_id: str) -> dict | None:
    """Remember that GHL contact `old_ghl_id` now stands for `contact`; returns the payload of
    the row that marks it in GHL (None when such a row waits already)."""
    GhlRetiredContact.objects.update_or_create(
        location_id=contact.location_id, ghl_contact_id=old_ghl_id, defaults={"contact": contact})
    waiting = OutboxItem.objects.filter(location_id=contact.location_id, operation=RETIRE, status=OutboxItem.Status.PENDING,
                                        payload__ghl_contact_id=old_ghl_id)
    if waiting.exists():
        return None
    return {"ghl_contact_id": old_ghl_id, "kept_ghl_contact_id": kept_ghl_contact_id}


def retire_ghl_contact(contact, old_ghl_id: str, *, kept_ghl_contact_id: str) -> None:
    """From the contact push (inside the drainer): GHL already had the new phone as another
    contact, which is kept; `old_ghl_id` is retired by a row the running drain picks up."""
    with transaction.atomic():
        payload = retirement(contact, old_ghl_id, kept_ghl_contact_id=kept_ghl_contact_id)
        if payload is not None:
            OutboxItem.objects.create(location_id=contact.location_id, contact=contact, account=None, operation=RETIRE, payload=payload)


def op_contact_retire(client, item, record) -> str:
    old, kept = item.payload.get("ghl_contact_id", ""), item.payload.get("kept_ghl_contact_id", "")
    try:
        client.request("POST", f"/contacts/{seg(old)}/tags", json={"tags": [MERGED_TAG]}, record=record)
    except GhlRejected as exc:
        if exc.status not in (400, 404):
            raise
        return f"GHL contact {old} is gone: nothing to mark"
    contact = item.contact
    who = f"{contact.name} ({contact.phone})" if contact is not None and contact.name else (contact.phone if contact else "another contact")
    body = with_ref(
        f"Merged in WhatSnap into GHL contact {kept}: {who}. WhatSnap posts this person's messages there from now on; "
        f"this contact's conversation stays as it was (GHL cannot merge contacts). Replies typed here still reach the person.",
        f"merged-{old}",
    )
    note_post_once(client, item, old, body, f"merged-{old}", record)
    return f"{old} tagged {MERGED_TAG}, its note points to {kept}"
