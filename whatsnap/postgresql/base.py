"""Django's PostgreSQL backend with a cheaper pool health check (ENGINE "whatsnap.postgresql").

With CONN_HEALTH_CHECKS Django gives its psycopg pool a check that costs a round trip on every
checkout: a third of a webhook ack's database time (bench/README.md, issue 20), spent on
connections handed back moments before. Here a connection back in the pool for less than
FRESH_SECONDS is handed out as it is; an older one (or a new one) is checked first, and a dead
one is discarded and replaced, so the first request after a database restart gets a live
connection as before. (The stock check cannot be replaced: Django passes `check=` itself.)
"""
import time
import weakref

from django.db.backends.postgresql import base

FRESH_SECONDS = 1.0  # shorter than any restart of PostgreSQL: a restart leaves them all older


class DatabaseWrapper(base.DatabaseWrapper):
    _returned_at = weakref.WeakKeyDictionary()  # psycopg connection -> time.monotonic() it went back

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        pool = self.pool
        if pool is None:
            return connection
        for _ in range(pool.max_size + 1):  # every pooled connection may be dead (a restart)
            returned_at = self._returned_at.pop(connection, None)
            if returned_at is not None and time.monotonic() - returned_at < FRESH_SECONDS:
                return connection
            try:
                connection.execute("")  # autocommit: the pool hands connections out in it
                return connection
            except self.Database.Error:
                pool.putconn(connection)  # broken: the pool closes it and opens another
                connection = super().get_new_connection(conn_params)
        return connection

    def _close(self):
        if self.pool and self.connection is not None and not self.connection.closed:
            self._returned_at[self.connection] = time.monotonic()
        super()._close()
