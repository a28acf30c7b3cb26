"""The listener's claim on its own schedule, on a real database and the Postgres broker: a job
that starts frees room without a NOTIFY, so while jobs wait for room the claim comes round again
after as long as the room has been full, and at the sweep once nothing waits or a claim fails."""

import threading
from types import SimpleNamespace

import psycopg2
import pytest

from publisher.settings import fixed
from tests.support.job_sql import begin, cursor, new_job, one, worker_beat

SWEEP_MS = 4000
REFILL, SWEEP = fixed.CLAIM_REFILL_SECONDS, SWEEP_MS / 1000


class Clock:
    """The claim's clock, moved by the test."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def claim(schema_db, clock):
    from listener.claim import Claim
    from publisher.clients.db import Database
    from publisher.jobs.pgbroker import make_broker

    _, url = schema_db
    broker = make_broker(url, queues=1, threads=1, middleware=[])
    db = Database(url, "test-listener", maxconn=2)
    rt = SimpleNamespace(db=db, settings=SimpleNamespace(worker_poll_interval_ms=SWEEP_MS))
    yield Claim(rt, broker, threading.Event(), clock=clock)
    db.close()
    broker.close()


def token_of(cur, job_id) -> str:
    return one(cur, "SELECT attempt_token::text FROM publish_jobs WHERE id = %s", job_id)


def test_jobs_waiting_for_room_are_claimed_as_it_frees_and_the_sweep_resumes_once_none_waits(
        claim, clock, schema_db):
    cur = cursor(schema_db[0])
    worker_beat(cur, threads=1)  # room for QUEUED_JOBS_PER_THREAD jobs
    jobs = [new_job(cur) for _ in range(fixed.QUEUED_JOBS_PER_THREAD + 2)]
    assert claim.run_once() == fixed.QUEUED_JOBS_PER_THREAD
    assert claim.interval == REFILL
    # No job started: no room. Claims woken by new jobs meanwhile do not put the next one off...
    for _ in range(5):
        jobs.append(new_job(cur))
        assert claim.run_once() == 0
        assert claim.interval == REFILL
    # ...the time the room stays full does, up to the sweep.
    clock.now += 0.3
    assert claim.run_once() == 0
    assert claim.interval == pytest.approx(0.3)
    clock.now += 60
    assert claim.run_once() == 0
    assert claim.interval == SWEEP
    # A job starts: the next claim takes the room it freed, and the one after it comes soon again.
    assert begin(cur, jobs[0], token_of(cur, jobs[0]), "fetch") == "run"
    assert claim.run_once() == 1
    assert claim.interval == REFILL
    # Once no job waits, the claim is back at the sweep.
    cur.execute("UPDATE publish_jobs SET status = 'cancelled' WHERE status = 'pending'")
    assert claim.run_once() == 0
    assert claim.interval == SWEEP


def test_a_claim_that_fails_is_tried_again_at_the_sweep_not_in_a_tight_loop(claim, schema_db):
    cur = cursor(schema_db[0])
    worker_beat(cur, threads=1)
    for _ in range(fixed.QUEUED_JOBS_PER_THREAD + 1):
        new_job(cur)
    assert claim.run_once() == fixed.QUEUED_JOBS_PER_THREAD
    assert claim.interval == REFILL
    # A schema half-deployed: the question whether jobs wait cannot be asked.
    cur.execute("DROP FUNCTION publisher_pending_waits()")
    with pytest.raises(psycopg2.errors.UndefinedFunction):
        claim.run_once()
    assert claim.interval == SWEEP
