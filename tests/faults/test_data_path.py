"""The data path under faults, on both brokers: a burst larger than the workers
drains with no retry charged, a published file stays published through a failed
re-run, a file deleted while its job runs is never published, a step whose end
cannot be recorded sends no next step, and a step stuck in native code loses its
lease while its worker reports unhealthy."""

import json
import urllib.request

import pytest

from devstack.origin import Fault
from devstack.ports import free_ports_in_a_row, wait_until
from tests.faults import harness
from tests.faults.harness import DELETED_WHILE_RUNNING_MARK, END_STEP_FAILS_ONCE_MARK, HANG_MARK
from tests.support.multihost import step_events
from tests.support.stack import BROKERS

# Both brokers in `make test-faults`; the PostgreSQL broker (the default) in `make test`.
pytestmark = pytest.mark.parametrize(
    "broker", [pytest.param(b, marks=[pytest.mark.faults_slow] if b != "postgres" else []) for b in BROKERS],
    indirect=True)

#: Scaled down from an auction's 10,000 photos: the hand-off window is 3 s instead of
#: 15 min, one worker thread, and any retry charged fails the job (MAX_RETRIES=0).
BURST = {"JOB_HANDOFF_SECONDS": 3, "MAX_RETRIES": 0}


def run_burst(fault_stack, batch, broker, jobs_in_burst: int):
    stack = fault_stack(**BURST)
    jobs = batch(stack, f"burst-{jobs_in_burst}-{broker}")
    key = jobs.source("progressive.jpg")
    for _ in range(jobs_in_burst):
        jobs.add(key)
    stack.start_listener()  # the whole burst is pending before a worker exists
    harness.start_workers(stack, processes=1, threads=1)
    jobs.wait(timeout=60 + jobs_in_burst)
    result = jobs.outcome()
    result.assert_clean()
    assert result.completed == jobs_in_burst
    assert [r for r in result.rows if r["retry_count"]] == []  # waiting charged nothing


def test_a_burst_that_waits_longer_than_the_hand_off_window_completes_without_a_retry(fault_stack, batch, broker):
    run_burst(fault_stack, batch, broker, 60)


@pytest.mark.faults_slow
def test_a_large_burst_completes_without_a_retry(fault_stack, batch, broker):
    run_burst(fault_stack, batch, broker, 600)


@pytest.mark.faults_slow
@pytest.mark.timeout(3600)
def test_an_auction_sized_burst_of_lifecycles_drains_without_a_retry(fault_stack, broker):
    """10,000 jobs at the scaled-down window, on workers whose steps do no image work
    (bench/noop_actors.py): the job lifecycle, the listener's backpressure and the
    broker alone, at the size of an auction's upload."""
    from bench import queries as bench_queries

    stack = fault_stack(**BURST)
    files = [r["id"] for r in stack.sql(bench_queries.ADD_FILES, ("noop.jpg", 10_000))]
    jobs = [r["id"] for r in stack.sql(bench_queries.REQUEST_MANY, (files,))]
    stack.start_listener()
    harness.start_workers(stack, processes=1, threads=1, module="bench.noop_actors")

    def drained():
        return stack.sql("SELECT count(*) FILTER (WHERE status IN ('completed', 'failed')) AS done FROM publish_jobs"
                         )[0]["done"] == len(jobs)

    wait_until(drained, 3000, "10,000 jobs to drain", 1)
    row = stack.sql("SELECT count(*) FILTER (WHERE status = 'completed') AS completed, "
                    "count(*) FILTER (WHERE retry_count > 0) AS charged FROM publish_jobs")[0]
    line = (f"{f'lifecycle-burst-10000-{broker}':<34} jobs={len(jobs)} completed={row['completed']} "
            f"charged a retry={row['charged']}")
    harness.record_line(line)
    assert row == {"completed": len(jobs), "charged": 0}


def test_a_failed_re_run_of_a_published_file_leaves_it_as_it_was(fault_stack, batch, origin, broker):
    stack = fault_stack()
    jobs = batch(stack, f"failed-re-run-{broker}")
    keys = [jobs.source("exif-orientation-6.jpg") for _ in range(3)]
    harness.start_workers(stack)
    stack.start_listener()
    first = [jobs.add(key) for key in keys]
    published = {}
    for job_id in first:
        row = stack.wait_for(job_id)
        assert row["status"] == "completed", row["last_error"]
        published[row["file_id"]] = (row["variants"], row["published_at"])
    for key in keys:
        origin.faults[key] = Fault(status=404)  # RAID lost the original meanwhile
    reruns = [jobs.add(key, expect="failed", file_id=file_id) for key, file_id in zip(keys, published)]
    jobs.faults = len(reruns)
    jobs.wait()
    for key in keys:
        del origin.faults[key]
    result = jobs.outcome()
    result.assert_clean()
    for job_id in reruns:
        row = stack.job(job_id)
        assert row["status"] == "failed" and "404" in row["last_error"]
        # The file is still on the site, with the variants it had, and their objects.
        assert row["publish_status"] == "published"
        assert (row["variants"], row["published_at"]) == published[row["file_id"]]
        for variant in row["variants"].values():
            assert stack.object(variant["key"])[0]


def test_a_file_deleted_while_its_job_runs_is_never_published(fault_stack, batch, broker):
    stack = fault_stack()
    jobs = batch(stack, f"deleted-while-running-{broker}")
    result, workers = harness.run_marked_batch(stack, jobs, "exif-orientation-1.jpg", DELETED_WHILE_RUNNING_MARK,
                                               expect="failed")
    assert result.failed == 3
    for row in result.rows:
        assert row["publish_status"] == "failed" and row["published_at"] is None and row["variants"] is None
        assert "deleted while its job ran" in row["last_error"]
    assert workers.log().count("injected: file deleted") == 3
    # The failed jobs' scratch folders went with them.
    wait_until(lambda: stack.scratch_folders() == [], 30, "the scratch folders of the failed jobs to go")


def test_a_step_whose_end_cannot_be_recorded_sends_no_next_step(fault_stack, batch, broker):
    stack = fault_stack()
    jobs = batch(stack, f"end-step-fails-once-{broker}")
    result, workers = harness.run_marked_batch(stack, jobs, "exif-orientation-1.jpg", END_STEP_FAILS_ONCE_MARK)
    assert result.completed == 3
    log = workers.log()
    for row in result.rows:
        assert f"injected: end_step failed job={row['id']}" in log
        # The fetch finished but its end was not recorded: no variant ran for that
        # attempt; the job was rescued when its lease ran out, and ran once more.
        assert row["retry_count"] == 1 and "lease ran out" in row["last_error"], row
        assert step_events(log, row["id"], "variant", "started") == 1
        assert step_events(log, row["id"], "fetch", "started") == 2
    # The rescued attempts' folders (their originals) were swept; the finished ones removed.
    wait_until(lambda: stack.scratch_folders() == [], 90, "the scratch folders of replaced attempts to go")


def test_a_restarted_worker_host_sweeps_what_its_scratch_kept_of_ended_attempts(fault_stack, batch, broker):
    stack = fault_stack()
    jobs = batch(stack, f"scratch-after-restart-{broker}")
    job_id = jobs.add(jobs.source("progressive.jpg"))
    # What a host that crashed mid-step keeps: the folder of an attempt that was rescued meanwhile.
    stale = stack.scratch / f"{job_id}-00000000-0000-4000-8000-000000000000"
    stale.mkdir(parents=True)
    (stale / "source").write_bytes(b"x" * 1000)
    harness.start_workers(stack)
    stack.start_listener()
    jobs.wait()
    jobs.outcome().assert_clean()
    wait_until(lambda: stack.scratch_folders() == [], 30, "the workers to sweep their scratch at start")


def test_a_step_stuck_in_native_code_loses_its_lease_and_its_worker_says_so(fault_stack, batch, broker):
    metrics_port = free_ports_in_a_row(2)
    port = metrics_port + 1  # the first worker process's health
    stack = fault_stack(STEP_TIME_LIMIT_SECONDS=2, WORKER_METRICS_PORT=metrics_port)
    jobs = batch(stack, f"native-hang-{broker}")
    job_id = jobs.add(jobs.source("progressive.jpg", HANG_MARK + "-"))
    jobs.faults = 1
    workers = harness.start_workers(stack, processes=1, threads=2, hooks=True)
    stack.start_listener()

    def health():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    status, body = wait_until(lambda: (h := health())[0] == 503 and h, harness.HANG_SECONDS,
                              "the worker to report its stuck step")
    assert f"the variant step of job {job_id} has run past its time limit" in body["reason"]
    jobs.wait(timeout=harness.HANG_SECONDS)
    result = jobs.outcome()
    result.assert_clean()
    row = stack.job(job_id)
    # Rescued while its thread still slept: the other thread published it.
    assert row["status"] == "completed" and row["retry_count"] == 1
    assert "injected: native hang" in workers.log()
