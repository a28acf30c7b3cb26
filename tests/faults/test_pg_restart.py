"""PostgreSQL restarted (`pg_ctl restart`) while a batch runs, on a server of the
test's own: every session of the listener, the workers and the broker is cut,
and jobs keep being inserted while the server is down. Every job inserted
before, during and after the restart completes, once."""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from devstack.origin import Fault
from devstack.ports import wait_until
from tests.faults import harness
from tests.support.stack import BROKERS

pytestmark = [pytest.mark.faults_slow, pytest.mark.parametrize("broker", BROKERS, indirect=True)]

BEFORE, DURING, AFTER = 8, 6, 6


def insert_through_outage(stack, jobs: harness.Batch, raid_key: str) -> int:
    """Inserts a job for a new file of raid_key as an application would: one
    transaction, retried until the server takes it. A commit whose answer was
    lost may have happened: the file is looked up before inserting again.
    How many times the server refused it."""
    refused = 0
    while True:
        try:
            found = stack.sql("SELECT j.id FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id "
                              "WHERE f.raid_key = %s", (raid_key,))
            job_id = found[0]["id"] if found else stack.sql(
                "WITH f AS (INSERT INTO auction_files (raid_key) VALUES (%s) RETURNING id) "
                "INSERT INTO publish_jobs (file_id) SELECT id FROM f RETURNING id", (raid_key,))[0]["id"]
            jobs.expected[job_id] = "completed"
            return refused
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            refused += 1
            time.sleep(0.05)  # the server is shutting down or starting up; nothing to await


def processing(stack, job_ids) -> int:
    return stack.sql("SELECT count(*) AS n FROM publish_jobs WHERE id = ANY(%s) AND status = 'processing'",
                     (list(job_ids),))[0]["n"]


def refuses_connections(stack) -> bool:
    try:
        stack.sql("SELECT 1")
        return False
    except (psycopg2.OperationalError, psycopg2.InterfaceError):
        return True


def run_batch(stack, jobs: harness.Batch, origin, restart=None) -> dict:
    """BEFORE jobs; then DURING jobs, two before `restart` (if given) and the
    others from the moment the server refuses connections; then AFTER jobs;
    until every job settles. Its timings."""
    started = time.monotonic()
    for i in range(BEFORE):
        key = jobs.source("exif-orientation-1.jpg" if i % 2 else "progressive.jpg")
        if i % 3 == 0:
            origin.faults[key] = Fault(delay=1, times=1)  # still downloading at the restart
        jobs.add(key)
    wait_until(lambda: processing(stack, jobs.expected) >= 3, 60, "jobs in flight")
    during = [jobs.source("progressive.jpg", "during-") for _ in range(DURING)]
    refused = [insert_through_outage(stack, jobs, key) for key in during[:2]]
    restarted = {}
    if restart:
        thread = threading.Thread(target=lambda: restarted.update(downtime=restart()))
        thread.start()
        wait_until(lambda: refuses_connections(stack), 30, "the server to go down", 0.01)
    refused += [insert_through_outage(stack, jobs, key) for key in during[2:]]
    if restart:
        thread.join(120)
    for _ in range(AFTER):
        jobs.add(jobs.source("exif-orientation-1.jpg", "after-"))
    jobs.wait(timeout=240)
    return {"batch": time.monotonic() - started, "downtime": restarted.get("downtime", 0.0), "refused": sum(refused)}


def settled_workers(stack) -> None:
    wait_until(lambda: stack.sql("SELECT count(*) AS n FROM publisher_workers")[0]["n"] >= 2, 60,
               "both worker processes to beat")


def test_postgresql_restarted_mid_batch(own_pg, own_pg_stack, origin, batch, broker):
    # The stack's server is its own: the machine's is shared, and must not be restarted.
    stack = own_pg_stack()
    harness.start_workers(stack)
    stack.start_listener()
    settled_workers(stack)
    quiet = batch(stack, f"pg-restart-quiet-{broker}")
    quiet_times = run_batch(stack, quiet, origin)
    quiet.outcome().assert_clean()

    jobs = batch(stack, f"pg-restart-{broker}")
    times = run_batch(stack, jobs, origin, restart=own_pg.restart)
    jobs.faults = 1
    figures = (f"restart={times['downtime']:.1f}s inserts-refused={times['refused']} batch={times['batch']:.1f}s "
               f"quiet-batch={quiet_times['batch']:.1f}s cost={times['batch'] - quiet_times['batch']:+.1f}s")
    retried = len(stack.sql("SELECT 1 FROM publish_jobs WHERE id = ANY(%s) AND retry_count > 0",
                            (list(jobs.expected),)))
    result = jobs.outcome(f"{figures} retried={retried}")
    result.assert_clean()
    assert result.completed == BEFORE + DURING + AFTER
    # Every process rode it out: nothing had to be restarted.
    assert stack.listener.running() and all(p.running() for p in stack.extra_processes), stack.logs()[-4000:]
