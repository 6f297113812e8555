"""Issue 20 point 2: plain messages of a claimed batch are filed set-based
(conversations/batch_filing.py), with a statement per step instead of ~20 per message. What it
leaves behind must be what filing the same events one by one leaves behind."""
from datetime import datetime, timedelta, timezone as dt_tz

import threading

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_q.conf import Conf

from accounts.models import Location
from accounts.services import account_connect, account_create
from contacts import bulk
from contacts.models import Contact, ContactAccount
from conversations import batch_filing, ingest
from conversations.models import Conversation, InboundEvent, Message
from conversations.receiving import inbound_event_file_locked
from hooks.models import WebhookDelivery, WebhookSubscription
from whatsnap import events

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=dt_tz.utc)


@pytest.fixture
def with_workers(monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", False)  # tasks queued for worker processes, not run here
    yield
    connection.close()


def sms_account(name: str):
    location = Location.objects.create(name=name, slug=name.lower())
    account = account_create(location=location, kind="android_sms", backend="sandbox", name="Sales", phone_number="+14155550111")
    account_connect(account=account)
    account.refresh_from_db()
    WebhookSubscription.objects.create(location=location, url="https://hooks.example.com/in", secret_encrypted="x",
                                       events=["message.received", "contact.created"])
    # already known: a contact a person named, and one whose conversation was resolved
    Contact.objects.create(location=location, phone="+14155550102", name="Robert", name_source=Contact.NameSource.PERSON)
    old = Contact.objects.create(location=location, phone="+14155550106", name="Flo", name_source=Contact.NameSource.PLATFORM)
    Conversation.objects.create(location=location, contact=old, account=account, status=Conversation.Status.RESOLVED,
                                unread_count=0, first_inbound_at=T0 - timedelta(days=3), last_message_at=T0 - timedelta(days=3))
    return account


def msg(pid, phone, text="", name="", minute=0, **extra):
    return {"provider_id": pid, "from_phone": phone, "name": name, "text": text, "media": [],
            "at": (T0 + timedelta(minutes=minute)).isoformat(), **extra}


SCENARIO = [
    msg("p1", "+14155550101", "hello", "Ada", 1),
    msg("p2", "+14155550102", "hi", "Bob", 2),  # a person named this contact: the platform's name is not taken
    msg("p3", "4155550101", "again", "Ada L", 3),  # the same person, written without the country code; renamed
    msg("p3b", "+14155550101", "and again", "", 3),  # a message without a name renames nobody
    msg("p4", "+14155550103", "STOP", "", 4),  # an SMS opt-out keyword
    msg("p5", "+14155550104", "you said hello", "Cy", 5, reply_to="p1", quoted_text="hello"),  # not plain
    msg("p6", "+14155550104", "and this", "Cy", 6),  # plain, but its sender has one that is not: one by one
    msg("p7", "+14155550105", "", "", 7, media=[{"url": "https://x.example/a.jpg", "content_type": "image/jpeg", "upload": 5}]),
    msg("p8", "+14155550106", "back again", "Flora", 8),  # a resolved conversation opens again; renamed
    msg("p9", "+14155550106", "still me", "", 9),
    msg("p10", "+1 (415) 555-0104", "third", "Cy", 10),  # the not-plain sender again, written otherwise
]


def store_all(account):
    return [InboundEvent.objects.create(account=account, kind=InboundEvent.Kind.MESSAGE, dedupe_key=f"msg:{p['provider_id']}", payload=p)
            for p in SCENARIO]


def state(account) -> dict:
    contacts = Contact.objects.filter(location=account.location)
    return {
        "contacts": sorted((c.phone, c.name, c.name_source, c.opted_out, c.active_account_id == account.pk,
                            tuple(sorted(c.tags.values_list("name", flat=True)))) for c in contacts),
        "links": sorted(ContactAccount.objects.filter(account=account).values_list("contact__phone", "platform", "first_seen_at", "last_seen_at")),
        "threads": sorted(Conversation.objects.filter(account=account).values_list(
            "contact__phone", "status", "unread_count", "last_message_preview", "last_message_at", "first_inbound_at")),
        "messages": [(m.conversation.contact.phone, m.text, m.media, m.provider_message_id, m.direction, m.status, m.sent_at,
                      m.reply_to.provider_message_id if m.reply_to else "", m.quoted_text)
                     for m in Message.objects.filter(account=account).select_related("conversation__contact", "reply_to")
                     .order_by("conversation__contact__phone", "pk")],
        "deliveries": sorted(WebhookDelivery.objects.filter(location=account.location).values_list("event", flat=True)),
    }


def test_a_batch_leaves_what_one_by_one_filing_leaves(with_workers):
    one_by_one, batched = sms_account("One"), sms_account("Batch")
    with events.captured() as told_one_by_one:
        for event in store_all(one_by_one):
            with transaction.atomic():
                assert inbound_event_file_locked(InboundEvent.objects.select_for_update().get(pk=event.pk)) == "done"
    stored = store_all(batched)
    with events.captured() as told_batched, CaptureQueriesContext(connection) as queries:
        assert ingest.inbound_events_file_batch() == len(SCENARIO)
    assert state(batched) == state(one_by_one)
    assert set(InboundEvent.objects.filter(pk__in=[e.pk for e in stored]).values_list("status", "attempts")) == {("done", 1)}
    # the same happenings told to the apps above (one contact upsert per changed contact)
    def told(captured):
        received = [e for e in captured if e.name == "message.received"]
        return (sorted(e["message"].provider_message_id for e in received),
                sorted({e["sender"].phone for e in received if e["contact_changed"]}),
                sorted(e["contact"].phone for e in captured if e.name == "contact.created"))
    assert told(told_batched) == told(told_one_by_one)
    # new, renamed, or newly given the account's tag (the two known ones had not written to it)
    assert told(told_batched)[1] == ["+14155550101", "+14155550102", "+14155550103", "+14155550104", "+14155550105", "+14155550106"]
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "conversations_message"')]
    assert len(inserts) == 4  # the plain ones in one insert; p5, p6, p10 (one sender, not plain) one each


def test_plain_messages_cost_statements_per_batch_not_per_message(with_workers):
    account = sms_account("Burst")
    for i in range(60):
        InboundEvent.objects.create(account=account, kind=InboundEvent.Kind.MESSAGE, dedupe_key=f"msg:b{i}",
                                    payload=msg(f"b{i}", f"+1415555{2000 + i}", f"reply {i}", f"Person {i}", i))
    with CaptureQueriesContext(connection) as queries:
        assert ingest.inbound_events_file_batch() == 60
    filing = [q for q in queries.captured_queries if "django_q_ormq" not in q["sql"]]  # the broker's task rows aside
    assert len(filing) < 30, len(filing)  # one by one: ~20 a message
    assert Message.objects.filter(account=account).count() == 60
    assert Conversation.objects.filter(account=account, unread_count=1).count() == 60
    assert WebhookDelivery.objects.filter(event="message.received").count() == 60


def test_a_contact_another_worker_created_meanwhile_sends_the_batch_one_by_one(with_workers, caplog, monkeypatch):
    """Another worker commits the same new person between this batch's select and its insert:
    the bulk insert collides (IntegrityError), the set-based part rolls back to its savepoint
    and every event is filed one by one, finding that contact."""
    account = sms_account("Race")
    for i in range(3):
        InboundEvent.objects.create(account=account, kind=InboundEvent.Kind.MESSAGE, dedupe_key=f"msg:r{i}",
                                    payload=msg(f"r{i}", "+14155550777", f"text {i}", "Race", i))
    real, committed = bulk._platform_name, []

    def other_worker():
        Contact.objects.create(location=account.location, phone="+14155550777", name="Other worker")
        connection.close()

    def after_the_select(name):  # called once the batch knows whom it must create
        if not committed:
            thread = threading.Thread(target=other_worker)
            thread.start()
            thread.join()
            committed.append(1)
        return real(name)

    monkeypatch.setattr(bulk, "_platform_name", after_the_select)
    assert ingest.inbound_events_file_batch() == 3
    assert committed and "filing them one by one" in caplog.text and "IntegrityError" in caplog.text
    contact = Contact.objects.get(location=account.location, phone="+14155550777")
    assert contact.name == "Race"  # the other worker's contact, renamed by the messages
    assert list(Message.objects.filter(account=account).order_by("pk").values_list("text", flat=True)) == ["text 0", "text 1", "text 2"]
    assert set(InboundEvent.objects.filter(account=account).values_list("status", flat=True)) == {"done"}


def test_one_tenants_bad_message_leaves_the_others_set_based(with_workers):
    """A message no bulk insert would take (an id longer than its column) is filed alone and
    kept with its reason; another location's messages in the same batch stay set-based."""
    hostile, victim = sms_account("Hostile"), sms_account("Victim")
    bad = InboundEvent.objects.create(account=hostile, kind=InboundEvent.Kind.MESSAGE, dedupe_key="msg:long",
                                      payload=msg("x" * 200, "+14155550900", "long id"))
    for i in range(30):
        InboundEvent.objects.create(account=victim, kind=InboundEvent.Kind.MESSAGE, dedupe_key=f"msg:v{i}",
                                    payload=msg(f"v{i}", f"+1415555{3000 + i}", f"hello {i}", "", i))
    with CaptureQueriesContext(connection) as queries:
        assert ingest.inbound_events_file_batch() == 31
    filing = [q for q in queries.captured_queries if "django_q_ormq" not in q["sql"]]
    assert len(filing) < 70, len(filing)  # the bad one alone costs ~20; one by one, the 30 would cost ~600
    assert Message.objects.filter(account=victim).count() == 30
    bad.refresh_from_db()
    assert bad.status == "pending" and bad.attempts == 1 and "DataError" in bad.error


def test_what_others_write_meanwhile_is_not_undone(with_workers, monkeypatch):
    """Between the batch's read of a conversation and its update, another worker files an
    earlier message (first inbound time) and an agent sets it pending: both stay."""
    account = sms_account("Meanwhile")
    contact = Contact.objects.create(location=account.location, phone="+14155550222")
    conversation = Conversation.objects.create(location=account.location, contact=contact, account=account, unread_count=2)
    InboundEvent.objects.create(account=account, kind=InboundEvent.Kind.MESSAGE, dedupe_key="msg:late",
                                payload=msg("late", "+14155550222", "late", "", 30))
    real = batch_filing._threads

    def read_then_others_write(acc, contacts):
        found = real(acc, contacts)
        Conversation.objects.filter(pk=conversation.pk).update(first_inbound_at=T0, status=Conversation.Status.PENDING, unread_count=0)
        return found

    monkeypatch.setattr(batch_filing, "_threads", read_then_others_write)
    with events.captured() as told:
        assert ingest.inbound_events_file_batch() == 1
    conversation.refresh_from_db()
    assert (conversation.first_inbound_at, conversation.status, conversation.unread_count) == (T0, "pending", 1)
    assert conversation.last_message_at == T0 + timedelta(minutes=30)
    told_conversation = next(e for e in told if e.name == "message.received")["conversation"]
    assert (told_conversation.status, told_conversation.unread_count) == ("pending", 1)  # what subscribers saw
