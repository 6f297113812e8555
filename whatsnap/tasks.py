"""Background-task plumbing shared by every app (django-q2 underneath).

- ``enqueue(func, *args)``: queue now, best effort. The work is always stored in a row first,
  so when the broker is down the minute sweep queues it again; nothing is lost.
- ``enqueue_on_commit(func, *args)``: the same, once the current transaction commits.
- ``on_commit_once(key, func)``: ``transaction.on_commit`` at most once per key and transaction
  (a batch of a hundred messages starts one GHL drain, not a hundred).
- ``run_now_or_at(func, arg, name=..., at=...)``: now, or at a moment kept in the database (a
  django-q2 one-off Schedule); the waker in every worker process (whatsnap/waker.py) fires it
  when due, within about WHATSNAP_WAKE_INTERVAL_SECONDS, instead of django-q2's 30 s tick.
- ``register_sweep(func)`` / ``run_sweeps()``: each app registers its minute sweep in its
  AppConfig.ready(); one schedule (``whatsnap.tasks.run_sweeps``, every minute) runs them all,
  each on its own so one failing sweep does not starve the others."""
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial

from django.db import transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.tasks import async_task

logger = logging.getLogger(__name__)

_broker = None
_sweeps: list[Callable[[], int]] = []


def _shared_broker():
    """One broker (and so one Redis connection pool) per process: a new one per task costs
    a TCP connect on the webhook's ack path."""
    global _broker
    if _broker is None:
        _broker = get_broker()
    return _broker


def enqueue(func: Callable, *args) -> None:
    global _broker
    try:
        async_task(func, *args, group=func.__name__, broker=_shared_broker())
    except Exception:
        _broker = None
        # The row is stored; the sweep queues it again once the broker is back.
        logger.warning("task broker unavailable; %s%s left for the sweep", func.__name__, args, exc_info=True)


def tasks_run_inline() -> bool:
    """Q_CLUSTER sync (tests, Q_SYNC=1): no worker process runs; a queued task runs at once."""
    return bool(Conf.SYNC)


def enqueue_on_commit(func: Callable, *args) -> None:
    transaction.on_commit(lambda: enqueue(func, *args))


def on_commit_once(key: str, func: Callable[[], object]) -> None:
    """Run `func` after the current transaction commits, unless a callback with the same key
    waits for that commit already. The waiting callbacks are Django's own list: a savepoint
    rolled back takes its callbacks with it, so a key is never kept by one that will not run."""
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(getattr(queued, "once_key", None) == key for _sids, queued, _robust in connection.run_on_commit):
        return
    call = partial(func)
    call.once_key = key
    transaction.on_commit(call)


def run_now_or_at(func: Callable, arg: int, *, name: str, at=None) -> None:
    """Queue `func(arg)` now, or at `at` as a one-off schedule kept in the database (it survives
    restarts; one per name, so rescheduling moves it instead of piling up)."""
    if at is None:
        enqueue(func, arg)
        return
    Schedule.objects.update_or_create(
        name=name,
        defaults={"func": f"{func.__module__}.{func.__name__}", "args": repr((arg,)),
                  "schedule_type": Schedule.ONCE, "next_run": at, "repeats": 1},
    )


def run_now_with_fallback(func: Callable, arg: int, *, name: str, after) -> None:
    """Queue `func(arg)` now, with a one-off schedule `after` later kept in the database in case
    the broker loses it; the task calls cancel_fallback(name) once it has done its work."""
    run_now_or_at(func, arg, name=name, at=timezone.now() + after)
    enqueue(func, arg)


def cancel_fallback(name: str) -> None:
    Schedule.objects.filter(name=name).delete()


def register_sweep(func: Callable[[], int]) -> None:
    if func not in _sweeps:
        _sweeps.append(func)


def sweeps() -> list[Callable[[], int]]:
    return list(_sweeps)


def run_sweeps() -> int:
    """Scheduled every minute. Returns how much work the sweeps found."""
    found = 0
    for sweep in _sweeps:
        try:
            found += sweep() or 0
        except Exception:
            logger.exception("sweep %s.%s failed; the others ran", sweep.__module__, sweep.__qualname__)
    return found


class WorkerThread(ABC):
    """A daemon thread beside a qcluster worker process's task loop (the waker, the claim
    loop): `run` until `stopping` is set."""
    name = "whatsnap-thread"

    def __init__(self):
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name=self.name, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self.thread.join(timeout)

    @abstractmethod
    def run(self) -> None:
        """The thread's loop: returns once `stopping` is set."""
