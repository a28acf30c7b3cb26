"""publisher.clients.db.LivePool on a real PostgreSQL: connections are reused (not
opened per transaction, BENCHMARKS.md step 2), and one the server has ended
while it sat idle is replaced without the caller seeing an error."""

import psycopg2
import pytest

from devstack.ports import wait_until
from publisher.clients.db import Database

pytestmark = pytest.mark.e2e


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
