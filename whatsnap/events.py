"""Domain events: the one way a change made by a service reaches the apps above it.

A service records what happened, inside the transaction of the change::

    events.record("message.received", location_id=..., message=message, ...)

Apps subscribe in their ``subscribers.py``, which their ``AppConfig.ready()`` imports::

    @events.on("message.received")                  # now, in the same transaction
    def outbox_for_inbound(event): ...

    @events.on("message.received", on_commit=True)  # after the commit
    def kick_drain(event): ...

An in-transaction subscriber writes rows that must commit or vanish with the change (GHL outbox
rows, webhook delivery rows, live events relayed through the database); when it raises, the
change rolls back. An on-commit subscriber does what must never happen for a change that does
not commit (queue kicks, live pushes). Subscribers run in the order they were registered, which
is the order of INSTALLED_APPS. ``subscriptions()`` lists who reacts to what: the README's table
is checked against it by the test suite.

This is Zulip's ``send_event_on_commit`` idea, made the one way side effects leave a service."""
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

# Every event a service may record, with what its data holds. A name not listed here is a bug
# (record() and subscribe() refuse it), so this is also the catalogue for readers.
CATALOGUE: dict[str, str] = {
    # accounts
    "account.created": "account — a new account (its tag is made by contacts)",
    "account.status_changed": "account, status, previous, reason — connection state moved",
    "account.qr_updated": "account — a new QR code or pairing code to show",
    "account.settings_changed": "account, changed — settings saved (names of changed fields)",
    "account.alert": "account, alert, cleared — an alert raised (disconnected, logged out, banned, silent) or cleared ('' alert)",
    "account.archived": "account — deleted by a user: hidden, its tag becomes a plain tag",
    "member.removing": "membership — a person is taken out of a location (before the row goes)",
    "member.changed": "membership, changed — a member's availability, capacity or role changed (names of changed fields)",
    # contacts
    "contact.created": "contact — first seen (inbound message, API, import)",
    "contact.updated": "contact — a person edited its name or tags",
    "contact.merging": "source, into — two contacts become one (before source is deleted)",
    "contact.merged": "contact, source_id — after a merge: the kept contact",
    "tag.renamed": "tag, contact_ids — a tag's new name; the contacts that carry it",
    "tag.merging": "source, into, contact_ids — source's contacts now carry into (before source is deleted)",
    "tag.deleting": "tag — about to be deleted (a subscriber may refuse with ApplicationError)",
    "tag.deleted": "tag_id, contact_ids — deleted; the contacts that carried it",
    # conversations
    "message.received": "message, conversation, contact, sender, account, contact_changed — an inbound message was filed",
    "message.sent_from_device": "message, conversation, contact, account — a message typed on the phone or Mac itself was filed (outbound)",
    "message.imported": "message, conversation, contact, account — a message of the gateway's history, imported on connect (no routing, no GHL)",
    "message.reacted": "message, emoji, previous, actor_key, author — a reaction added, changed or removed ('' emoji), either side",
    "message.edited": "message, previous_text — the sender edited a message",
    "message.deleted": "message — the sender deleted a message for everyone",
    "conversation.chat_event": "conversation, text — a group system item (members joined or left, renamed)",
    "message.queued": "message, conversation, from_ghl — an outbound message waits in its account's queue",
    "message.status_changed": "message, status, error — an outbound message moved forward (sent, delivered, read, failed)",
    "conversation.assigned": "conversation, assignee, previous_assignee_id, reason — assigned or unassigned",
    "conversation.status_changed": "conversation, status, previous — open, pending, snoozed, resolved",
    "conversation.read": "conversation — its unread count went to zero",
    "conversation.unread": "conversation — marked unread by an agent",
    "note.added": "conversation, note — a private note for the team",
    # broadcasts
    "broadcast.status_changed": "broadcast, status, previous, reason, counts — scheduled, started, paused (reason), resumed, "
                                "completed or cancelled; counts: recipients per status",
    "scheduled_message.created": "scheduled, conversation — a reply scheduled to leave later",
    "scheduled_message.changed": "scheduled, conversation — its text or time edited (a failed one scheduled again)",
    "scheduled_message.cancelled": "scheduled, conversation — cancelled before it left",
    "scheduled_message.sent": "scheduled, conversation, message — it left: queued as message",
    "scheduled_message.failed": "scheduled, conversation, error — it could not leave (opted out, account disconnected)",
}


@dataclass(frozen=True)
class Event:
    name: str
    location_id: int
    data: dict = field(default_factory=dict)

    def __getitem__(self, key):
        return self.data[key]

    def get(self, key, default=None):
        return self.data.get(key, default)


@dataclass(frozen=True)
class Subscription:
    event: str
    handler: Callable
    on_commit: bool
    many: bool = False  # the handler takes a list of events (record_many's batch, or [event])

    @property
    def label(self) -> str:
        return f"{self.handler.__module__}.{self.handler.__qualname__}"


_subscriptions: dict[str, list[Subscription]] = defaultdict(list)
_captures: list[list[Event]] = []


def _known(name: str) -> None:
    if name not in CATALOGUE:
        raise ImproperlyConfigured(f"unknown domain event {name!r}: add it to whatsnap.events.CATALOGUE")


def subscribe(name: str, handler: Callable, *, on_commit: bool = False, many: bool = False) -> None:
    """Register `handler` for the event `name` (idempotent: ready() may run twice in tests)."""
    _known(name)
    subscription = Subscription(name, handler, on_commit, many)
    if subscription not in _subscriptions[name]:
        _subscriptions[name].append(subscription)


def on(*names: str, on_commit: bool = False, many: bool = False) -> Callable:
    """Decorator: subscribe the function to each of `names`."""
    def register(handler: Callable) -> Callable:
        for name in names:
            subscribe(name, handler, on_commit=on_commit, many=many)
        return handler
    return register


def on_many(*names: str, on_commit: bool = False) -> Callable:
    """Decorator: subscribe a function that takes a list of events of one name and location.
    record_many() hands it the whole batch (one query for a hundred messages, not a hundred);
    record() hands it a list of one."""
    return on(*names, on_commit=on_commit, many=True)


def record(name: str, *, location_id: int, **data) -> Event:
    """Record that something happened. Call it inside the transaction of the change."""
    return record_many(name, location_id=location_id, items=[data])[0]


def record_many(name: str, *, location_id: int, items: list[dict]) -> list[Event]:
    """Record several happenings of one kind in one location at once (a batch of filed
    messages): each subscriber in turn gets them all, a list-taking one (on_many) in one call,
    the others one event at a time in order."""
    _known(name)
    batch = []
    for data in items:
        _same_location(name, location_id, data)
        batch.append(Event(name, location_id, data))
    for capture in _captures:
        capture.extend(batch)
    for subscription in _subscriptions[name] if batch else ():
        calls = [partial(subscription.handler, batch)] if subscription.many else [partial(subscription.handler, e) for e in batch]
        for call in calls:
            if subscription.on_commit:
                transaction.on_commit(call)
            else:
                call()
    return batch


def _same_location(name: str, location_id: int, data: dict) -> None:
    """Subscribers write rows for `location_id` (webhook deliveries, GHL outbox, live groups):
    an object of another location in the data is a bug that would cross tenants, so it stops."""
    for key, value in data.items():
        other = getattr(value, "location_id", location_id)
        if other != location_id:
            raise ValueError(f"{name}: {key} belongs to location {other}, the event to location {location_id}")


def subscriptions() -> list[Subscription]:
    """Who reacts to what, in catalogue order then registration order."""
    return [s for name in CATALOGUE for s in _subscriptions.get(name, ())]


@contextmanager
def captured() -> Iterator[list[Event]]:
    """The events recorded inside the block, in order (for tests: assert what a service told)."""
    events: list[Event] = []
    _captures.append(events)
    try:
        yield events
    finally:
        _captures.remove(events)
