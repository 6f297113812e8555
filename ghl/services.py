"""GHL services: the outbox writer (ghl/subscribers.py calls it inside the transaction of the
local change), install/uninstall, retries, and replies typed in GHL."""
import logging
import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Min, Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, Location, Membership
from contacts.models import Contact, ContactAccount, ContactTag
from conversations.models import Conversation, Message
from conversations.services import message_send
from ghl.client import store_tokens, token_request
from ghl.models import ContactSync, GhlConnection, GhlMessageLink, GhlMessageNote, GhlRetiredContact, GhlUser, OutboxItem
from ghl.tasks import kick, sync_users
from whatsnap.errors import ApplicationError
from whatsnap.phones import normalise_e164
from whatsnap.tasks import enqueue

logger = logging.getLogger(__name__)

ECHO_MARGIN_SECONDS = 30  # a post counts as in flight for GHL's timeout plus this
STATE_SALT = "whatsnap.ghl.oauth"
STATE_MAX_AGE = 15 * 60


# --- outbox writers -------------------------------------------------------------------------
def outbox_enqueue(*, location, operation: str, contact=None, account=None, payload: dict) -> OutboxItem | None:
    """Write one outbox row (a location without the GHL app gets none) and start a drain once
    the transaction commits."""
    if not location.ghl_location_id:
        return None
    item = OutboxItem.objects.create(location=location, contact=contact, account=account, operation=operation, payload=payload)
    _kick_on_commit(location.pk)
    return item


def _kick_on_commit(location_id: int) -> None:
    transaction.on_commit(lambda: kick(location_id))


# --- install (OAuth 2.0, authorization code) ------------------------------------------------
def redirect_uri() -> str:
    return f"{settings.PUBLIC_BASE_URL}{reverse('ghl-oauth-callback')}"


def install_url(*, location, user) -> str:
    if not settings.GHL_CLIENT_ID or not settings.GHL_CLIENT_SECRET:
        raise ApplicationError("GHL_CLIENT_ID and GHL_CLIENT_SECRET are not configured on this server.")
    state = signing.dumps({"l": location.pk, "u": user.pk, "n": secrets.token_urlsafe(8)}, salt=STATE_SALT)
    query = urlencode({
        "response_type": "code", "redirect_uri": redirect_uri(), "client_id": settings.GHL_CLIENT_ID,
        "scope": settings.GHL_SCOPES, "state": state,
    })
    return f"{settings.GHL_AUTHORIZE_URL}?{query}"


def install_complete(*, code: str, state: str, user) -> GhlConnection:
    """The OAuth callback: check the state we signed, exchange the code, store the tokens
    encrypted and the GHL location id on the location."""
    try:
        data = signing.loads(state or "", salt=STATE_SALT, max_age=STATE_MAX_AGE)
    except signing.BadSignature:
        raise ApplicationError("The GHL install link expired or was tampered with; start again from WhatSnap.") from None
    if data.get("u") != user.pk or not Membership.objects.filter(user=user, location_id=data.get("l"), role=Membership.Role.ADMIN).exists():
        raise ApplicationError("Only an admin of this location can connect GHL.", code="forbidden")
    if not code:
        raise ApplicationError("GHL did not send an authorisation code.")
    body = token_request({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri()})
    ghl_location_id = body.get("locationId") or ""
    if not ghl_location_id:
        raise ApplicationError("GHL's answer names no location: install the app for a sub-account (location), not an agency.")
    with transaction.atomic():
        location = Location.objects.select_for_update().get(pk=data["l"])
        clash = Location.objects.filter(ghl_location_id=ghl_location_id).exclude(pk=location.pk).first()
        if clash:
            raise ApplicationError(f"That GHL location is connected to the WhatSnap location {clash.name} already.")
        connection, _ = GhlConnection.objects.get_or_create(location=location)
        previous = connection.installed_ghl_location_id or location.ghl_location_id
        if previous and previous != ghl_location_id:
            _forget_ghl_ids(location)
        connection.installed_ghl_location_id = ghl_location_id
        store_tokens(connection, body)
        connection.company_id = body.get("companyId") or connection.company_id
        connection.installed_by, connection.installed_at, connection.uninstalled_at = user, timezone.now(), None
        connection.paused_until, connection.pause_reason = None, ""
        connection.save()
        location.ghl_location_id = ghl_location_id
        location.save(update_fields=["ghl_location_id"])
    enqueue(sync_users, location.pk)
    logger.info("GHL installed for location %s (GHL location %s)", location.pk, ghl_location_id)
    return connection


def _forget_ghl_ids(location) -> None:
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
            status=GhlConnection.Status.UNINSTALLED, secrets={}, uninstalled_at=timezone.now(), token_expires_at=None,
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


# --- replies typed in GHL -------------------------------------------------------------------
def reply_account_for(contact):
    """The account a reply typed in GHL leaves through: one of the contact's account tags —
    the one the contact last wrote to, or a tag a person put on it later (moving the
    contact to another account's tag moves its replies)."""
    tagged = list(
        ContactTag.objects.filter(contact=contact, tag__account__isnull=False, tag__account__archived_at__isnull=True)
        .values_list("tag__account_id", "added_at")
    )
    if not tagged:
        return None
    seen = dict(
        ContactAccount.objects.filter(contact=contact, account_id__in=[a for a, _ in tagged])
        .values("account_id").annotate(t=Max("last_seen_at")).values_list("account_id", "t")
    )
    best = max(tagged, key=lambda row: max(row[1], seen.get(row[0]) or row[1]))
    return Account.objects.get(pk=best[0])


def provider_outbound(*, payload: dict) -> tuple[str, object]:
    """GHL's ProviderOutboundMessage (a reply typed in GHL). Returns (outcome, message).
    Idempotent on GHL's messageId: a redelivery sends nothing twice. When no account can
    take the reply, GHL is told why (status failed) — nothing is dropped silently."""
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
            link = GhlMessageLink.objects.create(location=location, ghl_message_id=ghl_message_id, origin=GhlMessageLink.Origin.GHL)
            contact = None
            if payload.get("contactId"):
                contact = _contact_of_ghl_id(location, str(payload["contactId"]))
            if contact is None and payload.get("phone"):
                try:
                    phone = normalise_e164(str(payload["phone"]))
                except ValueError:
                    phone = str(payload["phone"])
                contact = Contact.objects.filter(location=location, phone=phone).first()
            reason = ""
            account = reply_account_for(contact) if contact else None
            if contact is None:
                reason = "WhatSnap does not know this contact (it never wrote to a WhatSnap account)."
            elif account is None:
                reason = "The contact has no whatsnap-account-* tag, so WhatSnap does not know which account to send through."
            if reason:
                _report_failed(location, contact, ghl_message_id, reason)
                return "refused", reason
            conversation, _ = Conversation.objects.get_or_create(contact=contact, account=account, defaults={"location": location})
            author = GhlUser.objects.filter(location=location, ghl_user_id=payload.get("userId") or "-").values_list("user", flat=True).first()
            try:
                with transaction.atomic():
                    message = message_send(
                        conversation=conversation, text=payload.get("message") or "",
                        media=[{"url": u} for u in payload.get("attachments") or [] if isinstance(u, str)],
                        author=get_user_model().objects.filter(pk=author).first() if author else None,
                        from_ghl=True,
                    )
            except ApplicationError as exc:
                _report_failed(location, contact, ghl_message_id, exc.message)
                return "refused", exc.message
            link.message = message
            link.save(update_fields=["message"])
            return "queued", message
    except IntegrityError:
        return "duplicate", None


def _contact_of_ghl_id(location, ghl_contact_id: str):
    """Our contact for a GHL contact id: the one linked to it, or the one a retired GHL contact
    (a contact merged away, ghl/merges.py) now stands for."""
    contact = Contact.objects.filter(location=location, ghl_contact_id=ghl_contact_id).first()
    if contact is None:
        retired = GhlRetiredContact.objects.filter(location=location, ghl_contact_id=ghl_contact_id).select_related("contact").first()
        contact = retired.contact if retired else None
    return contact


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


def _report_failed(location, contact, ghl_message_id: str, reason: str) -> None:
    outbox_enqueue(
        location=location, operation=OutboxItem.Operation.MESSAGE_STATUS, contact=contact,
        payload={"ghl_message_id": ghl_message_id, "status": "failed", "error": reason},
    )
    logger.info("reply %s from GHL not sent: %s", ghl_message_id, reason)


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
