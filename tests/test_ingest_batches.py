"""Issue 20: the stored event table is the queue. The ack writes the event row, then a NOTIFY
(folded with others within 20 ms), no broker task; workers claim pending events in batches (FOR UPDATE SKIP LOCKED) and file a batch
in one transaction, a poisoned event isolated from the rest."""
import hashlib
import json
import threading
from datetime import datetime, timezone as dt_tz

import psycopg
import pytest
from django.db import OperationalError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ

from accounts.providers.base import ConnectionChanged
from accounts.providers.sandbox import sign
from conversations import batch_filing, ingest
from conversations.models import InboundEvent, Message
from conversations.receiving import webhook_events_record
from conversations.tasks import sweep_pending
from whatsnap import listener as listener_module
from whatsnap.listener import Listener, wake

pytestmark = pytest.mark.django_db(transaction=True)  # real commits: NOTIFY is delivered on commit


@pytest.fixture
def with_workers(monkeypatch):
    """Production's task mode: tasks go to the broker (the ORM one here) for worker processes;
    the test settings run them inline."""
    monkeypatch.setattr(Conf, "SYNC", False)
    yield
    connection.close()


def post_sandbox(account, payload: dict):
    return post_sandbox_raw(account, json.dumps(payload).encode())


def post_sandbox_raw(account, body: bytes):
    return Client().post(f"/webhooks/sandbox/{account.pk}/", data=body, content_type="application/json",
                         HTTP_X_SANDBOX_SIGNATURE=sign(account.webhook_secret, body))


def message_payload(pid: str, phone: str, text: str = "hi") -> dict:
    return {"provider_id": pid, "from_phone": phone, "name": "", "text": text,
            "at": datetime.now(dt_tz.utc).isoformat(), "media": []}


def store(account, payload: dict) -> InboundEvent:
    """A stored pending event, as the ack path leaves it (or an earlier version left it)."""
    key = f"msg:{payload.get('provider_id', id(payload))}"[:160]
    return InboundEvent.objects.create(account=account, kind=InboundEvent.Kind.MESSAGE, dedupe_key=key, payload=payload)


def listen(channel: str) -> psycopg.Connection:
    params = connection.get_connection_params()
    for key in ("cursor_factory", "pool", "server_side_binding", "prepare_threshold", "context"):
        params.pop(key, None)
    conn = psycopg.connect(**params, autocommit=True)
    conn.execute(f'LISTEN "{channel}"')
    return conn


def test_an_ack_writes_one_event_row_and_no_broker_task(with_workers, sandbox_account):
    post_sandbox(sandbox_account, {"id": "warm", "from": "+14155550100", "text": "x"})  # last_webhook_at written
    listener = listen(ingest.CHANNEL)
    try:
        with CaptureQueriesContext(connection) as queries:
            response = post_sandbox(sandbox_account, {"id": "one", "from": "+14155550123", "text": "Hi"})
        assert response.status_code == 200
        writes = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
        assert len(writes) == 1 and "conversations_inboundevent" in writes[0], writes
        assert not OrmQ.objects.exists()  # no django-q2 task per event
        assert InboundEvent.objects.get(dedupe_key="msg:one").status == "pending" and not Message.objects.exists()
        assert [n.channel for n in listener.notifies(timeout=5, stop_after=1)] == [ingest.CHANNEL]  # the workers are woken
    finally:
        listener.close()
    assert ingest.inbound_events_file_batch() == 2  # both webhooks' events, in one batch
    assert set(Message.objects.values_list("provider_message_id", flat=True)) == {"warm", "one"}
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {"done"}


def test_one_poisoned_event_inside_a_batch_never_blocks_the_rest(with_workers, sandbox_account, monkeypatch):
    phones = ["+14155550201", "+14155550202", "+14155550203"]
    good = []
    for i in range(9):
        good.append(store(sandbox_account, message_payload(f"g{i}", phones[i % 3], text=f"text {i}")))
        if i == 3:
            no_time = message_payload("bad-at", phones[0])
            del no_time["at"]  # the filer raises KeyError (a payload an earlier version stored)
            poisoned_python = store(sandbox_account, no_time)
        if i == 6:  # the database refuses it (a provider id over the message column's 128 characters)
            poisoned_db = store(sandbox_account, message_payload("x" * 200, phones[1]))
    assert ingest.inbound_events_file_batch(size=100) == 11  # one batch took them all
    assert Message.objects.count() == 9
    assert set(InboundEvent.objects.filter(pk__in=[e.pk for e in good]).values_list("status", flat=True)) == {"done"}
    for poisoned, reason in ((poisoned_python, "KeyError"), (poisoned_db, "DataError")):
        poisoned.refresh_from_db()
        # kept with its reason, pending for the sweep's retry, never claimed again by the batches
        assert poisoned.status == "pending" and poisoned.attempts == 1 and reason in poisoned.error, poisoned.error
    assert ingest.inbound_events_file_batch() == 0
    # per-contact order: each person's messages were filed in the order they arrived
    for phone in phones:
        texts = list(Message.objects.filter(conversation__contact__phone=phone).order_by("pk").values_list("text", flat=True))
        assert texts == sorted(texts, key=lambda t: int(t.split()[1])) and len(texts) == 3
    # the sweep retries the poisoned ones (one task each), and they stay kept with their reason
    InboundEvent.objects.filter(status="pending").update(received_at=timezone.now() - timezone.timedelta(hours=1))
    monkeypatch.setattr(Conf, "SYNC", True)  # the retry tasks run here
    sweep_pending()
    assert list(InboundEvent.objects.filter(pk__in=[poisoned_python.pk, poisoned_db.pk]).values_list("attempts", flat=True)) == [2, 2]


def test_a_batch_that_fails_as_a_whole_is_filed_one_by_one(with_workers, sandbox_account, monkeypatch):
    events = [store(sandbox_account, message_payload(f"w{i}", f"+1415555030{i}")) for i in range(4)]
    calls = []
    real = batch_filing._bump

    def lock_lost_once(threads):
        calls.append(1)
        if len(calls) == 1:  # what a lost lock or connection looks like to the batch
            raise OperationalError("deadlock detected")
        return real(threads)

    monkeypatch.setattr(batch_filing, "_bump", lock_lost_once)
    assert ingest.inbound_events_file_batch() == 4
    assert len(calls) == 5  # the batch rolled back, then each event in its own transaction
    assert Message.objects.count() == 4
    assert set(InboundEvent.objects.filter(pk__in=[e.pk for e in events]).values_list("status", flat=True)) == {"done"}


def test_two_workers_claiming_at_once_never_file_an_event_twice(with_workers, sandbox_account):
    """PostgreSQL: a batch's row locks make the other worker skip those events, not wait."""
    events = [store(sandbox_account, message_payload(f"c{i}", f"+141555504{i % 20:02d}")) for i in range(120)]
    claimed: dict[str, int] = {}

    def worker(name, start):
        start.wait()
        try:
            while n := ingest.inbound_events_file_batch(size=7):
                claimed[name] = claimed.get(name, 0) + n
        finally:
            connection.close()

    with transaction.atomic():
        held = ingest._claim(5)  # a third worker holds a batch, not yet committed
        start = threading.Barrier(2)
        threads = [threading.Thread(target=worker, args=(f"w{i}", start)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "a worker waited on another's batch"
        assert [e.pk for e in held] == [e.pk for e in events[:5]]
    assert sum(claimed.values()) == 115 and len(claimed) == 2, claimed  # every event claimed once
    assert Message.objects.count() == 115
    assert Message.objects.values("provider_message_id").distinct().count() == 115
    assert InboundEvent.objects.filter(status="pending").count() == 5  # the held batch: rolled back, pending
    assert ingest.inbound_events_file_batch() == 5 and Message.objects.count() == 120


def test_the_claim_loop_is_woken_by_notify(with_workers, sandbox_account):
    """A worker process's loop files a webhook's event within seconds though it polls only every 60 s."""
    loop = Listener(poll=60).start()
    try:
        assert post_sandbox(sandbox_account, {"id": "woken", "from": "+14155550123", "text": "Hi"}).status_code == 200
        deadline = timezone.now() + timezone.timedelta(seconds=10)
        while timezone.now() < deadline and not Message.objects.filter(provider_message_id="woken").exists():
            threading.Event().wait(0.05)
        assert Message.objects.filter(provider_message_id="woken").exists()
    finally:
        loop.stop()


def test_a_burst_of_acks_sends_few_wake_ups_and_the_last_row_is_always_followed_by_one(with_workers, sandbox_account, monkeypatch):
    """The wake-up leaves after the commit, outside the ack's transaction (PostgreSQL's notify
    lock is then never held through an ack's WAL flush), at most one per WAKE_WINDOW; the row
    of the last webhook of a burst still gets one after it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'whatsnap_inbound_event_notify'")
        assert cursor.fetchone()[0] == 0  # migration 0019: no NOTIFY inside the insert's transaction
    post_sandbox(sandbox_account, {"id": "warm", "from": "+14155550100", "text": "x"})
    monkeypatch.setattr(listener_module, "WAKE_WINDOW", 0.3)  # longer than a test client's post
    listener = listen(ingest.CHANNEL)
    try:
        for i in range(30):
            assert post_sandbox(sandbox_account, {"id": f"b{i}", "from": "+14155550123", "text": f"{i}"}).status_code == 200
        last_committed = timezone.now()
        received = []
        for n in listener.notifies(timeout=1.5):
            received.append(timezone.now())
        assert 1 <= len(received) < 30, len(received)  # folded, not one per webhook
        assert received[-1] >= last_committed  # the trailing one came after the last row's commit
    finally:
        listener.close()


def test_a_rolled_back_write_wakes_nobody(with_workers, sandbox_account):
    listener = listen(ingest.CHANNEL)
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            wake(ingest.CHANNEL)
            raise RuntimeError("the rows are gone")
        assert list(listener.notifies(timeout=0.3)) == []
        with transaction.atomic():
            wake(ingest.CHANNEL)
        assert [n.channel for n in listener.notifies(timeout=2, stop_after=1)] == [ingest.CHANNEL]
    finally:
        listener.close()


def test_what_postgresql_refuses_is_stored_cleaned_and_long_ids_do_not_collide(with_workers, sandbox_account):
    """A NUL character, a lone surrogate, a non-finite number: each made every redelivery a 500
    and the message was never stored. Two 200-character ids sharing their first 160 characters
    were one event."""
    response = post_sandbox(sandbox_account, {"id": "nul", "from": "+14155550131", "text": "a\x00b \ud800 c", "media": [float("nan")]})
    assert response.status_code == 200, response.content
    stored = InboundEvent.objects.get(dedupe_key="msg:nul")
    assert stored.payload["text"] == "ab \ufffd c"
    shared = "x" * 170
    for tail in ("one", "two"):
        assert post_sandbox(sandbox_account, {"id": shared + tail, "from": "+14155550132", "text": tail}).status_code == 200
    keys = list(InboundEvent.objects.filter(dedupe_key__startswith="msg:xxx").values_list("dedupe_key", flat=True))
    assert len(keys) == 2 and all(len(k) <= 160 for k in keys)
    assert post_sandbox(sandbox_account, {"id": shared + "two", "from": "+14155550132", "text": "two"}).json()["new"] == 0  # a redelivery


def test_deep_nesting_session_text_and_crafted_keys(with_workers, sandbox_account):
    """From the second hostile review: a payload nested 450 deep is stored (what lies below 64
    levels dropped), not a 500 forever; a NUL in a session event's text is stored cleaned; a
    160-character id shaped like a hashed key, and ids that differ only by a NUL, stay apart."""
    nested = []
    for _ in range(450):
        nested = [nested]
    response = post_sandbox(sandbox_account, {"id": "deep", "from": "+14155550141", "text": "deep", "media": nested})
    assert response.status_code == 200, response.content
    assert "dropped" in json.dumps(InboundEvent.objects.get(dedupe_key="msg:deep").payload)
    body = '{"id": "deeper", "from": "+14155550141", "text": "x", "media": ' + "[" * 5000 + "]" * 5000 + "}"
    response = post_sandbox_raw(sandbox_account, body.encode())
    assert response.status_code == 400 and response.json()["detail"] == "Body nested too deeply."
    assert not InboundEvent.objects.filter(dedupe_key="msg:deeper").exists()

    webhook_events_record(account=sandbox_account, events=[ConnectionChanged(status="error", reason="bad\x00 link")])
    sandbox_account.refresh_from_db()
    assert "\x00" not in json.dumps(list(sandbox_account.__dict__.values()), default=str)

    long_id = "y" * 200
    crafted = ("msg:" + long_id)[:95][4:] + "#" + hashlib.sha256(("msg:" + long_id).encode()).hexdigest()
    for pid in (long_id, crafted, "c\x00x", "cx"):
        assert post_sandbox(sandbox_account, {"id": pid, "from": "+14155550142", "text": "t"}).json()["new"] == 1, pid
