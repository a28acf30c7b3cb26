"""publisher.clients.db.LivePool on a real PostgreSQL: connections are reused (not
opened per transaction, BENCHMARKS.md step 2), and one the server has ended
while it sat idle is replaced without the caller seeing an error."""

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from devstack.ports import wait_until
from publisher.clients.db import Database

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]
#: What a worker needs besides its database; nothing here is contacted.
WORKER_ENV = {
    "RAID_PUB_ENDPOINT": "https://raid.internal/pub", "RAID_PUBLISHER_SECRET": "token",
    "B2_KEY_ID": "key-id", "B2_APP_KEY": "app-key", "B2_BUCKET": "media",
    "B2_ENDPOINT": "s3.us-west-004.backblazeb2.com", "B2_REGION": "us-west-004",
    "CDN_BASE_URL": "https://media.example.com/",
}


@pytest.fixture
def db_url(pg_server):
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


def backend_pid(db: Database) -> int:
    with db.transaction() as cur:
        cur.execute("SELECT pg_backend_pid() AS pid")
        return cur.fetchone()["pid"]


def test_transactions_reuse_one_connection(db_url):
    db = Database(db_url, "pool-test", maxconn=4)
    try:
        assert len({backend_pid(db) for _ in range(5)}) == 1
    finally:
        db.close()


def test_connection_ended_by_the_server_is_replaced_without_an_error(db_url):
    db = Database(db_url, "pool-test", maxconn=4)
    admin = psycopg2.connect(db_url)
    admin.autocommit = True
    try:
        old = backend_pid(db)
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (old,))

            def gone():
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (old,))
                return cur.fetchone()[0] == 0

            wait_until(gone, 10, "the backend to end")
        assert backend_pid(db) != old  # no OperationalError: the stale connection was dropped
    finally:
        admin.close()
        db.close()


FROZEN_INSIDE_A_TRANSACTION = """
import json, os, signal, sys
from publisher.app.runtime import Runtime
from publisher.settings.job import load_settings
rt = Runtime(load_settings(json.loads(sys.argv[1])), "frozen-worker")
with rt.db.transaction() as cur:
    cur.execute("UPDATE held SET by = 'frozen' WHERE id = 1")
    print("holding the row", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)  # a host cut off, or a thread stuck in native code
"""

def test_a_process_frozen_inside_a_transaction_lets_go_of_its_rows(db_url):
    """The row a lost worker locked can be taken over once its transaction has sat idle
    for a lease (JOB_LEASE_SECONDS), not hours later when the server gives up on it."""
    admin = psycopg2.connect(db_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("CREATE TABLE held (id int PRIMARY KEY, by text); INSERT INTO held VALUES (1, 'nobody')")
    env = {**WORKER_ENV, "DATABASE_URL": db_url}
    short_lease = {**os.environ, "PUBLISHER_TEST_FIXED": json.dumps({"JOB_LEASE_SECONDS": 3})}
    frozen = subprocess.Popen([sys.executable, "-c", FROZEN_INSIDE_A_TRANSACTION, json.dumps(env)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT, env=short_lease)
    try:
        assert frozen.stdout.readline().strip() == "holding the row"
        with admin.cursor() as cur:
            cur.execute("SET lock_timeout = '30s'")
            cur.execute("UPDATE held SET by = 'the next worker' WHERE id = 1")  # waits for the frozen one's lock
            cur.execute("SELECT by FROM held")
            assert cur.fetchone()[0] == "the next worker"  # its update was rolled back, not committed
    finally:
        frozen.kill()
        frozen.wait()
        admin.close()


def test_sessions_tell_the_server_to_notice_a_vanished_client(db_url):
    """Without server-side keepalives a session whose host went off the network stays
    open for hours (the kernel's default), holding its locks; the broker's message
    locks are session locks too."""
    db = Database(db_url, "pool-test", maxconn=1)
    try:
        with db.transaction() as cur:
            cur.execute("SELECT inet_server_addr() IS NOT NULL AS tcp, current_setting('tcp_keepalives_idle') AS idle,"
                        " current_setting('tcp_user_timeout') AS user_timeout")
            row = cur.fetchone()
        if not row["tcp"]:
            pytest.skip("the test server is reached over a Unix socket, where keepalives do not apply")
        assert row["idle"] == "5"
        assert row["user_timeout"] == "15000"  # ms
    finally:
        db.close()


def _began_with_the_statement(cur) -> bool:
    """Whether the transaction started with the statement (autocommit), not at a BEGIN sent before it."""
    cur.execute("SELECT now() = statement_timestamp() AS same")
    return cur.fetchone()["same"]


@pytest.fixture
def lots(db_url):
    """A one-connection pool on a database with an empty table of lots."""
    db = Database(db_url, "pool-test", maxconn=1)
    with db.transaction() as cur:
        cur.execute("CREATE TABLE lots (id int PRIMARY KEY)")
    yield db
    db.close()


def lot_count(url: str) -> int:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM lots")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_a_single_statement_is_its_own_transaction_without_a_begin_or_a_commit(lots, db_url):
    """Database.statement() saves a job's step two round trips (BEGIN, COMMIT) and the server's work on them;
    what it runs is committed as it returns, and the pooled connection then runs transactions again."""
    with lots.statement() as cur:
        assert _began_with_the_statement(cur)
    with lots.statement() as cur:
        cur.execute("INSERT INTO lots VALUES (1)")
    assert lot_count(db_url) == 1
    with lots.transaction() as cur:
        assert not _began_with_the_statement(cur)
        cur.execute("INSERT INTO lots VALUES (2)")
        cur.execute("SELECT count(*) AS n FROM lots")
        assert cur.fetchone()["n"] == 2


def test_a_second_statement_is_refused_rather_than_committed_apart_from_the_first(lots, db_url):
    with pytest.raises(psycopg2.ProgrammingError, match="one statement"):
        with lots.statement() as cur:
            cur.execute("INSERT INTO lots VALUES (1)")
            cur.execute("INSERT INTO lots VALUES (2)")
    assert lot_count(db_url) == 1


def test_a_statement_that_fails_changes_nothing_and_the_connection_runs_transactions_again(lots, db_url):
    with pytest.raises(psycopg2.errors.UniqueViolation):
        with lots.statement() as cur:
            cur.execute("INSERT INTO lots VALUES (1), (1)")
    assert lot_count(db_url) == 0
    with lots.transaction() as cur:
        assert not _began_with_the_statement(cur)
