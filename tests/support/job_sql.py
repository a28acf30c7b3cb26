"""The job state machine's SQL functions, called as the listener and the workers call them."""

import psycopg2.errors
import psycopg2.extras

LEASE = "5 seconds"
#: How long a worker host may be silent before it counts as lost.
ALIVE = "5 seconds"
HANDOFF = "60 seconds"
TIME_LIMIT = "30 minutes"
HOST = "host-a"


def one(cur, sql, *params):
    """The single value of a one-column row, the row itself, or None."""
    cur.execute(sql, params)
    row = cur.fetchone() if cur.description else None
    return list(row.values())[0] if row and len(row) == 1 else row


def rows(cur, sql, *params):
    cur.execute(sql, params)
    return cur.fetchall()


def cursor(conn):
    return conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)


def new_file(cur, raid_key="lot-1.jpg") -> str:
    return one(cur, "INSERT INTO auction_files (raid_key) VALUES (%s) RETURNING id::text", raid_key)


def new_job(cur, file_id=None) -> int:
    return one(cur, "INSERT INTO publish_jobs (file_id) VALUES (%s) RETURNING id", file_id or new_file(cur))


def worker_beat(cur, host=HOST, threads=3, worker=None) -> bool:
    """A worker process of `host` beats, offering `threads`; whether an operator drains the host."""
    return one(cur, "SELECT publisher_worker_beat(%s, %s, %s, %s)", worker or f"{host}:1:1", host,
               f"publish-host-{host}", threads)


def claim(cur, limit=10, per_thread=2) -> list[dict]:
    return rows(cur, "SELECT job_id, attempt_token::text AS token, stage FROM publisher_claim_pending(%s, %s, %s)",
                limit, per_thread, ALIVE)


def claimed_job(cur) -> tuple[int, str]:
    """A new job, claimed by the listener for the live worker host HOST."""
    worker_beat(cur)
    job = new_job(cur)
    (claimed,) = [c for c in claim(cur) if c["job_id"] == job]
    return job, claimed["token"]


def begin(cur, job, token, stage, host=HOST, time_limit=TIME_LIMIT):
    return one(cur, "SELECT outcome FROM publisher_begin_step(%s, %s, %s, %s, %s, %s)",
               job, token, stage, LEASE, host, time_limit)


def end(cur, job, token, stage, next_stage) -> bool:
    """The step ends, its next step is begun on the host (publisher_pass_step) and handed back to
    the host's queue: the job waits between steps, as after a worker's graceful stop."""
    passed = one(cur, "SELECT publisher_pass_step(%s, %s, %s, %s, '{}', %s, %s)", job, token, stage, next_stage,
                 LEASE, TIME_LIMIT)
    return passed == "run" and one(cur, "SELECT publisher_hand_back_step(%s, %s, %s)", job, token, next_stage)


def heartbeat(cur, job, token) -> bool:
    return one(cur, "SELECT renewed FROM publisher_heartbeat(%s::bigint[], %s::uuid[], %s)", [job], [token], LEASE)


def finalize(cur, job, token, variants):
    """As the upload step does: each key tracked before its PUT (refused for an attempt
    that runs no upload, which finalize then finds stale), then the job finalized."""
    in_transaction = not cur.connection.autocommit
    for key in rows(cur, "SELECT publisher_variant_keys(%s) AS k", psycopg2.extras.Json(variants)):
        if in_transaction:
            cur.execute("SAVEPOINT track")
        try:
            one(cur, "SELECT publisher_track_object(%s, %s, %s)", job, token, key["k"])
        except psycopg2.errors.InsufficientPrivilege:
            if in_transaction:
                cur.execute("ROLLBACK TO SAVEPOINT track")
    return one(cur, "SELECT publisher_finalize(%s, %s, %s, 10, 10)", job, token, psycopg2.extras.Json(variants))


def key_in_folder(cur, job_id, name) -> str:
    """An object key of the job's file, as the upload step names them."""
    return f"media/{file_of(cur, job_id)['id']}/{name}"


def fail(cur, job, token, error, permanent):
    return one(cur, "SELECT publisher_record_failure(%s, %s, %s, %s, NULL)", job, token, error, permanent)


def rescue(cur, handoff=HANDOFF) -> list[dict]:
    return rows(cur, "SELECT job_id, attempt_token::text AS token, stage FROM publisher_rescue(10, %s, %s)",
                ALIVE, handoff)


def expire_lease(cur, job):
    cur.execute("UPDATE publish_jobs SET lease_expires_at = now() - interval '1 second' WHERE id = %s", (job,))


def silence_host(cur, host=HOST):
    """The host's processes stopped beating long ago (the host was lost)."""
    cur.execute("UPDATE publisher_workers SET seen_at = now() - interval '1 hour' WHERE host_id = %s", (host,))


def job(cur, job_id) -> dict:
    return one(cur, "SELECT * FROM publish_jobs WHERE id = %s", job_id)


def file_of(cur, job_id) -> dict:
    return one(cur, "SELECT f.* FROM auction_files f JOIN publish_jobs j ON j.file_id = f.id WHERE j.id = %s", job_id)


def completions(cur, job_id):
    return one(cur, "SELECT count(*) FROM publish_job_events WHERE job_id = %s AND to_status = 'completed'", job_id)


def run_to_upload(cur, job_id, token, host=HOST):
    """The fetch and variant steps of an attempt, done on `host`; the upload step begun."""
    for stage, next_stage in (("fetch", "variant"), ("variant", "upload")):
        assert begin(cur, job_id, token, stage, host) == "run"
        assert end(cur, job_id, token, stage, next_stage)
    assert begin(cur, job_id, token, "upload", host) == "run"
