"""GHL services: the outbox writer (ghl/subscribers.py calls it inside the transaction of the
local change), install/uninstall, retries, and messages sent from GHL (stored here, sent by
outbound.py)."""
import logging
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from accounts.models import Location
from contacts.models import Contact
from conversations.models import Message
from ghl.models import ContactSync, GhlConnection, GhlMessageLink, GhlMessageNote, GhlRetiredContact, GhlUser, OutboxItem
from ghl.outbound import contact_of_ghl_id
from ghl.tasks import kick
from whatsnap.errors import ApplicationError
from whatsnap.tasks import on_commit_once

logger = logging.getLogger(__name__)

ECHO_MARGIN_SECONDS = 30  # a post counts as in flight for GHL's timeout plus this


# --- outbox writers -------------------------------------------------------------------------
def outbox_enqueue(*, location, operation: str, contact=None, account=None, payload: dict) -> OutboxItem | None:
    """Write one outbox row (a location without the GHL app gets none) and start a drain once
    the transaction commits."""
    rows = outbox_enqueue_many(location=location, rows=[dict(operation=operation, contact=contact, account=account, payload=payload)])
    return rows[0] if rows else None


def outbox_enqueue_many(*, location, rows: list[dict]) -> list[OutboxItem]:
    """Several outbox rows of one location in one insert, in order (operation, contact,
    account, payload each); one drain starts after the commit however many were written."""
    if not location.ghl_location_id or not rows:
        return []
    items = OutboxItem.objects.bulk_create([OutboxItem(location=location, **row) for row in rows])
    _kick_on_commit(location.pk)
    return items


def _kick_on_commit(location_id: int) -> None:
    on_commit_once(f"ghl-kick:{location_id}", partial(kick, location_id))


# --- install (ghl/installs.py connects; these forget and disconnect) ----------------------------
def forget_ghl_ids(location) -> None:
    """Another GHL location than before: the ids we stored belong to the old one."""
    Contact.objects.filter(location=location).exclude(ghl_contact_id="").update(ghl_contact_id="")
    ContactSync.objects.filter(contact__location=location).delete()
    GhlMessageLink.objects.filter(location=location).delete()
    GhlMessageNote.objects.filter(message__location=location).delete()
    GhlRetiredContact.objects.filter(location=location).delete()
    GhlUser.objects.filter(location=location).delete()


def uninstall(*, ghl_location_id: str) -> bool:
    """The app's UNINSTALL webhook: tokens dropped, sync stopped. Pending rows stay, so a
    reinstall resumes where it stopped; nothing new is queued meanwhile."""
    with transaction.atomic():
        location = Location.objects.select_for_update().filter(ghl_location_id=ghl_location_id).first()
        if location is None:
            return False
        GhlConnection.objects.filter(location=location).update(
            status=GhlConnection.Status.UNINSTALLED, secrets={}, uninstalled_at=timezone.now(), token_expires_at=None,
        )
        location.ghl_location_id = ""
        location.save(update_fields=["ghl_location_id"])
    logger.info("GHL uninstalled for location %s", location.pk)
    return True


def disconnect(*, location, actor) -> None:
    """Disconnect from WhatSnap's side (the app stays installed in GHL until removed there)."""
    with transaction.atomic():
        GhlConnection.objects.filter(location=location).update(
            status=GhlConnection.Status.UNINSTALLED, secrets={}, uninstalled_at=timezone.now(), token_expires_at=None, released=True,
        )
        type(location).objects.filter(pk=location.pk).update(ghl_location_id="")
    logger.info("GHL disconnected for location %s by user %s", location.pk, actor.pk)


# --- sync log actions -----------------------------------------------------------------------
def outbox_retry(*, item: OutboxItem) -> None:
    if item.status != OutboxItem.Status.FAILED:
        raise ApplicationError("Only a failed sync operation can be retried.")
    OutboxItem.objects.filter(pk=item.pk, status=OutboxItem.Status.FAILED).update(
        status=OutboxItem.Status.PENDING, next_attempt_at=timezone.now(), last_error=""
    )
    _kick_on_commit(item.location_id)


def outbox_retry_failed(*, location) -> int:
    count = OutboxItem.objects.filter(location=location, status=OutboxItem.Status.FAILED).update(
        status=OutboxItem.Status.PENDING, next_attempt_at=timezone.now(), last_error=""
    )
    if count:
        _kick_on_commit(location.pk)
    return count


def resume_now(*, location) -> None:
    """Staff ask to try GHL again now instead of waiting out the backoff."""
    GhlConnection.objects.filter(location=location).update(paused_until=None, pause_reason="")
    OutboxItem.objects.filter(location=location, status=OutboxItem.Status.PENDING).update(next_attempt_at=timezone.now())
    _kick_on_commit(location.pk)


def contacts_backfill(*, location) -> int:
    """Queue an upsert for every contact of the location (after installing on an existing
    location). Unchanged contacts cost no call later."""
    if not location.ghl_location_id:
        raise ApplicationError("Connect GHL first.")
    ids = list(Contact.objects.filter(location=location, kind=Contact.Kind.PERSON).values_list("pk", flat=True))
    OutboxItem.objects.bulk_create(
        [OutboxItem(location=location, contact_id=pk, operation=OutboxItem.Operation.CONTACT_UPSERT, payload={}) for pk in ids],
        batch_size=1000,
    )
    _kick_on_commit(location.pk)
    return len(ids)


def sync_health(location) -> dict:
    """Backlog, last success, last error: for the GHL page and each account's page."""
    connection = GhlConnection.objects.filter(location=location).first()
    counts = dict(
        OutboxItem.objects.filter(location=location, status__in=[OutboxItem.Status.PENDING, OutboxItem.Status.FAILED])
        .values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    oldest = OutboxItem.objects.filter(location=location, status=OutboxItem.Status.PENDING).aggregate(t=Min("created_at"))["t"]
    return {
        "connection": connection,
        "connected": bool(connection and connection.active and location.ghl_location_id),
        "pending": counts.get("pending", 0),
        "failed": counts.get("failed", 0),
        "oldest_pending": oldest,
    }


# --- messages sent from GHL -------------------------------------------------------------------
def provider_outbound(*, payload: dict) -> tuple[str, object]:
    """GHL's ProviderOutboundMessage (a message sent from GHL: typed by a user, or sent by a
    workflow, a bulk action or a campaign). Only stored here, so the webhook answers fast: the
    GHL contact is read and the account chosen by the outbox drainer (outbound.py), with its
    rate limiting and retries. Idempotent on GHL's messageId: a redelivery sends nothing twice.
    Returns ("queued", None) or ("duplicate", None)."""
    ghl_message_id = str(payload.get("messageId") or "")
    ghl_location_id = str(payload.get("locationId") or "")
    if not ghl_message_id or not ghl_location_id:
        raise ApplicationError("messageId and locationId are required.")
    location = Location.objects.filter(ghl_location_id=ghl_location_id).first()
    if location is None:
        raise ApplicationError(f"No WhatSnap location is connected to GHL location {ghl_location_id}.", code="unknown_location")
    try:
        with transaction.atomic():
            echoed = _own_post_echoed(location, payload)
            if echoed is not None:
                # one of our own posts, handed back before its answer was read: never sent again
                GhlMessageLink.objects.create(location=location, ghl_message_id=ghl_message_id, message=echoed,
                                              origin=GhlMessageLink.Origin.WHATSNAP)
                return "duplicate", None
            GhlMessageLink.objects.create(location=location, ghl_message_id=ghl_message_id, origin=GhlMessageLink.Origin.GHL)
            # the contact we know (if any) orders the send after that contact's waiting sync work
            contact = contact_of_ghl_id(location, str(payload.get("contactId") or ""))
            kept = {k: payload.get(k) for k in DELIVERY_FIELDS if k in payload}
            outbox_enqueue(location=location, operation=OutboxItem.Operation.PROVIDER_OUTBOUND, contact=contact, payload=kept)
            return "queued", None
    except IntegrityError:
        return "duplicate", None


DELIVERY_FIELDS = ("messageId", "contactId", "type", "phone", "message", "attachments", "userId", "provider")


def _own_post_echoed(location, payload: dict):
    """The message of ours GHL hands back, if it is one: our messages (replies sent from
    WhatSnap, messages typed on the phone) are added to GHL by its API, which GHL does not hand
    to the Delivery URL; should it ever, the GHL message id is linked to ours and the webhook
    is a duplicate. The one gap — GHL calling back while our post still waits for its answer,
    before the id is known here — is closed by this check: a post of ours in flight right now
    (OutboxItem.unconfirmed_post_at, set just before the post) for the same GHL contact with the
    same text is that message."""
    since = timezone.now() - timezone.timedelta(seconds=settings.GHL_TIMEOUT_SECONDS + ECHO_MARGIN_SECONDS)
    in_flight = OutboxItem.objects.filter(
        location=location, operation=OutboxItem.Operation.OUTBOUND_MESSAGE, status=OutboxItem.Status.PENDING,
        unconfirmed_post_at__gte=since).values_list("payload", flat=True)[:5]
    ids = [p.get("message_id") for p in in_flight if isinstance(p, dict)]
    text = (payload.get("message") or "").strip()
    for message in Message.objects.filter(pk__in=ids, ghl_link__isnull=True).select_related("conversation__contact"):
        if message.text.strip() == text and message.conversation.contact.ghl_contact_id == str(payload.get("contactId") or ""):
            return message
    return None


def account_sync_health(account) -> dict | None:
    """The GHL card of an account's page: the waiting and failed sync work of this account and
    its contacts, and the
    location's last success and last error. None when the location has no GHL app."""
    if not account.location.ghl_location_id:
        return None
    connection = GhlConnection.objects.filter(location_id=account.location_id).first()
    # the account's own rows (messages, statuses) and the contact syncs of its contacts
    mine = Q(account=account) | Q(account__isnull=True, contact__account_links__account=account)
    counts = dict(
        OutboxItem.objects.filter(mine, location_id=account.location_id, status__in=[OutboxItem.Status.PENDING, OutboxItem.Status.FAILED])
        .values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    return {"connection": connection, "pending": counts.get("pending", 0), "failed": counts.get("failed", 0)}
