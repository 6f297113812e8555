"""A contact in GHL: what GHL should know of it (phone, name, tags, assignee) and bringing the
GHL contact in line with as few calls as it takes. Runs inside the outbox drainer (sync.py).

A WhatsApp person known only by a LID ('123@lid': no phone yet) is created in GHL without a
phone (POST /contacts/, whose only required field is locationId — GoHighLevel/highlevel-api-docs
apps/contacts.json, CreateContactDto), so their messages reach GHL at once. When the phone
becomes known the same GHL contact gets it — unless GHL already has a contact with that phone:
then that one is kept and the phoneless one is retired (ghl/merges.py)."""
import hashlib
import json

from django.db import transaction
from django.utils import timezone

from contacts.fields import ghl_custom_fields
from contacts.models import Contact
from conversations.models import Conversation
from ghl.client import GhlClient, GhlRejected, seg
from ghl.merges import retire_ghl_contact
from ghl.models import ContactSync, GhlUser, OutboxItem


MESSAGE_POSTS = (OutboxItem.Operation.INBOUND_MESSAGE, OutboxItem.Operation.OUTBOUND_MESSAGE)


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
    desired = {"phone": phone_for_ghl(contact), "name": contact.name, "tags": tags, "assignedTo": ghl_user}
    custom = ghl_custom_fields(contact)
    if custom:  # only where an admin mapped fields: other contacts' fingerprints stay as they were
        desired["customFields"] = custom
    return desired


def phone_for_ghl(contact) -> str:
    """The phone GHL gets: the contact's, except a WhatsApp LID, which is no phone number."""
    return "" if contact.phone.endswith("@lid") else contact.phone


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
    if not desired["phone"]:
        return _contact_create_without_phone(client, contact, sync, desired, fingerprint, record)
    existing = _ghl_contact_with_phone(client, location, desired["phone"], record)
    if existing:
        # GHL has this person already (made by GHL, or by our earlier attempt whose answer was
        # lost): update that contact. An upsert could make a second one where the location
        # allows duplicate contacts.
        _adopt(client, contact, sync, existing, desired, fingerprint, record)
        return f"found GHL contact {existing['id']}"
    fields = contact_fields(desired)
    body = {"locationId": location.ghl_location_id, "phone": desired["phone"], "tags": desired["tags"], "source": "WhatSnap",
            **_given(fields)}
    response = client.request("POST", "/contacts/upsert", json=body, record=record)
    ghl_id = (response.data.get("contact") or {}).get("id")
    if not ghl_id:
        raise GhlRejected("GHL's upsert answered without a contact id", status=response.status, body=response.data)
    _linked(contact, sync, ghl_id, desired, fingerprint, fields)
    return f"created GHL contact {ghl_id}"


def _ghl_contact_with_phone(client, location, phone: str, record: dict) -> dict:
    found = client.request("GET", "/contacts/search/duplicate", params={"locationId": location.ghl_location_id, "number": phone}, record=record)
    existing = found.data.get("contact") or {}
    return existing if existing.get("id") else {}


def _adopt(client, contact, sync, existing: dict, desired: dict, fingerprint: str, record: dict) -> None:
    """Make GHL's contact `existing` ours: our tags added to its own (the PUT replaces tags, so
    GHL's are kept in the set), our name and assignee set (an assignee GHL set is never wiped)."""
    tags = sorted(set(desired["tags"]) | set(existing.get("tags") or []))
    fields = contact_fields(desired)
    client.request("PUT", f"/contacts/{seg(existing['id'])}", json={**_given(fields), "tags": tags}, record=record)
    _linked(contact, sync, existing["id"], desired, fingerprint, fields)


def _contact_create_without_phone(client, contact, sync, desired, fingerprint, record) -> str:
    """A person known only by a WhatsApp LID: a GHL contact with name and tags, no phone (GHL has
    nothing to look it up by, so unlike a phone's contact a lost answer can leave a second one)."""
    fields = contact_fields(desired)
    body = {"locationId": contact.location.ghl_location_id, "tags": desired["tags"], "source": "WhatSnap",
            **{k: v for k, v in _given(fields).items() if k != "phone"}}
    response = client.request("POST", "/contacts/", json=body, record=record)
    ghl_id = (response.data.get("contact") or {}).get("id")
    if not ghl_id:
        raise GhlRejected("GHL answered the contact creation without a contact id", status=response.status, body=response.data)
    _linked(contact, sync, ghl_id, desired, fingerprint, fields)
    return f"created GHL contact {ghl_id} without a phone (WhatsApp LID only)"


def _linked(contact, sync, ghl_id: str, desired: dict, fingerprint: str, fields: dict) -> None:
    with transaction.atomic():
        type(contact).objects.filter(pk=contact.pk).update(ghl_contact_id=ghl_id)
        contact.ghl_contact_id = ghl_id
        ContactSync.objects.filter(pk=sync.pk).update(fingerprint=fingerprint, tags=desired["tags"], fields=fields, synced_at=timezone.now())


def contact_fields(desired: dict) -> dict:
    """Name, assignee and phone as GHL should hold them (`phone` "" while only a LID is known),
    and the values of the custom fields mapped to GHL's (customFields [{id|key, field_value}])."""
    fields = {"assignedTo": desired["assignedTo"] or "", "phone": desired["phone"]}
    if desired["name"]:
        fields["name"] = desired["name"]
    if desired.get("customFields"):
        fields["customFields"] = desired["customFields"]
    return fields


def _given(fields: dict) -> dict:
    """The fields worth sending to a contact GHL may already hold values for: no empty value
    (one of ours that is empty never wipes GHL's)."""
    given = {k: v for k, v in fields.items() if v and k != "customFields"}
    custom = [item for item in fields.get("customFields", []) if item["field_value"] not in ("", None)]
    return {**given, **({"customFields": custom} if custom else {})}


def _contact_update(client, contact, sync, desired, fingerprint, record) -> str:
    ghl_id = contact.ghl_contact_id
    before, after = set(sync.tags), set(desired["tags"])
    fields = contact_fields(desired)
    # rows synced before phones were kept here: the contact was created with its phone
    known = {"phone": desired["phone"], **sync.fields}
    if desired["phone"] and known["phone"] != desired["phone"]:
        # the phone is new to GHL (a LID contact's number became known): if GHL has a contact
        # with it already, that one is kept and ours retired; else ours gets the phone
        existing = _ghl_contact_with_phone(client, contact.location, desired["phone"], record)
        if existing and existing["id"] != ghl_id:
            _adopt(client, contact, sync, existing, desired, fingerprint, record)
            retire_ghl_contact(contact, ghl_id, kept_ghl_contact_id=existing["id"])
            _retry_refused_posts(contact)
            return f"GHL has {desired['phone']} as {existing['id']}: kept it, {ghl_id} marked merged"
    done = []
    try:
        if after - before:
            client.request("POST", f"/contacts/{seg(ghl_id)}/tags", json={"tags": sorted(after - before)}, record=record)
            done.append(f"+{len(after - before)} tag(s)")
        if before - after:
            client.request("DELETE", f"/contacts/{seg(ghl_id)}/tags", json={"tags": sorted(before - after)}, record=record)
            done.append(f"-{len(before - after)} tag(s)")
        if fields != known:
            body = {k: v for k, v in fields.items() if k != "phone" or (v and v != known["phone"])}
            custom = _custom_changes(fields, known)
            body.pop("customFields", None)
            if custom:
                body["customFields"] = custom
            client.request("PUT", f"/contacts/{seg(ghl_id)}", json=body, record=record)
            done.append(("phone/name/assignee" if "phone" in body else "name/assignee") + (", custom fields" if custom else ""))
    except GhlRejected as exc:
        if exc.status != 404:
            raise
        # Deleted in GHL: make it again (lookup + upsert).
        contact_forget_ghl_id(contact)
        return "re-created: " + contact_push(client, contact, record)
    ContactSync.objects.filter(pk=sync.pk).update(fingerprint=fingerprint, tags=desired["tags"], fields=fields, synced_at=timezone.now())
    if desired["phone"] and not known["phone"]:
        _retry_refused_posts(contact)
    return "updated " + (", ".join(done) or "nothing")


def _custom_changes(fields: dict, known: dict) -> list[dict]:
    """The mapped custom fields whose value differs from what GHL was last sent (a value never
    sent and still empty is not sent: it would wipe a value GHL has of its own)."""
    def key(item):
        return item.get("id") or item.get("key")
    sent = {key(item): item["field_value"] for item in known.get("customFields") or []}
    return [item for item in fields.get("customFields") or [] if item["field_value"] != sent.get(key(item), "")]


def _retry_refused_posts(contact) -> None:
    """The GHL contact has a phone now: messages GHL refused while it had none are posted again
    (in their order; the running drain picks them up)."""
    OutboxItem.objects.filter(contact=contact, status=OutboxItem.Status.FAILED, operation__in=MESSAGE_POSTS).update(
        status=OutboxItem.Status.PENDING, next_attempt_at=timezone.now(), last_error="")


def contact_forget_ghl_id(contact) -> None:
    """The GHL contact is gone (deleted there): the next push makes a new one."""
    type(contact).objects.filter(pk=contact.pk).update(ghl_contact_id="")
    ContactSync.objects.filter(contact=contact).update(fingerprint="", tags=[], fields={})
    contact.ghl_contact_id = ""


def op_contact_upsert(client, item, record) -> str:
    if item.contact is None:
        return "contact deleted or merged: nothing to send"
    return contact_push(client, item.contact, record)
