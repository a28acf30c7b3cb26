"""PostgreSQL connections for the listener and the actors.

psycopg2's ThreadedConnectionPool shares connections between worker threads;
a connection that broke (server restart, pg_terminate_backend) is discarded on
the spot, so the next use gets a fresh one.
"""

from __future__ import annotations

import contextlib
import select
import threading

import psycopg2
import psycopg2.extras
import psycopg2.pool

from publisher.settings.job import database_dsn

#: Errors that mean the connection is gone, not that the statement was wrong.
DISCONNECTS = (psycopg2.OperationalError, psycopg2.InterfaceError)

#: TCP keepalives let both sides notice a dead peer within about 15 s.
KEEPALIVES = dict(keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3)


def connect(url: str, application_name: str, **kwargs):
    """One connection of its own (the listener's LISTEN connection)."""
    return psycopg2.connect(database_dsn(url), application_name=application_name, **KEEPALIVES, **kwargs)


class LivePool(psycopg2.pool.ThreadedConnectionPool):
    """Opens connections on demand (none at start), keeps up to maxconn of them,
    and never hands out one the server has closed.

    psycopg2 keeps at most `minconn` idle connections and closes the others when
    they are handed back; with minconn 0 every transaction opened a new
    connection (a good part of a worker's time, BENCHMARKS.md). Kept connections go
    stale when the server restarts or ends them: each is checked before use
    (without a round trip) and a closed one is dropped, so callers do not fail
    once per stale connection.
    """

    def __init__(self, maxconn: int, *args, **kwargs):
        super().__init__(0, maxconn, *args, **kwargs)
        self.minconn = maxconn  # how many idle connections psycopg2 keeps

    def getconn(self, key=None):
        while True:
            conn = super().getconn(key)
            if _alive(conn):
                return conn
            super().putconn(conn, key, close=True)


def _alive(conn) -> bool:
    """Whether an idle connection may still have its server. An idle connection
    has nothing to read unless the server sent something on its own, most
    likely the notice that it ended the session (restart, pg_terminate_backend):
    such a connection is dropped (at worst one that only got a notice or a
    NOTIFY is opened again)."""
    if conn.closed:
        return False
    readable, _, _ = select.select([conn], [], [], 0)
    return not readable


class Database:
    """A small pool; `with db.transaction() as cur:` commits on success."""

    def __init__(self, url: str, application_name: str, maxconn: int = 8):
        self._pool = LivePool(maxconn, database_dsn(url), application_name=application_name, **KEEPALIVES)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def transaction(self):
        conn = self._pool.getconn()
        broken = False
        try:
            with conn:
                with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                    yield cur
        except DISCONNECTS:
            broken = True
            raise
        finally:
            self._pool.putconn(conn, close=broken or conn.closed != 0)

    def close(self):
        self._pool.closeall()
