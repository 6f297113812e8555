"""Filing stored inbound events in batches: the event table is the queue.

The webhook ack stores the event rows and commits, with a wake-up (whatsnap.listener.wake: a
NOTIFY on PostgreSQL); no broker task is written per event. The claim loop in every worker
process (whatsnap/listener.py) calls inbound_events_file_batch() until it claims nothing:

- a batch claims up to INGEST_BATCH_SIZE pending events that were never tried, oldest first.
  On PostgreSQL with SELECT … FOR UPDATE SKIP LOCKED: two workers never take the same event,
  and the row locks last until the batch commits. On SQLite every write transaction is
  IMMEDIATE (it holds the database's write lock from its first statement), so the read inside
  it is the claim; batches there are at most SQLITE_BATCH events, to keep webhook acks waiting
  on that lock short.
- the batch is filed in one transaction: its plain messages set-based, a statement per step
  for all of them (conversations/batch_filing.py, in a savepoint: if that fails, they join the
  rest), then each other event in its own savepoint with the filer of its kind
  (receiving.inbound_event_file_locked). An event whose filer raises is rolled back alone,
  counted (attempts, error: shown to staff) and left to the minute sweep's retry; the rest of
  the batch commits. If the batch itself fails (its commit, a row lock, the connection), its
  events are filed again one transaction each (receiving.inbound_event_process), so one
  poisoned event never holds the others back.
- a crash (a killed worker, a lost connection) rolls the whole batch back: its events are still
  pending and never tried, and the next claim takes them.
- per-contact order: events are claimed oldest first and a batch files messages grouped by
  their sender (then in arrival order; batch_filing.py orders them), everything else after
  its messages. Two batches filed at once therefore take the contacts' row locks in the same
  order, which keeps them from deadlocking on each other.
- (account, provider id) uniqueness is the stored event's own constraint (a redelivery is
  never stored twice) and the message's, as before."""
import logging
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction

from conversations.batch_filing import messages_file_many
from conversations.models import InboundEvent
from conversations.receiving import INBOUND_CHANNEL, inbound_event_failed, inbound_event_file_locked, inbound_event_process

logger = logging.getLogger(__name__)

CHANNEL = INBOUND_CHANNEL
SQLITE_BATCH = 10
DRAIN_TASK_SECONDS = 20  # the sweep's drain task: well inside django-q2's task timeout


def batch_size() -> int:
    if connection.vendor == "postgresql":
        return settings.INGEST_BATCH_SIZE
    return min(settings.INGEST_BATCH_SIZE, SQLITE_BATCH)


def _claim(size: int) -> list[InboundEvent]:
    return list(
        InboundEvent.objects.filter(status=InboundEvent.Status.PENDING, attempts=0)
        .select_related("account__location")
        .order_by("id")
        .select_for_update(of=("self",), skip_locked=True)[:size]
    )


def inbound_events_file_batch(size: int | None = None) -> int:
    """Claim one batch of pending events and file it; returns how many were claimed."""
    ids: list[int] = []
    try:
        with transaction.atomic():
            events = _claim(size or batch_size())
            ids = [event.pk for event in events]
            for event in messages_file_many(events):  # plain messages filed; the rest in filing order
                try:
                    inbound_event_file_locked(event)
                except (OperationalError, InterfaceError):
                    raise  # the connection or a lock, not this event: the whole batch again
                except Exception as exc:
                    logger.warning("inbound event %s not filed in its batch; the others go on", event.pk, exc_info=True)
                    inbound_event_failed(event, exc)
    except (OperationalError, InterfaceError):
        if not ids or not connection.is_usable():
            raise
        _one_by_one(ids)
    except Exception:
        if not ids:
            raise
        logger.warning("batch of %s inbound events failed; filing them one by one", len(ids), exc_info=True)
        _one_by_one(ids)
    return len(ids)


def _one_by_one(ids: list[int]) -> None:
    for pk in ids:
        try:
            inbound_event_process(event_id=pk)  # records its own failure
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            logger.warning("inbound event %s failed on its own", pk, exc_info=True)


def inbound_events_drain() -> int:
    """The task the minute sweep queues when never-tried events wait (no claim loop running, or
    it was stopped): file batches for at most DRAIN_TASK_SECONDS. Returns how many were claimed."""
    claimed, deadline = 0, time.monotonic() + DRAIN_TASK_SECONDS
    while time.monotonic() < deadline:
        n = inbound_events_file_batch()
        claimed += n
        if not n:
            break
    return claimed
