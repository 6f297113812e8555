"""Outgoing webhooks.

Events are written as delivery rows inside the transaction of the change they report
(hook_event_emit, called by hooks.subscribers), so they commit or vanish with it; a task
(deliver_webhook) posts each one after commit, outside any transaction, signed with the
subscription's secret, and failures are retried with exponential backoff by the minute sweep
until MAX_ATTEMPTS."""
import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from hooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookSubscription, new_signing_secret
from whatsnap import guarded_fetch
from whatsnap.errors import ApplicationError
from whatsnap.tasks import enqueue, enqueue_on_commit

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 30  # 30 s, 1 min, 2 min ... capped: about 2 hours in all
BACKOFF_MAX_SECONDS = 3600
# A receiver answers within seconds; only an excerpt of its answer is read (and kept).
LIMITS = guarded_fetch.Limits(connect=5.0, total=5.0, max_bytes=10 * 1024 * 1024)
# a batch of filed messages queues its deliveries to one receiver a few per task: at LIMITS'
# 5 s a post (and a name lookup), well inside django-q2's 60 s task timeout
DELIVERIES_PER_TASK = 5
STUCK_AFTER_SECONDS = 300  # a "sending" claim older than this died with its worker
EXCERPT_BYTES = 500

SIGNATURE_HEADER = "X-WhatSnap-Signature"
TIMESTAMP_HEADER = "X-WhatSnap-Timestamp"
EVENT_HEADER = "X-WhatSnap-Event"
DELIVERY_HEADER = "X-WhatSnap-Delivery"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The X-WhatSnap-Signature value: `sha256=` + hex HMAC-SHA256 of `<timestamp>.<raw body>`,
    the timestamp being X-WhatSnap-Timestamp (Unix seconds), so a receiver can refuse an old
    delivery replayed by whoever captured it."""
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


# --- subscriptions ---------------------------------------------------------------------------
def _clean_events(events) -> list[str]:
    events = list(dict.fromkeys(events or []))
    if not events:
        raise ApplicationError("Subscribe to at least one event.", field="events")
    unknown = [e for e in events if e not in Event.values]
    if unknown:
        raise ApplicationError(
            f"Unknown event(s) {', '.join(map(str, unknown))}; known: {', '.join(Event.values)}.", field="events"
        )
    return events


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ApplicationError("The URL must start with https:// (or http://) and name a host.", field="url")
    # deliveries go to public addresses only, so a subscription cannot make the worker call
    # loopback, the private network or a metadata service (and show their answers in the
    # attempt log); WEBHOOKS_ALLOW_PRIVATE_URLS lifts this for receivers on the own network
    problem = guarded_fetch.address_problem(url, purpose=guarded_fetch.WEBHOOKS)
    if problem:
        raise ApplicationError(problem, field="url")
    return url


@transaction.atomic
def hook_subscription_create(
    *, location, url: str, events: list[str], description: str = "", is_active: bool = True
) -> WebhookSubscription:
    """A new subscription with a fresh signing secret (readable once, from `.secret`)."""
    subscription = WebhookSubscription(
        location=location, url=_clean_url(url), events=_clean_events(events), description=description, is_active=is_active
    )
    subscription.secret = new_signing_secret()
    subscription.full_clean()
    subscription.save()
    return subscription


@transaction.atomic
def hook_subscription_update(*, subscription: WebhookSubscription, **changes) -> WebhookSubscription:
    if "url" in changes:
        subscription.url = _clean_url(changes["url"])
    if "events" in changes:
        subscription.events = _clean_events(changes["events"])
    for name in ("description", "is_active"):
        if name in changes:
            setattr(subscription, name, changes[name])
    subscription.full_clean()
    subscription.save()
    return subscription


def hook_subscription_rotate_secret(*, subscription: WebhookSubscription) -> str:
    secret = new_signing_secret()
    subscription.secret = secret
    subscription.save(update_fields=["secret_encrypted"])
    return secret


def hook_subscription_delete(*, subscription: WebhookSubscription) -> None:
    subscription.delete()


# --- events ------------------------------------------------------------------------------------
def hook_event_emit(*, location_id: int, event: str, data: dict) -> int:
    """Write one delivery per active subscription of the location that wants `event`; call it
    inside the transaction of the change. The deliveries are queued after commit. Returns
    how many were written (no subscription: one query, no row)."""
    return hook_events_emit(location_id=location_id, event=event, items=[data])


def hook_events_emit(*, location_id: int, event: str, items: list[dict]) -> int:
    """The same for several happenings of one kind (a batch of filed messages): one query for
    the subscriptions and one insert for all the deliveries, each happening its own event id."""
    subscriptions = [
        s for s in WebhookSubscription.objects.filter(location_id=location_id, is_active=True).only("id", "events")
        if event in s.events
    ]
    if not subscriptions or not items:
        return 0
    now = timezone.now()
    deliveries = []
    for data in items:
        event_id = uuid.uuid4()
        payload = {
            "id": str(event_id),
            "event": event,
            "created_at": now.isoformat(),
            "location": location_id,
            "data": json.loads(json.dumps(data, cls=DjangoJSONEncoder)),
        }
        deliveries += [
            WebhookDelivery(location_id=location_id, subscription_id=s.pk, event=event, event_id=event_id, payload=payload,
                            next_attempt_at=now)
            for s in subscriptions
        ]
    rows = WebhookDelivery.objects.bulk_create(deliveries)
    for subscription in subscriptions:  # a task per few deliveries of one receiver, posted in order
        ids = [row.pk for row in rows if row.subscription_id == subscription.pk]
        for start in range(0, len(ids), DELIVERIES_PER_TASK):
            chunk = ids[start:start + DELIVERIES_PER_TASK]
            enqueue_on_commit(*((deliver_webhook, chunk[0]) if len(chunk) == 1 else (deliver_webhooks, chunk)))
    return len(rows)


# --- delivery ----------------------------------------------------------------------------------
def deliver_webhook(delivery_id: int) -> str:
    """The task: one attempt at one delivery."""
    return hook_delivery_attempt(delivery_id=delivery_id)


def deliver_webhooks(delivery_ids: list[int]) -> list[str]:
    """The task for a batch's deliveries to one receiver: one attempt at each, in order. A
    worker lost halfway leaves the rest pending and due: the minute sweep queues them."""
    return [hook_delivery_attempt(delivery_id=pk) for pk in delivery_ids]


def _post(url: str, body: bytes, headers: dict) -> tuple[int, str]:
    """POST through the guard (checked again at every delivery, connected to the address it
    checked; redirects are not followed); (status code, the first bytes of the answer)."""
    target = guarded_fetch.Target(url, purpose=guarded_fetch.WEBHOOKS, headers=headers)
    answer = guarded_fetch.open_stream("POST", target, limits=LIMITS, content=body)
    try:
        excerpt = guarded_fetch.first_bytes(answer, EXCERPT_BYTES)
    finally:
        answer.close()
    return answer.status_code, excerpt.decode(errors="replace").replace("\x00", "")


def hook_delivery_attempt(*, delivery_id: int) -> str:
    """Post one due delivery once. The claim (pending -> sending) is a conditional update, so
    two workers never post the same attempt; the network call runs outside any transaction."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).update(status=WebhookDelivery.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return "skipped"
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    subscription = delivery.subscription
    status_code, excerpt, error = None, "", ""
    started = time.monotonic()
    if not subscription.is_active:
        error = "the subscription is disabled"
    else:
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "WhatSnap-Webhooks/1",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(subscription.secret, body, timestamp),
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: str(delivery.event_id),
        }
        try:
            status_code, excerpt = _post(subscription.url, body, headers)
        except guarded_fetch.FetchError as exc:  # e.g. its name now points inside
            error = str(exc)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if status_code is not None and not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    return _record_attempt(delivery, status_code=status_code, excerpt=excerpt, error=error[:300],
                           duration_ms=int((time.monotonic() - started) * 1000), retry=subscription.is_active)


@transaction.atomic
def _record_attempt(delivery: WebhookDelivery, *, status_code, excerpt: str, error: str, duration_ms: int, retry: bool) -> str:
    now = timezone.now()
    WebhookAttempt.objects.create(delivery=delivery, at=now, status_code=status_code, response_excerpt=excerpt,
                                  error=error, duration_ms=duration_ms)
    fields = {"last_status_code": status_code, "last_error": error}
    if not error:
        fields.update(status=WebhookDelivery.Status.SUCCEEDED, delivered_at=now, next_attempt_at=None)
    elif retry and delivery.attempts < MAX_ATTEMPTS:
        fields.update(status=WebhookDelivery.Status.PENDING, next_attempt_at=now + backoff(delivery.attempts))
    else:
        fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
        logger.warning("webhook delivery %s gave up after %s attempt(s): %s", delivery.pk, delivery.attempts, error)
    WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.SENDING).update(**fields)
    return fields["status"]


def hook_deliveries_due(*, limit: int = 500) -> int:
    """Queue the deliveries whose retry time has come (and release claims whose worker died)."""
    now = timezone.now()
    WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.SENDING, claimed_at__lt=now - timedelta(seconds=STUCK_AFTER_SECONDS)
    ).update(status=WebhookDelivery.Status.PENDING, next_attempt_at=now)
    due = list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )
    for pk in due:
        enqueue(deliver_webhook, pk)
    return len(due)


@transaction.atomic
def hook_delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery's event again (same event id, so receivers can tell) as a new delivery."""
    if not delivery.subscription.is_active:
        raise ApplicationError("The subscription is disabled; enable it before replaying.", code="subscription_disabled")
    replay = WebhookDelivery.objects.create(
        location_id=delivery.location_id, subscription_id=delivery.subscription_id, event=delivery.event,
        event_id=delivery.event_id, payload=delivery.payload, next_attempt_at=timezone.now(), replay_of=delivery,
    )
    enqueue_on_commit(deliver_webhook, replay.pk)
    return replay

