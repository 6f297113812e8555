"""The GHL outbox drainer: replays outbox rows against GHL in id order per contact, within the
location's rate limit, one drainer per location at a time (a lease on the connection row).

What happens on trouble:
- GHL rate-limits us (429) or is down (5xx, timeout): the whole location pauses (GHL is
  per-location limited and an outage affects every call), the row stays pending and the
  drain is scheduled for when the pause ends; backoff grows with jitter up to MAX_BACKOFF.
- GHL rejects one call (other 4xx): that row is failed with the response kept for the sync
  log; the rest go on. Staff retry it (or all failed) from the sync page or the admin.
- The refresh token is refused: the connection needs re-authorisation; rows wait.
Nothing is lost: a row only leaves `pending` as done or failed, with the reason."""
import hashlib
import json
import logging
import random
import time

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ghl.client import GhlClient, GhlError, GhlRateLimited, GhlReauthorize, GhlRejected, GhlUnavailable
from ghl.models import ContactSync, GhlConnection, GhlMessageLink, GhlUser, OutboxItem

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60
BATCH = 200
MAX_BACKOFF = 300.0
STATUS_403_TRIES = 6  # GHL answers 403 to a status update for a few seconds after its webhook
clock = timezone.now  # tests move time


def backoff_seconds(attempts: int) -> float:
    base = min(MAX_BACKOFF, 2.0 ** min(attempts, 12))
    return base * random.uniform(0.75, 1.25)


# --- lease ----------------------------------------------------------------------------------
def _take_lease(location_id: int) -> GhlConnection | None:
    now = clock()
    taken = (
        GhlConnection.objects.filter(location_id=location_id, status=GhlConnection.Status.CONNECTED)
        .filter(Q(drain_lease_until__isnull=True) | Q(drain_lease_until__lt=now))
        .filter(Q(paused_until__isnull=True) | Q(paused_until__lte=now))
        .update(drain_lease_until=now + timezone.timedelta(seconds=LEASE_SECONDS))
    )
    return GhlConnection.objects.select_related("location").get(location_id=location_id) if taken else None


def _release_lease(connection: GhlConnection) -> None:
    GhlConnection.objects.filter(pk=connection.pk).update(drain_lease_until=None)


def due_items(location_id: int):
    """Pending rows that may run now: due, and not behind a waiting row of the same contact."""
    now = clock()
    waiting = OutboxItem.objects.filter(
        location_id=location_id, status=OutboxItem.Status.PENDING, next_attempt_at__gt=now, contact__isnull=False
    ).values("contact_id")
    return (
        OutboxItem.objects.filter(location_id=location_id, status=OutboxItem.Status.PENDING, next_attempt_at__lte=now)
        .exclude(contact_id__in=waiting)
        .order_by("id")
    )


def location_drain(*, location_id: int, budget_seconds: float = 25.0, sleep=time.sleep) -> int:
    """Replay what is due for one location; returns how many rows were completed.

    The budget (25 s) + one rate-limit wait (<= 15 s) + one call (<= GHL_TIMEOUT_SECONDS)
    stays under the task timeout (60 s), so a drainer is not killed in the middle of a call."""
    from ghl.tasks import enqueue_location_drain

    connection = _take_lease(location_id)
    if connection is None:
        return 0
    client = GhlClient(connection, sleep=sleep)
    started, completed, resume_at = time.monotonic(), 0, None
    renewed = started
    try:
        while time.monotonic() - started < budget_seconds:
            batch = list(due_items(location_id)[:BATCH])
            if not batch:
                break
            blocked: set[int] = set()
            for item in batch:
                if time.monotonic() - started >= budget_seconds:
                    break
                if item.contact_id in blocked:
                    continue
                outcome = _run(client, item)
                if outcome == "done" or outcome == "failed":
                    completed += 1
                elif outcome == "retry":
                    blocked.add(item.contact_id)
                else:  # pause: the whole location waits
                    resume_at = outcome
                    break
                if time.monotonic() - renewed > LEASE_SECONDS / 4:
                    renewed = time.monotonic()
                    GhlConnection.objects.filter(pk=connection.pk).update(drain_lease_until=clock() + timezone.timedelta(seconds=LEASE_SECONDS))
            if resume_at is not None:
                break
    except GhlReauthorize:
        logger.warning("GHL sync for location %s stopped: re-authorisation needed", location_id)
        return completed
    finally:
        _release_lease(connection)
    if resume_at is not None:
        enqueue_location_drain(location_id, at=resume_at)
    else:
        nxt = OutboxItem.objects.filter(location_id=location_id, status=OutboxItem.Status.PENDING).order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
        if nxt is not None:
            enqueue_location_drain(location_id, at=None if nxt <= clock() else nxt)
    return completed


def _run(client: GhlClient, item: OutboxItem):
    """Run one row. Returns "done", "failed", "retry" (this row later), or a datetime (the
    whole location waits until then)."""
    record: dict = {}
    try:
        result = HANDLERS[item.operation](client, item, record)
    except GhlRateLimited as exc:
        until = clock() + timezone.timedelta(seconds=max(exc.wait_seconds, 0.05))
        _save(item, record, error=str(exc), status_code=exc.status)
        _pause(client.connection, until, str(exc))
        return until
    except GhlUnavailable as exc:
        attempts = item.attempts + 1
        until = clock() + timezone.timedelta(seconds=backoff_seconds(attempts))
        _save(item, record, error=str(exc), status_code=exc.status, attempts=attempts, next_attempt_at=until)
        _pause(client.connection, until, str(exc))
        _note_error(client.connection, str(exc))
        logger.warning("GHL unavailable for location %s (%s); retry at %s", item.location_id, exc, until.isoformat())
        return until
    except GhlReauthorize as exc:
        _save(item, record, error=str(exc), status_code=exc.status)
        _note_error(client.connection, str(exc))
        raise
    except GhlRejected as exc:
        attempts = item.attempts + 1
        if exc.status == 403 and item.operation == OutboxItem.Operation.MESSAGE_STATUS and attempts < STATUS_403_TRIES:
            _save(item, record, error=str(exc), status_code=exc.status, attempts=attempts,
                  next_attempt_at=clock() + timezone.timedelta(seconds=backoff_seconds(attempts)))
            return "retry"
        _save(item, record, error=str(exc), status_code=exc.status, attempts=attempts, status=OutboxItem.Status.FAILED)
        _note_error(client.connection, str(exc))
        logger.warning("GHL rejected outbox row %s (%s): %s", item.pk, item.operation, exc)
        return "failed"
    except ContactNotSynced as exc:
        _save(item, record, error=str(exc), attempts=item.attempts + 1, status=OutboxItem.Status.FAILED)
        return "failed"
    _save(item, record, error="", status=OutboxItem.Status.DONE, attempts=item.attempts + 1, result=result, status_code=(record.get("response") or {}).get("status"))
    now = time.monotonic()
    if now - getattr(client, "success_noted", -60.0) > 1.0:  # at most a write a second
        client.success_noted = now
        GhlConnection.objects.filter(pk=client.connection.pk).update(last_success_at=clock())
    return "done"


def _save(item: OutboxItem, record: dict, *, error: str, status_code=None, attempts=None, next_attempt_at=None, status=None, result=None) -> None:
    fields = {"last_error": error[:2000], "updated_at": clock()}
    if record:
        fields["request"] = record.get("request", {})
        fields["response"] = record.get("response", {})
    if status_code is not None:
        fields["last_status_code"] = status_code
    if attempts is not None:
        fields["attempts"] = attempts
    if next_attempt_at is not None:
        fields["next_attempt_at"] = next_attempt_at
    if status is not None:
        fields["status"] = status
        if status == OutboxItem.Status.DONE:
            fields["done_at"] = clock()
    if result is not None:
        fields["result"] = result[:200]
    OutboxItem.objects.filter(pk=item.pk).update(**fields)


def _pause(connection: GhlConnection, until, reason: str) -> None:
    GhlConnection.objects.filter(pk=connection.pk).update(paused_until=until, pause_reason=reason[:200])


def _note_error(connection: GhlConnection, error: str) -> None:
    GhlConnection.objects.filter(pk=connection.pk).update(last_error=error[:2000], last_error_at=clock())


class ContactNotSynced(Exception):
    pass


# --- operations -----------------------------------------------------------------------------
def desired_contact(contact) -> dict:
    """What GHL should know of a contact: phone, name, all its tags (the account tags
    included), and the assignee of its latest conversation mapped to a GHL user."""
    from conversations.models import Conversation

    tags = sorted(contact.tags.values_list("name", flat=True))
    assignee_id = (
        Conversation.objects.filter(contact=contact).exclude(assignee=None).order_by("-last_message_at", "-id")
        .values_list("assignee_id", flat=True).first()
    ) or contact.assignee_id
    ghl_user = None
    if assignee_id:
        ghl_user = GhlUser.objects.filter(location_id=contact.location_id, user_id=assignee_id).values_list("ghl_user_id", flat=True).first()
    return {"phone": contact.phone, "name": contact.name, "tags": tags, "assignedTo": ghl_user}


def _fingerprint(desired: dict) -> str:
    return hashlib.sha256(json.dumps(desired, sort_keys=True).encode()).hexdigest()


def contact_push(client: GhlClient, contact, record: dict) -> str:
    """Bring the GHL contact in line with ours, with as few calls as it takes: none when
    nothing changed; one lookup + one upsert the first time (the lookup finds a contact a lost
    response already created, so a retry never makes a second one); afterwards only the tag
    additions/removals and field changes."""
    from contacts.models import Contact

    if contact.kind == Contact.Kind.GROUP:
        return "a group chat is not a GHL contact: its messages go to each sender's conversation"
    location = contact.location
    desired = desired_contact(contact)
    fingerprint = _fingerprint(desired)
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
        ContactSync.objects.filter(pk=sync.pk).update(fingerprint=fingerprint, tags=desired["tags"], fields=fields, synced_at=clock())
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
        type(contact).objects.filter(pk=contact.pk).update(ghl_contact_id="")
        ContactSync.objects.filter(pk=sync.pk).update(fingerprint="", tags=[], fields={})
        contact.ghl_contact_id = ""
        return "re-created: " + contact_push(client, contact, record)
    ContactSync.objects.filter(pk=sync.pk).update(fingerprint=fingerprint, tags=desired["tags"], fields=fields, synced_at=clock())
    return "updated " + (", ".join(done) or "nothing")


def _op_contact_upsert(client, item, record) -> str:
    if item.contact is None:
        return "contact deleted or merged: nothing to send"
    return contact_push(client, item.contact, record)


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


def _post_message(client, item, record, *, direction: str) -> str:
    from conversations.models import Message

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
    if not contact.ghl_contact_id:
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
        "attachments": [m.get("url") for m in message.media if m.get("url")],
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
    OutboxItem.objects.filter(pk=item.pk).update(unconfirmed_post_at=clock())
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


def _contact_gone(client, contact, record: dict) -> bool:
    """After GHL refused a post: is it because the contact no longer exists there? If so our
    link to it is forgotten (contact_push makes a new one)."""
    try:
        client.request("GET", f"/contacts/{contact.ghl_contact_id}", record={})
        return False
    except GhlRejected as exc:
        if exc.status not in (400, 404):
            raise
    type(contact).objects.filter(pk=contact.pk).update(ghl_contact_id="")
    ContactSync.objects.filter(contact=contact).update(fingerprint="", tags=[], fields={})
    contact.ghl_contact_id = ""
    return True


def _link(message, ghl_message_id: str, ghl_conversation_id: str) -> None:
    GhlMessageLink.objects.get_or_create(
        location_id=message.location_id, ghl_message_id=ghl_message_id,
        defaults={"message": message, "origin": GhlMessageLink.Origin.WHATSNAP, "ghl_conversation_id": ghl_conversation_id},
    )


SEARCH_PAGES = 5  # x 100 messages per conversation, newest first


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


def _op_inbound_message(client, item, record) -> str:
    return _post_message(client, item, record, direction="inbound")


def _op_outbound_message(client, item, record) -> str:
    return _post_message(client, item, record, direction="outbound")


GHL_STATUS = {"delivered": "delivered", "read": "read", "failed": "failed"}


def _op_message_status(client, item, record) -> str:
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


HANDLERS = {
    OutboxItem.Operation.CONTACT_UPSERT: _op_contact_upsert,
    OutboxItem.Operation.INBOUND_MESSAGE: _op_inbound_message,
    OutboxItem.Operation.OUTBOUND_MESSAGE: _op_outbound_message,
    OutboxItem.Operation.MESSAGE_STATUS: _op_message_status,
}


def users_sync(connection: GhlConnection) -> int:
    """Fetch the location's GHL users and match them to our members by e-mail."""
    from django.contrib.auth import get_user_model

    client = GhlClient(connection)
    location = connection.location
    response = client.request("GET", "/users/search", params={"companyId": connection.company_id, "locationId": location.ghl_location_id})
    users = response.data.get("users") or []
    members = {
        (u.email or "").lower(): u
        for u in get_user_model().objects.filter(memberships__location=location).exclude(email="")
    }
    for row in users:
        email = (row.get("email") or "").lower()
        GhlUser.objects.update_or_create(
            location=location, ghl_user_id=row["id"],
            defaults={"email": email, "name": row.get("name") or " ".join(filter(None, [row.get("firstName"), row.get("lastName")])), "user": members.get(email)},
        )
    return len(users)
