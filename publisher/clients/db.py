"""PostgreSQL connections for the listener and the actors.

psycopg2's ThreadedConnectionPool shares connections between worker threads;
a connection that broke (server restart, pg_terminate_backend) is discarded on
the spot, so the next use gets a fresh one.
"""

from __future__ import annotations

import contextlib
import select
import threading
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import psycopg2.pool

from publisher.settings.job import database_dsn

#: Errors that mean the connection is gone, not that the statement was wrong.
DISCONNECTS = (psycopg2.OperationalError, psycopg2.InterfaceError)

#: TCP keepalives let this side notice a dead server within about 15 s. Keyword
#: arguments of psycopg2.connect, which takes a libpq parameter of any type (Any).
KEEPALIVES: dict[str, Any] = dict(keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3)

#: The same for the server's side of each session. Its own defaults leave a session whose
#: client is gone without a word (a host cut off the network) open for hours, and with it
#: the row locks of its open transaction and the broker's message locks: the jobs they
#: hold could not be taken over. tcp_user_timeout covers the case keepalives do not, the
#: server waiting for the ACK of data it sent. Unix-socket sessions ignore all of them.
SERVER_KEEPALIVES = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3"}
SERVER_USER_TIMEOUT_MS = "15000"


def prepare_session(conn, idle_transaction_timeout_s: int | None = None) -> None:
    """Sets this session's server-side timeouts, with SET rather than the startup
    `options`, which connection poolers such as PgBouncer refuse.

    idle_transaction_timeout_s: the server ends the session (rolling back its
    transaction) when a transaction has sat idle that long; a process frozen or cut
    off inside a transaction then holds its rows for that long, not forever."""
    settings = dict(SERVER_KEEPALIVES)
    if conn.server_version >= 120000:
        settings["tcp_user_timeout"] = SERVER_USER_TIMEOUT_MS
    if idle_transaction_timeout_s:
        settings["idle_in_transaction_session_timeout"] = f"{int(idle_transaction_timeout_s)}s"
    autocommit, conn.autocommit = conn.autocommit, True
    try:
        with conn.cursor() as cur:  # one round trip
            cur.execute("SELECT " + ", ".join(["set_config(%s, %s, false)"] * len(settings)),
                        [part for pair in settings.items() for part in pair])
    finally:
        conn.autocommit = autocommit


def connect(url: str, application_name: str, **kwargs: Any) -> psycopg2.extensions.connection:
    """One connection of its own (the listener's LISTEN connection)."""
    conn = psycopg2.connect(database_dsn(url), application_name=application_name, **KEEPALIVES, **kwargs)
    prepare_session(conn)
    return conn


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

    def __init__(self, maxconn: int, *args, idle_transaction_timeout_s: int | None = None, **kwargs):
        self._idle_transaction_timeout_s = idle_transaction_timeout_s
        super().__init__(0, maxconn, *args, **kwargs)
        self.minconn = maxconn  # how many idle connections psycopg2 keeps

    def _connect(self, key=None):
        # psycopg2's own _connect, with the session prepared before the pool holds it.
        conn = psycopg2.connect(*self._args, **self._kwargs)
        try:
            prepare_session(conn, self._idle_transaction_timeout_s)
        except BaseException:
            conn.close()
            raise
        if key is not None:
            self._used[key] = conn
            self._rused[id(conn)] = key
        else:
            self._pool.append(conn)
        return conn

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


class OneStatementCursor(psycopg2.extras.RealDictCursor):
    """The cursor of Database.statement(): it runs one statement and refuses a second, which
    would commit on its own rather than with the first."""

    def execute(self, query, vars=None):
        self._one()
        return super().execute(query, vars)

    def executemany(self, query, vars_list):
        raise psycopg2.ProgrammingError("Database.statement() runs one statement; use transaction() for more")

    def callproc(self, procname, vars=None):
        self._one()
        return super().callproc(procname, vars)

    def _one(self) -> None:
        if getattr(self, "_ran", False):
            raise psycopg2.ProgrammingError("Database.statement() runs one statement; use transaction() for more")
        self._ran = True


class Database:
    """A small pool; `with db.transaction() as cur:` commits on success, `with db.statement() as cur:`
    runs one statement as a transaction of its own."""

    def __init__(self, url: str, application_name: str, maxconn: int = 8,
                 idle_transaction_timeout_s: int | None = None):
        self._pool = LivePool(maxconn, database_dsn(url), application_name=application_name,
                              idle_transaction_timeout_s=idle_transaction_timeout_s, **KEEPALIVES)
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

    @contextlib.contextmanager
    def statement(self):
        """A cursor for a transaction of one statement, which the server commits as it runs (autocommit):
        no BEGIN's and COMMIT's round trips and their work on both sides. A statement that fails has
        changed nothing; unlike transaction(), an exception raised after it returns does not undo it."""
        conn = self._pool.getconn()
        broken = False
        conn.autocommit = True  # psycopg2 sends nothing for it: it only stops issuing BEGIN
        try:
            with conn.cursor(cursor_factory=OneStatementCursor) as cur:
                yield cur
        except DISCONNECTS:
            broken = True
            raise
        finally:
            if not conn.closed:
                conn.autocommit = False
            self._pool.putconn(conn, close=broken or conn.closed != 0)

    def close(self):
        self._pool.closeall()
