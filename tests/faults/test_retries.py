"""Transient failures are retried until the job completes; a job that keeps
failing ends failed with its retries used up; an operator gets it run again
with plain SQL, nothing restarted."""

import re

from devstack.origin import Fault
from tests.faults import harness
from tests.faults.harness import FAILURE_NOT_RECORDED_MARK, UPLOAD_FAILS_ONCE_MARK


def test_origin_5xx_timeouts_and_truncated_downloads_are_retried(fault_stack, batch, origin):
    stack = fault_stack(ORIGIN_READ_TIMEOUT=1)
    jobs = batch(stack, "origin-transient")
    faults = {
        "500": Fault(status=500, times=2),
        "502": Fault(status=502, times=1),
        "503": Fault(status=503, times=3),
        "429": Fault(status=429, times=1),
        "timeout": Fault(delay=3, times=1),  # past ORIGIN_READ_TIMEOUT
        "truncated": Fault(truncate_at=1000, times=2),
    }
    faulted = {}
    for tag, fault in faults.items():
        key = jobs.source("exif-orientation-1.jpg", tag + "-")
        origin.faults[key] = fault
        faulted[jobs.add(key)] = fault.times
        jobs.faults += fault.times
    for _ in range(2):
        jobs.add(jobs.source("progressive.jpg"))
    harness.start_workers(stack)
    stack.start_listener()
    jobs.wait()
    result = jobs.outcome()
    result.assert_clean()
    assert result.completed == len(faults) + 2
    for row in result.rows:
        # every failed attempt was counted on the job, and no more
        assert row["retry_count"] == faulted.get(row["id"], 0), row
        if row["id"] in faulted:
            # the reason of the last failure stays readable after success
            assert row["last_error"] and row["raid_key"] in row["last_error"], row


def test_retries_exhausted_then_operator_runs_them_again(fault_stack, batch, origin):
    stack = fault_stack()
    jobs = batch(stack, "retries-exhausted")
    keys = [jobs.source("progressive.jpg") for _ in range(4)]
    for key in keys:
        origin.faults[key] = Fault(status=503)  # always
    ids = [jobs.add(key, expect="failed", max_retries=2) for key in keys]
    harness.start_workers(stack)
    stack.start_listener()
    jobs.wait()
    for key in keys:
        del origin.faults[key]
    jobs.faults = sum(1 for r in origin.requests if r["key"] in keys)
    result = jobs.outcome()
    result.assert_clean()
    assert result.failed == 4
    for row in result.rows:
        assert row["status"] == "failed" and row["retry_count"] >= row["max_retries"] == 2, row
        assert "503" in row["last_error"] and row["raid_key"] in row["last_error"], row
        # three attempts: the first and two retries
        assert sum(1 for r in origin.requests if r["key"] == row["raid_key"]) == 3

    # The operator's two ways, with the listener and workers left running.
    stack.sql("UPDATE publish_jobs SET max_retries = 5 WHERE id = ANY(%s) AND status = 'failed'", (ids[:2],))
    stack.sql("UPDATE publish_jobs SET status = 'pending' WHERE id = ANY(%s)", (ids[2:],))
    rerun = batch(stack, "operator-rerun")
    rerun.expected = {job_id: "completed" for job_id in ids}
    rerun.wait()
    result = rerun.outcome()
    result.assert_clean()
    rows = {r["id"]: r for r in result.rows}
    assert [rows[i]["retry_count"] for i in ids] == [2, 2, 0, 0]  # raised: counted on; pending: starts over


def test_a_retry_repeats_only_the_failed_step(fault_stack, batch, origin):
    stack = fault_stack()
    jobs = batch(stack, "upload-retry-only")
    result, workers = harness.run_marked_batch(stack, jobs, "exif-orientation-1.jpg", UPLOAD_FAILS_ONCE_MARK)
    log = workers.log()
    for row in result.rows:
        assert row["retry_count"] == 1 and "503 Slow Down" in row["last_error"], row
        # downloaded once, decoded once, uploaded twice
        assert sum(1 for r in origin.requests if r["key"] == row["raid_key"]) == 1
        for stage, runs in (("fetch", 1), ("variant", 1), ("upload", 2)):
            assert len(re.findall(rf"job={row['id']} (file=\S+ )?stage={stage} started", log)) == runs, stage


def test_a_failure_that_cannot_be_recorded_still_ends_in_completion(fault_stack, batch):
    """The database is gone just when a failed step is recorded: the job keeps the
    step's lease (its retried message is skipped as busy) until the rescue takes it."""
    stack = fault_stack()
    jobs = batch(stack, "failure-not-recorded")
    result, workers = harness.run_marked_batch(stack, jobs, "progressive.jpg", FAILURE_NOT_RECORDED_MARK)
    log = workers.log()
    assert "the failure could not be recorded" in log
    for row in result.rows:
        # The fault fired in the record_failure the lifecycle calls, for every job.
        assert f"injected: failure not recorded job={row['id']}" in log
        assert row["retry_count"] == 1 and "lease ran out" in row["last_error"], row
