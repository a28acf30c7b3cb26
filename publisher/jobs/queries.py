"""Every statement the Python side runs against the job tables, by name.

The state transitions themselves are SQL functions in sql/002_job_states.sql;
this module only calls them.
"""

from __future__ import annotations

import json
from datetime import timedelta

CHANNEL = "publish_jobs"

CLAIM_PENDING = "SELECT job_id, attempt_token::text AS token, stage FROM publisher_claim_pending(%s, %s, %s)"
RESCUE = "SELECT job_id, attempt_token::text AS token, stage FROM publisher_rescue(%s, %s, %s)"
BEGIN_STEP = "SELECT publisher_begin_step(%s, %s, %s, %s, %s, %s) AS outcome"
HEARTBEAT = "SELECT job_id, renewed FROM publisher_heartbeat(%s::bigint[], %s::uuid[], %s)"
WORKER_BEAT = "SELECT publisher_worker_beat(%s, %s, %s, %s)"
END_STEP = "SELECT publisher_end_step(%s, %s, %s, %s, %s) AS owned"
RECORD_FAILURE = "SELECT publisher_record_failure(%s, %s, %s, %s, %s) AS outcome"
SCHEDULE_RETRY = "SELECT publisher_schedule_retry(%s, %s, %s)"
FINALIZE = "SELECT publisher_finalize(%s, %s, %s, %s, %s) AS outcome"
START_OVER = "SELECT outcome, attempt_token::text AS token FROM publisher_start_over(%s, %s, %s, %s, %s, %s)"
DEFER_FETCH = "SELECT publisher_defer_fetch(%s, %s, %s) AS deferred"
# The attempts among those given that are current on this host: their scratch folders are kept.
CURRENT_ATTEMPTS = """
    SELECT id, attempt_token::text AS token FROM publish_jobs
     WHERE id = ANY(%s) AND attempt_token::text = ANY(%s) AND host_id = %s
       AND status IN ('queued', 'processing')
"""
RAID_KEY = "SELECT f.raid_key FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id WHERE j.id = %s"
LOAD_JOB = """
    SELECT j.id, j.file_id::text AS file_id, f.raid_key, j.stage, j.artifacts,
           j.retry_count, j.max_retries
      FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id
     WHERE j.id = %s AND j.attempt_token = %s
"""

# What the job's log lines and the queue-lag metric need when a step starts.
JOB_CONTEXT = """
    SELECT file_id::text AS file_id, retry_count,
           extract(epoch FROM now() - created_at)::float8 AS since_insert
      FROM publish_jobs WHERE id = %s
"""

FILE_IDS = "SELECT id, file_id::text AS file_id FROM publish_jobs WHERE id = ANY(%s)"


SAVE_SETTING = """
    INSERT INTO publisher_settings (name, value) VALUES (%s, %s)
    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
     WHERE publisher_settings.value IS DISTINCT FROM EXCLUDED.value
"""


def save_setting(cur, name: str, value) -> None:
    cur.execute(SAVE_SETTING, (name, str(value)))


def claim_pending(cur, limit: int, per_thread: int, alive: timedelta) -> list[dict]:
    """Up to `limit` pending jobs, as far as the live workers have room for them."""
    cur.execute(CLAIM_PENDING, (limit, per_thread, alive))
    return cur.fetchall()


def rescue(cur, limit: int, alive: timedelta, handoff: timedelta) -> list[dict]:
    cur.execute(RESCUE, (limit, alive, handoff))
    return cur.fetchall()


def begin_step(cur, job_id: int, token: str, stage: str, lease: timedelta, host_id: str,
               time_limit: timedelta) -> str:
    cur.execute(BEGIN_STEP, (job_id, token, stage, lease, host_id, time_limit))
    return cur.fetchone()["outcome"]


def worker_beat(cur, worker_id: str, host_id: str, queue: str, threads: int) -> None:
    cur.execute(WORKER_BEAT, (worker_id, host_id, queue, threads))


def current_attempts(cur, attempts: list[tuple[int, str]], host_id: str) -> set[tuple[int, str]]:
    cur.execute(CURRENT_ATTEMPTS, ([j for j, _ in attempts], [t for _, t in attempts], host_id))
    return {(r["id"], r["token"]) for r in cur.fetchall()}


def job_context(cur, job_id: int) -> dict:
    cur.execute(JOB_CONTEXT, (job_id,))
    return cur.fetchone()


def file_ids(cur, job_ids: list[int]) -> dict[int, str]:
    """The file of each job, for the listener's log lines."""
    cur.execute(FILE_IDS, (job_ids,))
    return {r["id"]: r["file_id"] for r in cur.fetchall()}


def heartbeat(cur, running: list[tuple[int, str]], lease: timedelta) -> dict[int, bool]:
    """Renews the leases of the running steps; each job with whether its lease was renewed."""
    cur.execute(HEARTBEAT, ([j for j, _ in running], [t for _, t in running], lease))
    return {r["job_id"]: r["renewed"] for r in cur.fetchall()}


def end_step(cur, job_id: int, token: str, stage: str, next_stage: str, artifacts: dict | None) -> bool:
    cur.execute(END_STEP, (job_id, token, stage, next_stage, json.dumps(artifacts or {})))
    return cur.fetchone()["owned"]


def record_failure(cur, job_id: int, token: str, error: str, permanent: bool, reason: str | None) -> str:
    cur.execute(RECORD_FAILURE, (job_id, token, error, permanent, reason))
    return cur.fetchone()["outcome"]


def start_over(cur, job_id: int, token: str, error: str, reason: str, counted: bool,
               delay: timedelta) -> tuple[str, str | None]:
    """('restarted', new token), ('failed', None) or ('stale', None): sql/002_job_states.sql
    (which also holds the limit of counted start overs)."""
    cur.execute(START_OVER, (job_id, token, error, reason, counted, delay))
    row = cur.fetchone()
    return row["outcome"], row["token"]


def defer_fetch(cur, job_id: int, token: str, delay: timedelta) -> bool:
    cur.execute(DEFER_FETCH, (job_id, token, delay))
    return cur.fetchone()["deferred"]


def raid_key(cur, job_id: int) -> str | None:
    cur.execute(RAID_KEY, (job_id,))
    row = cur.fetchone()
    return row["raid_key"] if row else None


def schedule_retry(cur, job_id: int, token: str, delay: timedelta) -> None:
    cur.execute(SCHEDULE_RETRY, (job_id, token, delay))


def finalize(cur, job_id: int, token: str, variants: dict, width: int, height: int) -> str:
    """'completed', 'stale' (another attempt owns the job) or 'deleted' (the file was deleted: job failed)."""
    cur.execute(FINALIZE, (job_id, token, json.dumps(variants), width, height))
    return cur.fetchone()["outcome"]


TRACK_OBJECT = "SELECT publisher_track_object(%s, %s, %s)"


def track_object(db, job_id: int, token: str, key: str) -> None:
    """Records that the attempt is about to PUT key, in a transaction of its own
    (sql/011_retention.sql): waits while maintenance removes that key, so the PUT
    that follows is never removed under it."""
    with db.transaction() as cur:
        cur.execute(TRACK_OBJECT, (job_id, token, key))


def load_job(cur, job_id: int, token: str) -> dict | None:
    cur.execute(LOAD_JOB, (job_id, token))
    return cur.fetchone()


# -- imaging (sql/004_imaging.sql) -------------------------------------------
RECORD_IMAGING = "SELECT publisher_record_imaging(%s, %s, %s, %s, %s) AS owned"
REQUEST_REPUBLISH = "SELECT publisher_request_republish(%s, %s) AS created"
COUNT_STALE = "SELECT count(*)::int AS stale FROM publisher_stale_files(%s)"
COUNT_ACTIVE_REPUBLISH = """
    SELECT count(*)::int AS active FROM publish_jobs
     WHERE republish_recipe IS NOT NULL AND status IN ('pending', 'queued', 'processing')
"""
REPUBLISH_MISMATCHES = "SELECT file_id::text AS file_id, recipe FROM publisher_republish_mismatches(%s)"
PUBLISHED_FILES = """
    SELECT id::text AS id, raid_key, variants, width, height, recipe, placeholder, dominant_color, published_at
      FROM auction_files
     WHERE publish_status = 'published' AND deleted_at IS NULL AND variants IS NOT NULL
     ORDER BY published_at DESC, id
     LIMIT %s
"""


def record_imaging(cur, job_id: int, token: str, recipe: str, placeholder: str, dominant_color: str) -> bool:
    cur.execute(RECORD_IMAGING, (job_id, token, recipe, placeholder, dominant_color))
    return cur.fetchone()["owned"]


def request_republish(cur, recipe: str, limit: int) -> int:
    cur.execute(REQUEST_REPUBLISH, (recipe, limit))
    return cur.fetchone()["created"]


def count_stale(cur, recipe: str) -> int:
    cur.execute(COUNT_STALE, (recipe,))
    return cur.fetchone()["stale"]


def count_active_republish(cur) -> int:
    cur.execute(COUNT_ACTIVE_REPUBLISH)
    return cur.fetchone()["active"]


def republish_mismatches(cur, recipe: str) -> list[dict]:
    cur.execute(REPUBLISH_MISMATCHES, (recipe,))
    return cur.fetchall()


def published_files(cur, limit: int) -> list[dict]:
    cur.execute(PUBLISHED_FILES, (limit,))
    return cur.fetchall()

# -- operations: status, operator actions, maintenance (sql/006_operations.sql) --
#: A job's statuses, in the order it goes through them (sql/002_job_states.sql).
JOB_STATUSES = ("pending", "queued", "processing", "completed", "failed", "cancelled")
#: The statuses counted every few seconds: all but the ends that hold the history.
COUNTED_STATUSES = tuple(s for s in JOB_STATUSES if s not in ("completed", "cancelled"))
#: The states of a dramatiq-pg broker message.
BROKER_STATES = ("queued", "consumed", "rejected", "done")
STATUS_COUNTS = "SELECT status, count(*)::int AS n FROM publish_jobs GROUP BY status"
# Without 'completed', which holds the history (up to COMPLETED_JOB_RETENTION_DAYS): cheap
# enough for the listener's gauges every few seconds, through the status indexes.
UNFINISHED_AND_FAILED_COUNTS = """
    SELECT status, count(*)::int AS n FROM publish_jobs
     WHERE status = ANY(%s) GROUP BY status
"""
BROKER_COUNTS = "SELECT state::text AS state, count(*)::int AS n FROM dramatiq.queue GROUP BY state"
OLDEST_PENDING = """
    SELECT id, file_id::text AS file_id, created_at,
           extract(epoch FROM now() - created_at)::float8 AS age_seconds
      FROM publish_jobs WHERE status = 'pending' ORDER BY id LIMIT 1
"""
LAST_HOUR = """
    SELECT count(*) FILTER (WHERE status = 'completed' AND completed_at > now() - interval '1 hour')::int
               AS completed,
           count(*) FILTER (WHERE status = 'failed' AND updated_at > now() - interval '1 hour')::int AS failed,
           avg(extract(epoch FROM completed_at - started_at))
               FILTER (WHERE status = 'completed' AND completed_at > now() - interval '1 hour')::float8
               AS avg_processing_seconds,
           avg(extract(epoch FROM completed_at - created_at))
               FILTER (WHERE status = 'completed' AND completed_at > now() - interval '1 hour')::float8
               AS avg_total_seconds
      FROM publish_jobs
     WHERE (status = 'completed' AND completed_at > now() - interval '1 hour')
        OR (status = 'failed' AND updated_at > now() - interval '1 hour')
"""
LAST_FAILURES = """
    SELECT id, file_id::text AS file_id, updated_at, retry_count, max_retries, stage, last_error
      FROM publish_jobs WHERE status = 'failed' ORDER BY updated_at DESC LIMIT %s
"""
ADMIN_RETRY = "SELECT changed, job_id, file_id::text AS file_id, message FROM publisher_admin_retry(%s)"
ADMIN_RETRY_FAILED = "SELECT job_id, file_id::text AS file_id, last_error FROM publisher_admin_retry_failed(%s)"
ADMIN_REPUBLISH = "SELECT changed, job_id, file_id::text AS file_id, message FROM publisher_admin_republish(%s)"
ADMIN_CANCEL = "SELECT changed, job_id, file_id::text AS file_id, message FROM publisher_admin_cancel(%s)"
PURGE_COMPLETED_JOBS = "SELECT publisher_purge_completed_jobs(%s, %s) AS n"
PURGE_BROKER_MESSAGES = "SELECT publisher_purge_broker_messages(%s, %s) AS n"
PURGE_JOB_EVENTS = "SELECT publisher_purge_job_events(%s, %s) AS n"
PURGE_EVENT_OUTBOX = "SELECT publisher_purge_event_outbox(%s, %s) AS n"
TAKE_UNPUBLISHED_OBJECTS = "SELECT key FROM publisher_take_unpublished_objects(%s, %s)"
FILES_TO_PURGE = "SELECT file_id::text AS file_id FROM publisher_files_to_purge(%s, %s)"
LOCK_FILE_FOR_PURGE = "SELECT file_id::text AS file_id, keys, job_ids FROM publisher_lock_file_for_purge(%s, %s)"
DELETE_FILE = "SELECT publisher_delete_file(%s, %s) AS n"
FORGET_LOST_HOSTS = "SELECT publisher_forget_lost_hosts(%s) AS n"
# Whether pg_cron runs the database side of maintenance (sql/007_pg_cron.sql).
PG_CRON_SCHEDULED = """
    SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') AS installed
"""
PG_CRON_JOBS = "SELECT count(*)::int AS n FROM cron.job WHERE jobname LIKE 'media-publisher-%%'"


def status_snapshot(cur, failures: int = 10, count_completed: bool = True) -> dict:
    """Everything `publisher-admin status` and the listener's gauges show."""
    if count_completed:
        cur.execute(STATUS_COUNTS)
    else:
        cur.execute(UNFINISHED_AND_FAILED_COUNTS, (list(COUNTED_STATUSES),))
    jobs = {r["status"]: r["n"] for r in cur.fetchall()}
    cur.execute(BROKER_COUNTS)
    broker = {r["state"]: r["n"] for r in cur.fetchall()}
    cur.execute(OLDEST_PENDING)
    oldest = cur.fetchone()
    cur.execute(LAST_HOUR)
    last_hour = dict(cur.fetchone())
    last_failures = []
    if failures:
        cur.execute(LAST_FAILURES, (failures,))
        last_failures = cur.fetchall()
    return {
        "jobs": jobs, "broker": broker, "oldest_pending": oldest,
        "oldest_pending_seconds": oldest["age_seconds"] if oldest else None,
        "last_hour": last_hour, "last_failures": last_failures,
    }


def admin_action(cur, statement: str, arg) -> list[dict]:
    cur.execute(statement, (arg,))
    return cur.fetchall()


def pg_cron_schedules_maintenance(cur) -> bool:
    cur.execute(PG_CRON_SCHEDULED)
    if not cur.fetchone()["installed"]:
        return False
    cur.execute(PG_CRON_JOBS)
    return cur.fetchone()["n"] > 0
