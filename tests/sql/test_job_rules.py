"""The job state machine's rules for a system of many worker hosts, in SQL:
steps only move forward and stay on the host that fetched, waiting is never
failing, a lost host's jobs start over, a stuck step loses its lease, and a
published file stays published."""

import psycopg2

from tests.support.job_sql import (
    LEASE,
    begin,
    claim,
    claimed_job,
    end,
    expire_lease,
    fail,
    file_of,
    finalize,
    heartbeat,
    job,
    key_in_folder,
    new_job,
    one,
    rescue,
    rows,
    run_to_upload,
    silence_host,
    worker_beat,
)


def test_a_step_ahead_of_the_job_is_refused_and_changes_nothing(cur):
    job_id, token = claimed_job(cur)
    assert begin(cur, job_id, token, "upload") == "stale"
    assert begin(cur, job_id, token, "variant") == "stale"
    assert job(cur, job_id)["stage"] == "fetch" and job(cur, job_id)["status"] == "queued"
    assert begin(cur, job_id, token, "fetch") == "run"
    # Recording the end of another stage than the one running changes nothing either.
    assert end(cur, job_id, token, "variant", "upload") is False
    assert job(cur, job_id)["stage"] == "fetch"


def test_a_step_that_may_run_is_told_its_file_retries_and_wait_and_one_that_may_not_nothing(cur):
    """What the step's log lines and the queue-lag metric need comes with the start, in one statement."""
    job_id, token = claimed_job(cur)
    cur.execute("UPDATE publish_jobs SET created_at = now() - interval '3 seconds' WHERE id = %s", (job_id,))
    start = ("SELECT outcome, file_id::text, retry_count, since_insert "
             "FROM publisher_begin_step(%s, %s, %s, %s, 'host-a', '30 minutes')")
    refused = one(cur, start, job_id, token, "upload", LEASE)
    assert refused == {"outcome": "stale", "file_id": None, "retry_count": None, "since_insert": None}
    started = one(cur, start, job_id, token, "fetch", LEASE)
    assert (started["outcome"], started["file_id"], started["retry_count"]) == ("run", file_of(cur, job_id)["id"], 0)
    assert 3 <= started["since_insert"] < 60
    # A run of the step that died without a word counts: the start says so.
    expire_lease(cur, job_id)
    assert one(cur, start, job_id, token, "fetch", LEASE)["retry_count"] == 1


def test_later_steps_run_only_on_the_host_that_fetched(cur):
    job_id, token = claimed_job(cur)
    assert begin(cur, job_id, token, "fetch", host="host-a") == "run"
    assert end(cur, job_id, token, "fetch", "variant")
    assert begin(cur, job_id, token, "variant", host="host-b") == "stale"
    assert begin(cur, job_id, token, "variant", host="host-a") == "run"


def test_the_listener_claims_no_more_than_the_live_workers_can_start(cur):
    jobs = [new_job(cur) for _ in range(20)]
    assert claim(cur) == []  # no worker alive: jobs wait as pending, where waiting costs nothing
    worker_beat(cur, "host-a", threads=3)
    claimed = claim(cur, limit=100, per_thread=2)
    assert [c["job_id"] for c in claimed] == jobs[:6]
    assert claim(cur, limit=100, per_thread=2) == []
    # A job that starts makes room for one more.
    assert begin(cur, claimed[0]["job_id"], claimed[0]["token"], "fetch") == "run"
    assert [c["job_id"] for c in claim(cur, limit=100, per_thread=2)] == [jobs[6]]
    # A job waiting for its retry's backoff holds no room either.
    cur.execute("UPDATE publish_jobs SET next_attempt_at = now() + interval '10 minutes' WHERE id = %s",
               (claimed[2]["job_id"],))
    assert [c["job_id"] for c in claim(cur, limit=100, per_thread=2)] == [jobs[7]]
    # A second host doubles the room.
    worker_beat(cur, "host-b", threads=3)
    assert len(claim(cur, limit=100, per_thread=2)) == 6
    # A host that stopped beating counts no more.
    silence_host(cur, "host-a")
    silence_host(cur, "host-b")
    assert claim(cur, limit=100, per_thread=2) == []


def test_a_job_wakes_the_listener_when_it_becomes_runnable_and_never_while_its_steps_run(cur):
    # A NOTIFY from a step would wake the listener for a claim per job started; the room a start
    # frees is claimed on the listener's refill timer (tests/unit/listener/test_claim_refill.py).
    worker_beat(cur, threads=1)
    cur.execute("LISTEN publish_jobs")
    job_id = new_job(cur)
    assert [n.payload for n in cur.connection.notifies] == [str(job_id)]
    cur.connection.notifies.clear()
    token = claim(cur)[0]["token"]
    run_to_upload(cur, job_id, token)
    assert finalize(cur, job_id, token, {"display": {"key": key_in_folder(cur, job_id, "v1")}}) == "completed"
    cur.execute("SELECT 1")  # notifications arrive with a statement's answer
    assert cur.connection.notifies == []


def test_waiting_on_a_live_host_is_never_rescued_however_long(cur):
    job_id, token = claimed_job(cur)
    assert begin(cur, job_id, token, "fetch") == "run"
    assert end(cur, job_id, token, "fetch", "variant")
    cur.execute("UPDATE publish_jobs SET updated_at = now() - interval '50 seconds' WHERE id = %s", (job_id,))
    worker_beat(cur)
    assert rescue(cur, handoff="60 seconds") == []
    row = job(cur, job_id)
    assert (row["status"], row["stage"], row["attempt_token"], row["retry_count"]) == (
        "processing", "variant", token, 0)


def test_a_job_waiting_on_a_lost_host_starts_over_elsewhere_uncharged(cur):
    job_id, token = claimed_job(cur)
    assert begin(cur, job_id, token, "fetch") == "run"
    assert end(cur, job_id, token, "fetch", "variant")
    silence_host(cur)
    (rescued,) = rescue(cur)
    assert (rescued["job_id"], rescued["stage"]) == (job_id, "fetch") and rescued["token"] != token
    row = job(cur, job_id)
    assert (row["status"], row["retry_count"], row["host_id"], row["artifacts"]) == ("queued", 0, None, None)
    # The old attempt's message, delivered on the lost host's return, runs nothing.
    assert begin(cur, job_id, token, "variant") == "stale"
    assert begin(cur, job_id, rescued["token"], "fetch", host="host-b") == "run"


def test_a_retry_waiting_on_a_lost_host_starts_over_elsewhere(cur):
    job_id, token = claimed_job(cur)
    for stage, next_stage in (("fetch", "variant"),):
        assert begin(cur, job_id, token, stage) == "run"
        assert end(cur, job_id, token, stage, next_stage)
    assert begin(cur, job_id, token, "variant") == "run"
    assert fail(cur, job_id, token, "variant: disk full", False) == "retry"
    silence_host(cur)
    (rescued,) = rescue(cur)
    assert rescued["stage"] == "fetch"
    assert job(cur, job_id)["retry_count"] == 1  # the failed attempt, not the wait


def test_a_step_stuck_past_its_time_limit_loses_its_lease_and_counts(cur):
    job_id, token = claimed_job(cur)
    assert begin(cur, job_id, token, "fetch", time_limit="0 seconds") == "run"
    # Stuck in native code: the heartbeat still runs, but the lease is no longer renewed.
    assert heartbeat(cur, job_id, token) is False
    expire_lease(cur, job_id)
    (rescued,) = rescue(cur)
    assert rescued["stage"] == "fetch"
    row = job(cur, job_id)
    assert row["retry_count"] == 1 and "did not finish before its lease ran out" in row["last_error"]
    # A step within its time limit keeps its lease.
    assert begin(cur, job_id, rescued["token"], "fetch") == "run"
    assert heartbeat(cur, job_id, rescued["token"]) is True


def published(cur) -> tuple[int, str]:
    job_id, token = claimed_job(cur)
    run_to_upload(cur, job_id, token)
    assert finalize(cur, job_id, token, {"display": {"key": key_in_folder(cur, job_id, "v1")}}) == "completed"
    return job_id, file_of(cur, job_id)["id"]


def test_a_re_run_of_a_published_file_keeps_it_published_and_a_failed_one_changes_nothing(cur):
    first, file_id = published(cur)
    before = file_of(cur, first)
    rerun = new_job(cur, file_id)  # a new INSERT for a published file
    assert file_of(cur, rerun)["publish_status"] == "published"
    (claimed,) = claim(cur)
    assert begin(cur, rerun, claimed["token"], "fetch") == "run"
    assert file_of(cur, rerun)["publish_status"] == "published"
    assert fail(cur, rerun, claimed["token"], "fetch: origin answered 404", True) == "failed"
    after = file_of(cur, rerun)
    assert (after["publish_status"], after["variants"], after["published_at"]) == (
        "published", before["variants"], before["published_at"])
    assert job(cur, rerun)["last_error"] == "fetch: origin answered 404"  # recorded on the job only


def test_a_file_deleted_while_its_job_runs_is_never_published(cur):
    job_id, token = claimed_job(cur)
    run_to_upload(cur, job_id, token)
    cur.execute("UPDATE auction_files SET deleted_at = now()")
    assert finalize(cur, job_id, token, {"display": {"key": key_in_folder(cur, job_id, "v1")}}) == "deleted"
    row, file = job(cur, job_id), file_of(cur, job_id)
    assert row["status"] == "failed" and "deleted" in row["last_error"]
    assert (file["publish_status"], file["variants"], file["published_at"]) == ("failed", None, None)
    assert one(cur, "SELECT count(*) FROM publish_job_events WHERE to_status = 'completed'") == 0


def test_messages_waiting_for_a_lost_host_are_not_re_announced(cur):
    from datetime import timedelta

    from listener.reannounce import Reannounce, ReannounceConfig

    worker_beat(cur, "live-host")
    worker_beat(cur, "lost-host")
    silence_host(cur, "lost-host")
    for queue in ("publish", "publish-host-live-host", "publish-host-live-host.DQ", "publish-host-lost-host"):
        cur.execute("INSERT INTO dramatiq.queue (message_id, queue_name, state, mtime, message) "
                   "VALUES (gen_random_uuid(), %s, 'queued', now() - interval '1 minute', '{}')", (queue,))
    assert Reannounce(None, ReannounceConfig(alive=timedelta(minutes=5))).announce(cur) == 3


def test_a_job_row_locked_by_another_session_holds_up_no_other_lease(cur, schema_db):
    _, url = schema_db
    (held, held_token), (free, free_token) = claimed_job(cur), claimed_job(cur)
    for job_id, token in ((held, held_token), (free, free_token)):
        assert begin(cur, job_id, token, "fetch") == "run"
    # A transaction left open by hand holds one running job's row.
    other = psycopg2.connect(url)
    try:
        other.cursor().execute("SELECT 1 FROM publish_jobs WHERE id = %s FOR UPDATE", (held,))
        cur.execute("SET lock_timeout = '5s'")  # waiting for that lock would fail here, not hang the test
        renewed = {r["job_id"]: r["renewed"] for r in rows(
            cur, "SELECT * FROM publisher_heartbeat(%s::bigint[], %s::uuid[], %s)",
            [held, free], [held_token, free_token], LEASE)}
        assert renewed == {held: None, free: True}  # the held one is neither renewed nor given up
    finally:
        # Rolled back, not only closed: the server frees the lock before it answers a rollback,
        # but after a close only once that backend has exited, which a busy machine delays.
        other.rollback()
        other.close()
    assert heartbeat(cur, held, held_token) is True
