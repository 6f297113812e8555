"""A contact in GHL: what GHL should know of it (phone, name, tags, assignee) and bringing the
GHL contact in line with as few calls as it takes. Runs inside the outbox drainer (sync.py)."""
import hashlib
import json

from django.db import transaction
from django.utils import timezone

from contacts.models import Contact
from conversations.models import Conversation
from ghl.client import GhlClient, GhlRejected
from ghl.models import ContactSync, GhlUser


class ContactNotSynced(Exception):
    """A message cannot be posted: its contact could not be created in GHL."""


def desired_contact(contact) -> dict:
    """What GHL should know of a contact: phone, name, all its tags (the account tags
    included), and the assignee of its latest conversation mapped to a GHL user."""
    tags = sorted(contact.tags.values_list("name", flat=True))
    assignee_id = (
        Conversation.objects.filter(contact=contact).exclude(assignee=None).order_by("-last_message_at", "-id")
        .values_list("assignee_id", flat=True).first()
    ) or contact.assignee_id
    ghl_user = None
    if assignee_id:
        ghl_user = GhlUser.objects.filter(location_id=contact.location_id, user_id=assignee_id).values_list("ghl_user_id", flat=True).first()
    return {"phone": contact.phone, "name": contact.name, "tags": tags, "assignedTo": ghl_user}


def fingerprint_of(desired: dict) -> str:
    return hashlib.sha256(json.dumps(desired, sort_keys=True).encode()).hexdigest()


def contact_push(client: GhlClient, contact, record: dict) -> str:
    """Bring the GHL contact in line with ours, with as few calls as it takes: none when
    nothing changed; one lookup + one upsert the first time (the lookup finds a contact a lost
    response already created, so a retry never makes a second one); afterwards only the tag
    additions/removals and field changes."""
    if contact.kind == Contact.Kind.GROUP:
        return "a group chat is not a GHL contact: its messages go to each sender's conversation"
    location = contact.location
    desired = desired_contact(contact)
    fingerprint = fingerprint_of(desired)
    sync, _ = ContactSync.objects.get_or_create(contact=contact)
    if contact.ghl_contact_id and sync.fingerprint == fingerprint:
        return "unchanged: no call"
    if contact.ghl_contact_id:
        return _contact_update(client, contact, sync, desired, fingerprint, record)
    found = client.request("GET", "/contacts/search/duplicate", params={"locationId": location.ghl_location_id, "number": contact.phone}, record=record)
    existing = found.data.get("contact") or {}
    tags = sorted(set(desired["tags"]) | set(existing.get("tags") or []))  # both calls replace tags: keep GHL's own
    fields = _contact_fields(desired)
    if existing.get("id"):
        # GHL has this person already (made by GHL, or by our earlier attempt whose answer was
        # lost): update that contact. An upsert could make a second one where the location
        # allows duplicate contacts.
        ghl_id = existing["id"]
        given = {k: v for k, v in fields.items() if v}  # never wipe an assignee GHL has set
        client.request("PUT", f"/contacts/{ghl_id}", json={**given, "tags": tags}, record=record)
    else:
        body = {"locationId": location.ghl_location_id, "phone": contact.phone, "tags": tags, "source": "WhatSnap",
                **{k: v for k, v in fields.items() if v}}
        response = client.request("POST", "/contacts/upsert", json=body, record=record)
        ghl_id = (response.data.get("contact") or {}).get("id")
        if not ghl_id:
            raise GhlRejected("GHL's upsert answered without a contact id", status=response.status, body=response.data)
    with transaction.atomic():
        type(contact).objects.filter(pk=contact.pk).update(ghl_contact_id=ghl_id)
        contact.ghl_contact_id = ghl_id
        ContactSync.objects.filter(pk=sync.pk).update(fingerprint=fingerprint, tags=desired["tags"], fields=fields, synced_at=timezone.now())
    return f"{'found' if existing.get('id') else 'created'} GHL contact {ghl_id}"


def _contact_fields(desired: dict) -> dict:
    fields = {"assignedTo": desired["assignedTo"] or ""}
    if desired["name"]:
        fields["name"] = desired["name"]
    return fields


def _contact_update(client, contact, sync, desired, fingerprint, record) -> str:
    ghl_id = contact.ghl_contact_id
    before, after = set(sync.tags), set(desired["tags"])
    fields = _contact_fields(desired)
    done = []
    try:
        if after - before:
            client.request("POST", f"/contacts/{ghl_id}/tags", json={"tags": sorted(after - before)}, record=record)
            done.append(f"+{len(after - before)} tag(s)")
        if before - after:
            client.request("DELETE", f"/contacts/{ghl_id}/tags", json={"tags": sorted(before - after)}, record=record)
            done.append(f"-{len(before - after)} tag(s)")
        if fields != sync.fields:
            client.request("PUT", f"/contacts/{ghl_id}", json=fields, record=record)
            done.append("name/assignee")
    except GhlRejected as exc:
        if exc.status != 404:
            raise
        # Deleted in GHL: make it again (lookup + upsert).
        contact_forget_ghl_id(contact)
        return "re-created: " + contact_push(client, contact, record)
    ContactSync.objects.filter(pk=sync.pk).update(fingerprint=fingerprint, tags=desired["tags"], fields=fields, synced_at=timezone.now())
    return "updated " + (", ".join(done) or "nothing")


def contact_forget_ghl_id(contact) -> None:
    """The GHL contact is gone (deleted there): the next push makes a new one."""
    type(contact).objects.filter(pk=contact.pk).update(ghl_contact_id="")
    ContactSync.objects.filter(contact=contact).update(fingerprint="", tags=[], fields={})
    contact.ghl_contact_id = ""


def op_contact_upsert(client, item, record) -> str:
    if item.contact is None:
        return "contact deleted or merged: nothing to send"
    return contact_push(client, item.contact, record)
