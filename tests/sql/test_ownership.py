"""Ownership of a job, at the level of the SQL functions every worker calls:
a stale attempt (presumed dead, rescued, then awake again) and a duplicate
delivery can change nothing, and a job is finalized once."""

from tests.support.job_sql import (
    begin,
    claimed_job,
    completions,
    end,
    expire_lease,
    fail,
    finalize,
    heartbeat,
    job,
    key_in_folder,
    one,
    rescue,
    run_to_upload,
)


def test_stale_worker_can_change_nothing_after_its_job_was_rescued(cur):
    job_id, old = claimed_job(cur)
    run_to_upload(cur, job_id, old)
    expire_lease(cur, job_id)  # the worker froze (GC pause, SIGSTOP, network partition)
    (rescued,) = rescue(cur)
    # Handed out again from the first step, on any host, under a new token.
    assert rescued["job_id"] == job_id and rescued["stage"] == "fetch" and rescued["token"] != old
    new = rescued["token"]
    run_to_upload(cur, job_id, new, host="host-b")

    # The old worker wakes up: every write it tries is refused.
    assert heartbeat(cur, job_id, old) is False
    assert end(cur, job_id, old, "upload", "upload") is False
    assert fail(cur, job_id, old, "late error", False) == "stale"
    assert finalize(cur, job_id, old, {"display": {"key": "from-the-stale-worker"}}) == "stale"
    assert begin(cur, job_id, old, "upload") == "stale"
    row = job(cur, job_id)
    assert row["status"] == "processing" and row["retry_count"] == 1 and "late error" not in (row["last_error"] or "")

    new_key = key_in_folder(cur, job_id, "from-the-new-attempt")
    assert finalize(cur, job_id, new, {"display": {"key": new_key}}) == "completed"
    assert one(cur, "SELECT variants FROM auction_files")["display"]["key"] == new_key
    # ...and after completion too.
    assert finalize(cur, job_id, old, {"display": {"key": "from-the-stale-worker"}}) == "stale"
    assert one(cur, "SELECT variants FROM auction_files")["display"]["key"] == new_key
    assert completions(cur, job_id) == 1


def test_duplicate_delivery_runs_a_step_once_and_finalizes_once(cur):
    job_id, token = claimed_job(cur)
    assert begin(cur, job_id, token, "fetch") == "run"
    assert begin(cur, job_id, token, "fetch") == "busy"  # the same message, delivered twice at once
    assert end(cur, job_id, token, "fetch", "variant")
    # Delivered again after the step finished: it is done, not run a second time.
    assert begin(cur, job_id, token, "fetch") == "done"
    assert end(cur, job_id, token, "fetch", "variant") is False
    assert job(cur, job_id)["stage"] == "variant"
    assert begin(cur, job_id, token, "variant") == "run"
    assert end(cur, job_id, token, "variant", "upload")
    assert begin(cur, job_id, token, "variant") == "done"
    assert begin(cur, job_id, token, "upload") == "run"
    key = key_in_folder(cur, job_id, "k")
    assert finalize(cur, job_id, token, {"display": {"key": key}}) == "completed"
    assert finalize(cur, job_id, token, {"display": {"key": key}}) == "stale"
    assert begin(cur, job_id, token, "upload") == "stale"
    assert completions(cur, job_id) == 1


def test_a_step_that_keeps_killing_its_worker_ends_failed(cur):
    job_id, token = claimed_job(cur)
    cur.execute("UPDATE publish_jobs SET max_retries = 2 WHERE id = %s", (job_id,))
    deaths = 0
    while True:
        assert begin(cur, job_id, token, "fetch") == "run"
        deaths += 1  # ...and the worker is killed: no end, no failure recorded
        expire_lease(cur, job_id)
        rescued = rescue(cur)
        if not rescued:
            break
        token = rescued[0]["token"]
    row = job(cur, job_id)
    assert deaths == 3 and row["status"] == "failed" and row["retry_count"] == 2
    assert "giving up" in row["last_error"]
    assert one(cur, "SELECT publish_status FROM auction_files") == "failed"
