"""Processes killed or stopped while jobs run: nothing is lost, stuck or
published twice, and a file that kills its worker every time ends failed."""

import os
import signal
import subprocess

import pytest

from devstack.origin import Fault
from devstack.ports import wait_until
from tests.faults import harness
from tests.faults.harness import KILL_MARK


def processing(stack, job_ids) -> int:
    return stack.sql("SELECT count(*) AS n FROM publish_jobs WHERE id = ANY(%s) AND status = 'processing' "
                     "AND step_started_at IS NOT NULL", (list(job_ids),))[0]["n"]


def test_kill9_worker_mid_job(fault_stack, batch, origin):
    stack = fault_stack()
    jobs = batch(stack, "kill-9-worker")
    for i in range(8):
        key = jobs.source("exif-orientation-1.jpg")
        if i % 2 == 0:
            origin.faults[key] = Fault(delay=4, times=1)  # still downloading when the worker dies
        jobs.add(key)
    workers = harness.start_workers(stack)
    stack.start_listener()
    wait_until(lambda: processing(stack, jobs.expected) >= 3, 60, "jobs in flight")
    harness.kill9(workers)
    jobs.faults = 1
    harness.start_workers(stack)
    jobs.wait()
    result = jobs.outcome()
    result.assert_clean()
    assert result.completed == 8
    # the killed attempts were counted and said so
    assert any("did not finish" in (r["last_error"] or "") or "lease ran out" in (r["last_error"] or "")
               for r in result.rows)


@pytest.mark.faults_slow
def test_file_that_kills_its_worker_every_time_ends_failed(fault_stack, batch):
    stack = fault_stack()
    jobs = batch(stack, "worker-killer-file")
    killer = jobs.add(jobs.source("progressive.jpg", KILL_MARK + "-"), expect="failed", max_retries=2)
    for _ in range(4):
        jobs.add(jobs.source("progressive.jpg"))
    supervisor = harness.Supervisor(stack, hooks=True)
    stack.start_listener()
    jobs.wait(timeout=240)
    supervisor.stop()
    jobs.faults = supervisor.restarts
    result = jobs.outcome()
    result.assert_clean()
    row = next(r for r in result.rows if r["id"] == killer)
    assert row["retry_count"] == 2 and "giving up" in row["last_error"], row
    assert supervisor.restarts >= 3  # it killed the worker on each of its 3 attempts


def test_kill9_listener(fault_stack, batch):
    stack = fault_stack()
    jobs = batch(stack, "kill-9-listener")
    harness.start_workers(stack)
    listener = stack.start_listener()
    for _ in range(5):
        jobs.add(jobs.source("progressive.jpg"))
    wait_until(lambda: stack.sql("SELECT count(*) AS n FROM publish_jobs WHERE status <> 'pending'")[0]["n"] >= 1,
               60, "the listener to claim a job")
    harness.kill9(listener)
    for _ in range(5):  # inserted while no listener runs
        jobs.add(jobs.source("progressive.jpg"))
    jobs.faults = 1
    stack.start_listener()
    jobs.wait()
    result = jobs.outcome()
    result.assert_clean()
    assert result.completed == 10


@pytest.mark.faults_slow
def test_sigterm_under_load(fault_stack, batch, origin):
    stack = fault_stack(ORIGIN_READ_TIMEOUT=60)
    jobs = batch(stack, "sigterm-under-load")
    # One download outlasts the lease (5 s): its heartbeat must go on while the worker drains.
    long_key = jobs.source("exif-orientation-1.jpg")
    origin.faults[long_key] = Fault(delay=9, times=1)
    long_job = jobs.add(long_key)
    for i in range(11):
        key = jobs.source("exif-orientation-1.jpg")
        if i % 3 == 0:
            origin.faults[key] = Fault(delay=2, times=1)
        jobs.add(key)
    shutdown_timeout = 20
    workers = harness.start_workers(stack, shutdown_timeout_ms=shutdown_timeout * 1000)
    stack.start_listener()
    wait_until(lambda: processing(stack, [long_job]) == 1 and processing(stack, jobs.expected) >= 3,
               60, "jobs in flight")
    # To the main process only, as Docker and Kubernetes do: it passes the signal on to its
    # worker processes. (Signalling the whole group signals each worker twice: the second
    # SIGTERM kills. Under systemd, use KillMode=mixed.)
    os.kill(workers.pid, signal.SIGTERM)
    jobs.faults = 1
    try:
        # In-flight steps finish (or are handed back); the process exits within its shutdown
        # timeout (plus the time to start and stop the interpreter).
        code = workers.popen.wait(shutdown_timeout + 15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"workers did not exit within {shutdown_timeout} s of SIGTERM:\n{workers.log()[-3000:]}")
    assert code == 0, workers.log()[-3000:]
    harness.start_workers(stack)
    jobs.wait()
    result = jobs.outcome()
    result.assert_clean()
    assert result.completed == 12
    # The steps in flight finished under their own lease: none was presumed dead and rescued.
    assert [r for r in result.rows if r["retry_count"]] == []


def test_broker_messages_lost_while_jobs_wait(fault_stack, batch):
    """A queued job whose message never arrives (the broker lost it, or the retry
    could not be enqueued during a database outage) is handed out again."""
    stack = fault_stack(JOB_HANDOFF_SECONDS=5)
    jobs = batch(stack, "broker-messages-lost")
    for _ in range(4):
        jobs.add(jobs.source("progressive.jpg"))
    # A worker that beats but takes nothing: the listener claims the jobs for it, and they wait in the queue.
    stack.sql("INSERT INTO publisher_workers (worker_id, host_id, queue, threads, seen_at) "
              "VALUES ('silent', 'silent', 'publish-host-silent', 4, now() + interval '1 hour')")
    stack.start_listener()
    wait_until(lambda: all(r["status"] == "queued" for r in jobs.rows()), 60, "every job queued")
    jobs.faults = stack.sql(
        "WITH gone AS (DELETE FROM dramatiq.queue RETURNING 1) SELECT count(*) AS n FROM gone")[0]["n"]
    harness.start_workers(stack)
    jobs.wait()
    result = jobs.outcome()
    result.assert_clean()
    assert result.completed == 4
    # Nothing ran before, so nothing was counted against the jobs' retries.
    assert all(r["retry_count"] == 0 for r in result.rows)
