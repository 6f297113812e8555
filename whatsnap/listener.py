"""Work kept in rows, claimed in batches by a loop in every worker process.

An app registers a drain for a channel (`register_drain("whatsnap_inbound", func)`, in its
AppConfig.ready()): `func()` claims one batch of its rows, handles it and returns how many it
claimed (0: nothing left). The code that writes such rows calls `wake(channel)` in (or after)
the transaction that wrote them. There is no broker task per row. After the commit (never if
it rolls back) the process sends a wake-up, at most one per channel every WAKE_WINDOW seconds:
one asked for sooner is folded into one sent at the window's end, so every committed row is
followed by a wake-up within WAKE_WINDOW, and a burst of acks sends ~50 a second, not one per
webhook:

- PostgreSQL: `SELECT pg_notify(channel, '')` in its own transaction; each worker process's
  loop LISTENs on its own connection. (A NOTIFY inside the writing transaction would hold
  PostgreSQL's global notify lock through that transaction's commit, so notifying commits
  queue behind one another; bench/README.md, issue 20.)
- SQLite with REDIS_URL set: a publish on Redis pub/sub.
- SQLite alone: nothing is sent; the loops look every WHATSNAP_CLAIM_POLL_SECONDS.

Whatever wakes it, a loop drains every registered channel until each returns 0, then waits for
the next wake-up, at most WHATSNAP_CLAIM_POLL_SECONDS (a lost notification, a crashed
worker's rolled-back batch or a restart only delay the work by that much; the minute sweeps
stay the safety net). Under load it lets the next batch fill for GATHER_SECONDS first. The
loop is a thread started per qcluster worker process by django-q2's post_spawn signal, beside
the waker (whatsnap/waker.py): it holds none of django-q2's task slots. A database or Redis
outage is logged once; the loop reconnects every second."""
import logging
import os
import threading
import time
from collections.abc import Callable

import psycopg
import redis
from django.conf import settings
from django.db import close_old_connections, connection, connections, transaction

from whatsnap.tasks import WorkerThread, tasks_run_inline

logger = logging.getLogger(__name__)

# Under load (the last drain found rows less than BUSY_SECONDS before this wake-up) a loop waits
# GATHER_SECONDS after a wake-up before it claims, so a burst is filed in batches of several
# events instead of one per wake-up; a lone webhook after a quiet moment is claimed at once.
# 0.2 s, not 0.05: at ~250 webhooks/s the batches grow from ~12 to ~50 events and the worker's
# CPU per message falls by a quarter (bench/README.md, issue 20); it shares the cores with the
# web process, so the acks go faster too. A message in a burst waits up to 0.2 s more.
BUSY_SECONDS = 0.5
GATHER_SECONDS = 0.2
WAKE_WINDOW = 0.02

_drains: dict[str, list[Callable[[], int]]] = {}
_redis = None


def register_drain(channel: str, func: Callable[[], int]) -> None:
    funcs = _drains.setdefault(channel, [])
    if func not in funcs:
        funcs.append(func)


def _on_postgresql() -> bool:
    return connection.vendor == "postgresql"


def wake(channel: str) -> None:
    """Call in (or after, in autocommit) the transaction that wrote rows for `channel`'s drain."""
    if _on_postgresql() or settings.REDIS_URL:
        transaction.on_commit(lambda: _wakes.wake(channel), robust=True)


class _Waker:
    """One sender thread per process: a channel asked for is marked due; the thread sends each
    due channel's wake-up, then lets WAKE_WINDOW pass before it sends again, so what is asked
    for meanwhile is folded into the next one. A channel is marked due after its rows'
    commit and unmarked just before its wake-up goes: every committed row is followed by one.
    However many acks ask, there is one thread and at most one wake-up per channel in flight."""

    def __init__(self):
        self._ready = threading.Condition()
        self._due: set[str] = set()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def wake(self, channel: str) -> None:
        with self._ready:
            self._due.add(channel)
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                thread = threading.Thread(target=self._run, name="whatsnap-wakes", daemon=True)
                thread.start()  # raises before anything is set if no thread can start
                self._thread, self._pid = thread, os.getpid()
            self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._due:
                    self._ready.wait()
                channels, self._due = self._due, set()
            try:
                for channel in channels:
                    _send(channel)
            except BaseException:
                with self._ready:
                    self._due |= channels  # sent again by the thread the next wake() starts
                raise
            finally:
                connection.close()  # this thread's connection goes back to the pool between sends
            time.sleep(WAKE_WINDOW)


_wakes = _Waker()
os.register_at_fork(after_in_child=_wakes.__init__)  # a child never inherits a held lock or the thread


def _send(channel: str) -> None:
    if not _on_postgresql():
        _publish(channel)
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [channel])
    except Exception:
        logger.warning("could not send a wake-up on %s; the worker's poll finds the rows", channel, exc_info=True)


def _publish(channel: str) -> None:
    global _redis
    try:
        if _redis is None:
            _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        _redis.publish(channel, "")
    except Exception:
        _redis = None  # the loops still look every WHATSNAP_CLAIM_POLL_SECONDS
        logger.warning("could not publish a wake-up on %s; the worker's poll finds the rows", channel, exc_info=True)


def drain_all(stopping: threading.Event | None = None) -> int:
    """Run every registered drain until it finds nothing. Returns how many rows were claimed."""
    total = 0
    for funcs in list(_drains.values()):
        for func in funcs:
            while not (stopping and stopping.is_set()):
                claimed = func()
                total += claimed
                if not claimed:
                    break
    return total


class _Signal:
    """What a loop waits on: LISTEN on PostgreSQL, a Redis subscription, or just the clock."""

    def __init__(self, channels: list[str]):
        self.channels, self.pg, self.pubsub = channels, None, None
        if _on_postgresql():
            params = connections["default"].get_connection_params()
            for key in ("cursor_factory", "pool", "server_side_binding", "prepare_threshold", "context"):
                params.pop(key, None)
            self.pg = psycopg.connect(**params, autocommit=True)
            for channel in channels:
                self.pg.execute(f'LISTEN "{channel}"')
        elif settings.REDIS_URL:
            self.pubsub = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=30).pubsub(ignore_subscribe_messages=True)
            self.pubsub.subscribe(*channels)

    def clear(self) -> None:
        """Forget wake-ups already received: the drain that follows sees their rows."""
        if self.pg is not None:
            for _ in self.pg.notifies(timeout=0):
                pass
        elif self.pubsub is not None:
            while self.pubsub.get_message(timeout=0) is not None:
                pass

    def wait(self, seconds: float, stopping: threading.Event) -> None:
        """Until a wake-up, `seconds` pass or the loop is stopped (looked at every second)."""
        deadline = time.monotonic() + seconds
        while not stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self.pg is not None:
                if any(True for _ in self.pg.notifies(timeout=min(left, 1.0), stop_after=1)):
                    return
            elif self.pubsub is not None:
                if self.pubsub.get_message(timeout=min(left, 1.0)) is not None:
                    return
            else:
                stopping.wait(left)

    def close(self) -> None:
        for handle in (self.pg, self.pubsub):
            try:
                if handle is not None:
                    handle.close()
            except Exception:
                pass


class Listener(WorkerThread):
    name = "whatsnap-claims"

    def __init__(self, poll: float):
        super().__init__()
        self.poll = poll

    def run(self) -> None:
        failing_since = None
        while not self.stopping.is_set():
            signal = None
            try:
                close_old_connections()
                signal = _Signal(list(_drains))
                busy_until = 0.0
                while not self.stopping.is_set():
                    signal.clear()
                    close_old_connections()
                    if drain_all(self.stopping):
                        busy_until = time.monotonic() + BUSY_SECONDS
                    if failing_since is not None:
                        logger.info("claim loop: database reachable again")
                        failing_since = None
                    signal.wait(self.poll, self.stopping)
                    if time.monotonic() < busy_until:
                        # rows keep coming: let the next batch fill for a moment (one batch of
                        # ten costs about what one event alone does)
                        self.stopping.wait(GATHER_SECONDS)
            except Exception:
                connection.close()
                if failing_since is None:  # once per outage, not once a second
                    failing_since = time.monotonic()
                    logger.warning("claim loop: could not claim or listen; trying again", exc_info=True)
                self.stopping.wait(1.0)
            finally:
                if signal is not None:
                    signal.close()
        connection.close()


_listener: Listener | None = None


def start_in_worker(sender=None, proc_name: str = "", **kwargs) -> None:
    """post_spawn receiver: one claim loop per qcluster worker process (after its fork)."""
    global _listener
    poll = settings.WHATSNAP_CLAIM_POLL_SECONDS
    # Q_CLUSTER sync runs each task through django-q2's worker function in the caller's process,
    # which sends post_spawn too: there is no worker process then, and rows are filed at once.
    if poll <= 0 or not _drains or tasks_run_inline() or (_listener is not None and _listener.thread.is_alive()):
        return
    _listener = Listener(poll).start()
    logger.debug("claim loop started in %s (channels %s)", proc_name, ", ".join(_drains))
