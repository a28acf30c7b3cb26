"""The listener's claim on its own schedule, on a real database and the Postgres broker: a job
that starts frees room without a NOTIFY, so while jobs wait for room the claim comes round again
soon, later each time it finds no room, and at the sweep once nothing waits."""

import threading
from types import SimpleNamespace

import pytest

from publisher.settings import fixed
from tests.support.job_sql import begin, cursor, new_job, one, worker_beat

SWEEP_MS = 4000


@pytest.fixture
def claim(schema_db):
    from listener.claim import Claim
    from publisher.clients.db import Database
    from publisher.jobs.pgbroker import make_broker

    _, url = schema_db
    broker = make_broker(url, queues=1, threads=1, middleware=[])
    rt = SimpleNamespace(db=Database(url, "test-listener", maxconn=2),
                         settings=SimpleNamespace(worker_poll_interval_ms=SWEEP_MS))
    yield Claim(rt, broker, threading.Event())
    broker.close()


def token_of(cur, job_id) -> str:
    return one(cur, "SELECT attempt_token::text FROM publish_jobs WHERE id = %s", job_id)


def test_jobs_waiting_for_room_are_claimed_soon_after_it_frees_and_the_sweep_resumes_once_none_waits(
        claim, schema_db):
    cur = cursor(schema_db[0])
    refill, sweep = fixed.CLAIM_REFILL_SECONDS, SWEEP_MS / 1000
    worker_beat(cur, threads=1)  # room for QUEUED_JOBS_PER_THREAD jobs
    jobs = [new_job(cur) for _ in range(fixed.QUEUED_JOBS_PER_THREAD + 2)]
    assert claim.run_once() == fixed.QUEUED_JOBS_PER_THREAD
    assert claim.interval == refill
    # No job started: no room. The next claims come later and later, never later than the sweep.
    waits = []
    for _ in range(12):
        assert claim.run_once() == 0
        waits.append(claim.interval)
    assert waits[:3] == [2 * refill, 4 * refill, 8 * refill]
    assert waits[-1] == sweep
    # A job starts: the next claim takes the room it freed, and the claim after it comes soon again.
    assert begin(cur, jobs[0], token_of(cur, jobs[0]), "fetch") == "run"
    assert claim.run_once() == 1
    assert claim.interval == refill
    # Room for the last one: once nothing waits, the claim is back at the sweep.
    assert begin(cur, jobs[1], token_of(cur, jobs[1]), "fetch") == "run"
    assert claim.run_once() == 1
    assert claim.run_once() == 0
    assert claim.interval == sweep
