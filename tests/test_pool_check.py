"""whatsnap/postgresql: the web pool checks a connection only when it has been idle a while,
and a dead one (a PostgreSQL restart, a killed backend) is replaced, never handed out."""
import threading
import time

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from whatsnap.postgresql import base as pool_backend

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"] != "whatsnap.postgresql", reason="the PostgreSQL pool"),
]


@pytest.fixture
def checks(monkeypatch):
    """Every health check round trip (an empty statement) the backend makes."""
    made = []
    test_thread = threading.get_ident()
    real = psycopg.Connection.execute

    def execute(self, query, *args, **kwargs):
        if query == "" and threading.get_ident() == test_thread:  # not another test's sender thread
            made.append(self.info.backend_pid)
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", execute)
    return made


def _kill_idle_pool_connections():
    """What a restart does to the pool: every idle connection's backend is gone."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database(), pg_backend_pid()")
        database, own = cursor.fetchone()
    connection.close()  # back to the pool, idle: killed below with the others
    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"], dbname=database,
                         autocommit=True) as admin:
        killed = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                               [database]).fetchall()
    assert killed, "no pooled connection to kill"
    return own


@pytest.fixture(autouse=True)
def fresh_pool():
    """A pool of one connection to start with; closed after (dead connections handed back
    moments ago must not reach the next test)."""
    time.sleep(0.1)  # an earlier test's wake-up sender (whatsnap/listener.py) has sent and handed back
    connection.close()
    connection.close_pool()
    yield
    connection.close()
    connection.close_pool()


def _backend_pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_connection_just_handed_back_is_reused_without_a_round_trip(checks):
    _backend_pid()
    assert checks  # a new connection is checked
    for _ in range(3):  # every connection the pool opened (it may open a second) handed out and back
        connection.close()
        _backend_pid()
    checks.clear()
    for _ in range(4):
        connection.close()
        _backend_pid()  # one handed back moments ago: no round trip
    # (the pool may still open one more while it resets a returned connection: that new one is checked)
    assert len(checks) <= 1, checks


def test_an_idle_connection_is_checked(checks, monkeypatch):
    _backend_pid()
    connection.close()
    monkeypatch.setattr(pool_backend, "FRESH_SECONDS", 0.0)  # "a while" has passed
    _backend_pid()
    assert len(checks) == 2


def test_dead_connections_are_replaced_after_a_restart(checks, monkeypatch):
    monkeypatch.setattr(pool_backend, "FRESH_SECONDS", 0.0)
    dead = _kill_idle_pool_connections()
    alive = _backend_pid()  # no OperationalError: the dead ones were found and discarded
    assert alive != dead
    assert checks, "the dead connection was handed out unchecked"


def test_a_fresh_connection_whose_backend_was_killed_is_not_handed_out(checks):
    """A restart can take a quarter of a second: a connection handed back a moment before is
    dead, and its socket says so (the server's goodbye) without a round trip."""
    first = _backend_pid()
    _kill_idle_pool_connections()
    time.sleep(0.2)  # the backend's goodbye reaches the socket; still well within FRESH_SECONDS
    assert any(first == c.info.backend_pid for c in list(pool_backend.DatabaseWrapper._returned_at.keys()))
    alive = _backend_pid()  # no OperationalError
    assert alive != first
    assert checks, "the dead connection was handed out unchecked"
