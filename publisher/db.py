"""PostgreSQL connections for the listener and the actors.

psycopg2's ThreadedConnectionPool shares connections between worker threads;
a connection that broke (server restart, pg_terminate_backend) is discarded on
the spot, so the next use gets a fresh one.
"""

from __future__ import annotations

import contextlib
import threading

import psycopg2
import psycopg2.extras
import psycopg2.pool

from .config import database_dsn

#: Errors that mean the connection is gone, not that the statement was wrong.
DISCONNECTS = (psycopg2.OperationalError, psycopg2.InterfaceError)

#: TCP keepalives let both sides notice a dead peer within about 15 s.
KEEPALIVES = dict(keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3)


def connect(url: str, application_name: str, **kwargs):
    """One connection of its own (the listener's LISTEN connection)."""
    return psycopg2.connect(database_dsn(url), application_name=application_name, **KEEPALIVES, **kwargs)


class Database:
    """A small pool; `with db.transaction() as cur:` commits on success."""

    def __init__(self, url: str, application_name: str, maxconn: int = 8):
        self._pool = psycopg2.pool.ThreadedConnectionPool(
            0, maxconn, database_dsn(url), application_name=application_name, **KEEPALIVES
        )
        # Opened on demand (minconn=0 above: nothing at start), but kept once
        # opened: psycopg2 closes every returned connection beyond minconn, which
        # made each transaction open a new connection (BENCHMARKS.md).
        self._pool.minconn = maxconn
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
