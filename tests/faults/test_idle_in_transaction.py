"""A session left idle in a transaction beside the stack (an operator's psql, a
report or pg_dump left open: REPEATABLE READ, one read of publish_jobs, then
nothing) while batches run. The jobs are not held up by it, but its snapshot
keeps every row version the jobs leave behind: vacuum cannot remove them until
the session ends. The scenario measures both: throughput against a quiet run of
the same batches, and the dead tuples of publish_jobs."""

from __future__ import annotations

import re
import time

import psycopg2
import pytest

from devstack.origin import Fault
from devstack.ports import wait_until
from tests.faults import harness

#: Jobs per wave, and how often a wave starts while the session is held.
WAVE_JOBS = 12
WAVE_EVERY = 5.0
QUIET_WAVES = 3
#: How long the session holds a running job's row: several leases.
LEASE_SECONDS = int(harness.FAST_ENV["JOB_LEASE_SECONDS"])
LOCK_HELD_SECONDS = 5 * LEASE_SECONDS

#: VACUUM VERBOSE's account of the row versions it found dead but had to keep.
NOT_REMOVABLE = re.compile(r"(\d+) are dead but not yet removable")


def run_wave(stack, jobs: harness.Batch) -> float:
    """WAVE_JOBS jobs inserted at once, until they all settle; the seconds it took."""
    started = time.monotonic()
    ids = [jobs.add(jobs.source("progressive.jpg")) for _ in range(WAVE_JOBS)]
    wait_until(lambda: stack.sql("SELECT count(*) AS n FROM publish_jobs WHERE id = ANY(%s) AND status "
                                 "IN ('completed', 'failed')", (ids,))[0]["n"] == len(ids), 120, "a wave to settle",
               0.1)
    return time.monotonic() - started


def run_waves(stack, jobs: harness.Batch, duration: float, minimum: int = 1) -> list[float]:
    """Waves starting every WAVE_EVERY seconds for `duration` (at least `minimum` of them)."""
    started, took = time.monotonic(), []
    while len(took) < minimum or time.monotonic() - started < duration:
        wave_start = time.monotonic()
        took.append(run_wave(stack, jobs))
        time.sleep(max(0.0, WAVE_EVERY - (time.monotonic() - wave_start)))  # the pace of the traffic
    return took


def vacuum_keeps(stack) -> int:
    """VACUUM publish_jobs; how many dead row versions it found and could not remove."""
    conn = psycopg2.connect(stack.db_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("VACUUM (VERBOSE) publish_jobs")
        found = [int(m.group(1)) for notice in conn.notices for m in NOT_REMOVABLE.finditer(notice)]
        assert found, conn.notices  # the heap's line is always there
        return found[0]
    finally:
        conn.close()


def dead_tuples(stack) -> int:
    """pg_stat_user_tables.n_dead_tup of publish_jobs, as monitoring would see it."""
    return stack.sql("SELECT n_dead_tup AS n FROM pg_stat_user_tables WHERE relname = 'publish_jobs'")[0]["n"]


def left_open(stack):
    """The forgotten session: a REPEATABLE READ transaction that read the jobs once."""
    conn = psycopg2.connect(stack.db_url, application_name="report-left-open")
    conn.set_session(isolation_level="REPEATABLE READ")
    with conn.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM publish_jobs GROUP BY status")
    return conn


def still_idle_in_transaction(stack, with_snapshot: bool = False) -> bool:
    return stack.sql("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'report-left-open' "
                     "AND state = 'idle in transaction' AND (backend_xmin IS NOT NULL OR NOT %s)",
                     (with_snapshot,))[0]["n"] == 1


def throughput(took: list[float]) -> float:
    return WAVE_JOBS * len(took) / sum(took)


def scenario(own_pg_stack, batch, name: str, held_seconds: float):
    # A server of its own: the figures are the session's doing, not other tests'.
    stack = own_pg_stack()
    harness.start_workers(stack)
    stack.start_listener()
    jobs = batch(stack, name)
    run_wave(stack, jobs)  # warming up (imports, connections): not part of the quiet figure
    quiet = run_waves(stack, jobs, 0, minimum=QUIET_WAVES)
    kept_quiet = vacuum_keeps(stack)

    session = left_open(stack)
    try:
        held = run_waves(stack, jobs, held_seconds)
        # It was there, holding its snapshot, the whole time.
        assert still_idle_in_transaction(stack, with_snapshot=True)
        dead_held = dead_tuples(stack)
        kept_held = vacuum_keeps(stack)
    finally:
        session.close()
    kept_after = vacuum_keeps(stack)

    jobs.faults = 1
    figures = (f"held={held_seconds:.0f}s jobs/s quiet={throughput(quiet):.1f} held={throughput(held):.1f} "
               f"last-wave={WAVE_JOBS / held[-1]:.1f} n_dead_tup={dead_held} vacuum-kept: quiet={kept_quiet} "
               f"held={kept_held} after={kept_after}")
    result = jobs.outcome(figures)
    result.assert_clean()
    assert result.completed == WAVE_JOBS * (1 + len(quiet) + len(held))
    # What the session cost: vacuum had to keep the row versions the jobs left behind while it
    # was open, and removes them once it is gone.
    assert kept_held > kept_after
    return result


def test_a_session_idle_in_transaction_beside_a_batch(own_pg_stack, batch):
    scenario(own_pg_stack, batch, "idle-in-transaction-20s", held_seconds=20)


@pytest.mark.faults_slow
@pytest.mark.timeout(900)
def test_a_session_idle_in_transaction_for_minutes_beside_batches(own_pg_stack, batch):
    scenario(own_pg_stack, batch, "idle-in-transaction-5min", held_seconds=300)


@pytest.mark.faults_slow  # tests/sql/test_job_rules.py holds the heartbeat to it in `make test`
def test_a_session_idle_in_transaction_holding_a_running_jobs_row(own_pg_stack, batch, origin):
    """The forgotten session locked one running job's row (SELECT ... FOR UPDATE,
    as one does before fixing a row by hand). That job waits for it; the others
    on the same workers go on, charged nothing: among them, downloads longer
    than a lease, which live on their heartbeat."""
    stack = own_pg_stack(ORIGIN_READ_TIMEOUT=30)
    jobs = batch(stack, "idle-in-transaction-row-lock")
    victim_key = jobs.source("progressive.jpg", "locked-")
    origin.faults[victim_key] = Fault(delay=3, times=1)
    victim = jobs.add(victim_key)
    harness.start_workers(stack, processes=1, threads=6)  # one heartbeat for every job
    stack.start_listener()
    wait_until(lambda: stack.job(victim)["step_started_at"] is not None, 60, "the victim's step to start")
    session = psycopg2.connect(stack.db_url, application_name="report-left-open")
    try:
        with session.cursor() as cur:
            cur.execute("SELECT * FROM publish_jobs WHERE id = %s FOR UPDATE", (victim,))
        jobs.faults = 1
        for _ in range(4):
            key = jobs.source("progressive.jpg", "slow-")
            origin.faults[key] = Fault(delay=3 * LEASE_SECONDS, times=1)
            jobs.add(key)
        run_waves(stack, jobs, LOCK_HELD_SECONDS)
        assert still_idle_in_transaction(stack)
    finally:
        session.close()
    jobs.wait()
    rows = {r["id"]: r for r in jobs.rows()}
    charged = {job_id: r["retry_count"] for job_id, r in rows.items() if r["retry_count"] and job_id != victim}
    result = jobs.outcome(f"held={LOCK_HELD_SECONDS}s others-charged={len(charged)} "
                          f"locked-job-retries={rows[victim]['retry_count']}")
    result.assert_clean()
    assert charged == {}, charged
