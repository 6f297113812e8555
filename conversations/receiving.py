"""Receiving: the product's hot path.

webhook_events_record() stores verified events (unique per account + kind + provider id, so
redeliveries are no-ops; Unfiled ones are kept with their reason, not processed) and wakes the
workers' claim loops: the stored rows are the queue (conversations/ingest.py files them in
batches; with Q_CLUSTER sync each is filed at once). Plain messages are filed set-based
(conversations/batch_filing.py); inbound_event_file_locked() files any event with the filer of
its kind:
messages (conversations/filing.py), delivery statuses (here), reactions, edits, deletions,
group events and LID identities (conversations/amendments.py). An event that cannot be filed
ends UNFILED with its reason; nothing acknowledged disappears."""
import hashlib
import json
import logging
import math
import re
from dataclasses import fields, replace

from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from accounts.providers.base import (
    ChatEvent,
    ConnectionChanged,
    DeliveryStatus,
    InboundMessage,
    MessageDeleted,
    MessageEdited,
    PhoneIdentified,
    QrUpdated,
    Reaction,
    Unfiled,
)
from accounts.services import account_apply_events
from conversations.amendments import (
    NotFiled,
    NotYet,
    chat_event_file,
    delete_file,
    edit_file,
    find_message,
    identity_file,
    reaction_file,
)
from conversations.batch_filing import messages_file_many
from conversations.filing import message_file
from conversations.models import InboundEvent, Message
from conversations.statuses import message_status_advance
from whatsnap.listener import wake
from whatsnap.rows import ConflictFreeInsert
from whatsnap.tasks import enqueue_on_commit, tasks_run_inline

logger = logging.getLogger(__name__)

MAX_PROCESS_ATTEMPTS = 8
INBOUND_CHANNEL = "whatsnap_inbound"  # conversations/ingest.py drains it
_EVENT_INSERT = ConflictFreeInsert(InboundEvent, ("account", "dedupe_key"))
NOT_YET_ATTEMPTS = 4  # a reaction/edit/deletion waits ~3 sweeps for its message, then is kept unfiled


# --- the ack path ----------------------------------------------------------------------------
def webhook_events_record(*, account: Account, events: list) -> int:
    """Store verified events; returns how many were new. Connection/QR events apply at once;
    Unfiled events are kept with their reason and not processed."""
    new_ids = []
    session_events = [_cleaned(e) for e in events if isinstance(e, (QrUpdated, ConnectionChanged))]
    if session_events:
        account_apply_events(account=account, events=session_events)
    for event in events:
        stored = _stored_form(event)
        if stored is None:
            continue
        kind, key, payload = stored
        key, payload = _dedupe_key(key), _storable(payload)
        unfiled = kind == InboundEvent.Kind.UNFILED
        # ON CONFLICT DO NOTHING: a redelivery is a no-op that neither raises nor aborts an
        # enclosing transaction; on the ack path (autocommit) the insert is its own transaction.
        pk = _EVENT_INSERT.insert({
            "account_id": account.pk, "kind": kind, "dedupe_key": key, "payload": payload,
            "status": InboundEvent.Status.UNFILED if unfiled else InboundEvent.Status.PENDING,
            "error": _storable(event.reason[:500]) if unfiled else "", "processed_at": timezone.now() if unfiled else None})
        if pk is None:
            logger.info("duplicate webhook event %s for account %s ignored", key, account.pk)
            continue
        if unfiled:
            logger.info("webhook event for account %s kept unfiled: %s", account.pk, event.reason)
        else:
            new_ids.append(pk)
    _touch_last_webhook(account)
    if new_ids and tasks_run_inline():
        for pk in new_ids:  # no worker runs (Q_CLUSTER sync): filed at once, one task each
            enqueue_on_commit(process_inbound_event, pk)
    elif new_ids:
        wake(INBOUND_CHANNEL)  # the rows are the queue: the workers' claim loops take them
    return len(new_ids)


def _cleaned(event):
    """A session event with its text as PostgreSQL will store it (see _storable)."""
    return replace(event, **{f.name: _storable(getattr(event, f.name)) for f in fields(event)
                             if isinstance(getattr(event, f.name), str)})


def _flat(event) -> dict:
    """An event's fields, one level (events are flat; asdict's deep copy was a tenth of an ack)."""
    return {f.name: getattr(event, f.name) for f in fields(event)}


def _timed(event) -> dict:
    payload = _flat(event)
    if "at" in payload:
        payload["at"] = event.at.isoformat()
    return payload


def _dedupe_key(key: str) -> str:
    """Keys fit the column (160): one of 160 characters or more, or one that storing would
    change (a NUL, a lone surrogate), keeps its start and a hash of the whole as it came, so
    two ids never collide by being cut or cleaned (and no short key looks like a hashed one)."""
    clean = _storable(key)
    if len(key) < 160 and clean == key:
        return key
    return clean[:95] + "#" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


MAX_DEPTH = 64  # deeper than any upstream's payload; what lies below is dropped, not a 500


def _storable(value, depth: int = 0):
    """What PostgreSQL will store of a verified payload: a NUL character (refused in text and
    jsonb) is dropped, a lone surrogate (not UTF-8) becomes U+FFFD, a non-finite number (not
    JSON) becomes its name. Otherwise a webhook carrying one got a 500 on every redelivery and
    was never stored."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        if not value.isascii():
            value = LONE_SURROGATE.sub("\ufffd", value)
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (dict, list, tuple)) and depth >= MAX_DEPTH:
        return f"[nested deeper than {MAX_DEPTH} levels: dropped]"
    if isinstance(value, dict):
        return {_storable(k) if isinstance(k, str) else k: _storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(v, depth + 1) for v in value]
    return value


def _stored_form(event) -> tuple[str, str, dict] | None:
    """(kind, dedupe key, JSON payload) of an event to file later; None for session events."""
    if isinstance(event, InboundMessage):
        payload = _timed(event)
        payload["media"] = list(event.media)
        return InboundEvent.Kind.MESSAGE, f"msg:{event.provider_id}", payload
    if isinstance(event, DeliveryStatus):
        return InboundEvent.Kind.STATUS, f"st:{event.provider_id}:{event.status}", _flat(event)
    if isinstance(event, Reaction):
        return InboundEvent.Kind.REACTION, f"re:{event.provider_id}", _timed(event)
    if isinstance(event, MessageEdited):
        return InboundEvent.Kind.EDIT, f"ed:{event.provider_id}", _timed(event)
    if isinstance(event, MessageDeleted):
        return InboundEvent.Kind.DELETE, f"del:{event.target_id}", _timed(event)
    if isinstance(event, ChatEvent):
        return InboundEvent.Kind.CHAT_EVENT, f"ce:{event.provider_id}", _timed(event)
    if isinstance(event, PhoneIdentified):
        return InboundEvent.Kind.IDENTITY, f"id:{event.lid}:{event.phone}", _flat(event)
    if isinstance(event, Unfiled):
        body = json.dumps(_without_secrets(event.envelope), sort_keys=True, default=str)
        key = event.key or hashlib.sha256(body.encode()).hexdigest()
        return InboundEvent.Kind.UNFILED, f"unf:{key}", {"reason": event.reason, "envelope": json.loads(body)}
    return None


LONE_SURROGATE = re.compile("[\ud800-\udfff]")
SECRET_KEYS = re.compile(r"api_?key|token|password|secret|authorization|signature", re.IGNORECASE)


def _without_secrets(value):
    """A kept webhook body with what authenticated it blanked (Evolution's envelope carries the
    instance token as `apikey`): unfiled bodies are shown to staff, secrets never are."""
    if isinstance(value, dict):
        return {k: "[redacted]" if isinstance(k, str) and SECRET_KEYS.search(k) and v else _without_secrets(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def _touch_last_webhook(account: Account) -> None:
    """Diagnostics only need "recently": write at most every 10 s, not on every webhook of a
    busy account (a hot row every request would contend)."""
    now = timezone.now()
    if account.last_webhook_at and now - account.last_webhook_at < timezone.timedelta(seconds=10):
        return
    Account.objects.filter(pk=account.pk).update(last_webhook_at=now)


# --- processing ------------------------------------------------------------------------------
def process_inbound_event(event_id: int) -> str:
    """The task."""
    return inbound_event_process(event_id=event_id)


def inbound_event_process(*, event_id: int) -> str:
    """File one stored event. All or nothing: a crash leaves the event pending for a retry."""
    try:
        with transaction.atomic():
            # of=self: lock the event row only; a join would also lock the account row and
            # serialise every webhook and worker of that account behind this transaction.
            event = InboundEvent.objects.select_for_update(of=("self",)).select_related("account__location").get(pk=event_id)
            if event.status != InboundEvent.Status.PENDING:
                return event.status
            if not messages_file_many([event]):  # a plain message: the set-based filer, as in a batch
                return event.status
            return inbound_event_file_locked(event)
    except Exception as exc:
        _record_failure(event_id, exc)
        raise


def inbound_event_file_locked(event: InboundEvent) -> str:
    """File a pending event whose row the caller's transaction holds locked; returns its new
    status. NotFiled keeps it unfiled (or waiting); any other exception propagates, with the
    filer's writes rolled back to the savepoint and the event row untouched."""
    try:
        with transaction.atomic():  # a savepoint: an event kept unfiled leaves no half
            FILERS[event.kind](event)
        event.status = InboundEvent.Status.DONE
    except NotFiled as exc:
        event.error = exc.reason[:2000]
        if isinstance(exc, NotYet) and event.attempts + 1 < NOT_YET_ATTEMPTS:
            # what it refers to may still arrive: left pending for the sweep (no error:
            # waiting is expected, not a failure)
            logger.info("inbound event %s waits: %s", event.pk, exc.reason)
            event.attempts += 1
            event.save(update_fields=["error", "attempts"])
            return event.status
        event.status = InboundEvent.Status.UNFILED
        logger.info("inbound event %s kept unfiled: %s", event.pk, exc.reason)
    event.processed_at = timezone.now()
    event.attempts += 1
    event.save(update_fields=["status", "error", "processed_at", "attempts"])
    return event.status


def _record_failure(event_id: int, exc: Exception) -> None:
    event = InboundEvent.objects.filter(pk=event_id).first()
    if event is not None:
        inbound_event_failed(event, exc)


def inbound_event_failed(event: InboundEvent, exc: Exception) -> None:
    """An attempt raised: counted with its reason, left pending for the sweep's retry, FAILED
    after MAX_PROCESS_ATTEMPTS."""
    event.attempts += 1
    event.error = f"{type(exc).__name__}: {exc}"[:2000]
    if event.attempts >= MAX_PROCESS_ATTEMPTS:
        event.status = InboundEvent.Status.FAILED
        logger.error("inbound event %s failed for good: %s", event.pk, event.error)
    event.save(update_fields=["attempts", "error", "status"])


# --- delivery statuses from the backend -------------------------------------------------------
def _apply_delivery_status(event: InboundEvent) -> None:
    data = event.payload
    message = find_message(event.account, data["provider_id"], lock=True)
    if message is not None and message.direction != Message.Direction.OUTBOUND:
        # A delivery status names a message we received (a read receipt of our own phone, or
        # a forged id): statuses only ever describe what we sent.
        raise NotFiled("delivery status of a message we received, not one we sent: not applied")
    if message is None:
        # The status can overtake the send's own bookkeeping: retried, then kept.
        raise NotYet("delivery status of a message WhatSnap does not have")
    message_status_advance(message=message, status=data["status"], error=data.get("error", ""))


def _unfiled_on_arrival(event: InboundEvent) -> None:
    raise NotFiled(event.error or "kept unfiled when it arrived")


FILERS = {
    InboundEvent.Kind.MESSAGE: message_file,
    InboundEvent.Kind.STATUS: _apply_delivery_status,
    InboundEvent.Kind.REACTION: reaction_file,
    InboundEvent.Kind.EDIT: edit_file,
    InboundEvent.Kind.DELETE: delete_file,
    InboundEvent.Kind.CHAT_EVENT: chat_event_file,
    InboundEvent.Kind.IDENTITY: identity_file,
    InboundEvent.Kind.UNFILED: _unfiled_on_arrival,
}
