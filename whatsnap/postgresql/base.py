"""Django's PostgreSQL backend with a cheaper pool health check (ENGINE "whatsnap.postgresql").

With CONN_HEALTH_CHECKS Django gives its psycopg pool a check that costs a round trip on every
checkout: a third of a webhook ack's database time (bench/README.md, issue 20), spent on
connections handed back moments before. Here a connection back in the pool for less than
FRESH_SECONDS is checked by looking at its socket instead (a syscall, no round trip): a
backend that was terminated (a restart, however quick, a crash, pg_terminate_backend) has sent
its goodbye or closed, so the socket reads as ready and the connection gets the full check. An
older connection, or a new one, always gets the full check; a dead one is discarded and
replaced, and once one is found dead every other connection is checked in full on its next
checkout. (The stock check cannot be replaced: Django passes `check=` itself.)
"""
import select
import time
import weakref

from django.db.backends.postgresql import base

FRESH_SECONDS = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    _returned_at = weakref.WeakKeyDictionary()  # psycopg connection -> time.monotonic() it went back

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        pool = self.pool
        if pool is None:
            return connection
        for _ in range(pool.max_size + 1):  # every pooled connection may be dead (a restart)
            returned_at = self._returned_at.pop(connection, None)
            if returned_at is not None and time.monotonic() - returned_at < FRESH_SECONDS and _quiet(connection):
                return connection
            try:
                connection.execute("")  # autocommit: the pool hands connections out in it
                return connection
            except self.Database.Error:
                self._returned_at.clear()  # the others may be dead too: check each in full
                pool.putconn(connection)  # broken: the pool closes it and opens another
                connection = super().get_new_connection(conn_params)
        return connection

    def _close(self):
        if self.pool and self.connection is not None and not self.connection.closed:
            self._returned_at[self.connection] = time.monotonic()
        super()._close()


def _quiet(connection) -> bool:
    """Nothing waiting on an idle connection's socket: the server has neither closed it nor
    sent anything (a terminated backend sends an error first)."""
    try:
        poller = select.poll()  # not select(): it refuses descriptors above 1023
        poller.register(connection.fileno(), select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False
