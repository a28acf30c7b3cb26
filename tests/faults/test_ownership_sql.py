"""Ownership of a job, at the level of the SQL functions every worker calls:
a stale attempt (presumed dead, rescued, then awake again) and a duplicate
delivery can change nothing, and a job is finalized once."""

import psycopg2.extras
import pytest

LEASE = "5 seconds"
HANDOFF = "60 seconds"


@pytest.fixture
def db(schema_db):
    conn, _ = schema_db
    return conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)


def one(cur, sql, *params):
    cur.execute(sql, params)
    row = cur.fetchone()
    return list(row.values())[0] if row and len(row) == 1 else row


def new_job(cur) -> tuple[int, str]:
    file_id = one(cur, "INSERT INTO auction_files (raid_key) VALUES ('lot-1.jpg') RETURNING id")
    one(cur, "INSERT INTO publish_jobs (file_id) VALUES (%s) RETURNING id", file_id)
    claimed = one(cur, "SELECT job_id, attempt_token::text AS token FROM publisher_claim_pending(10)")
    return claimed["job_id"], claimed["token"]


def begin(cur, job, token, stage):
    return one(cur, "SELECT publisher_begin_step(%s, %s, %s, %s)", job, token, stage, LEASE)


def end(cur, job, token, next_stage):
    return one(cur, "SELECT publisher_end_step(%s, %s, %s, %s, '{}')", job, token, next_stage, HANDOFF)


def finalize(cur, job, token, variants):
    return one(cur, "SELECT publisher_finalize(%s, %s, %s, 10, 10)", job, token, psycopg2.extras.Json(variants))


def expire_lease(cur, job):
    cur.execute("UPDATE publish_jobs SET lease_expires_at = now() - interval '1 second' WHERE id = %s", (job,))


def completions(cur, job):
    return one(cur, "SELECT count(*) FROM publish_job_events WHERE job_id = %s AND to_status = 'completed'", job)


def test_stale_worker_can_change_nothing_after_its_job_was_rescued(db):
    job, old = new_job(db)
    for stage, next_stage in (("fetch", "variant"), ("variant", "upload")):
        assert begin(db, job, old, stage) == "run"
        assert end(db, job, old, next_stage)
    assert begin(db, job, old, "upload") == "run"
    expire_lease(db, job)  # the worker froze (GC pause, SIGSTOP, network partition)
    rescued = one(db, "SELECT job_id, attempt_token::text AS token, stage FROM publisher_rescue_expired(10)")
    assert rescued["job_id"] == job and rescued["stage"] == "upload" and rescued["token"] != old
    new = rescued["token"]
    assert begin(db, job, new, "upload") == "run"

    # The old worker wakes up: every write it tries is refused.
    assert one(db, "SELECT publisher_heartbeat(%s::bigint[], %s::uuid[], %s)", [job], [old], LEASE) == 0
    assert end(db, job, old, "upload") is False
    assert one(db, "SELECT publisher_record_failure(%s, %s, 'late error', false)", job, old) == "stale"
    assert finalize(db, job, old, {"display": {"key": "from-the-stale-worker"}}) is False
    assert begin(db, job, old, "upload") == "stale"
    row = one(db, "SELECT status, last_error, retry_count FROM publish_jobs WHERE id = %s", job)
    assert row["status"] == "processing" and row["retry_count"] == 1 and "late error" not in (row["last_error"] or "")

    assert finalize(db, job, new, {"display": {"key": "from-the-new-attempt"}}) is True
    assert one(db, "SELECT variants FROM auction_files")["display"]["key"] == "from-the-new-attempt"
    # ...and after completion too.
    assert finalize(db, job, old, {"display": {"key": "from-the-stale-worker"}}) is False
    assert one(db, "SELECT variants FROM auction_files")["display"]["key"] == "from-the-new-attempt"
    assert completions(db, job) == 1


def test_duplicate_delivery_runs_a_step_once_and_finalizes_once(db):
    job, token = new_job(db)
    assert begin(db, job, token, "fetch") == "run"
    assert begin(db, job, token, "fetch") == "busy"  # the same message, delivered twice at once
    assert end(db, job, token, "variant")
    # Delivered again after the step finished: it is done, not run a second time.
    assert begin(db, job, token, "fetch") == "done"
    assert one(db, "SELECT stage FROM publish_jobs WHERE id = %s", job) == "variant"
    assert begin(db, job, token, "variant") == "run"
    assert end(db, job, token, "upload")
    assert begin(db, job, token, "variant") == "done"
    assert begin(db, job, token, "upload") == "run"
    assert finalize(db, job, token, {"display": {"key": "k"}}) is True
    assert finalize(db, job, token, {"display": {"key": "k"}}) is False
    assert begin(db, job, token, "upload") == "stale"
    assert completions(db, job) == 1


def test_a_step_that_keeps_killing_its_worker_ends_failed(db):
    job, token = new_job(db)
    db.execute("UPDATE publish_jobs SET max_retries = 2 WHERE id = %s", (job,))
    deaths = 0
    while True:
        assert begin(db, job, token, "fetch") == "run"
        deaths += 1  # ...and the worker is killed: no end, no failure recorded
        expire_lease(db, job)
        rescued = one(db, "SELECT job_id, attempt_token::text AS token FROM publisher_rescue_expired(10)")
        if rescued is None:
            break
        token = rescued["token"]
    row = one(db, "SELECT status, retry_count, last_error FROM publish_jobs WHERE id = %s", job)
    assert deaths == 3 and row["status"] == "failed" and row["retry_count"] == 2
    assert "giving up" in row["last_error"]
    assert one(db, "SELECT publish_status FROM auction_files") == "failed"
