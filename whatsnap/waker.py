"""On-time wake-ups for the one-off schedules `whatsnap.tasks.run_now_or_at` writes.

django-q2's own scheduler looks at stored schedules only every 30 s or so, so a drain asked for
"in 10 s" (GHL's rate-limit window, a paced send, a scheduled reply) ran up to 30 s late. The
waker is a thread in every qcluster worker process (started by django-q2's post_spawn signal:
the worker process forks nothing afterwards). It sleeps until the nearest due one-off schedule,
at most WHATSNAP_WAKE_INTERVAL_SECONDS (it also hears of schedules other processes write), and
fires each due one exactly once:

- the Schedule row stays the durable record (it survives restarts, an operator sees it);
- a waker claims a row with one conditional UPDATE (same pk, same next_run, repeats > 0 ->
  repeats 0, which is what django-q2 does to a fired ONCE schedule) that must change exactly one
  row, and queues the task inside the same transaction: another waker, or django-q2's scheduler
  (it selects rows FOR UPDATE with repeats != 0 and sets repeats to 0), finds the row taken; a
  schedule moved meanwhile (a new next_run) is not fired at its old time. With the ORM broker the
  queued task commits or vanishes with the claim; with Redis a failed commit can only repeat a
  task, never lose one. If the waker is not running, django-q2's scheduler still fires the row.
WHATSNAP_WAKE_INTERVAL_SECONDS = 0 turns the waker off (back to django-q2's 30 s tick)."""
import ast
import logging
import time

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.tasks import async_task

from whatsnap.tasks import WorkerThread

logger = logging.getLogger(__name__)

BATCH = 100


def _ours():
    """The one-off schedules the waker fires: ONCE, not yet fired, plain positional args (what
    run_now_or_at writes); anything fancier (kwargs, hooks, another cluster) is left to django-q2."""
    return (
        Schedule.objects.filter(schedule_type=Schedule.ONCE, repeats__gt=0, cluster__isnull=True)
        .filter(Q(kwargs__isnull=True) | Q(kwargs=""))
        .filter(Q(hook__isnull=True) | Q(hook=""))
        .filter(Q(intended_date_kwarg__isnull=True) | Q(intended_date_kwarg=""))
    )


def fire(row: dict, *, broker=None) -> bool:
    """Claim the schedule `row` ({pk, name, func, args, next_run} as read) and queue its task.
    True when this call fired it; False when it was taken or moved meanwhile."""
    args = ast.literal_eval(row["args"]) if row["args"] else ()
    if not isinstance(args, tuple):
        args = (args,)
    with transaction.atomic():
        claimed = _ours().filter(pk=row["pk"], next_run=row["next_run"]).update(repeats=0)
        if claimed != 1:
            return False
        task_id = async_task(row["func"], *args, group=row["name"] or str(row["pk"]), broker=broker or get_broker())
        Schedule.objects.filter(pk=row["pk"]).update(task=task_id)
    logger.info("woke %s (%s) %.2f s after its time", row["name"], row["func"],
                (timezone.now() - row["next_run"]).total_seconds())
    return True


def wake_due(*, broker=None, horizon: float | None = None) -> float:
    """Fire every due schedule; returns the seconds until the next one (at most `horizon`)."""
    horizon = settings.WHATSNAP_WAKE_INTERVAL_SECONDS if horizon is None else horizon
    now = timezone.now()
    rows = list(_ours().filter(next_run__lte=now + timezone.timedelta(seconds=horizon))
                .order_by("next_run").values("pk", "name", "func", "args", "next_run")[:BATCH])
    wait = horizon
    for row in rows:
        if row["next_run"] <= now:
            fire(row, broker=broker)
        else:
            wait = min(wait, (row["next_run"] - now).total_seconds())
    if len(rows) == BATCH and rows[-1]["next_run"] <= now:
        return 0.0  # more are due: go on at once
    return wait


class Waker(WorkerThread):
    name = "whatsnap-waker"

    def __init__(self, interval: float):
        super().__init__()
        self.interval = interval

    def run(self) -> None:
        broker, failing_since = None, None
        while not self.stopping.is_set():
            wait = self.interval
            try:
                close_old_connections()
                broker = broker or get_broker()
                wait = wake_due(broker=broker, horizon=self.interval)
                if failing_since is not None:
                    logger.info("waker: database and broker reachable again")
                    failing_since = None
            except Exception:
                broker = None
                connection.close()
                if failing_since is None:  # once per outage, not once a second
                    failing_since = time.monotonic()
                    logger.warning("waker: could not fire due schedules; trying again", exc_info=True)
            self.stopping.wait(max(wait, 0.01))
        connection.close()


_waker: Waker | None = None


def start_in_worker(sender=None, proc_name: str = "", **kwargs) -> None:
    """post_spawn receiver: one waker per qcluster worker process (after its fork)."""
    global _waker
    interval = settings.WHATSNAP_WAKE_INTERVAL_SECONDS
    if interval <= 0 or (_waker is not None and _waker.thread.is_alive()):
        return
    if Conf.SYNC:  # tasks run inline (Q_SYNC): django-q2 sends post_spawn in the calling process itself
        return
    _waker = Waker(interval).start()
    logger.debug("waker started in %s (every <= %.2f s)", proc_name, interval)
