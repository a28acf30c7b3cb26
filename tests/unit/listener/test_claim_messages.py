"""The first steps a claim sends on the Postgres broker: stored in the claim's own transaction, all of
them in one statement, each announced to the shared queue's consumers with its job's lane."""

import contextlib
import json
import select
import threading
import time
from types import SimpleNamespace

import psycopg2
import pytest

from publisher.jobs.locality import QUEUE
from tests.support.job_sql import cursor, new_job, rows, worker_beat


class CountingDatabase:
    """The listener's database, counting the statements of each transaction it opens."""

    def __init__(self, db):
        self.db, self.statements = db, []

    @contextlib.contextmanager
    def transaction(self):
        with self.db.transaction() as cur:
            counted = self

            class Counted:
                def execute(self, *args):
                    counted.statements[-1] += 1
                    return cur.execute(*args)

                def __getattr__(self, name):
                    return getattr(cur, name)

            self.statements.append(0)
            yield Counted()

    def statement(self):
        return self.db.statement()


@pytest.fixture
def claim(schema_db):
    from listener.claim import Claim
    from publisher.clients.db import Database
    from publisher.jobs.pgbroker import make_broker

    _, url = schema_db
    broker = make_broker(url, queues=1, threads=1, middleware=[])
    db = Database(url, "test-listener", maxconn=2)
    rt = SimpleNamespace(db=CountingDatabase(db), settings=SimpleNamespace(worker_poll_interval_ms=4000))
    yield Claim(rt, broker, threading.Event())
    db.close()
    broker.close()


def announcements(conn, expected: int, timeout: float = 5.0) -> list[dict]:
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        if select.select([conn], [], [], deadline - time.monotonic())[0]:
            conn.poll()
            got += [json.loads(n.payload) for n in conn.notifies]
            conn.notifies.clear()
    return got


def test_a_claims_first_steps_are_stored_and_announced_together_each_in_its_lane(claim, schema_db):
    conn, url = schema_db
    cur = cursor(conn)
    worker_beat(cur, threads=3)
    fresh = [new_job(cur) for _ in range(2)]
    backlog = new_job(cur)
    cur.execute("UPDATE publish_jobs SET lane = 2 WHERE id = %s", (backlog,))
    listening = psycopg2.connect(url)
    listening.autocommit = True
    try:
        listening.cursor().execute(f'LISTEN "dramatiq.{QUEUE}.enqueue"')
        assert claim.run_once() == 3
        heard = announcements(listening, 3)
    finally:
        listening.close()
    stored = rows(cur, "SELECT message FROM dramatiq.queue WHERE queue_name = %s AND state = 'queued'", QUEUE)
    for messages in ([r["message"] for r in stored], heard):
        assert sorted((m["args"][0], m["options"]["lane"], m["actor_name"]) for m in messages) == sorted(
            [(job, 0, "fetch") for job in fresh] + [(backlog, 2, "fetch")])
    tokens = {r["id"]: r["token"] for r in rows(cur, "SELECT id, attempt_token::text AS token FROM publish_jobs")}
    assert all(m["args"][1] == tokens[m["args"][0]] for m in heard)
    # The claim and all its messages: two statements in one transaction, however many jobs it took.
    assert claim.rt.db.statements == [2]


def test_a_claim_whose_messages_cannot_be_stored_leaves_its_jobs_pending(claim, schema_db):
    cur = cursor(schema_db[0])
    worker_beat(cur, threads=3)
    jobs = [new_job(cur) for _ in range(3)]
    cur.execute("ALTER TABLE dramatiq.queue ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")
    with pytest.raises(psycopg2.errors.CheckViolation):
        claim.run_once()
    assert {r["status"] for r in rows(cur, "SELECT status FROM publish_jobs WHERE id = ANY(%s)", jobs)} == {"pending"}
    assert rows(cur, "SELECT 1 FROM dramatiq.queue") == []
