"""A host's failure is not the job's: a step whose scratch files are gone, or
whose disk is full, starts the job over from its fetch under a new token with no
retry charged; files gone only a bounded number of times; a host short of space
puts a first step off."""

from tests.support.job_sql import begin, claimed_job, end, job, rows, run_to_upload

MAX = 3  #: the limit sql/002_job_states.sql holds


def start_over(cur, job_id, token, reason="scratch_missing", counted=True, delay="0 seconds"):
    return rows(cur, "SELECT outcome, attempt_token::text AS token FROM publisher_start_over(%s, %s, %s, %s, %s, %s)",
                job_id, token, f"variant: {reason}", reason, counted, delay)[0]


def test_a_step_whose_files_are_gone_restarts_from_fetch_without_a_retry(cur):
    job_id, token = claimed_job(cur)
    run_to_upload(cur, job_id, token)
    started = start_over(cur, job_id, token)
    assert started["outcome"] == "restarted" and started["token"] != token
    row = job(cur, job_id)
    assert (row["status"], row["stage"], row["host_id"], row["artifacts"]) == ("queued", "fetch", None, None)
    assert (row["retry_count"], row["scratch_restarts"], row["failure_reason"]) == (0, 1, "scratch_missing")
    # The old attempt's messages are stale; the new one runs from its fetch, on any host.
    assert begin(cur, job_id, token, "upload") == "stale"
    assert begin(cur, job_id, started["token"], "fetch", host="host-b") == "run"


def test_a_job_whose_files_keep_going_missing_fails_after_a_bounded_number_of_start_overs(cur):
    job_id, token = claimed_job(cur)
    for _ in range(MAX):
        assert begin(cur, job_id, token, "fetch") == "run" and end(cur, job_id, token, "fetch", "variant")
        assert begin(cur, job_id, token, "variant") == "run"
        token = start_over(cur, job_id, token)["token"]
    assert begin(cur, job_id, token, "fetch") == "run" and end(cur, job_id, token, "fetch", "variant")
    assert begin(cur, job_id, token, "variant") == "run"
    assert start_over(cur, job_id, token) == {"outcome": "failed", "token": None}
    row = job(cur, job_id)
    assert (row["status"], row["failure_reason"], row["retry_count"]) == ("failed", "scratch_missing", 0)
    assert "giving up" in row["last_error"]


def test_a_full_disk_is_waited_out_however_often_and_puts_the_first_step_off(cur):
    job_id, token = claimed_job(cur)
    for _ in range(MAX + 2):
        assert begin(cur, job_id, token, "fetch") == "run"
        started = start_over(cur, job_id, token, "no_space", counted=False, delay="5 seconds")
        assert started["outcome"] == "restarted"
        token = started["token"]
    row = job(cur, job_id)
    assert (row["status"], row["retry_count"], row["scratch_restarts"]) == ("queued", 0, 0)
    assert row["next_attempt_at"] is not None  # holds no room among the claimed jobs meanwhile


def test_only_the_current_attempt_starts_a_job_over_or_puts_its_fetch_off(cur):
    job_id, token = claimed_job(cur)
    assert rows(cur, "SELECT publisher_defer_fetch(%s, %s, '5 seconds') AS d", job_id, token)[0]["d"] is True
    assert job(cur, job_id)["retry_count"] == 0
    run_to_upload(cur, job_id, token)
    new = start_over(cur, job_id, token)["token"]
    assert start_over(cur, job_id, token) == {"outcome": "stale", "token": None}
    assert rows(cur, "SELECT publisher_defer_fetch(%s, %s, '5 seconds') AS d", job_id, token)[0]["d"] is False
    assert rows(cur, "SELECT publisher_defer_fetch(%s, %s, '5 seconds') AS d", job_id, new)[0]["d"] is True


def test_a_full_disk_is_waited_out_for_a_bounded_time_then_the_job_fails_as_no_space(cur):
    job_id, token = claimed_job(cur)
    assert begin(cur, job_id, token, "fetch") == "run"
    token = start_over(cur, job_id, token, "no_space", counted=False, delay="5 seconds")["token"]
    # The disk has been full for this job longer than the time it is waited out.
    cur.execute("UPDATE publish_jobs SET no_space_since = now() - interval '2 days' WHERE id = %s", (job_id,))
    assert begin(cur, job_id, token, "fetch") == "run"
    assert start_over(cur, job_id, token, "no_space", counted=False, delay="5 seconds") == {
        "outcome": "failed", "token": None}
    row = job(cur, job_id)
    assert (row["status"], row["failure_reason"], row["retry_count"]) == ("failed", "no_space", 0)
    # Run again by an operator, the job gets the whole time again.
    cur.execute("UPDATE publish_jobs SET status = 'pending' WHERE id = %s", (job_id,))
    assert job(cur, job_id)["no_space_since"] is None
